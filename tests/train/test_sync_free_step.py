"""The steady-state training step reads nothing back from the device and calls no collective of its own (issue 20):
the non-finite guard, the stop request and the loss read-back happen only at print/validation/save iterations."""
import json
import os
import sys

import torch

from host_sync_counter import StepCounter, device_waits
from train_helpers import ROOT, base_options, child_env, train_cmd, write_options
import helpers

sys.path.insert(0, ROOT)
import train as train_script  # noqa: E402

# The first iterations decide on the host while the optimizer state is being created (drop-path leaves a block's
# parameters without a gradient, hence without state, until the block first runs) and the EMA makes its first
# average (a copy); 11..20 are ten steady-state iterations, none of them a print or save iteration; 21 is the last
# (it reads the guard back and saves).
FIRST, LAST, TOTAL = 11, 20, 21


def _options(tiny_data, name):
    opt = base_options(tiny_data, name, total_iter=TOTAL)
    opt['datasets']['train']['dataset_enlarge_ratio'] = 8  # >= 24 iterations per epoch: no epoch boundary
    opt['logger'].update(print_freq=50, save_checkpoint_freq=50)
    return opt


def test_steady_state_iterations_read_nothing_back(tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    opt = write_options(tmp_path, _options(tiny_data, 'syncfree'))
    counter = StepCounter(FIRST, TOTAL)
    counter.install(monkeypatch)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the subprocess tests run; tiny ops on a shared machine
    try:
        assert train_script.run(['-opt', opt]) == 0
    finally:
        counter.close()
        torch.set_num_threads(threads)
    assert counter.device_waits(FIRST, LAST) == {it: [] for it in range(FIRST, LAST + 1)}
    assert counter.device_waits(TOTAL, TOTAL)[TOTAL]  # the last iteration reads the guard back: the counter sees it


def counted_torchrun(opt, tmp_path, **env):
    """train.py's run of ``opt`` under torchrun (2 gloo processes) with host_sync_counter.py as each process's
    program (``env``: its NAN_AT/NAN_D_AT); asserts the run succeeded and that no steady-state iteration read a value
    back or called a collective, the last one agreeing and saving. Returns (the run, each rank's record)."""
    opt = write_options(tmp_path, opt)
    out = tmp_path / 'counts'
    out.mkdir()
    cmd = train_cmd(opt, nproc=2, launcher='torchrun')
    script = cmd.index(os.path.join(ROOT, 'train.py'))
    cmd[script:script + 1] = [os.path.join(os.path.dirname(__file__), 'host_sync_counter.py'), str(out), str(FIRST),
                              str(TOTAL)]
    result = helpers.run(cmd, 600, cwd=str(tmp_path), env=dict(child_env(), **env))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ranks = [json.loads((out / f'rank{rank}.json').read_text()) for rank in (0, 1)]
    for found in ranks:
        events = found['events']
        assert device_waits(events, FIRST, LAST) == {it: [] for it in range(FIRST, LAST + 1)}
        assert any(e.startswith('collective') for e in events[str(TOTAL)])  # the last one agrees and saves
    return result, ranks


def test_two_processes_agree_without_collectives(tiny_data, tmp_path):
    """Under torchrun (2 gloo processes) the steady-state iterations call no collective beyond DDP's gradient
    all-reduce and read nothing back, even when one process's loss is +inf with finite gradients (iteration 15,
    process 1): both skip that step (the guard makes that process's gradients NaN, which the gradient all-reduce
    carries to the other), the weights stay the same on both, and the skip is reported at the last iteration,
    which agrees (guard, stop request) and saves."""
    opt = _options(tiny_data, 'syncfree_ddp')
    # no drop-path here: with it DDP runs with find_unused_parameters, whose C++ reducer reads its map of used
    # parameters back in every backward (DDP's own cost, see docs/benchmarks.md)
    opt['network_g']['drop_path_rate'] = 0.0
    result, ranks = counted_torchrun(opt, tmp_path, NAN_AT='1:15')
    assert ranks[0]['weights'] == ranks[1]['weights']
    # rank 0 logs; its own loss was finite at 15, it skipped because rank 1's poisoned gradients reached it
    assert 'iter 15: the loss or its gradients were NaN/inf; skipping this step' in result.stdout + result.stderr
