"""Small helpers of the training engine: seeding, RNG snapshots, time strings, finding the state to resume from."""
import logging
import os
import random
import re
import time
from contextlib import contextmanager

import numpy as np
import torch

from basicsr.utils.checkpoint import CheckpointError, load_checkpoint

logger = logging.getLogger('basicsr')


def set_random_seed(seed):
    """Seed python, numpy and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def tune_cpu_allocator():
    """Keep freed tensor memory in the process instead of handing it back to the OS after every operation.

    glibc serves large blocks (the feature maps) with mmap and trims the heap eagerly, so each new activation
    costs page faults on fresh zeroed pages (measured: ~100,000 faults and 0.2 s of system time per NAFSSR-T
    training step on 2 cores). Raising the mmap and trim thresholds lets the heap reuse those pages; the peak
    footprint stays that of the largest step. No effect (and no error) where the C library is not glibc.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith('linux'):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 32 * 2 ** 20)  # glibc's largest allowed value on 64-bit
        return bool(ok and libc.mallopt(m_trim_threshold, 2 ** 30))
    except (OSError, AttributeError):
        return False


def parse_size(text):
    """``'93x310'`` -> ``(93, 310)``: a ``HxW`` size of positive integers; ValueError otherwise."""
    try:
        h, w = (int(v) for v in str(text).lower().split('x'))
    except ValueError:
        h = w = 0
    if h <= 0 or w <= 0:
        raise ValueError(f'expected HxW with positive integers (e.g. 93x310), got {text!r}')
    return h, w


def process_gone(pid):
    """Whether the process ``pid`` that named a temporary file is gone, so that the file is an interrupted run's
    leftover. This process counts as gone (it has not made the file yet: an earlier process with the same PID did);
    a process alive under another user does not."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def get_time_str():
    return time.strftime('%Y%m%d_%H%M%S', time.localtime())


def format_duration(seconds):
    """``93784.2`` -> ``'1 day, 2:03:04'``."""
    seconds = int(max(0, seconds))
    days, rest = divmod(seconds, 86400)
    hms = f'{rest // 3600}:{rest % 3600 // 60:02d}:{rest % 60:02d}'
    return f'{days} day{"s" if days > 1 else ""}, {hms}' if days else hms


def get_rng_state():
    """The state of every random generator of this process as tensors and plain values (safe to save with
    ``weights_only`` loading)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        'torch': torch.get_rng_state(),
        'numpy': (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        'python': random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    """Restore what ``get_rng_state`` captured."""
    torch.set_rng_state(state['torch'])
    kind, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    if state.get('cuda') is not None and torch.cuda.is_available():
        cuda_states = state['cuda']
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:
            logger.warning('the saved CUDA random state is for %d GPUs, this process sees %d: not restored',
                           len(cuda_states), torch.cuda.device_count())


@contextmanager
def rng_preserved():
    """Run a block without disturbing any random generator (validation, data-loader set-up, FLOP counting), so that
    resuming from a state reproduces the random streams of an uninterrupted run."""
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


_STATE_NAME = re.compile(r'^(\d+)\.state$')


def scan_states(folder):
    """``[(iter, path), ...]`` of the ``<iter>.state`` files in ``folder``, newest (highest iter) first."""
    if not os.path.isdir(folder):
        return []
    found = []
    for name in os.listdir(folder):
        match = _STATE_NAME.match(name)
        if match:
            found.append((int(match.group(1)), os.path.join(folder, name)))
    return sorted(found, reverse=True)


def load_newest_state(folder):
    """Load the newest readable training state in ``folder``: ``(path, state)``, or ``(None, None)`` when there is
    none. Truncated or unreadable files are reported and skipped in favour of the previous one."""
    for _, path in scan_states(folder):
        try:
            state = load_checkpoint(path)
        except CheckpointError as err:
            logger.warning('skipping a training state that cannot be used: %s', err)
            continue
        if not isinstance(state, dict) or 'iter' not in state or 'params' not in state:
            logger.warning('skipping %s: not a training state of this framework (no iter/params)', path)
            continue
        return path, state
    return None, None
