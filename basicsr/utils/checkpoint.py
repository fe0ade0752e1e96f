"""The one checkpoint writer and reader, and the one weight loader.

- ``save_atomic`` / ``load_checkpoint``: any checkpoint (network files, training states).
- ``load_network``: the weights of a network file into a network; used by training (``path:pretrain_network_g``),
  ``test.py``, validation and ``scripts/inference_stereo.py`` alike, with ``weight_options`` reading the
  ``path:*`` keys that choose the file, the key inside it and the strictness.

Writing is crash-safe: a temporary file in the same folder is written, flushed and fsynced, then renamed over the
target (and the folder is fsynced), so a kill at any moment leaves either the old file or the new one, never half.
Reading never runs code: ``torch.load(..., weights_only=True)`` accepts only tensors and plain containers.
"""
import logging
import os
import sys

import torch

from basicsr.utils.dist_util import unwrap
from basicsr.utils.errors import UserError, shorten
from basicsr.utils.options import OptionError, get_path

logger = logging.getLogger('basicsr')


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that is missing, truncated, or holds anything but tensors and plain containers; or one that
    could not be written."""


_TMP_TAG = '.tmp'  # <file>.tmp<pid>: a save in progress


def remove_partial_saves(folder):
    """Delete the ``<file>.tmp<pid>`` files that a kill during ``save_atomic`` left in ``folder`` (call it only
    while owning the folder, so that no save is in progress); return their names."""
    if not os.path.isdir(folder):
        return []
    removed = []
    for name in sorted(os.listdir(folder)):
        stem, tag, pid = name.rpartition(_TMP_TAG)
        if stem and tag and pid.isdigit():
            os.remove(os.path.join(folder, name))
            removed.append(name)
    return removed


def save_atomic(obj, path):
    """``torch.save`` to ``path`` atomically (tmp file, flush, fsync, rename, fsync the folder)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f'{path}{_TMP_TAG}{os.getpid()}'
    try:
        with open(tmp, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:  # a full disk, a quota, a read-only folder: name the file; the old one is untouched
        raise CheckpointError(f'{path}: cannot write the checkpoint ({err.strerror or err}); '
                              f'{"the earlier file is untouched" if os.path.exists(path) else "nothing was written"}'
                              ) from None
    except RuntimeError as err:  # torch.save reports a failed write as RuntimeError ("file write failed")
        raise CheckpointError(f'{path}: cannot write the checkpoint ({shorten(str(err), 200)}); '
                              f'{"the earlier file is untouched" if os.path.exists(path) else "nothing was written"}'
                              ) from None
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
                                  f'containers (loading it could run code): {shorten(detail, 200)}') from None
        raise CheckpointError(f'{path}: unreadable or truncated checkpoint ({type(err).__name__}: '
                              f'{shorten(detail, 200)})') from None


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


def weight_options(opt, net_label='g'):
    """``(file, param_key, strict)`` of ``path:pretrain_network_<label>``, ``path:param_key_<label>`` and
    ``path:strict_load_<label>`` (BasicSR's keys; defaults: no file, ``params``, strict).

    The NAFNet release's option files spell the key ``path:param_key``: it is read as ``param_key_g`` with a
    one-line notice; both keys with different values is an error (one of them would be ignored).
    """
    key = f'path:param_key_{net_label}'
    param_key = get_path(opt, key)
    legacy = get_path(opt, 'path:param_key') if net_label == 'g' else None
    if legacy is not None:
        if param_key is not None and param_key != legacy:
            raise OptionError(f'{opt.get("opt_path", "options")}: path:param_key ({legacy!r}) and {key} '
                              f'({param_key!r}) disagree; keep only {key}')
        if param_key is None and os.environ.get('RANK', '0') == '0':
            print(f'{opt.get("opt_path", "options")}: note: path:param_key (the NAFNet release\'s spelling) is read '
                  f'as {key}: {legacy!r}', file=sys.stderr, flush=True)
        param_key = legacy
    strict = get_path(opt, f'path:strict_load_{net_label}', True)
    return get_path(opt, f'path:pretrain_network_{net_label}'), param_key or 'params', strict is not False


def load_network(net, path, param_key='params', strict=True, key_path='path:pretrain_network_g'):
    """Load the weights of checkpoint ``path`` into ``net`` (DDP/compile wrappers are looked through).

    ``param_key`` picks the state dict inside the file (release format ``{'params': state_dict}``; see
    ``load_state_dict``). Tensors whose shapes differ are always refused; missing or unexpected names are refused
    when ``strict``, else the common part is loaded and the rest reported. Loading never runs code. Every problem
    is one ``CheckpointError`` line starting with ``key_path`` and the file. Returns ``net``.
    """
    where = f'{key_path}: {path}' if key_path else f'{path}'
    try:
        state = load_state_dict(path, param_key=param_key)
    except CheckpointError as err:
        raise CheckpointError(f'{key_path}: {err}' if key_path else str(err)) from None
    bare = unwrap(net)
    own = bare.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f'{k} {tuple(state[k].shape)} (network: {tuple(own[k].shape)})' for k in own
             if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if wrong:
        raise CheckpointError(f'{where}: {len(wrong)} tensors do not fit the network, e.g. {wrong[0]}')
    if missing or unexpected:
        what = []
        if missing:
            what.append(f'{len(missing)} missing (e.g. {missing[0]})')
        if unexpected:
            what.append(f'{len(unexpected)} unexpected (e.g. {unexpected[0]})')
        if strict:
            raise CheckpointError(f"{where}: does not fit the network: {', '.join(what)} parameters "
                                  f'(set path:strict_load_g false to load the common ones)')
        logger.warning('%s: loaded non-strictly: %s parameters', where, ', '.join(what))
    bare.load_state_dict(state, strict=False)
    logger.info('loaded network weights from %s (%s)', path, param_key)
    return net
