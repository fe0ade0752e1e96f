"""test.py owns results/<name> as training owns experiments/<name> (issue 18, items 1, 11, 12, 15): a second run
of the same name refuses while the first runs, a dead owner's lock is taken over, Ctrl-C and a full disk end with
one line, the lock released, no temporary file and no metrics file of half a run, and a run that refuses at start
leaves no results/ folder behind."""
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import basicsr.utils.experiment
import basicsr.utils.atomic
from basicsr.evaluation import forward_stereo
from basicsr.models.archs import define_network
from basicsr.utils.checkpoint import save_atomic
from basicsr.utils.errors import run_main
from basicsr.utils.img_util import ImageWriteError, img2tensor, imread, imwrite, tensor2img
from basicsr.utils.matlab_functions import imresize
from helpers import load_script, reaped, run

REPO = Path(__file__).resolve().parents[2]
NETWORK = {'type': 'NAFSSR', 'up_scale': 4, 'width': 8, 'num_blks': 1}
PAIRS = 40  # enough pairs that a run is still evaluating when the test acts on its first saved image


def _env():
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(REPO))
    env.pop('STEREO_SR_TRACEBACK', None)
    return env


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """A test set of PAIRS pairs (folders linking to two random blocky pairs, HR 96x192) and two weight files."""
    root = tmp_path_factory.mktemp('results_ownership')
    rng = np.random.default_rng(3)
    data = root / 'Tiny'
    for base in ('base0', 'base1'):
        for view in '01':
            hr = np.repeat(np.repeat(rng.integers(0, 256, (24, 48, 3), dtype=np.uint8), 4, 0), 4, 1)
            imwrite(hr, data / 'store' / 'hr' / base / f'hr{view}.png')
            imwrite(imresize(hr, 1 / 4), data / 'store' / 'lr_x4' / base / f'lr{view}.png')
    for kind in ('hr', 'lr_x4'):
        for folder, count in (('', PAIRS), ('small', 2)):  # small: for the runs in this process
            (data / folder / kind).mkdir(parents=True)
            for i in range(count):
                os.symlink(data / 'store' / kind / f'base{i % 2}', data / folder / kind / f'p{i:02d}')
    weights = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        net = define_network(dict(NETWORK), key_path='network_g')
        with torch.no_grad():
            for name, p in net.named_parameters():
                if name.endswith(('beta', 'gamma')):
                    p.copy_(torch.randn_like(p) * 0.1)
        weights.append(root / f'{"AB"[seed]}.pth')
        save_atomic({'params': net.state_dict()}, weights[-1])
    opt = root / 'tiny_test.yml'
    opt.write_text(f"""
name: tiny_test
model_type: ImageRestorationModel
scale: 4
num_gpu: 0
datasets:
  test0:
    name: Tiny
    type: PairedStereoImageDataset
    dataroot_gt: {data}/hr
    dataroot_lq: {data}/lr_x4
    io_backend:
      type: disk
network_g: {json.dumps(NETWORK)}
path:
  pretrain_network_g: {weights[0]}
val:
  save_img: true
  metrics:
    psnr:
      type: calculate_psnr
      crop_border: 0
""")
    return {'root': root, 'data': data, 'weights': weights, 'opt': opt}


def _cmd(setup, name, weights):
    return [sys.executable, str(REPO / 'test.py'), '-opt', str(setup['opt']), '--force_yml', f'name={name}',
            f'path:pretrain_network_g={weights}']


