"""Helpers shared by the tests: loading a script of the repository as a module, a tiny random network saved with its
option file, and child processes that never outlive their test.

Every process a test starts is ended in a ``finally``: a hung or broken ``train.py`` (10,000 iterations in the
SIGTERM test) or a torchrun whose workers live in sessions of their own must not keep running after the test has
failed or pytest-timeout has stopped it.
"""
import importlib.util
import json
import os
import signal
import subprocess
from contextlib import contextmanager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_script(relative_path):
    """Import the script at ``relative_path`` (from the repository root, e.g. ``scripts/benchmark.py``) as a fresh
    module named after the file, without running its ``__main__`` block."""
    path = os.path.join(ROOT, relative_path)
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def descendants(pid):
    """Every live descendant of ``pid`` (from /proc). torchrun starts its workers in sessions of their own, so
    killing the launcher's process group alone would leave them training."""
    children = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as f:
                    ppid = int(f.read().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(proc):
    """SIGKILL ``proc`` and everything it started: the descendants first (wherever their sessions are), then its
    process group when it leads one (``start_new_session=True``), else the process alone."""
    for pid in descendants(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except ProcessLookupError:
        pass


def reap(*procs, timeout=30):
    """Kill what is still running among ``procs`` (with their children), wait for them and close their pipes."""
    for proc in procs:
        if proc.poll() is None:
            kill_tree(proc)
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


@contextmanager
def reaped(*procs):
    """``with reaped(Popen(...)) as (proc,):`` the processes are killed (with their children) when the block
    ends, however it ends; a process that has already exited is only waited for."""
    try:
        yield procs
    finally:
        reap(*procs)


def run(cmd, timeout, **kwargs):
    """``subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)``, except that the command
    runs in a session of its own and, on any exception (its timeout, pytest-timeout's, Ctrl-C), is killed with
    every process it started, torchrun's workers included."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            **kwargs)
    with reaped(proc):
        stdout, stderr = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def tiny_model_files(root, network, weights_name):
    """A random ``network`` (NAFSSR options with ``up_scale``) saved in the release format as ``root/weights_name``
    (``.pth`` or ``.safetensors``) and an option file naming it; returns ``(net in eval mode, weights, option file)``.
    NAFNet's zero-initialised beta/gamma are drawn too, or every block would be the identity."""
    import torch

    from basicsr.models.archs import define_network
    from basicsr.utils.checkpoint import save_atomic

    torch.manual_seed(0)
    net = define_network(dict(network), key_path='network_g')
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(('beta', 'gamma')):
                p.copy_(torch.randn_like(p) * 0.1)
    weights = root / weights_name
    save_atomic({'params': net.state_dict()}, weights)
    scale = network['up_scale']
    opt = root / f'tiny_x{scale}.yml'
    opt.write_text(f"""name: tiny_x{scale}
scale: {scale}
network_g: {json.dumps(network)}
datasets:
  test0: {{name: any, type: PairedStereoImageDataset, dataroot_gt: x, dataroot_lq: y}}
path: {{pretrain_network_g: {weights}}}
""")
    return net.eval(), weights, opt
