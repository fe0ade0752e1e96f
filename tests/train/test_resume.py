"""Real train.py processes: launchers, exact resume after SIGKILL, fallback from a truncated state, SIGTERM."""
import os
import shutil
import signal
import time

import pytest
import torch

from helpers import kill_tree, reaped
from train_helpers import base_options, run_train, start_train, with_val, write_options


def _weights(exp, it):
    return torch.load(os.path.join(exp, 'models', f'net_g_{it}.pth'), weights_only=True)


def assert_same_weights(exp_a, exp_b, it):
    a, b = _weights(exp_a, it), _weights(exp_b, it)
    assert set(a) == set(b)
    for group in ('params', 'params_ema'):
        if group in a:
            for key in a[group]:
                assert torch.equal(a[group][key], b[group][key]), f'{group}.{key} differs'


def _kill_after_state(proc, states_dir, it, timeout=600):
    """SIGKILL every process of the run as soon as training_states/<it>.state exists (mid-way through the next
    iteration or checkpoint write)."""
    deadline = time.time() + timeout
    target = os.path.join(states_dir, f'{it}.state')
    while not os.path.exists(target):
        if proc.poll() is not None:
            raise AssertionError(f'the run ended before writing {target}:\n{proc.stdout.read()}')
        if time.time() > deadline:
            raise AssertionError(f'{target} did not appear')  # the caller's reaped() kills the run
        time.sleep(0.01)
    kill_tree(proc)  # the workers first (torchrun puts them in sessions of their own), then the launcher's group
    proc.wait(timeout=30)
    proc.stdout.close()
    final = max(int(n.split('.')[0]) for n in os.listdir(states_dir) if n.endswith('.state'))
    assert final < 8, f'the run finished (state {final}) before it could be killed: nothing was tested'


def _ok(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope='module')
def reference_1proc(tiny_data, tmp_path_factory):
    """An uninterrupted single-process run of 8 iterations (2 epochs of 6 and 2 iterations), with validation."""
    cwd = tmp_path_factory.mktemp('ref1')
    opt = write_options(cwd, with_val(base_options(tiny_data, 'run'), tiny_data))
    result = _ok(run_train(opt, cwd))
    return cwd, opt, result


def test_uninterrupted_run_layout_and_log(reference_1proc):
    cwd, _, result = reference_1proc
    exp = os.path.join(cwd, 'experiments', 'run')
    assert sorted(os.listdir(os.path.join(exp, 'training_states'))) == sorted(f'{i}.state' for i in range(1, 9))
    models = os.listdir(os.path.join(exp, 'models'))
    assert 'net_g_8.pth' in models and 'net_g_best.pth' in models
    ckpt = _weights(exp, 8)
    assert set(ckpt) == {'params', 'params_ema'}  # the release format, plus the EMA weights
    assert set(ckpt['params']) == set(ckpt['params_ema'])
    assert any(not torch.equal(v, ckpt['params_ema'][k]) for k, v in ckpt['params'].items())  # EMA lags behind
    logs = [n for n in os.listdir(exp) if n.startswith('run_') and n.endswith('.log')]
    assert len(logs) == 1
    text = open(os.path.join(exp, logs[0])).read()
    for needle in ('[iter 8/8 epoch 1]', 'lr ', 'l_pix', 'time/iter', 'data', 'eta', 'M parameters',
                   'validation Tiny @ iter 4', 'validation Tiny @ iter 8'):
        assert needle in text, needle
    assert os.path.isdir(os.path.join(exp, 'visualization', 'Tiny', '4'))
    # the log is what scripts/plot_results.py plots from
    from basicsr.utils.visualize import parse_training_log
    curves = parse_training_log(text)
    assert list(curves) == ['Tiny'] and [it for it, _ in curves['Tiny']['psnr']] == [4, 8]
    best = torch.load(os.path.join(exp, 'models', 'net_g_best.pth'), weights_only=True)
    top_iter, top = max(curves['Tiny']['psnr'], key=lambda p: p[1])  # the log prints 4 decimals: abs=1e-4 below
    assert (top_iter, top) == (best['best']['psnr']['iter'], pytest.approx(best['best']['psnr']['value'], abs=1e-4))


def test_sigkill_then_rerun_equals_uninterrupted(reference_1proc, tmp_path):
    ref_cwd, opt, _ = reference_1proc
    with reaped(start_train(opt, tmp_path)) as (proc,):
        _kill_after_state(proc, os.path.join(tmp_path, 'experiments', 'run', 'training_states'), 3)
    result = _ok(run_train(opt, tmp_path))  # the same command again
    assert 'resumed from' in result.stdout
    assert_same_weights(os.path.join(ref_cwd, 'experiments', 'run'), os.path.join(tmp_path, 'experiments', 'run'), 8)


