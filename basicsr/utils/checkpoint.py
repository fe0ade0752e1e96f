"""The one checkpoint writer and reader.

Writing is crash-safe: a temporary file in the same folder is written, flushed and fsynced, then renamed over the
target (and the folder is fsynced), so a kill at any moment leaves either the old file or the new one, never half.
Reading never runs code: ``torch.load(..., weights_only=True)`` accepts only tensors and plain containers.
"""
import os
import sys

import torch


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, truncated, or holds anything but tensors and plain containers."""


def save_atomic(obj, path):
    """``torch.save`` to ``path`` atomically (tmp file, flush, fsync, rename, fsync the folder)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    try:
        with open(tmp, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_checkpoint(path, map_location='cpu'):
    """Load a checkpoint safely; one-line ``CheckpointError`` naming the file on any problem."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f'{path}: checkpoint file not found')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001  (torch raises many kinds; all mean "not a safe checkpoint")
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        # torch's long generic preface is useless here: keep the line that says what was found
        detail = next((line for line in lines if 'GLOBAL' in line or 'Unsupported' in line), lines[0] if lines
                      else type(err).__name__)
        if 'GLOBAL' in detail or 'Unsupported global' in detail:
            raise CheckpointError(f'{path}: refused, it holds Python objects other than tensors and plain '
                                  f'containers (loading it could run code): {detail[:200]}') from None
        raise CheckpointError(f'{path}: unreadable or truncated checkpoint ({type(err).__name__}: '
                              f'{detail[:200]})') from None


def load_state_dict(path, param_key='params'):
    """The state dict of a network checkpoint: ``ckpt[param_key]`` (release format ``{'params': ...}``), falling
    back to ``params_ema``/``params`` or a bare state dict; ``module.`` prefixes from DDP are stripped."""
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt, dict):
        raise CheckpointError(f'{path}: expected a dict of tensors, got {type(ckpt).__name__}')
    state, used = None, None
    for key in (param_key, 'params', 'params_ema', 'state_dict'):
        if key and key in ckpt and isinstance(ckpt[key], dict):
            state, used = ckpt[key], key
            break
    if state is None:
        if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
            state = ckpt
        else:
            raise CheckpointError(f'{path}: no {param_key!r} state dict in the checkpoint (keys: '
                                  f'{", ".join(map(str, list(ckpt)[:8]))})')
    if param_key and used != param_key:  # as BasicSR: say which weights were taken instead
        print(f"{path}: no {param_key!r} in the checkpoint; loaded {repr(used) if used else 'its bare state dict'}",
              file=sys.stderr, flush=True)
    return {(k[7:] if k.startswith('module.') else k): v for k, v in state.items()}
