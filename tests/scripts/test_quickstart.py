"""scripts/quickstart.py run for real (``make quickstart``) at 4 iterations, in a copy of the files it uses (its own
folder is its root: datasets/sample, experiments/, results/ go there, never into the repository).

Checked: the sample it builds (here already built by the session's fixture, which it must recognise and keep), the
training run it starts, the images it saves, and its last line: the bicubic figure is the README's 27.07 dB and is
recomputed here with MATLAB bicubic; the network's figure is recomputed from the saved images; the exit status
says whether the network beat bicubic.
"""
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import torch
import yaml

from basicsr.metrics import calculate_psnr
from basicsr.models.archs import define_network
from basicsr.utils.img_util import imread
from basicsr.utils.matlab_functions import imresize
from helpers import ROOT

FILES = ('scripts/quickstart.py', 'scripts/data_preparation/make_sample.py', 'train.py',
         'options/train/NAFSSR/quickstart_x4.yml')
TINY = ['train:total_iter=4', 'train:scheduler:T_max=4', 'train:warmup_iter=-1', 'val:val_freq=4',
        'logger:save_checkpoint_freq=4', 'logger:use_tb_logger=false']


def test_quickstart_end_to_end_at_four_iterations(sample_root, tmp_path):
    for rel in FILES:
        os.makedirs(tmp_path / os.path.dirname(rel), exist_ok=True)
        shutil.copy(os.path.join(ROOT, rel), tmp_path / rel)
    shutil.copytree(sample_root, tmp_path / 'datasets' / 'sample')
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''), OMP_NUM_THREADS='1')
    env.pop('STEREO_SR_TRACEBACK', None)
    proc = subprocess.run([sys.executable, str(tmp_path / 'scripts' / 'quickstart.py'), '--force_yml', *TINY],
                          capture_output=True, text=True, env=env, timeout=240)
    out = proc.stdout
    assert 'sample: patches_x2: 253, patches_x4: 276, test/Motorcycle: 1' in out, out[-2000:] + proc.stderr[-2000:]
    last = out.strip().splitlines()[-1]
    match = re.fullmatch(r'quickstart: NAFSSR (\d+\.\d\d) dB vs bicubic (\d+\.\d\d) dB on motorcycle_bottom \(x4\)',
                         last)
    assert match, out[-2000:] + proc.stderr[-2000:]
    ours, bicubic = float(match.group(1)), float(match.group(2))
    assert proc.returncode == (0 if ours > bicubic else 1), proc.stderr[-2000:]

    test_set = tmp_path / 'datasets' / 'sample' / 'test' / 'Motorcycle'
    hr = np.concatenate([imread(str(test_set / 'hr' / 'motorcycle_bottom' / f'hr{i}.png')) for i in '01'], axis=2)
    lr = np.concatenate([imread(str(test_set / 'lr_x4' / 'motorcycle_bottom' / f'lr{i}.png')) for i in '01'], axis=2)
    up = np.concatenate([imresize(lr[..., :3], 4), imresize(lr[..., 3:], 4)], axis=2)
    assert bicubic == 27.07 == round(calculate_psnr(up, hr, crop_border=0), 2)  # README.md's figure

    exp = tmp_path / 'experiments' / 'quickstart_NAFSSR_x4'
    assert sorted(os.listdir(exp / 'training_states')) == ['4.state']
    weights = torch.load(exp / 'models' / 'net_g_4.pth', weights_only=True)['params']
    saved = tmp_path / 'results' / 'quickstart_NAFSSR_x4' / 'visualization'
    sr = np.concatenate([imread(str(saved / f'motorcycle_bottom_{v}.png')) for v in 'LR'], axis=2)
    assert round(calculate_psnr(sr, hr, crop_border=0), 2) == ours
    # the saved views are the trained network's output on the held-out LR pair (BGR, as the release's models)
    with open(os.path.join(ROOT, FILES[-1])) as f:
        net = define_network(yaml.safe_load(f)['network_g'])
    net.load_state_dict(weights)
    with torch.no_grad():
        y = net.eval()(torch.from_numpy(lr.transpose(2, 0, 1).astype(np.float32) / 255)[None])[0]
    expected = (y.clamp(0, 1).numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
    assert np.abs(expected.astype(int) - sr).max() <= 1  # float rounding only
