"""Install stereo_sr (the ``basicsr`` package).

``python setup.py develop --no_cuda_ext`` is accepted for compatibility with BasicSR/NAFNet instructions:
the flag means "no compiled CUDA extension", and this package has none, so it changes nothing.
"""
import sys
from pathlib import Path

from setuptools import find_packages, setup

if '--no_cuda_ext' in sys.argv:
    sys.argv.remove('--no_cuda_ext')

here = Path(__file__).parent
requirements = [line.strip() for line in (here / 'requirements.txt').read_text().splitlines()
                if line.strip() and not line.startswith('#')]

setup(
    name='stereo_sr',
    version='0.1.0',
    description='Stereo image super-resolution (NAFSSR) training and evaluation in the style of BasicSR',
    long_description=(here / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['basicsr', 'basicsr.*']),
    package_data={'basicsr': ['report_templates/*']},  # the Jinja2 templates of the HTML report and comparison
    python_requires='>=3.10',
    install_requires=requirements,
    # `make test` pins them with constraints.txt; `onnx`: scripts/export_onnx.py and inference_stereo.py --onnx
    # (onnxscript is what torch.onnx's exporter needs); the tests need it too
    # selenium: the browser tests drive Debian's chromium with /usr/bin/chromedriver (nothing downloaded)
    # demo: the local web demo, demo.py (gradio; its version needs pillow<13, see constraints.txt)
    # wandb: Weights & Biases logging of train.py (logger:wandb:project); the tests run it offline
    extras_require={'test': ['pytest', 'pytest-timeout', 'onnx', 'onnxruntime', 'onnxscript', 'selenium', 'gradio',
                             'wandb'],
                    'onnx': ['onnx', 'onnxruntime', 'onnxscript'],
                    'demo': ['gradio'],
                    'wandb': ['wandb']},
    zip_safe=False,
)
