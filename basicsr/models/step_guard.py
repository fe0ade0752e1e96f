"""Skipping a training step whose loss or gradients are not finite, decided on the device (issue 20).

``torch.amp.GradScaler``'s idea (``found_inf``), for any optimizer and without reading the flag back: the step is
issued as usual and ``Rollback`` then puts every tensor it changed (weights, optimizer state, EMA weights) back to
its value before the step where the device flag says so, with one ``torch.where`` per chunk of a flat copy, so
that a skipped step leaves exactly what not stepping would have left. ``NonFiniteGuard`` counts the skipped steps
on the device (the ``train:max_nan_steps`` rule: that many in a row stop the run); the training loop reads the
counts back only at the iterations where it prints, validates or saves (``report``).

Under DistributedDataParallel the processes agree without a collective of their own: a process whose loss is not
finite makes its gradients NaN (``poisoned``), the gradient all-reduce carries them to every process, and every
process sees non-finite gradients and skips the same step.
"""
import logging

import torch

logger = logging.getLogger('basicsr')


def not_finite(value):
    """A 0-dim bool tensor on ``value``'s device: True when ``value`` holds a NaN or an infinity."""
    return ~torch.isfinite(value.detach()).all()


def poisoned(total, bad):
    """``total`` unchanged, whose gradient is NaN where ``bad`` (a multiplication by 1.0 otherwise: bit for bit the
    same gradients)."""
    return total * torch.where(bad, float('nan'), 1.0)


def _dense(t):
    return t.is_contiguous() or (t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last))


# The restore's scratch per dtype: the values after the step are gathered a chunk of tensors at a time, so that the
# guard holds one full copy (the snapshot) and at most this much more (a 25M-parameter model with Adam and EMA has
# ~400 MB of such tensors; a second full copy was ~400 MB more of every training process's peak)
RESTORE_CHUNK_BYTES = 64 * 2 ** 20


class Rollback:
    """Snapshot of tensors that a step updates in place, put back where a device flag says so.

    The tensors are grouped by device and dtype; each group has one flat snapshot (``torch.cat`` of 1-D views of the
    tensors in memory order) and a scratch of at most ``RESTORE_CHUNK_BYTES``, kept from step to step: capture is
    one kernel per group, restore three per chunk of tensors whatever their number (NAFSSR-T's weights, AdamW state
    and EMA: one chunk, ~6 ms of one CPU core per step, 15 MB).
    """

    def __init__(self, tensors):
        groups, self._loose = {}, []
        for t in tensors:
            t = t.detach()
            if _dense(t):
                groups.setdefault((t.device, t.dtype), []).append(t.as_strided((t.numel(),), (1,), t.storage_offset()))
            else:
                self._loose.append(t)
        self._groups = []
        for views in groups.values():
            limit = max(1, RESTORE_CHUNK_BYTES // views[0].element_size())
            chunks, start, members, size = [], 0, [], 0  # consecutive tensors of at most `limit` elements in all
            for v in views:
                if members and size + v.numel() > limit:
                    chunks.append((members, start, size))
                    start, members, size = start + size, [], 0
                members.append(v)
                size += v.numel()
            chunks.append((members, start, size))
            saved = views[0].new_empty(start + size)
            scratch = views[0].new_empty(max(n for _, _, n in chunks))
            self._groups.append((views, saved, [(members, saved[a:a + n], scratch[:n],
                                                 list(scratch[:n].split([v.numel() for v in members])))
                                                for members, a, n in chunks]))
        self.devices = {views[0].device for views, *_ in self._groups} | {t.device for t in self._loose}
        self.nbytes = sum(saved.nbytes + chunks[0][2].untyped_storage().nbytes() for _, saved, chunks in self._groups)
        self._loose_saved = None

    def capture(self):
        for views, saved, _ in self._groups:
            torch.cat(views, out=saved)
        self._loose_saved = [t.clone() for t in self._loose]

    def restore_where(self, flag):
        """Put the captured values back where ``flag`` (0-dim bool) is True; leave the tensors as they are else."""
        for views, saved, chunks in self._groups:
            flag_here = flag.to(saved.device)
            for members, saved_part, current, parts in chunks:
                torch.cat(members, out=current)
                torch.where(flag_here, saved_part, current, out=current)
                torch._foreach_copy_(members, parts)
        for t, saved in zip(self._loose, self._loose_saved):
            t.copy_(torch.where(flag.to(t.device), saved, t))
        self._loose_saved = None


class NonFiniteGuard:
    """Counts skipped (non-finite) steps on the device; ``report`` reads the counts back and logs them."""

    def __init__(self, limit, device):
        self.limit = int(limit)
        # [steps skipped in a row, skipped since the last report, first and last skipped iteration since the last
        # report, the iteration at which the limit was reached (0: not reached)]
        self.counts = torch.zeros(5, dtype=torch.int64, device=device)

    def record(self, skipped, current_iter):
        """Count one step: ``skipped`` is a 0-dim bool tensor (True: the step was skipped for a non-finite value)."""
        c = self.counts
        s = skipped.to(c.device, torch.int64)
        c[0].add_(1).mul_(s)
        c[1].add_(s)
        c[2].copy_(torch.where(skipped & (c[2] == 0), current_iter, c[2]))
        c[3].copy_(torch.where(skipped, current_iter, c[3]))
        c[4].copy_(torch.where((c[4] == 0) & (c[0] >= self.limit), current_iter, c[4]))

    @property
    def in_a_row(self):
        return int(self.counts[0])

    @in_a_row.setter
    def in_a_row(self, value):
        self.counts[0].fill_(int(value))

    def report(self):
        """Read the counts back (this synchronises: call it where the loop prints, validates or saves), log the
        steps skipped since the last report, and return the iteration at which ``limit`` skipped steps in a row
        were reached (0 when they were not)."""
        in_a_row, skipped, first, last, limit_iter = self.counts.tolist()
        if skipped:
            where = f'iter {last}' if skipped == 1 else f'iters {first}-{last}'
            what = 'skipping this step' if skipped == 1 else f'skipped those {skipped} steps'
            logger.warning('%s: the loss or its gradients were NaN/inf; %s (%d in a row now, limit '
                           'train:max_nan_steps=%d)', where, what, in_a_row, self.limit)
            self.counts[1:4].zero_()
        return limit_iter
