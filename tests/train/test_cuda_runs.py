"""Real train.py processes on a GPU (skipped with their reason on the CPU; scripts/gpu_checks.sh runs them):

- the CUDA random state in the training state: a run on the GPU SIGKILLed after a state and started again ends with
  the weights of an uninterrupted run, bit for bit. The network is a tiny SwinFSR, whose per-sample stochastic
  depth and dropout draw from the CUDA generator (NAFSSR's block-wise DropPath draws on the CPU), with
  ``cudnn_benchmark: false`` (cuDNN's autotuning is not reproducible from run to run) and deterministic kernels
  (deterministic_train.py: no atomics in weight gradients);
- NCCL start-up: ``torchrun ... train.py --launcher pytorch`` on the GPUs, one process per GPU (one, and two where
  the machine has two), with NCCL's own log proving which backend started.
"""
import os
import subprocess

import pytest
import torch

from helpers import reaped
from test_resume import _kill_after_state, _ok, assert_same_weights
from train_helpers import TRAIN_PY, base_options, child_env, train_cmd, write_options
import helpers

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU (scripts/gpu_checks.sh runs it)')


def cuda_options(data, name, total_iter=8):
    """``base_options`` on the GPU with a tiny SwinFSR whose random draws are on the CUDA generator."""
    opt = base_options(data, name, total_iter=total_iter)
    opt['num_gpu'] = 1
    opt['network_g'] = {'type': 'SwinFSR', 'up_scale': 2, 'img_size': [4, 12], 'embed_dim': 8, 'depths': [2],
                        'num_heads': [2], 'window_size_h': 2, 'window_size_w': 4, 'mlp_ratio': 2,
                        'drop_rate': 0.1, 'drop_path_rate': 0.5}
    opt['train']['cudnn_benchmark'] = False
    return opt


def _deterministic_cmd(opt):
    cmd = train_cmd(opt, launcher=None)
    cmd[cmd.index(TRAIN_PY)] = os.path.join(os.path.dirname(__file__), 'deterministic_train.py')
    return cmd


def run_train(opt, cwd):
    return helpers.run(_deterministic_cmd(opt), 600, cwd=str(cwd), env=child_env())


def start_train(opt, cwd):
    return subprocess.Popen(_deterministic_cmd(opt), cwd=str(cwd), env=child_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _differs(ref_exp, run_exp, it):
    try:
        assert_same_weights(ref_exp, run_exp, it)
    except AssertionError as err:
        return str(err)
    return None


@CUDA
def test_cuda_sigkill_then_rerun_equals_uninterrupted(tiny_data, tmp_path):
    opt = write_options(tmp_path, cuda_options(tiny_data, 'cuda_run'))
    runs = {name: tmp_path / name for name in ('ref', 'run', 'ref_again')}
    for folder in runs.values():
        folder.mkdir()
    _ok(run_train(opt, runs['ref']))
    with reaped(start_train(opt, runs['run'])) as (proc,):
        _kill_after_state(proc, os.path.join(runs['run'], 'experiments', 'cuda_run', 'training_states'), 3)
    result = _ok(run_train(opt, runs['run']))
    assert 'resumed from' in result.stdout
    assert 'CUDA random state' not in result.stdout + result.stderr  # restored, not skipped for a device count
    state = torch.load(runs['run'] / 'experiments' / 'cuda_run' / 'training_states' / '8.state', weights_only=True)
    assert all(rng.get('cuda') is not None for rng in state['rng'])  # the CUDA generators were saved
    exp = {name: os.path.join(folder, 'experiments', 'cuda_run') for name, folder in runs.items()}
    differs = _differs(exp['ref'], exp['run'], 8)
    if differs:  # tell a resume bug from kernels that are not reproducible on this GPU at all
        _ok(run_train(opt, runs['ref_again']))
        again = _differs(exp['ref'], exp['ref_again'], 8)
        raise AssertionError(f'the resumed CUDA run differs from the uninterrupted one ({differs}); two uninterrupted '
                             f'runs {"also differ (" + again + ")" if again else "agree: the resume lost state"}')


@CUDA
@pytest.mark.parametrize('nproc', [1, 2])
def test_nccl_start_up_under_torchrun(tiny_data, tmp_path, nproc):
    if torch.cuda.device_count() < nproc:
        pytest.skip(f'{nproc} processes need {nproc} GPUs; this machine has {torch.cuda.device_count()}')
    opt_dict = cuda_options(tiny_data, f'nccl{nproc}', total_iter=4)
    opt_dict['dist_params'] = {'backend': 'nccl'}
    opt = write_options(tmp_path, opt_dict)
    env = dict(child_env(), NCCL_DEBUG='INFO')
    result = helpers.run(train_cmd(opt, nproc=nproc, launcher='torchrun'), 600, cwd=str(tmp_path), env=env)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert 'NCCL INFO' in out and 'falling back to gloo' not in out  # NCCL's own log: NCCL started
    state = torch.load(tmp_path / 'experiments' / f'nccl{nproc}' / 'training_states' / '4.state', weights_only=True)
    assert state['world_size'] == nproc
    weights = torch.load(tmp_path / 'experiments' / f'nccl{nproc}' / 'models' / 'net_g_4.pth', weights_only=True)
    assert all(torch.isfinite(v).all() for v in weights['params'].values())
