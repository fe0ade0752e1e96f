"""A short iPASSR training run on the built-in sample (train.py end to end, IPASSRModel with the release's four
stereo losses): a small iPASSR beats bicubic on the held-out pair in about 20 s of one CPU core."""
import os
import re
from pathlib import Path

import numpy as np
import yaml

from basicsr.utils.visualize import parse_training_log
from train_helpers import run_train, write_options

ROOT = Path(__file__).resolve().parents[2]
ITERS = 300


def _options(sample_root):
    """options/train/iPASSR/sample_x4.yml (the released network, 300 iterations, 2 min 23 s) with a small iPASSR
    (width 16, 2 residual dense blocks of 3 layers, growth 12), lr 2e-3, batches of 2 pairs (the file's 4 take
    1.7x the time for margins over bicubic about 0.05 dB larger), pointed at the sample built for the test."""
    opt = yaml.safe_load((ROOT / 'options' / 'train' / 'iPASSR' / 'sample_x4.yml').read_text())
    test = os.path.join(sample_root, 'test', 'Motorcycle')
    opt['datasets']['train'].update(dataroot_gt=os.path.join(sample_root, 'patches_x4'),
                                    dataroot_lq=os.path.join(sample_root, 'patches_x4'))
    opt['datasets']['val'].update(dataroot_gt=os.path.join(test, 'hr'), dataroot_lq=os.path.join(test, 'lr_x4'))
    opt['datasets']['train']['batch_size_per_gpu'] = 2
    opt['network_g'].update(width=16, growth=12, num_rdb=2, dense_layers=3, fusion_growth=12)
    opt['train']['optim_g']['lr'] = 2e-3
    opt['train']['total_iter'] = opt['train']['scheduler']['T_max'] = ITERS
    opt['val']['val_freq'] = opt['logger']['save_checkpoint_freq'] = ITERS
    return opt


def _stereo_psnr(a, b):
    """The protocol's PSNR: mean of the two views' PSNR on [0, 255] (scikit-image as the oracle)."""
    from skimage.metrics import peak_signal_noise_ratio

    return np.mean([peak_signal_noise_ratio(b[..., v], a[..., v], data_range=255) for v in (slice(0, 3), slice(3, 6))])


def test_small_ipassr_beats_bicubic_on_the_held_out_pair(sample_root, tmp_path):
    from basicsr.utils.img_util import imread
    from basicsr.utils.matlab_functions import imresize

    opt = _options(sample_root)
    result = run_train(write_options(tmp_path, opt), tmp_path, timeout=280)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    exp = tmp_path / 'experiments' / opt['name']
    log = next(p for p in exp.iterdir() if p.name.endswith('.log')).read_text()
    # every stereo loss is logged (and so added to the SR loss) at every printed iteration
    assert len(re.findall(r'l_pix: \S+ l_photo: \S+ l_cycle: \S+ l_smooth: \S+ l_cons: \S+', log)) == ITERS // 50
    pair = os.path.join(sample_root, 'test', 'Motorcycle')
    lr = np.concatenate([imread(os.path.join(pair, 'lr_x4', 'motorcycle_bottom', f'lr{v}.png')) for v in '01'], 2)
    hr = np.concatenate([imread(os.path.join(pair, 'hr', 'motorcycle_bottom', f'hr{v}.png')) for v in '01'], 2)
    bicubic = _stereo_psnr(np.concatenate([imresize(lr[..., :3], 4), imresize(lr[..., 3:], 4)], axis=2), hr)
    [(iteration, ours)] = parse_training_log(log)['Motorcycle']['psnr']
    # seeds 1, 2 and 10 (this file's) of this run beat bicubic (27.07 dB) by 0.43-0.53 dB on 8 Dec 2026 (by 0.50-0.56
    # dB with batches of 4, 30 Nov); 0.25 dB is about half the smallest margin (a run is deterministic; the slack
    # covers other CPUs' rounding)
    assert iteration == ITERS and ours > bicubic + 0.25, (ours, bicubic)
