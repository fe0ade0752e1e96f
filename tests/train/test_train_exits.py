"""How a real train.py process ends before its first iteration: a Ctrl-C while the datasets or the model are built
is one line and exit code 130 (the lock released, nothing written); with two processes, a refusal keeps saying which
rank it comes from, although it is reported after the process group is gone."""
import json
import os
import socket
import subprocess
import sys
import textwrap

from helpers import reaped
from train_helpers import TRAIN_PY, base_options, child_env, free_port, write_options

# train.py run as `python train.py ...`, with one package function replaced by one that sends this very process a
# real SIGINT (as Ctrl-C in a terminal does) when train.py reaches it
INTERRUPTED_AT = textwrap.dedent('''
    import os
    import runpy
    import signal
    import sys
    import time

    import {module} as package

    def interrupted(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(30)  # the KeyboardInterrupt arrives here

    package.{name} = interrupted
    sys.argv = [{train_py!r}, *sys.argv[1:]]
    runpy.run_path({train_py!r}, run_name='__main__')
''')


def test_ctrl_c_while_building_the_datasets_is_one_line_and_writes_nothing(tiny_data, tmp_path):
    opt = write_options(tmp_path, base_options(tiny_data, 'n', total_iter=2))
    wrapper = tmp_path / 'interrupted_train.py'
    wrapper.write_text(INTERRUPTED_AT.format(module='basicsr.data', name='build_loaders', train_py=TRAIN_PY))
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    proc = subprocess.Popen([sys.executable, str(wrapper), '-opt', opt], cwd=str(run_dir), env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    with reaped(proc):
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    assert err.strip() == 'train.py: interrupted (Ctrl-C) before training started: nothing was written'
    assert os.listdir(run_dir) == []  # no lock left, not even the experiments/ folder made for it


def test_with_two_processes_a_refusal_names_the_rank(tiny_data, tmp_path):
    """Rank 0 finds the experiment in use; rank 1 learns it and says so as rank 1 (the processes are started as
    srun and torchrun start them: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)."""
    opt = write_options(tmp_path, base_options(tiny_data, 'n', total_iter=2))
    (tmp_path / 'experiments').mkdir()
    lock = tmp_path / 'experiments' / '.n.lock'
    lock.write_text(json.dumps({'host': socket.gethostname(), 'pid': os.getpid(), 'start': None, 'since': 'now',
                                'command': 'a live run'}))
    port = str(free_port())
    procs = [subprocess.Popen([sys.executable, TRAIN_PY, '-opt', opt, '--launcher', 'pytorch'], cwd=str(tmp_path),
                              env=dict(child_env(), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2',
                                       MASTER_ADDR='127.0.0.1', MASTER_PORT=port),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
             for rank in range(2)]
    with reaped(*procs):
        errs = [p.communicate(timeout=60)[1] for p in procs]
    for rank, (proc, err) in enumerate(zip(procs, errs)):
        assert proc.returncode == 2, err[-3000:]
        line = err.strip()
        assert '\n' not in line and line.startswith(f"train.py: error{' (rank 1)' if rank else ''}: "
                                                    f"{tmp_path / 'experiments' / 'n'}: in use by another run"), line
    assert os.listdir(tmp_path / 'experiments') == ['.n.lock']
