"""Process-group set-up for the launchers: none, pytorch (torchrun / torch.distributed.launch) and slurm.

The backend is NCCL when the processes use GPUs and gloo on the CPU, unless the options name one; a release
option file that says ``nccl`` on a machine without CUDA falls back to gloo with a warning.
"""
import functools
import os
import subprocess
import warnings

import torch
import torch.distributed as dist

from basicsr.utils.errors import UserError, one_line


def choose_backend(requested=None, use_cuda=None):
    use_cuda = torch.cuda.is_available() if use_cuda is None else use_cuda
    if requested and requested != 'nccl':
        return requested
    if requested == 'nccl' and not use_cuda:
        warnings.warn('dist_params.backend is nccl but no GPU is used: falling back to gloo')
        return 'gloo'
    return 'nccl' if use_cuda else 'gloo'


class LauncherError(UserError, RuntimeError):
    """The launcher's environment is incomplete (a one-line error for the user)."""


def _setup_slurm_env(port=None):
    """Turn SLURM's variables into the ones ``init_process_group(init_method='env://')`` reads.

    The master address is the first host of ``SLURM_NODELIST`` (``scontrol show hostnames``) unless
    ``MASTER_ADDR`` is already set; the port is ``MASTER_PORT``, else ``dist_params:port``, else 29500.
    """
    missing = [v for v in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST') if v not in os.environ]
    if missing:
        raise LauncherError(f'--launcher slurm: environment variable {missing[0]} is not set; start the run with srun')
    proc_id = int(os.environ['SLURM_PROCID'])
    ntasks = int(os.environ['SLURM_NTASKS'])
    node_list = os.environ['SLURM_NODELIST']
    if not os.environ.get('MASTER_ADDR'):
        try:
            hosts = subprocess.run(['scontrol', 'show', 'hostnames', node_list], capture_output=True, text=True,
                                   check=True, timeout=60).stdout.split()
        except (OSError, subprocess.SubprocessError) as err:
            raise LauncherError(f'--launcher slurm: cannot expand SLURM_NODELIST={node_list!r} with scontrol '
                               f'({type(err).__name__}); set MASTER_ADDR to the first node') from None
        if not hosts:
            raise LauncherError(f'--launcher slurm: scontrol listed no host for SLURM_NODELIST={node_list!r}')
        os.environ['MASTER_ADDR'] = hosts[0]
    if 'MASTER_PORT' not in os.environ:
        os.environ['MASTER_PORT'] = str(port or 29500)
    os.environ['WORLD_SIZE'] = str(ntasks)
    os.environ['RANK'] = str(proc_id)
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', str(proc_id % max(1, torch.cuda.device_count())))


def init_dist(launcher, backend=None, use_cuda=None, port=None):
    """Initialise the default process group for ``launcher`` ('pytorch' or 'slurm'); return the backend."""
    if launcher == 'slurm':
        _setup_slurm_env(port)
    elif launcher != 'pytorch':
        raise ValueError(f'--launcher: expected none, pytorch or slurm, got {launcher!r}')
    for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if var not in os.environ:
            raise LauncherError(f'--launcher {launcher}: environment variable {var} is not set; start the run with '
                               'torchrun, python -m torch.distributed.launch or srun')
    use_cuda = torch.cuda.is_available() if use_cuda is None else use_cuda
    backend = choose_backend(backend, use_cuda)
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count())
    dist.init_process_group(backend=backend)
    return backend


def get_dist_info():
    """``(rank, world_size)``; ``(0, 1)`` without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def env_rank():
    """This process's rank, also after the process group is gone (the launchers and ``init_dist`` set RANK): the
    one-line errors, reported once the process group is destroyed, still say which process failed."""
    rank = os.environ.get('RANK', '')
    return int(rank) if rank.isdigit() else get_dist_info()[0]


def master_only(func):
    """Run ``func`` on rank 0 only (others return None)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if get_dist_info()[0] == 0:
            return func(*args, **kwargs)
        return None

    return wrapper


class RankZeroFailed(UserError, RuntimeError):
    """Rank 0 failed in a step that every rank waits for; the other ranks stop with this line (rank 0's own output
    has its error and, for a bug, its traceback)."""


def on_rank0(func, *args):
    """Run ``func`` on rank 0 only; every rank returns its result or stops with it: a ``UserError`` is raised on
    every rank, any other error (a bug, Ctrl-C) keeps its traceback on rank 0 and stops the other ranks with one
    ``RankZeroFailed`` line, so that no process is left waiting at the next collective call."""
    rank, world = get_dist_info()
    result, error = None, None
    if rank == 0:
        try:
            result = func(*args)
        except BaseException as err:  # re-raised below, once the other ranks have been told
            error = err
    if world > 1:
        failure = None
        if isinstance(error, UserError):
            failure = ('user', str(error))
        elif error is not None:
            failure = ('other', f'{type(error).__name__}: {one_line(error)}' if str(error) else type(error).__name__)
        box = [(None if error else result, failure)]
        dist.broadcast_object_list(box, src=0)
        result, failure = box[0]
        if rank != 0 and failure:
            kind, message = failure
            if kind == 'user':
                raise UserError(message)
            raise RankZeroFailed(f"rank 0 failed ({message}); rank 0's own output has the details")
    if error is not None:
        raise error
    return result


def barrier():
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def unwrap(net):
    """The bare module inside DistributedDataParallel / DataParallel / ``torch.compile`` wrappers (the wrappers'
    forward may synchronise processes or recompile; their state-dict names carry prefixes)."""
    while True:
        if isinstance(net, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
            net = net.module
        elif hasattr(net, '_orig_mod') and isinstance(net._orig_mod, torch.nn.Module):
            net = net._orig_mod
        else:
            return net
