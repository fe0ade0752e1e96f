"""test.py end to end with ``val:self_ensemble``, ``val:amp_dtype: bf16``, and test sets at another scale than the
network's, on the built-in sample's held-out pair with a tiny random-weight NAFSSR x4."""
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from basicsr.utils.checkpoint import save_atomic
from basicsr.utils.img_util import img2tensor, imread, tensor2img
from helpers import run

REPO = Path(__file__).resolve().parents[2]
NETWORK = {'type': 'NAFSSR', 'up_scale': 4, 'width': 16, 'num_blks': 2}
PAIR = 'motorcycle_bottom'


def _env():
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(REPO))
    env.pop('STEREO_SR_TRACEBACK', None)
    return env


@pytest.fixture(scope='module')
def tiny_x4(tmp_path_factory):
    """A NAFSSR x4 with random weights everywhere, saved in the release format: its convolutions are far from
    flip-equivariant, so the self-ensemble changes the output (by ~17 grey levels on average), and small enough
    (std 0.05, residual gains 0.3) that only ~1.5% of the output pixels saturate at 0 or 255."""
    from basicsr.models.archs import define_network

    torch.manual_seed(0)
    net = define_network(dict(NETWORK), key_path='network_g')
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.randn_like(p) * (0.3 if name.endswith(('beta', 'gamma')) else 0.05))
    path = tmp_path_factory.mktemp('weights') / 'tiny_x4.pth'
    save_atomic({'params': net.state_dict()}, path)
    return net.eval(), path


def _test_set(sample_root, scale, phase='test0'):
    root = Path(sample_root) / 'test' / 'Motorcycle'
    return {phase: {'name': 'Motorcycle', 'type': 'PairedStereoImageDataset', 'scale': scale,
                    'dataroot_gt': str(root / 'hr'), 'dataroot_lq': str(root / f'lr_x{scale}')}}


def _test_py(work, name, weights, datasets, **val):
    """Run test.py on an option file made of ``datasets`` and ``val`` options; returns (process, results folder)."""
    work = Path(work) / name
    work.mkdir()
    opt = {'name': name, 'model_type': 'ImageRestorationModel', 'scale': 4, 'num_gpu': 0,
           'datasets': datasets, 'network_g': NETWORK, 'path': {'pretrain_network_g': str(weights)},
           'val': {'save_img': True, 'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0}}, **val}}
    (work / f'{name}.yml').write_text(yaml.safe_dump(opt))
    proc = run([sys.executable, str(REPO / 'test.py'), '-opt', str(work / f'{name}.yml')], 280, cwd=str(work),
               env=_env())
    return proc, work / 'results' / name


def _ok(proc):
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]


def _saved_pair(results, dataset='Motorcycle'):
    folder = results / 'visualization' / dataset
    return np.concatenate([imread(folder / f'{PAIR}_L.png'), imread(folder / f'{PAIR}_R.png')], axis=2)


@pytest.fixture(scope='module')
def fp32_run(sample_root, tiny_x4, tmp_path_factory):
    work = tmp_path_factory.mktemp('modes')
    proc, results = _test_py(work, 'fp32', tiny_x4[1], _test_set(sample_root, 4))
    _ok(proc)
    return work, results


def _lr_pair(sample_root):
    folder = Path(sample_root) / 'test' / 'Motorcycle' / 'lr_x4' / PAIR
    return img2tensor(np.concatenate([imread(folder / 'lr0.png'), imread(folder / 'lr1.png')], axis=2))[None]


def test_self_ensemble_is_the_mean_of_the_four_stereo_transforms(sample_root, tiny_x4, fp32_run):
    net, weights = tiny_x4
    work, plain_results = fp32_run
    proc, results = _test_py(work, 'ensemble', weights, _test_set(sample_root, 4), self_ensemble=True)
    _ok(proc)
    lq = _lr_pair(sample_root)

    def mirror(x):  # flip both views left-right and swap them: a mirrored left view is a right view
        return torch.cat([x[:, 3:].flip(-1), x[:, :3].flip(-1)], dim=1)

    def vflip(x):
        return x.flip(-2)

    transforms = [lambda x: x, vflip, mirror, lambda x: vflip(mirror(x))]  # each is its own inverse
    with torch.no_grad():
        manual = tensor2img(sum(t(net(t(lq))) for t in transforms) / 4)
        plain = tensor2img(net(lq))
    ensemble = _saved_pair(results)
    # the same arithmetic in another process (another thread count): at most a rounding flip of one grey level
    assert np.abs(ensemble.astype(int) - manual).max() <= 1
    assert np.abs(_saved_pair(plain_results).astype(int) - plain).max() <= 1
    assert np.abs(ensemble.astype(int) - plain).mean() > 1  # the ensemble really changed the output


def test_bf16_autocast_is_close_to_fp32(sample_root, tiny_x4, fp32_run):
    work, fp32_results = fp32_run
    proc, results = _test_py(work, 'bf16', tiny_x4[1], _test_set(sample_root, 4), amp_dtype='bf16')
    _ok(proc)
    fp32, bf16 = _saved_pair(fp32_results), _saved_pair(results)
    assert not np.array_equal(fp32, bf16)  # bf16 was really used
    # bf16 keeps 8 significant bits (~0.4% relative error): measured 0.07 grey levels on average (max 1) here;
    # half a grey level would already mean errors far beyond bf16 rounding of this small network
    assert np.abs(fp32.astype(int) - bf16).mean() < 0.5
    psnr_fp32 = json.loads((fp32_results / 'metrics.json').read_text())['Motorcycle']['psnr']
    psnr_bf16 = json.loads((results / 'metrics.json').read_text())['Motorcycle']['psnr']
    # measured 0.004 dB apart (PSNR ~18 dB); 0.05 dB is a quarter of the smallest gap between published NAFSSR
    # sizes (T 23.69 vs S 23.88 dB at x4 on Flickr1024, NAFSSR paper)
    assert psnr_bf16 == pytest.approx(psnr_fp32, abs=0.05)


def test_a_test_set_at_another_scale_than_the_network_is_refused_before_testing(sample_root, tiny_x4, tmp_path):
    """One network has one up-scaling factor (``network_g:up_scale``, which the options require to equal ``scale``):
    an option file listing the test set at x4 and again at x2 for a x4 network cannot be run as a whole. test.py
    says so in one line naming the test set's key and the network's factor, before it spends time on any test set
    (no SR images, no metrics written)."""
    datasets = {**_test_set(sample_root, 4, 'test0'), **_test_set(sample_root, 2, 'test1')}
    proc, results = _test_py(tmp_path, 'two_scales', tiny_x4[1], datasets)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr[-3000:]
    assert 'datasets:test1:scale' in lines[0] and '4' in lines[0].split('datasets:test1:scale', 1)[1], lines[0]
    assert not (results / 'metrics.json').exists()
    assert not (results / 'visualization').exists()
