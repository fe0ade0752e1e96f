"""test.py end to end on the built-in sample with a tiny random-weight NAFSSR in the release checkpoint format:
the table, metrics.json against PSNR recomputed from the saved PNGs, 1 process == 2 processes, bad checkpoints."""
import json
import os
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from basicsr.metrics import calculate_psnr
from basicsr.utils.checkpoint import save_atomic
from basicsr.utils.img_util import imread, imwrite
from helpers import run

REPO = Path(__file__).resolve().parents[2]
NETWORK = {'type': 'NAFSSR', 'up_scale': 4, 'width': 16, 'num_blks': 2}


def _env():
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(REPO))
    env.pop('STEREO_SR_TRACEBACK', None)
    return env


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _option_file(folder, test_root, weights, name='eval_e2e', extra=''):
    text = f"""
name: {name}
model_type: ImageRestorationModel
scale: 4
num_gpu: 1
manual_seed: 10
datasets:
  test0:
    name: Motorcycle3
    type: PairedStereoImageDataset
    dataroot_gt: {test_root}/hr
    dataroot_lq: {test_root}/lr_x4
    io_backend:
      type: disk
network_g: {json.dumps(NETWORK)}
path:
  pretrain_network_g: {weights}
  strict_load_g: true
  resume_state: ~
val:
  save_img: true
  grids: false
  metrics:
    psnr:
      type: calculate_psnr
      crop_border: 0
      test_y_channel: false
    ssim:
      type: calculate_skimage_ssim
{extra}
dist_params:
  backend: nccl
  port: 29500
"""
    path = Path(folder) / f'{name}.yml'
    path.write_text(text)
    return path


@pytest.fixture(scope='module')
def setup(sample_root, tmp_path_factory):
    """A 3-pair test set (the sample's held-out pair, its vertical flip, a crop) and a release-format checkpoint."""
    root = tmp_path_factory.mktemp('eval_e2e')
    src = Path(sample_root) / 'test' / 'Motorcycle'
    pair = sorted(os.listdir(src / 'hr'))[0]
    test_root = root / 'Motorcycle3'
    half = imread(src / 'lr_x4' / pair / 'lr0.png').shape[0] // 2  # LR rows of the cropped variant
    for kind, files, factor in (('hr', ('hr0.png', 'hr1.png'), 4), ('lr_x4', ('lr0.png', 'lr1.png'), 1)):
        for variant in ('a', 'b', 'c'):
            out = test_root / kind / f'{pair}{variant}'
            out.mkdir(parents=True)
            for f in files:
                img = imread(src / kind / pair / f)
                if variant == 'b':
                    img = img[::-1]
                elif variant == 'c':
                    img = img[:half * factor]
                imwrite(np.ascontiguousarray(img), out / f)
    from basicsr.models.archs import define_network

    torch.manual_seed(0)
    net = define_network(dict(NETWORK), key_path='network_g')
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(('beta', 'gamma')):
                p.copy_(torch.randn_like(p) * 0.1)
    weights = root / 'NAFSSR-tiny_4x.pth'
    save_atomic({'params': net.state_dict()}, weights)
    return root, test_root, weights


def _run(cmd, cwd, timeout=900):
    return run(cmd, timeout, cwd=cwd, env=_env())  # torchrun's workers too are killed on a timeout


