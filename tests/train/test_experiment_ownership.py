"""No run destroys another run's results: the experiment lock, moving an earlier run aside, resume compatibility
checked before anything is written, leftovers of interrupted saves, and one-line errors for each failure."""
import errno
import glob
import json
import os
import socket
import subprocess
import sys
import time

import pytest
import torch

import helpers
from basicsr.utils.checkpoint import CheckpointError, remove_partial_saves, save_atomic
from basicsr.utils.experiment import ExperimentBusyError, ExperimentLock, ExperimentLockError
from train_helpers import base_options, run_train, start_train, write_options


def _opt(tiny_data, name, **train):
    opt = base_options(tiny_data, name, total_iter=train.pop('total_iter', 4))
    opt['train'].update(train)
    return opt


def _last_line(result):
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ''


def _models(tmp_path, name):
    return sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / 'experiments' / name / 'models' / '*')))


def test_a_second_run_of_the_same_name_stops_at_once_and_the_first_is_untouched(tiny_data, tmp_path):
    # the reproduction of the issue: the same name, a long run in the background and a short one with another lr
    long_opt = _opt(tiny_data, 'shared', total_iter=400)
    long_opt['logger'].update(save_checkpoint_freq=20, keep_last=2, print_freq=50)
    short_opt = _opt(tiny_data, 'shared', total_iter=60, optim_g={'type': 'AdamW', 'lr': 1e-4})
    short_opt['logger'].update(save_checkpoint_freq=20, keep_last=2)
    (tmp_path / 'long').mkdir()
    (tmp_path / 'short').mkdir()
    long_path = write_options(tmp_path / 'long', long_opt)
    short_path = write_options(tmp_path / 'short', short_opt)
    lock = tmp_path / 'experiments' / '.shared.lock'
    with helpers.reaped(start_train(long_path, tmp_path)) as (first,):
        deadline = time.time() + 120
        while not lock.exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert lock.exists(), first.stdout.read() if first.poll() is not None else 'no lock after 120 s'
        owner = json.loads(lock.read_text())
        assert owner['pid'] == first.pid and owner['host'] == socket.gethostname()
        second = run_train(short_path, tmp_path, timeout=120)
        assert second.returncode == 2
        line = _last_line(second)
        assert line.startswith(f"train.py: error: {tmp_path / 'experiments' / 'shared'}: in use by another run "
                               f'(pid {first.pid} on {socket.gethostname()}')
        assert second.stderr.strip().count('\n') == 0, second.stderr
        out, _ = first.communicate(timeout=240)
    assert first.returncode == 0, out[-3000:]
    assert 'training finished at iter 400' in out
    assert _models(tmp_path, 'shared') == ['net_g_380.pth', 'net_g_400.pth']  # keep_last 2 of the first run
    assert not lock.exists()  # released at the end of the run
    assert not glob.glob(str(tmp_path / 'experiments' / 'shared_archived_*'))