def test_truncated_newest_state_falls_back(reference_1proc, tmp_path):
    ref_cwd, opt, _ = reference_1proc
    exp = os.path.join(tmp_path, 'experiments', 'run')
    shutil.copytree(os.path.join(ref_cwd, 'experiments', 'run'), exp)
    newest = os.path.join(exp, 'training_states', '8.state')
    with open(newest, 'r+b') as f:
        f.truncate(os.path.getsize(newest) // 2)
    os.remove(os.path.join(exp, 'models', 'net_g_8.pth'))
    result = _ok(run_train(opt, tmp_path))
    assert '8.state' in result.stdout and 'skipping' in result.stdout
    assert 'resumed from' in result.stdout and '7.state' in result.stdout
    assert_same_weights(os.path.join(ref_cwd, 'experiments', 'run'), exp, 8)


def test_finished_run_is_not_restarted(reference_1proc, tmp_path):
    ref_cwd, opt, _ = reference_1proc
    exp = os.path.join(tmp_path, 'experiments', 'run')
    shutil.copytree(os.path.join(ref_cwd, 'experiments', 'run'), exp)
    before = sorted(os.listdir(os.path.join(exp, 'training_states')))
    result = _ok(run_train(opt, tmp_path))
    assert 'nothing to do' in result.stdout
    assert sorted(os.listdir(os.path.join(exp, 'training_states'))) == before


def test_two_processes_launch_and_torchrun_resume_bitwise(tiny_data, tmp_path):
    """torch.distributed.launch (uninterrupted) and torchrun (SIGKILLed, rerun) give identical weights."""
    opt_dict = base_options(tiny_data, 'ddp')
    ref_dir, run_dir = tmp_path / 'ref', tmp_path / 'run'
    ref_dir.mkdir()
    run_dir.mkdir()
    opt = write_options(tmp_path, opt_dict)
    ref = _ok(run_train(opt, ref_dir, nproc=2, launcher='launch'))
    assert 'Grad strides do not match bucket view strides' not in ref.stdout + ref.stderr
    with reaped(start_train(opt, run_dir, nproc=2, launcher='torchrun')) as (proc,):
        _kill_after_state(proc, os.path.join(run_dir, 'experiments', 'ddp', 'training_states'), 2)
    result = _ok(run_train(opt, run_dir, nproc=2, launcher='torchrun'))
    assert 'resumed from' in result.stdout + result.stderr
    state = torch.load(os.path.join(run_dir, 'experiments', 'ddp', 'training_states', '8.state'),
                       weights_only=True)
    assert state['world_size'] == 2 and len(state['rng']) == 2
    # 12 patches, 2 ranks, batch 2: 3 iterations per epoch, so 8 iterations end in epoch 2
    assert state['epoch'] == 2 and state['iter_in_epoch'] == 2
    assert_same_weights(os.path.join(ref_dir, 'experiments', 'ddp'), os.path.join(run_dir, 'experiments', 'ddp'), 8)


def test_sigterm_saves_state_and_exits_cleanly(tiny_data, tmp_path):
    opt_dict = base_options(tiny_data, 'term', total_iter=10000)
    opt_dict['logger']['save_checkpoint_freq'] = 5000
    opt_dict['train']['warmup_iter'] = -1
    opt = write_options(tmp_path, opt_dict)
    log_dir = os.path.join(tmp_path, 'experiments', 'term')
    # 10,000 iterations: if the SIGTERM handler is broken the run would go on for an hour; reaped() kills it
    with reaped(start_train(opt, tmp_path)) as (proc,):
        deadline = time.time() + 600
        while time.time() < deadline:  # wait until training has started
            logs = [n for n in os.listdir(log_dir) if n.endswith('.log')] if os.path.isdir(log_dir) else []
            if logs and '[iter 3/' in open(os.path.join(log_dir, logs[0])).read():
                break
            if proc.poll() is not None:
                raise AssertionError(f'the run ended before iter 3:\n{proc.stdout.read()[-3000:]}')
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:]
    states = os.listdir(os.path.join(log_dir, 'training_states'))
    assert len(states) == 1 and int(states[0].split('.')[0]) >= 3
    assert 'stop requested' in out


def test_sigint_saves_a_state_and_the_rerun_equals_uninterrupted(reference_1proc, tmp_path):
    """Ctrl-C: the iteration in progress finishes, a state is saved, exit code 0; the same command again ends with
    the weights of the run that never stopped."""
    ref_cwd, opt, _ = reference_1proc
    states_dir = os.path.join(tmp_path, 'experiments', 'run', 'training_states')
    with reaped(start_train(opt, tmp_path)) as (proc,):
        deadline = time.time() + 600
        while not os.path.exists(os.path.join(states_dir, '3.state')):
            if proc.poll() is not None or time.time() > deadline:
                raise AssertionError(f'no 3.state before the end:\n{proc.stdout.read()[-3000:]}')
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and 'stop requested' in out and 'Traceback' not in out, out[-3000:]
    stopped = max(int(n.split('.')[0]) for n in os.listdir(states_dir))
    assert 3 <= stopped < 8, f'the run finished (state {stopped}) before the signal: nothing was tested'
    assert f'state saved at iter {stopped}' in out
    result = _ok(run_train(opt, tmp_path))  # the same command again
    assert f'{stopped}.state' in result.stdout and 'resumed from' in result.stdout
    assert_same_weights(os.path.join(ref_cwd, 'experiments', 'run'), os.path.join(tmp_path, 'experiments', 'run'), 8)