@pytest.fixture(scope='module')
def one_process(setup):
    root, test_root, weights = setup
    work = root / 'run1'
    work.mkdir()
    opt = _option_file(work, test_root, weights)
    proc = _run([sys.executable, str(REPO / 'test.py'), '-opt', str(opt)], work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work / 'results' / 'eval_e2e', proc.stdout


def test_table_lists_left_and_stereo_scores(one_process):
    results, stdout = one_process
    assert 'Left' in stdout and '(Left+Right)/2' in stdout and 'Motorcycle3' in stdout and 'Average' in stdout
    assert 'images/s' in stdout
    metrics = json.loads((results / 'metrics.json').read_text())
    assert set(metrics['Motorcycle3']) == {'psnr', 'ssim', 'psnr_left', 'ssim_left'}
    csv_text = (results / 'metrics.csv').read_text()
    assert csv_text.startswith('dataset,scale,pairs,psnr,ssim,psnr_left,ssim_left')
    assert 'Average,4,3' in csv_text


def test_metrics_agree_with_the_saved_pngs(one_process, setup):
    results, _ = one_process
    _, test_root, _ = setup
    per_pair = json.loads((results / 'metrics_per_pair.json').read_text())['Motorcycle3']
    vis = results / 'visualization' / 'Motorcycle3'
    psnr, ssim, psnr_left = [], [], []
    for pair in sorted(os.listdir(test_root / 'hr')):
        sr = np.concatenate([imread(vis / f'{pair}_L.png'), imread(vis / f'{pair}_R.png')], axis=2)
        hr = np.concatenate([imread(test_root / 'hr' / pair / 'hr0.png'),
                             imread(test_root / 'hr' / pair / 'hr1.png')], axis=2)
        views = [10 * np.log10(255.0 ** 2 / np.mean((sr[..., c].astype(float) - hr[..., c]) ** 2))
                 for c in (slice(0, 3), slice(3, 6))]
        psnr.append(np.mean(views))
        ssim.append(structural_similarity(sr, hr, channel_axis=2, data_range=255))
        left = sr[:, 64:, :3].astype(float) - hr[:, 64:, :3]
        psnr_left.append(10 * np.log10(255.0 ** 2 / np.mean(left ** 2)))
        # the same float64 formulas on the same saved PNGs: equal up to summation order
        assert per_pair[pair]['psnr'] == pytest.approx(psnr[-1], abs=1e-9)
    metrics = json.loads((results / 'metrics.json').read_text())['Motorcycle3']
    assert metrics['psnr'] == pytest.approx(np.mean(psnr), abs=1e-9)
    assert metrics['ssim'] == pytest.approx(np.mean(ssim), abs=1e-9)
    assert metrics['psnr_left'] == pytest.approx(np.mean(psnr_left), abs=1e-9)
    assert calculate_psnr(sr, hr) == pytest.approx(psnr[-1])


def test_two_processes_give_the_same_results(one_process, setup):
    results1, stdout1 = one_process
    root, test_root, weights = setup
    work = root / 'run2'
    work.mkdir()
    opt = _option_file(work, test_root, weights)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={_free_port()}',
           str(REPO / 'test.py'), '-opt', str(opt), '--launcher', 'pytorch']
    proc = _run(cmd, work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results2 = work / 'results' / 'eval_e2e'
    for name in ('metrics.json', 'metrics_per_pair.json'):
        assert json.loads((results2 / name).read_text()) == json.loads((results1 / name).read_text())
    table = [line for line in proc.stdout.splitlines() if line.startswith(('Motorcycle3', 'Average'))]
    table1 = [line for line in stdout1.splitlines() if line.startswith(('Motorcycle3', 'Average'))]
    assert [line.split()[:5] for line in table] == [line.split()[:5] for line in table1]
    assert sorted(os.listdir(results2 / 'visualization' / 'Motorcycle3')) == \
        sorted(os.listdir(results1 / 'visualization' / 'Motorcycle3'))


def test_rerun_archives_the_earlier_results(setup):
    """A second run under the same name moves the first run's folder aside (BasicSR's _archived_<time>) instead of
    mixing its files with the new ones."""
    root, test_root, weights = setup
    work = root / 'rerun'
    work.mkdir()
    opt = _option_file(work, test_root, weights)
    results = work / 'results' / 'eval_e2e'
    results.mkdir(parents=True)
    (results / 'stale.png').write_bytes(b'from an earlier run')
    proc = _run([sys.executable, str(REPO / 'test.py'), '-opt', str(opt)], work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    archived = [p for p in (work / 'results').iterdir() if p.name.startswith('eval_e2e_archived_')]
    assert len(archived) == 1 and (archived[0] / 'stale.png').read_bytes() == b'from an earlier run'
    assert f'moved to {archived[0]}' in proc.stdout
    assert not (results / 'stale.png').exists() and (results / 'metrics.json').is_file()


class _CreatesFileWhenUnpickled:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def test_malicious_checkpoint_is_refused_and_runs_no_code(setup):
    root, test_root, _ = setup
    work = root / 'evil'
    work.mkdir()
    marker = work / 'pwned.txt'
    evil = work / 'evil.pth'
    torch.save({'params': {'w': torch.zeros(1)}, 'payload': _CreatesFileWhenUnpickled(str(marker))}, evil)
    opt = _option_file(work, test_root, evil, name='evil')
    proc = _run([sys.executable, str(REPO / 'test.py'), '-opt', str(opt)], work)
    assert proc.returncode == 2  # the one exit code of user errors (basicsr.utils.errors.USER_ERROR_EXIT)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(evil) in lines[0] and 'refused' in lines[0], proc.stderr
    assert not marker.exists()


def test_missing_checkpoint_is_one_line(setup):
    root, test_root, _ = setup
    work = root / 'missing'
    work.mkdir()
    opt = _option_file(work, test_root, work / 'nope.pth', name='missing')
    proc = _run([sys.executable, str(REPO / 'test.py'), '-opt', str(opt)], work)
    assert proc.returncode == 2  # the one exit code of user errors (basicsr.utils.errors.USER_ERROR_EXIT)
    assert proc.stderr.strip().splitlines() == [
        f'test.py: error: path:pretrain_network_g: {work / "nope.pth"}: checkpoint file not found']
    assert not (work / 'results' / 'missing' / 'metrics.json').exists()
