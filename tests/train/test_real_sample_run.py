"""A tiny real training run on the built-in sample (train.py end to end): the training loss goes down, the
network beats bicubic on the held-out pair, and TensorBoard holds the loss, lr and validation curves."""
import math
import os
import re

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from train_helpers import run_train, write_options

ITERS = 200
LR, ETA_MIN = 2e-3, 1e-6


def _options(sample_root):
    """NAFSSR width 16, 2 blocks, x4, trained on LR 16x48 crops of the sample's patches, validated on its held-out
    pair (rows 320-500 of the Motorcycle pair, never seen in training). The smallest setting found that beats
    bicubic every time: 200 iterations, batch 4, L1, AdamW 2e-3 with cosine decay, clip 0.5 as the quick start."""
    test = os.path.join(sample_root, 'test', 'Motorcycle')
    patches = os.path.join(sample_root, 'patches_x4')
    return {
        'name': 'sample_run', 'model_type': 'ImageRestorationModel', 'scale': 4, 'num_gpu': 0, 'manual_seed': 0,
        'datasets': {
            'train': {'name': 'Motorcycle-top', 'type': 'PairedStereoImageDataset', 'dataroot_gt': patches,
                      'dataroot_lq': patches, 'gt_size_h': 64, 'gt_size_w': 192, 'use_hflip': True,
                      'use_vflip': True, 'flip_RGB': True, 'num_worker_per_gpu': 0, 'batch_size_per_gpu': 4},
            'val': {'name': 'Motorcycle', 'type': 'PairedStereoImageDataset',
                    'dataroot_gt': os.path.join(test, 'hr'), 'dataroot_lq': os.path.join(test, 'lr_x4')},
        },
        'network_g': {'type': 'NAFSSR', 'up_scale': 4, 'width': 16, 'num_blks': 2, 'train_size': [1, 6, 16, 48]},
        'train': {
            'optim_g': {'type': 'AdamW', 'lr': LR, 'weight_decay': 0.0, 'betas': [0.9, 0.9]},
            'scheduler': {'type': 'TrueCosineAnnealingLR', 'T_max': ITERS, 'eta_min': ETA_MIN},
            'total_iter': ITERS, 'warmup_iter': -1, 'grad_clip_norm': 0.5,
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
        },
        'val': {'val_freq': 100, 'save_img': False, 'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0}}},
        'logger': {'print_freq': 1, 'save_checkpoint_freq': ITERS, 'use_tb_logger': True},
    }


@pytest.fixture(scope='module')
def sample_run(sample_root, tmp_path_factory):
    cwd = tmp_path_factory.mktemp('sample_run')
    opt = _options(sample_root)
    result = run_train(write_options(cwd, opt), cwd, timeout=280)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    exp = cwd / 'experiments' / opt['name']
    log = next(p for p in exp.iterdir() if p.name.endswith('.log')).read_text()
    return cwd, opt, log


def _psnr_of_views(sr, hr):
    """The protocol's stereo PSNR, from scikit-image: the mean of the two views' PSNR on [0, 255]."""
    return np.mean([peak_signal_noise_ratio(hr[..., v], sr[..., v], data_range=255)
                    for v in (slice(0, 3), slice(3, 6))])


def test_training_loss_goes_down(sample_run):
    _, _, log = sample_run
    losses = {int(it.replace(',', '')): float(value)
              for it, value in re.findall(r'\[iter ([\d,]+)/[\d,]+ epoch \d+\].*?l_pix: (\S+)', log)}
    assert sorted(losses) == list(range(1, ITERS + 1))
    first, last = np.mean([losses[i] for i in range(1, 21)]), np.mean([losses[i] for i in range(ITERS - 19, ITERS + 1)])
    # this run with manual_seed 0-6 gave a last/first ratio of 0.61-0.69 (0.076 -> 0.050 for seed 0); 0.8 leaves
    # room for other CPUs' rounding while a run that does not learn (ratio ~1, the batches are noisy) fails
    assert last < 0.8 * first, (first, last)


def test_network_beats_bicubic_on_the_held_out_pair(sample_run, sample_root):
    from basicsr.evaluation import forward_stereo
    from basicsr.models.archs import define_network
    from basicsr.utils.img_util import img2tensor, imread, tensor2img
    from basicsr.utils.matlab_functions import imresize
    from basicsr.utils.visualize import parse_training_log

    cwd, opt, log = sample_run
    pair = os.path.join(sample_root, 'test', 'Motorcycle')
    lr = np.concatenate([imread(os.path.join(pair, 'lr_x4', 'motorcycle_bottom', f'lr{v}.png')) for v in '01'], 2)
    hr = np.concatenate([imread(os.path.join(pair, 'hr', 'motorcycle_bottom', f'hr{v}.png')) for v in '01'], 2)
    net = define_network(dict(opt['network_g'])).eval()
    weights = torch.load(cwd / 'experiments' / opt['name'] / 'models' / f'net_g_{ITERS}.pth', weights_only=True)
    net.load_state_dict(weights['params'])
    sr = tensor2img(forward_stereo(net, img2tensor(lr)[None]))
    bicubic = np.concatenate([imresize(lr[..., :3], 4), imresize(lr[..., 3:], 4)], axis=2)  # MATLAB bicubic
    ours, baseline = _psnr_of_views(sr, hr), _psnr_of_views(bicubic, hr)
    # this run with manual_seed 0-6 beat bicubic (27.07 dB) by 0.38-0.46 dB; 0.2 dB is about half the smallest
    # margin seen and still a clear win (a seed's run is deterministic; the slack covers other CPUs' rounding)
    assert ours > baseline + 0.2, (ours, baseline)
    # train.py's own validation of the same weights says the same (its log line rounds to 4 decimals; the
    # recomputation here runs on another thread count, which may flip the rounding of a few pixels)
    curves = parse_training_log(log)
    assert [it for it, _ in curves['Motorcycle']['psnr']] == [100, ITERS]
    assert curves['Motorcycle']['psnr'][-1][1] == pytest.approx(ours, abs=2e-3)


def test_tensorboard_holds_losses_lr_and_validation_metrics(sample_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from basicsr.utils.visualize import parse_training_log

    cwd, opt, log = sample_run
    tb_dir = cwd / 'tb_logger' / opt['name']
    assert any(p.name.startswith('events.out.tfevents.') for p in tb_dir.iterdir())
    events = EventAccumulator(str(tb_dir), size_guidance={'scalars': 0})  # 0: keep every point
    events.Reload()
    assert {'losses/l_pix', 'train/lr', 'metrics/Motorcycle/psnr'} <= set(events.Tags()['scalars'])

    losses = events.Scalars('losses/l_pix')
    assert [e.step for e in losses] == list(range(1, ITERS + 1))  # logger:print_freq 1
    logged = {int(it.replace(',', '')): float(v) for it, v in re.findall(r'\[iter ([\d,]+)/.*?l_pix: (\S+)', log)}
    for e in losses:
        assert e.value == pytest.approx(logged[e.step], rel=1e-3)  # the log prints 4 significant digits (.4e)

    lrs = {e.step: e.value for e in events.Scalars('train/lr')}
    # the release steps the cosine from the second iteration on: iteration i uses t = i - 1 (hand formula)
    for step in (1, 2, ITERS // 2, ITERS):
        expected = ETA_MIN + (LR - ETA_MIN) * (1 + math.cos(math.pi * (step - 1) / ITERS)) / 2
        assert lrs[step] == pytest.approx(expected, rel=1e-6)  # TensorBoard stores float32

    metrics = events.Scalars('metrics/Motorcycle/psnr')
    validated = parse_training_log(log)['Motorcycle']['psnr']
    assert [(e.step, pytest.approx(e.value, abs=1e-4)) for e in metrics] == validated  # log: 4 decimals
