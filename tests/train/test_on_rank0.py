"""dist_util.on_rank0 with two real processes on gloo (started as torchrun starts them: RANK, WORLD_SIZE,
MASTER_ADDR, MASTER_PORT): when rank 0's step fails with a bug, rank 0 keeps its traceback and the other rank stops
at once with one line saying that rank 0 failed, instead of waiting for rank 0 at the next collective call."""
import subprocess
import sys
import textwrap

from helpers import reaped
from train_helpers import child_env, free_port

WORKER = textwrap.dedent('''
    import os
    import sys

    import torch.distributed as dist

    from basicsr.utils.dist_util import on_rank0
    from basicsr.utils.errors import run_main


    def step():
        return 1 / 0  # a bug on rank 0 (not a UserError)


    def main():
        dist.init_process_group('gloo')
        try:
            on_rank0(step)
            dist.barrier()
        finally:  # as train.py and test.py: a process group left to the interpreter's exit may abort (SIGABRT)
            dist.destroy_process_group()


    sys.exit(run_main('worker', main, rank_fn=lambda: int(os.environ['RANK'])))
''')


def test_a_bug_on_rank0_stops_the_other_rank_with_one_line(tmp_path):
    script = tmp_path / 'worker.py'
    script.write_text(WORKER)
    port = str(free_port())
    procs = [subprocess.Popen([sys.executable, str(script)], cwd=str(tmp_path), text=True, start_new_session=True,
                              env=dict(child_env(), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2',
                                       MASTER_ADDR='127.0.0.1', MASTER_PORT=port),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for rank in range(2)]
    with reaped(*procs):  # a rank left waiting is killed, whatever ends the test
        errs = [p.communicate(timeout=60)[1] for p in procs]
    assert procs[0].returncode == 1 and 'ZeroDivisionError: division by zero' in errs[0]  # rank 0: its traceback
    assert procs[1].returncode == 2, errs[1][-2000:]
    assert errs[1].strip() == ("worker: error (rank 1): rank 0 failed (ZeroDivisionError: division by zero); "
                               "rank 0's own output has the details")
