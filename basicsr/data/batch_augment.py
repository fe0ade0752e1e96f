"""Batch-level augmentations of the SR literature, made stereo-valid: ``train:batch_augment``.

From Yoo et al., "Rethinking Data Augmentation for Image Super-resolution" (CVPR 2020): at most one augmentation is
drawn per batch, each with its probability (their "mixture of augmentations"); every sample is mixed with another
sample of the batch (a random permutation).

- ``mixup {prob, alpha}``: ``lam * x + (1 - lam) * x[perm]`` with ``lam ~ Beta(alpha, alpha)``, on LR and HR alike.
- ``cutmix {prob, alpha}``: a rectangle of each sample's partner replaces the same rectangle of the sample. Its
  sides are ``ratio`` times the patch's, ``ratio ~ N(alpha, 0.01)`` clipped to [0.05, 1]; the rectangle is taken at
  one place of the partner and pasted at another, at the same place in **both views** (so rows stay epipolar
  lines) and at the same place in LR and HR (HR coordinates are ``scale`` times the LR ones, so the pair stays
  aligned).
- ``cutmixup {prob, alpha, mixup_alpha}``: mixup inside the CutMix rectangle and the sample outside it, or the
  other way round (each with probability 1/2).

NAFNet's ``train:mixup`` (``mixup_beta``, default 1.2) is the same mixup applied to every batch, before the drawn
augmentation (``BatchAugment(..., every_batch_mixup=beta)``): one mixup, one random stream.

All draws come from the model's own ``numpy.random.Generator`` (seeded from the run's seed and the rank), whose
state is in the training state: a resumed run draws the same augmentations as an uninterrupted one, and no other random
stream is touched. Nothing is read back from the GPU: the draws are host values, the permutation goes to the GPU
without waiting (issue 20).
"""
import numpy as np
import torch

KINDS = ('mixup', 'cutmix', 'cutmixup')


def check_batch_augment(options, key_path='train:batch_augment'):
    """The parsed ``{kind: {prob, alpha[, mixup_alpha]}}``; a ``ValueError`` naming the key on a bad entry."""
    if not isinstance(options, dict):
        raise ValueError(f'{key_path}: expected a mapping of mixup / cutmix / cutmixup to {{prob, alpha}}, '
                         f'got {options!r}')
    parsed = {}
    for kind, opt in options.items():
        if kind not in KINDS:
            raise ValueError(f'{key_path}:{kind}: unknown augmentation; expected one of {", ".join(KINDS)}')
        if not isinstance(opt, dict):
            raise ValueError(f'{key_path}:{kind}: expected a mapping with prob and alpha, got {opt!r}')
        allowed = {'prob', 'alpha'} | ({'mixup_alpha'} if kind == 'cutmixup' else set())
        unknown = sorted(set(opt) - allowed)
        if unknown:
            raise ValueError(f'{key_path}:{kind}:{unknown[0]}: unknown option; expected {", ".join(sorted(allowed))}')
        prob = opt.get('prob', 1.0)
        if not isinstance(prob, (int, float)) or isinstance(prob, bool) or not 0 <= prob <= 1:
            raise ValueError(f'{key_path}:{kind}:prob: expected a probability in [0, 1], got {prob!r}')
        default_alpha = 1.2 if kind == 'mixup' else 0.7  # the paper's settings
        entry = {'prob': float(prob), 'alpha': opt.get('alpha', default_alpha)}
        if kind == 'cutmixup':
            entry['mixup_alpha'] = opt.get('mixup_alpha', 1.2)
        for name in ('alpha', 'mixup_alpha'):
            value = entry.get(name)
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0):
                raise ValueError(f'{key_path}:{kind}:{name}: expected a positive number, got {value!r}')
        parsed[kind] = entry
    total = sum(entry['prob'] for entry in parsed.values())
    if total > 1 + 1e-9:
        raise ValueError(f'{key_path}: the probabilities add up to {total:g}; at most one augmentation is drawn per '
                         'batch, so they must add up to at most 1')
    return parsed


