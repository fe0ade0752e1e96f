"""The SLURM launcher as srun starts it: one train.py per task, SLURM_* variables, scontrol for the master host."""
import os
import stat
import subprocess
import sys

from helpers import reaped
from train_helpers import TRAIN_PY, base_options, child_env, free_port, run_train, write_options
from test_resume import assert_same_weights

SLURM_VARS = ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST', 'SLURM_LOCALID', 'MASTER_ADDR', 'MASTER_PORT',
              'RANK', 'WORLD_SIZE', 'LOCAL_RANK')


def _fake_scontrol(folder):
    """An ``scontrol`` that expands any node list to two loopback hosts, as ``scontrol show hostnames`` would."""
    path = os.path.join(str(folder), 'scontrol')
    with open(path, 'w') as f:
        f.write('#!/bin/sh\n[ "$1 $2" = "show hostnames" ] || exit 1\necho 127.0.0.1\necho 127.0.0.2\n')
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
    return str(folder)


def _slurm_env(rank, ntasks, bin_dir=None):
    env = child_env()
    for var in SLURM_VARS:
        env.pop(var, None)
    env.update(SLURM_PROCID=str(rank), SLURM_NTASKS=str(ntasks), SLURM_NODELIST='node[01-02]',
               SLURM_LOCALID=str(rank))
    if bin_dir:
        env['PATH'] = bin_dir + os.pathsep + env['PATH']
    return env


def test_slurm_tasks_train_like_torchrun(tiny_data, tmp_path):
    """Two tasks started the way srun starts them give bitwise the weights of a 2-process torchrun run."""
    opt_dict = base_options(tiny_data, 'slurm', total_iter=4)
    opt_dict['dist_params'] = {'port': free_port()}  # srun sets no MASTER_PORT: dist_params:port is used
    opt = write_options(tmp_path, opt_dict)
    ref_dir, run_dir, bin_dir = tmp_path / 'ref', tmp_path / 'run', tmp_path / 'bin'
    for d in (ref_dir, run_dir, bin_dir):
        d.mkdir()
    _fake_scontrol(bin_dir)
    ref = run_train(opt, ref_dir, nproc=2, launcher='torchrun')
    assert ref.returncode == 0, ref.stderr[-2000:]
    procs = [subprocess.Popen([sys.executable, TRAIN_PY, '-opt', opt, '--launcher', 'slurm'], cwd=str(run_dir),
                              env=_slurm_env(rank, 2, str(bin_dir)), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
             for rank in range(2)]
    with reaped(*procs):  # a rank left waiting for its peer is killed, whatever ends the test
        outs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-2000:]
    assert_same_weights(os.path.join(ref_dir, 'experiments', 'slurm'), os.path.join(run_dir, 'experiments', 'slurm'), 4)
    # only rank 0 writes the run's files
    logs = [n for n in os.listdir(os.path.join(run_dir, 'experiments', 'slurm')) if n.endswith('.log')]
    assert len(logs) == 1


def test_slurm_errors_are_one_line(tiny_data, tmp_path):
    opt = write_options(tmp_path, base_options(tiny_data, 'slurm_bad', total_iter=2))
    env = child_env()
    for var in SLURM_VARS:
        env.pop(var, None)
    no_srun = subprocess.run([sys.executable, TRAIN_PY, '-opt', opt, '--launcher', 'slurm'], cwd=str(tmp_path),
                             env=env, capture_output=True, text=True, timeout=300)
    assert no_srun.returncode == 2
    assert no_srun.stderr.strip() == ('train.py: error: --launcher slurm: environment variable SLURM_PROCID is not '
                                      'set; start the run with srun')
    # no scontrol on PATH (this machine has no SLURM) and no MASTER_ADDR: say so, and name the way out
    env = _slurm_env(0, 1)
    env['PATH'] = os.path.dirname(sys.executable)
    no_scontrol = subprocess.run([sys.executable, TRAIN_PY, '-opt', opt, '--launcher', 'slurm'], cwd=str(tmp_path),
                                 env=env, capture_output=True, text=True, timeout=300)
    assert no_scontrol.returncode == 2
    line = no_scontrol.stderr.strip()
    assert '\n' not in line and "cannot expand SLURM_NODELIST='node[01-02]' with scontrol" in line
    assert 'set MASTER_ADDR' in line
    assert not os.path.exists(os.path.join(tmp_path, 'experiments', 'slurm_bad'))
