"""Helpers for the training tests: tiny synthetic stereo data, option files, and real train.py processes."""
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import yaml

import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_PY = os.path.join(ROOT, 'train.py')


def _write_pair(folder, stems, shape, rng):
    import cv2

    os.makedirs(folder, exist_ok=True)
    base = rng.integers(0, 256, size=shape, dtype=np.uint8)
    for i, stem in enumerate(stems):
        img = np.roll(base, i, axis=1)  # the right view is the left one shifted: a toy disparity
        cv2.imwrite(os.path.join(folder, f'{stem}.png'), img)


def _write_lr_hr(hr_folder, lr_folder, hr_shape, scale, rng, hr_stems=('hr0', 'hr1'), lr_stems=('lr0', 'lr1')):
    import cv2

    os.makedirs(hr_folder, exist_ok=True)
    os.makedirs(lr_folder, exist_ok=True)
    smooth = cv2.GaussianBlur(rng.integers(0, 256, size=hr_shape, dtype=np.uint8), (5, 5), 2)
    for i, (hs, ls) in enumerate(zip(hr_stems, lr_stems)):
        hr = np.roll(smooth, 2 * i, axis=1)
        lr = cv2.resize(hr, (hr_shape[1] // scale, hr_shape[0] // scale), interpolation=cv2.INTER_AREA)
        cv2.imwrite(os.path.join(hr_folder, f'{hs}.png'), hr)
        cv2.imwrite(os.path.join(lr_folder, f'{ls}.png'), lr)


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory):
    return make_tiny_data(tmp_path_factory.mktemp('tiny_stereo'))


def make_tiny_data(root):
    """12 x2 training patches (HR 16x48) and one validation pair (HR 24x48) in the release layout."""
    from pathlib import Path

    root = Path(root)
    rng = np.random.default_rng(0)
    patches = root / 'patches_x2'
    for i in range(1, 13):
        folder = patches / f'{i:06d}'
        _write_lr_hr(str(folder), str(folder), (16, 48, 3), 2, rng)
    val = root / 'test' / 'Tiny'
    _write_lr_hr(str(val / 'hr' / 'pair1'), str(val / 'lr_x2' / 'pair1'), (24, 48, 3), 2, rng)
    return {'patches': str(patches), 'val_hr': str(val / 'hr'), 'val_lr': str(val / 'lr_x2')}


def base_options(data, name, total_iter=8):
    """A tiny NAFSSR run that exercises every random stream: crops/flips, drop-path, mixup, EMA, warm-up."""
    return {
        'name': name,
        'model_type': 'ImageRestorationModel',
        'scale': 2,
        'num_gpu': 0,
        'manual_seed': 7,
        'datasets': {
            'train': {'name': 'tiny', 'type': 'PairedStereoImageDataset', 'dataroot_gt': data['patches'],
                      'dataroot_lq': data['patches'], 'gt_size_h': 8, 'gt_size_w': 24, 'use_hflip': True,
                      'use_vflip': True, 'flip_RGB': True, 'num_worker_per_gpu': 0, 'batch_size_per_gpu': 2},
        },
        'network_g': {'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 2, 'drop_path_rate': 0.3,
                      'train_size': [1, 6, 4, 12]},
        'train': {
            'optim_g': {'type': 'AdamW', 'lr': 1e-3, 'weight_decay': 0.0, 'betas': [0.9, 0.9]},
            'scheduler': {'type': 'TrueCosineAnnealingLR', 'T_max': total_iter, 'eta_min': 1e-5},
            'total_iter': total_iter, 'warmup_iter': 2, 'mixup': True, 'ema_decay': 0.9,
            'pixel_opt': {'type': 'MSELoss', 'loss_weight': 1.0, 'reduction': 'mean'},
        },
        'logger': {'print_freq': 1, 'save_checkpoint_freq': 1, 'use_tb_logger': False},
    }


def with_val(opt, data, val_freq=4):
    opt['datasets']['val'] = {'name': 'Tiny', 'type': 'PairedStereoImageDataset', 'dataroot_gt': data['val_hr'],
                              'dataroot_lq': data['val_lr']}
    opt['val'] = {'val_freq': val_freq, 'save_img': True,
                  'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0}}}
    return opt


def write_options(folder, opt):
    path = os.path.join(str(folder), f"{opt['name']}.yml")
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f)
    return path


def child_env():
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    env.pop('STEREO_SR_TRACEBACK', None)
    return env


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def train_cmd(opt_path, nproc=1, launcher='torchrun', extra=()):
    """The command line of a run: plain python, torchrun, or python -m torch.distributed.launch."""
    if nproc == 1 and launcher is None:
        return [sys.executable, TRAIN_PY, '-opt', opt_path, *extra]
    if launcher == 'torchrun':
        head = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}',
                '--master_addr=127.0.0.1', f'--master_port={free_port()}']
    else:
        head = [sys.executable, '-m', 'torch.distributed.launch', f'--nproc_per_node={nproc}',
                '--master_addr=127.0.0.1', f'--master_port={free_port()}']
    return [*head, TRAIN_PY, '-opt', opt_path, '--launcher', 'pytorch', *extra]


def run_train(opt_path, cwd, nproc=1, launcher=None, extra=(), timeout=600):
    """Run train.py to its end; on a timeout (ours or pytest-timeout's) every process of the run is killed."""
    return helpers.run(train_cmd(opt_path, nproc, launcher, extra), timeout, cwd=str(cwd), env=child_env())


def start_train(opt_path, cwd, nproc=1, launcher=None, extra=()):
    """Start a run in its own session (so that the whole process group can be killed); the caller ends it in a
    ``finally``: ``with helpers.reaped(start_train(...)) as (proc,): ...``."""
    return subprocess.Popen(train_cmd(opt_path, nproc, launcher, extra), cwd=str(cwd), env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