def test_a_stale_lock_of_a_dead_process_is_taken_over(tiny_data, tmp_path):
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait(timeout=60)
    (tmp_path / 'experiments').mkdir()
    lock = tmp_path / 'experiments' / '.stale.lock'
    lock.write_text(json.dumps({'host': socket.gethostname(), 'pid': dead.pid, 'start': None,
                                'since': 'yesterday', 'command': 'train.py (killed)'}))
    result = run_train(write_options(tmp_path, _opt(tiny_data, 'stale')), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not lock.exists()


def test_lock_in_process(tmp_path):
    first, second = ExperimentLock(tmp_path / 'exp'), ExperimentLock(tmp_path / 'exp')
    with first:
        with pytest.raises(ExperimentBusyError, match=f'pid {os.getpid()}'):
            second.acquire()
    second.acquire()  # released by the first
    second.release()
    # a lock of another host cannot be checked from here: never taken over
    (tmp_path / '.exp.lock').write_text(json.dumps({'host': 'elsewhere', 'pid': 1, 'since': 'now'}))
    with pytest.raises(ExperimentBusyError, match='on elsewhere'):
        first.acquire()


def test_a_fresh_start_moves_an_earlier_run_aside(tiny_data, tmp_path):
    path = write_options(tmp_path, _opt(tiny_data, 'again'))
    assert run_train(path, tmp_path).returncode == 0
    exp = tmp_path / 'experiments' / 'again'
    old_final = torch.load(exp / 'models' / 'net_g_4.pth', weights_only=True)['params']
    for state in (exp / 'training_states').iterdir():  # every state unusable: the rerun starts from scratch
        state.write_bytes(b'truncated')
    result = run_train(path, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    archived = glob.glob(str(tmp_path / 'experiments' / 'again_archived_*'))
    assert len(archived) == 1
    assert f'{exp} held models or states of an earlier run that this run does not resume from: moved to ' \
           f'{archived[0]}' in result.stdout
    kept = torch.load(os.path.join(archived[0], 'models', 'net_g_4.pth'), weights_only=True)['params']
    assert all(torch.equal(kept[k], old_final[k]) for k in old_final)  # the earlier run's models, untouched
    assert _models(tmp_path, 'again') == ['net_g_1.pth', 'net_g_2.pth', 'net_g_3.pth', 'net_g_4.pth']
    # a resume continues in place: nothing more is archived
    longer = _opt(tiny_data, 'again', total_iter=5)
    result = run_train(write_options(tmp_path, longer), tmp_path)
    assert result.returncode == 0 and 'resumed from' in result.stdout
    assert len(glob.glob(str(tmp_path / 'experiments' / 'again_archived_*'))) == 1


def test_a_failed_start_leaves_no_folder(tiny_data, tmp_path):
    opt = _opt(tiny_data, 'failed')
    opt['datasets']['train']['dataroot_gt'] = str(tmp_path / 'nowhere')
    result = run_train(write_options(tmp_path, opt), tmp_path)
    assert result.returncode == 2 and 'nowhere' in _last_line(result)
    assert not (tmp_path / 'experiments').exists()  # not even the experiments/ folder made for the lock


@pytest.mark.parametrize('change, message', [
    ({'network_g': {'width': 16}}, 'saved from a different network_g than the option file now describes (e.g. '
                                   'intro.weight (8, 3, 3, 3) (network_g now: (16, 3, 3, 3))'),
    ({'train': {'optim_g': {'type': 'SGD', 'lr': 1e-3, 'momentum': 0.9}}},
     'saved with another optimizer than train:optim_g:type SGD (its settings: amsgrad, betas, eps; expected: '
     'dampening, momentum, nesterov)'),
])
def test_an_incompatible_resume_is_one_line_and_writes_nothing(tiny_data, tmp_path, change, message):
    opt = _opt(tiny_data, 'compat')
    assert run_train(write_options(tmp_path, opt), tmp_path).returncode == 0
    before = {p: os.path.getmtime(p) for p in glob.glob(str(tmp_path / 'experiments' / 'compat' / '**'),
                                                            recursive=True)}
    opt['train']['total_iter'] = 6
    for section, values in change.items():
        opt[section].update(values)
    result = run_train(write_options(tmp_path, opt), tmp_path)
    assert result.returncode == 2
    line = _last_line(result)
    assert line.startswith(f"train.py: error: {tmp_path / 'experiments' / 'compat' / 'training_states' / '4.state'}")
    assert message in line and result.stderr.strip().count('\n') == 0, result.stderr
    after = {p: os.path.getmtime(p) for p in glob.glob(str(tmp_path / 'experiments' / 'compat' / '**'),
                                                           recursive=True)}
    assert after == before  # no log, no state, no model written


def test_resume_state_pointing_at_a_network_file(tiny_data, tmp_path):
    opt = _opt(tiny_data, 'kind')
    assert run_train(write_options(tmp_path, opt), tmp_path).returncode == 0
    net_file = tmp_path / 'experiments' / 'kind' / 'models' / 'net_g_4.pth'
    opt['path'] = {'resume_state': str(net_file)}
    opt['train']['total_iter'] = 6
    result = run_train(write_options(tmp_path, opt), tmp_path)
    assert result.returncode == 2
    assert _last_line(result) == (
        f'train.py: error: path:resume_state: {net_file} is a network file (net_g_<iter>.pth); expected a training '
        'state (experiments/<name>/training_states/<iter>.state); to start from a network file use '
        'path:pretrain_network_g')


def test_a_type_typo_is_reported_even_when_the_run_is_finished(tiny_data, tmp_path):
    opt = _opt(tiny_data, 'done')
    assert run_train(write_options(tmp_path, opt), tmp_path).returncode == 0
    opt['network_g']['type'] = 'NAFSRR'
    result = run_train(write_options(tmp_path, opt), tmp_path)
    assert result.returncode == 2 and 'network_g:type' in _last_line(result) and 'NAFSSR' in _last_line(result)


def test_partial_saves_are_removed_at_the_next_start(tiny_data, tmp_path):
    opt = _opt(tiny_data, 'partial')
    assert run_train(write_options(tmp_path, opt), tmp_path).returncode == 0
    exp = tmp_path / 'experiments' / 'partial'
    leftovers = [exp / 'models' / 'net_g_5.pth.tmp4242', exp / 'training_states' / '5.state.tmp4242']
    for path in leftovers:  # what a kill during save_atomic leaves
        path.write_bytes(b'half')
    opt['train']['total_iter'] = 5
    result = run_train(write_options(tmp_path, opt), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not any(path.exists() for path in leftovers)
    assert 'removed 1 partial file(s) of an interrupted save' in result.stdout
    assert remove_partial_saves(str(exp / 'models')) == []


def test_a_full_disk_names_the_file_and_keeps_the_earlier_one(tmp_path, monkeypatch):
    target = tmp_path / 'net_g_1.pth'
    save_atomic({'params': {'w': torch.ones(2)}}, target)

    def full_disk(obj, f):
        f.write(b'partial bytes')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, 'save', full_disk)
    with pytest.raises(CheckpointError, match=rf'^{target}: cannot write the checkpoint \(No space left on device\); '
                                              'the earlier file is untouched$'):
        save_atomic({'params': {'w': torch.zeros(2)}}, target)
    monkeypatch.undo()
    assert torch.equal(torch.load(target, weights_only=True)['params']['w'], torch.ones(2))
    assert os.listdir(tmp_path) == ['net_g_1.pth']  # no temporary file left


@pytest.mark.parametrize('fault', ['full disk', 'Ctrl-C'])
def test_a_lock_that_cannot_be_written_leaves_no_file_and_no_folder(tmp_path, monkeypatch, fault):
    real_write = os.write

    def failing_write(fd, data):  # the lock file's write fails; every other write goes through
        if os.readlink(f'/proc/self/fd/{fd}').endswith('.lock'):
            if fault == 'Ctrl-C':
                raise KeyboardInterrupt
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    lock = ExperimentLock(tmp_path / 'experiments' / 'exp')
    monkeypatch.setattr(os, 'write', failing_write)
    if fault == 'Ctrl-C':
        with pytest.raises(KeyboardInterrupt):
            lock.acquire()
    else:
        with pytest.raises(ExperimentLockError, match=rf"^{tmp_path / 'experiments' / '.exp.lock'}: cannot write the "
                                                      r'lock of .*exp \(No space left on device\); nothing was written$'):
            lock.acquire()
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []  # no empty lock file, not even the experiments/ folder made for it
    lock.acquire()  # nothing stands in the way of the next try
    lock.release()
    assert os.listdir(tmp_path) == []
