"""Prefetchers that hand the training loop one batch at a time: ``next()`` -> batch dict, or None at epoch end.

``datasets:train:prefetch_mode`` picks one (``build_prefetcher``): none or ``cpu``, ``CPUPrefetcher``, the loader as
it is; ``cuda``, ``CUDAPrefetcher`` (BasicSR's convention): while the current step runs, the next batch is copied
from pinned host memory to the GPU on a side CUDA stream (``non_blocking``), so that it is there when the step
starts. Without a GPU ``cuda`` falls back to ``CPUPrefetcher`` with one warning.

Both create the loader's iterator the same way (the same random draws), and train.py calls ``reset()`` at every
epoch start, after setting the sampler's epoch and start; the batch that ``CUDAPrefetcher`` holds ahead is not yet
handed out, so a state saved meanwhile resumes at the batch after the last one handed out (the exact mid-epoch
resume).
"""
import logging

import torch

from basicsr.utils.options import OptionError

logger = logging.getLogger('basicsr')

PREFETCH_MODES = (None, 'cpu', 'cuda')


def check_prefetch_mode(mode, key_path='datasets:train:prefetch_mode'):
    """``mode`` when it is one of ``PREFETCH_MODES``, else an ``OptionError`` naming ``key_path``."""
    if mode not in PREFETCH_MODES:
        raise OptionError(f'{key_path}: expected cuda, cpu or nothing (~), got {mode!r}')
    return mode


def build_prefetcher(loader, mode, device):
    """The prefetcher of ``prefetch_mode`` ``mode`` for a run on ``device`` (see the module's docstring)."""
    if check_prefetch_mode(mode) == 'cuda':
        if torch.device(device).type == 'cuda':
            return CUDAPrefetcher(loader, device)
        logger.warning('datasets:train:prefetch_mode: cuda needs a GPU and this run is on the %s: batches are loaded '
                       'without the CUDA prefetcher', torch.device(device).type.upper())
    return CPUPrefetcher(loader)


class CPUPrefetcher:
    def __init__(self, loader):
        self.loader = loader
        self.iterator = iter(loader)

    def next(self):
        try:
            return next(self.iterator)
        except StopIteration:
            return None

    def reset(self):
        self.iterator = iter(self.loader)


def _pinned(value):
    """A tensor in page-locked host memory (what a ``non_blocking`` copy needs to be asynchronous)."""
    return value if value.is_pinned() else value.pin_memory()


class CUDAPrefetcher(CPUPrefetcher):
    """One batch ahead on the GPU: copied on a side stream, waited for by the compute stream when handed out.

    Set ``datasets:train:pin_memory`` (train.py does when it uses this prefetcher) so that the loader pins the
    batches in its own thread; unpinned tensors are pinned here. With a CPU ``device`` (tests) the copies are plain
    ones: the order of batches and the reset are the same code.
    """

    def __init__(self, loader, device):
        super().__init__(loader)
        self.device = torch.device(device)
        self.stream = torch.cuda.Stream(device=self.device) if self.device.type == 'cuda' else None
        self._ahead = None
        self._started = False  # the first batch of an epoch is loaded at the first next(), not at reset()

    def _load_ahead(self):
        batch = super().next()
        if batch is None:
            self._ahead = None
            return
        if self.stream is None:
            self._ahead = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
            return
        with torch.cuda.stream(self.stream):
            self._ahead = {k: _pinned(v).to(self.device, non_blocking=True) if torch.is_tensor(v) else v
                           for k, v in batch.items()}

    def next(self):
        if not self._started:
            self._started = True
            self._load_ahead()
        batch = self._ahead
        if batch is None:
            return None
        if self.stream is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_stream(self.stream)  # the copy has finished before the step reads the batch
            for value in batch.values():
                if torch.is_tensor(value):
                    value.record_stream(current)  # its memory is not reused while the step may still read it
        self._load_ahead()
        return batch

    def reset(self):
        super().reset()
        self._ahead, self._started = None, False
