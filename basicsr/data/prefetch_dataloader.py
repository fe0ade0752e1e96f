"""Prefetchers that hand the training loop one batch at a time: ``next()`` -> batch dict, or None at epoch end.

``CUDAPrefetcher`` copies the next batch to the GPU on a side CUDA stream while the current one is used.
``CPUPrefetcher`` is the same interface without copying (CPU runs and debugging).
"""
import torch


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


class CUDAPrefetcher:
    def __init__(self, loader, device):
        self.loader = loader
        self.device = torch.device(device)
        self.stream = torch.cuda.Stream(device=self.device)
        self.iterator = iter(loader)
        self.batch = None
        self._preload()

    def _preload(self):
        try:
            batch = next(self.iterator)
        except StopIteration:
            self.batch = None
            return
        with torch.cuda.stream(self.stream):
            self.batch = {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v
                          for k, v in batch.items()}

    def next(self):
        torch.cuda.current_stream(self.device).wait_stream(self.stream)
        batch = self.batch
        if batch is not None:
            for v in batch.values():  # the tensors are now used on the main stream
                if torch.is_tensor(v):
                    v.record_stream(torch.cuda.current_stream(self.device))
        self._preload()
        return batch

    def reset(self):
        self.iterator = iter(self.loader)
        self._preload()
