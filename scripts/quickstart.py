"""Quick start (``make quickstart``): build the built-in real sample, train a small NAFSSR on the CPU, test it.

1. ``scripts/data_preparation/make_sample.py`` builds ``datasets/sample`` from scikit-image's Motorcycle pair.
2. ``train.py -opt options/train/NAFSSR/quickstart_x4.yml`` trains for a few minutes (rerunning resumes).
3. The trained network super-resolves the held-out pair; the images go to ``results/quickstart_NAFSSR_x4/`` and the
   PSNR is compared with MATLAB-bicubic up-sampling of the same LR pair. The last line printed is
   ``quickstart: NAFSSR <psnr> dB vs bicubic <psnr> dB on <pair> (x4)``.
"""
import argparse
import os
import subprocess
import sys

import numpy as np
import torch

from basicsr.data import build_dataloader, build_dataset
from basicsr.data.sample import make_sample
from basicsr.evaluation import evaluate
from basicsr.inference import network_from_options
from basicsr.metrics import calculate_metric
from basicsr.utils.errors import run_main
from basicsr.utils.img_util import tensor2img
from basicsr.utils.matlab_functions import imresize
from basicsr.utils.misc import scan_states
from basicsr.utils.options import parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # datasets/, experiments/, results/ go here
OPT = os.path.join('options', 'train', 'NAFSSR', 'quickstart_x4.yml')


def build_sample():
    counts = make_sample(os.path.join(ROOT, 'datasets', 'sample'))
    print('sample:', ', '.join(f'{k}: {v}' for k, v in counts.items()), flush=True)


def train(extra):
    cmd = [sys.executable, 'train.py', '-opt', OPT] + (['--force_yml', *extra] if extra else [])
    print('running:', ' '.join(cmd), flush=True)
    result = subprocess.run(cmd, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f'quickstart: training failed (exit code {result.returncode})')


def test(opt):
    total = int(opt['train']['total_iter'])
    weights = os.path.join(opt['path']['models'], f'net_g_{total}.pth')
    if not os.path.isfile(weights):
        newest = scan_states(opt['path']['training_states'])
        sys.exit(f'quickstart: {weights} not found (newest state: {newest[0][1] if newest else "none"})')
    net = network_from_options(opt, weights)
    ds_opt = dict(opt['datasets']['val'], phase='test')
    dataset = build_dataset(ds_opt, key_path='datasets:val')
    loader = build_dataloader(dataset, ds_opt, 0, False)
    save_dir = os.path.join(ROOT, 'results', opt['name'], 'visualization')
    metric = {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False}
    result = evaluate(net, loader, {'psnr': metric}, device=torch.device('cpu'), save_dir=save_dir,
                      show_progress=False, desc='quickstart test')

    sample = dataset[0]
    lq, gt = tensor2img(sample['lq']), tensor2img(sample['gt'])
    scale = int(opt['scale'])
    bicubic = np.concatenate([imresize(lq[:, :, :3], scale), imresize(lq[:, :, 3:], scale)], axis=2)
    bicubic_psnr = calculate_metric({'img': bicubic, 'img2': gt}, metric)
    print(f'images saved in {save_dir}', flush=True)
    return float(result['psnr']), float(bicubic_psnr), sample['name'], scale


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--force_yml', nargs='+', default=None, help='option overrides passed to train.py')
    args = parser.parse_args()
    os.chdir(ROOT)
    os.environ.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 1))
    build_sample()
    train(args.force_yml)
    opt = parse(OPT, is_train=True, force_yml=args.force_yml, root_path=ROOT)
    ours, bicubic, pair, scale = test(opt)
    print(f'quickstart: NAFSSR {ours:.2f} dB vs bicubic {bicubic:.2f} dB on {pair} (x{scale})')
    return 0 if ours > bicubic else 1


if __name__ == '__main__':
    sys.exit(run_main('quickstart.py', main))