def _on_device(index, device):
    """``index`` (drawn on the host) on ``device``; to a GPU through pinned memory without waiting for it (a copy
    from pageable memory would wait for the queued kernels)."""
    if device.type != 'cuda':
        return index.to(device)
    return index.pin_memory().to(device, non_blocking=True)


class BatchAugment:
    """Draws and applies one of the configured augmentations to a (lq, gt) batch of stereo tensors."""

    def __init__(self, options, scale, seed, every_batch_mixup=None):
        self.options = check_batch_augment(options)
        self.scale = int(scale)
        self.every_batch_mixup = every_batch_mixup  # NAFNet's train:mixup: the Beta parameter, or None
        self.rng = np.random.default_rng(seed)  # an int or a sequence of ints (seed, rank, ...)

    def _partner(self, x):
        """A random permutation of the batch, on ``x``'s device: each sample's partner."""
        return _on_device(torch.from_numpy(self.rng.permutation(x.shape[0])), x.device)

    def _mixup(self, lq, gt, alpha, perm):
        lam = float(self.rng.beta(alpha, alpha))
        return lam * lq + (1 - lam) * lq[perm], lam * gt + (1 - lam) * gt[perm]

    def _box(self, alpha, h, w):
        """(from_y, from_x, to_y, to_x, box_h, box_w) in LR pixels."""
        ratio = min(1.0, max(0.05, float(self.rng.normal(alpha, 0.01))))
        bh, bw = max(1, int(h * ratio)), max(1, int(w * ratio))
        fy, fx, ty, tx = (int(self.rng.integers(0, n - b + 1)) for n, b in ((h, bh), (w, bw), (h, bh), (w, bw)))
        return fy, fx, ty, tx, bh, bw

    def __call__(self, lq, gt):
        """``(lq, gt, kind)``: the augmented batch and the augmentation drawn (None for none)."""
        if self.every_batch_mixup is not None and lq.shape[0] > 1:
            perm = self._partner(lq)
            lq, gt = self._mixup(lq, gt, self.every_batch_mixup, perm)
        if not self.options:
            return lq, gt, None
        u, kind, acc = float(self.rng.random()), None, 0.0
        for name, entry in self.options.items():
            acc += entry['prob']
            if u < acc:
                kind = name
                break
        if kind is None or lq.shape[0] < 2:
            return lq, gt, None
        entry = self.options[kind]
        perm = self._partner(lq)
        if kind == 'mixup':
            return (*self._mixup(lq, gt, entry['alpha'], perm), kind)
        s = self.scale
        fy, fx, ty, tx, bh, bw = self._box(entry['alpha'], lq.shape[-2], lq.shape[-1])
        lam = float(self.rng.beta(entry['mixup_alpha'], entry['mixup_alpha'])) if kind == 'cutmixup' else None
        inside = float(self.rng.random()) < 0.5 if kind == 'cutmixup' else True
        out = []
        for x, k in ((lq, 1), (gt, s)):  # the same box in LR and, scaled, in HR; all 6 channels: both views
            src = x[perm][..., k * fy:k * (fy + bh), k * fx:k * (fx + bw)]
            dst = (slice(None), slice(None), slice(k * ty, k * (ty + bh)), slice(k * tx, k * (tx + bw)))
            y = x.clone()
            if kind == 'cutmix':
                y[dst] = src
            elif inside:  # mixup inside the box, the sample outside
                y[dst] = lam * x[dst] + (1 - lam) * src
            else:  # mixup outside the box, the sample inside
                y = lam * x + (1 - lam) * x[perm]
                y[dst] = x[dst]
            out.append(y)
        return out[0], out[1], kind

    def state_dict(self):
        return {'rng': self.rng.bit_generator.state}

    def load_state_dict(self, state):
        self.rng.bit_generator.state = state['rng']