def _start(cmd, cwd):
    return subprocess.Popen(cmd, cwd=str(cwd), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for_first_image(proc, results, timeout=120):
    folder = results / 'visualization' / 'Tiny'
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if folder.is_dir() and any(n.endswith('.png') for n in os.listdir(folder)):
            return
        time.sleep(0.01)
    raise AssertionError(f'no image after {timeout} s (exit code {proc.poll()})')


def _sr_of(weights, data, pair):
    """The SR views the network of ``weights`` gives for ``pair``, computed here (no test.py)."""
    net = define_network(dict(NETWORK), key_path='network_g')
    net.load_state_dict(torch.load(weights, weights_only=True)['params'])
    lq = torch.cat([img2tensor(imread(data / 'lr_x4' / pair / f'lr{v}.png')) for v in '01'])[None]
    sr = tensor2img(forward_stereo(net, lq)[0])
    return sr[..., :3], sr[..., 3:]


def _lines(text):
    return [line for line in text.splitlines() if line.strip()]


def _leftovers(folder):
    """Temporary files and folders under ``folder`` (partial images, staged metrics)."""
    return [str(p) for p in Path(folder).rglob('*') if '.tmp' in p.name]


def test_a_second_run_of_the_same_name_refuses_and_the_first_is_untouched(setup, tmp_path):
    # the reproduction: the same name, weights A then B, the second started while the first is writing
    results = tmp_path / 'results' / 'n'
    lock = tmp_path / 'results' / '.n.lock'
    with reaped(_start(_cmd(setup, 'n', setup['weights'][0]), tmp_path)) as (first,):
        _wait_for_first_image(first, results)
        os.kill(first.pid, signal.SIGSTOP)  # the first is surely still evaluating while the second starts
        try:
            second = run(_cmd(setup, 'n', setup['weights'][1]), 120, cwd=str(tmp_path), env=_env())
            assert json.loads(lock.read_text())['pid'] == first.pid
        finally:
            os.kill(first.pid, signal.SIGCONT)
        out, err = first.communicate(timeout=240)
    assert second.returncode == 2, second.stderr[-3000:]
    assert len(_lines(second.stderr)) == 1, second.stderr
    assert second.stderr.startswith(f'test.py: error: {results}: in use by another run (pid {first.pid} on '
                                    f'{socket.gethostname()} since ')
    assert str(setup['weights'][0]) in second.stderr  # the first's command line
    assert first.returncode == 0, err[-3000:]
    assert sorted(p.name for p in (tmp_path / 'results').iterdir()) == ['n']  # nothing moved aside, lock released
    per_pair = json.loads((results / 'metrics_per_pair.json').read_text())['Tiny']
    assert sorted(per_pair) == [f'p{i:02d}' for i in range(PAIRS)]
    assert len(os.listdir(results / 'visualization' / 'Tiny')) == 2 * PAIRS
    for pair in ('p00', f'p{PAIRS - 1}'):  # the first image and the last: the network of A, not of B
        left, right = _sr_of(setup['weights'][0], setup['data'], pair)
        assert np.array_equal(imread(results / 'visualization' / 'Tiny' / f'{pair}_L.png'), left)
        assert np.array_equal(imread(results / 'visualization' / 'Tiny' / f'{pair}_R.png'), right)




def test_with_two_processes_every_process_stops_when_the_results_are_in_use(setup, tmp_path):
    """Rank 0 takes the lock; rank 1 learns its refusal and stops with it instead of waiting for rank 0 forever.
    The two processes are started as srun starts them (no launcher that would kill the waiting one)."""
    (tmp_path / 'results').mkdir()
    lock = tmp_path / 'results' / '.n.lock'
    owner = json.dumps({'host': socket.gethostname(), 'pid': os.getpid(), 'start': None, 'since': 'now',
                        'command': 'a live run'})
    lock.write_text(owner)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen([*_cmd(setup, 'n', setup['weights'][0]), '--launcher', 'pytorch'], cwd=str(tmp_path),
                              env=dict(_env(), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2',
                                       MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
             for rank in (0, 1)]
    with reaped(*procs):
        errs = [proc.communicate(timeout=180)[1] for proc in procs]
    refusal = f"{tmp_path / 'results' / 'n'}: in use by another run (pid {os.getpid()} on {socket.gethostname()} "
    for rank, (proc, err) in enumerate(zip(procs, errs)):
        assert proc.returncode == 2, err[-3000:]
        assert 'Traceback' not in err and _lines(err)[-1] == (
            f"test.py: error{' (rank 1)' if rank else ''}: {refusal}since now: a live run); wait for it, stop it, or "
            f'give this run another name (if that process is gone, delete {lock})'), err[-3000:]
    assert os.listdir(tmp_path / 'results') == ['.n.lock'] and lock.read_text() == owner  # nothing touched


def test_ctrl_c_is_one_line_releases_the_lock_and_writes_no_metrics(setup, tmp_path):
    results = tmp_path / 'results' / 'n'
    with reaped(_start(_cmd(setup, 'n', setup['weights'][0]), tmp_path)) as (proc,):
        _wait_for_first_image(proc, results)
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert 'Traceback' not in err and 'KeyboardInterrupt' not in err, err[-3000:]
    assert _lines(err)[-1] == (f'test.py: interrupted (Ctrl-C): {results} is incomplete (no metrics were written); '
                               'rerun to test again')
    assert not (tmp_path / 'results' / '.n.lock').exists()
    assert not list(results.glob('metrics*')) and not _leftovers(results)


def _run_in_process(setup, workdir, monkeypatch, capsys, weights=None):
    """test.py's run_test on the 2 small pairs in this process (so that a write can be made to fail); returns
    (run_test's result: the exit code, or the results on success; stderr)."""
    monkeypatch.chdir(workdir)
    small = setup['data'] / 'small'
    code = run_main('test.py', load_script('test.py').run_test, [
        '-opt', str(setup['opt']), '--force_yml', 'name=n', f'datasets:test0:dataroot_gt={small / "hr"}',
        f'datasets:test0:dataroot_lq={small / "lr_x4"}', f'path:pretrain_network_g={weights or setup["weights"][0]}'])
    return code, capsys.readouterr().err


def test_the_lock_of_a_dead_run_is_taken_over(setup, tmp_path, monkeypatch, capsys):
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait(timeout=60)
    (tmp_path / 'results').mkdir()
    lock = tmp_path / 'results' / '.n.lock'
    lock.write_text(json.dumps({'host': socket.gethostname(), 'pid': dead.pid, 'start': None,
                                'since': 'yesterday', 'command': 'test.py (killed)'}))
    entries, err = _run_in_process(setup, tmp_path, monkeypatch, capsys)
    assert entries[0][:2] == ('Tiny', 4), err[-3000:]
    assert not lock.exists()
    assert len(json.loads((tmp_path / 'results' / 'n' / 'metrics_per_pair.json').read_text())['Tiny']) == 2


def _full_disk_file(real_open, fail_on):
    """An ``open`` whose files opened for writing with a name ending in ``fail_on`` take a few bytes and then
    raise ENOSPC, as a write on a full disk does."""

    class FullFile:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(data[:3])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def fake_open(path, mode='r', *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        return FullFile(f) if 'w' in mode and str(path).rsplit('.tmp', 1)[0].endswith(fail_on) else f

    return fake_open


def test_a_full_disk_while_writing_an_image(tmp_path, monkeypatch):
    target = tmp_path / 'sr_L.png'
    imwrite(np.zeros((4, 6, 3), np.uint8), target)
    monkeypatch.setattr(basicsr.utils.atomic, 'open', _full_disk_file(open, '.png'), raising=False)
    with pytest.raises(ImageWriteError, match=rf'^{target}: cannot write the image \(No space left on device\); '
                                              'the earlier file is untouched$'):
        imwrite(np.ones((4, 6, 3), np.uint8), target)
    with pytest.raises(ImageWriteError, match='nothing was written$'):
        imwrite(np.ones((4, 6, 3), np.uint8), tmp_path / 'new.png')
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ['sr_L.png'] and not imread(target).any()


def test_test_py_on_a_full_disk_for_images_is_one_line(setup, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(basicsr.utils.atomic, 'open', _full_disk_file(open, '_L.png'), raising=False)
    code, err = _run_in_process(setup, tmp_path, monkeypatch, capsys)
    assert code == 2
    assert _lines(err)[-1] == (f"test.py: error: {tmp_path / 'results' / 'n' / 'visualization' / 'Tiny' / 'p00_L.png'}"
                               ': cannot write the image (No space left on device); nothing was written')
    assert not (tmp_path / 'results' / '.n.lock').exists()
    assert not _leftovers(tmp_path / 'results') and not list((tmp_path / 'results' / 'n').glob('metrics*'))


def test_test_py_on_a_full_disk_for_the_lock_is_one_line(setup, tmp_path, monkeypatch, capsys):
    real_write = os.write

    def full_disk(fd, data):  # only the lock file's disk is full
        if os.readlink(f'/proc/self/fd/{fd}').endswith('.lock'):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(basicsr.utils.experiment.os, 'write', full_disk)
    code, err = _run_in_process(setup, tmp_path, monkeypatch, capsys)
    monkeypatch.undo()
    assert code == 2
    assert _lines(err) == [f"test.py: error: {tmp_path / 'results' / '.n.lock'}: cannot write the lock of "
                           f"{tmp_path / 'results' / 'n'} (No space left on device); nothing was written"]
    assert os.listdir(tmp_path) == []  # no empty lock file, not even the results/ folder made for it


@pytest.mark.parametrize('fault', ['full disk', 'Ctrl-C'])
def test_metrics_are_written_whole_or_not_at_all(setup, tmp_path, monkeypatch, capsys, fault):
    real_open = open

    def failing_open(path, mode='r', *args, **kwargs):  # metrics.json is written, then metrics_per_pair.json fails
        if 'w' in mode and os.path.basename(path).startswith('metrics_per_pair.json'):  # (its temporary file)
            if fault == 'Ctrl-C':
                raise KeyboardInterrupt
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(basicsr.utils.atomic, 'open', failing_open, raising=False)
    code, err = _run_in_process(setup, tmp_path, monkeypatch, capsys)
    results = tmp_path / 'results' / 'n'
    if fault == 'Ctrl-C':
        assert code == 130
        assert _lines(err)[-1] == (f'test.py: interrupted (Ctrl-C): {results} is incomplete (no metrics were '
                                   'written); rerun to test again')
    else:
        assert code == 2
        assert _lines(err)[-1] == (f'test.py: error: {results}: cannot write the metrics (No space left on device); '
                                   'no metrics file was written')
    assert sorted(p.name for p in results.iterdir()) == ['visualization']  # the images, no metrics, no staging
    assert not (tmp_path / 'results' / '.n.lock').exists()


def test_a_run_that_refuses_at_start_leaves_no_results_folder(setup, tmp_path, monkeypatch, capsys):
    code, err = _run_in_process(setup, tmp_path, monkeypatch, capsys, weights=tmp_path / 'missing.pth')
    assert code == 2 and 'missing.pth' in _lines(err)[-1], err[-3000:]
    assert os.listdir(tmp_path) == []  # not even the results/ folder made for the lock
