"""TLSC: test-time local statistics converter.

Chu, Chen, Chen, Lu, "Revisiting Global Statistics Aggregation for Improving Image Restoration", AAAI 2022
(arXiv:2112.04491). A network trained on small patches learns channel-attention statistics pooled over a patch;
on a large test image the global pool averages over far more pixels and the statistics drift. TLSC replaces every
global average pool (``nn.AdaptiveAvgPool2d(1)``) by a sliding local average whose window is 1.5x the size of
the training patch (scaled to the feature map's resolution), so each pixel sees statistics like those in training.

The window follows the released NAFNet/NAFSSR code exactly: the window is computed from the feature size seen for a
training-size input; when the window covers the input in both dimensions the result is the plain global mean;
otherwise it is the mean over each full window (clipped to the input in a dimension it exceeds) and the smaller
result is padded back to the input size by replicating its border. The release finds the feature sizes by running
a random input through the network; here the networks pass them in, so nothing random runs at construction.
"""
import torch
import torch.nn.functional as F
from torch import nn

from basicsr.zoo import LR_PATCH
from basicsr.models.archs.arch_util import ArchOptionError

TLSC_RATIO = 1.5
# (N, C, H, W) the stereo releases trained on: a pair of 30x90 LR patches (the Flickr1024 patches of
# basicsr/data/preparation.py); their networks' default train_size
STEREO_TRAIN_SIZE = (1, 6, *LR_PATCH)
FAST_REDUCTIONS = (5, 4, 3, 2, 1)  # sub-sampling strides tried by the release's approximate ``fast_imp`` path


def tlsc_kernel_size(train_hw, feature_hw=None, ratio=TLSC_RATIO):
    """The local window of a pool that sees ``feature_hw`` when the network input is ``train_hw``.

    The release's rule: ``feature * int(train * ratio) // train`` in each dimension.
    """
    feature_hw = feature_hw or train_hw
    return tuple(f * int(t * ratio) // t for f, t in zip(feature_hw, train_hw))


def fast_max_reduction(train_hw, feature_hw=None):
    """Largest sub-sampling stride of the ``fast_imp`` path, per dimension (release rule)."""
    feature_hw = feature_hw or train_hw
    return tuple(max(1, FAST_REDUCTIONS[0] * f // t) for f, t in zip(feature_hw, train_hw))


class LocalAvgPool2d(nn.Module):
    """Average over a ``kernel_size`` window around every pixel; output has the input's size.

    Args:
        kernel_size: (kh, kw) window.
        fast_imp: the release's faster approximation (sub-sampled integral image, nearest up-sampling);
            it is not equal to the exact window mean and exists only to reproduce ``fast_imp: true`` results.
        max_reduction: (rh, rw) largest sub-sampling strides for ``fast_imp``.
    """

    def __init__(self, kernel_size, fast_imp=False, max_reduction=(5, 5)):
        super().__init__()
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.fast_imp = fast_imp
        self.max_reduction = tuple(int(r) for r in max_reduction)

    def extra_repr(self):
        return f'kernel_size={self.kernel_size}, fast_imp={self.fast_imp}'

    def forward(self, x):
        kh, kw = self.kernel_size
        h, w = x.shape[-2:]
        if kh >= h and kw >= w:
            return F.adaptive_avg_pool2d(x, 1)
        dtype = x.dtype
        if dtype in (torch.float16, torch.bfloat16):
            x = x.float()  # integral images need float32 range and precision
        out = self._fast_window_mean(x) if self.fast_imp else self._window_mean(x)
        pad_h, pad_w = h - out.shape[-2], w - out.shape[-1]
        out = F.pad(out, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), mode='replicate')
        return out.to(dtype)

    def _window_mean(self, x):
        h, w = x.shape[-2:]
        kh, kw = min(h, self.kernel_size[0]), min(w, self.kernel_size[1])
        # integral image with a leading row and column of zeros: any window sum is 4 lookups
        s = F.pad(x.cumsum(dim=-1).cumsum(dim=-2), (1, 0, 1, 0))
        window_sum = s[..., kh:, kw:] + s[..., :-kh, :-kw] - s[..., :-kh, kw:] - s[..., kh:, :-kw]
        return window_sum / (kh * kw)

    def _fast_window_mean(self, x):
        h, w = x.shape[-2:]
        rh = min(self.max_reduction[0], next(r for r in FAST_REDUCTIONS if h % r == 0))
        rw = min(self.max_reduction[1], next(r for r in FAST_REDUCTIONS if w % r == 0))
        s = x[..., ::rh, ::rw].cumsum(dim=-1).cumsum(dim=-2)
        sh, sw = s.shape[-2:]
        kh, kw = min(sh - 1, self.kernel_size[0] // rh), min(sw - 1, self.kernel_size[1] // rw)
        window_sum = s[..., kh:, kw:] + s[..., :-kh, :-kw] - s[..., :-kh, kw:] - s[..., kh:, :-kw]
        return F.interpolate(window_sum / (kh * kw), scale_factor=(rh, rw))


def is_global_pool(module):
    return isinstance(module, nn.AdaptiveAvgPool2d) and module.output_size in (1, (1, 1))


def convert_global_pools(module, kernel_size, fast_imp=False, max_reduction=(5, 5)):
    """Replace every global average pool inside ``module`` by a ``LocalAvgPool2d``; returns how many.

    Pools hold no parameters, so state-dict names do not change.
    """
    count = 0
    for name, child in module.named_children():
        if is_global_pool(child):
            setattr(module, name, LocalAvgPool2d(kernel_size, fast_imp=fast_imp, max_reduction=max_reduction))
            count += 1
        else:
            count += convert_global_pools(child, kernel_size, fast_imp, max_reduction)
    return count


def check_train_size(train_size, channels):
    """``train_size`` as a 4-tuple (N, C, H, W) of positive ints, or raise naming the argument."""
    ok = (isinstance(train_size, (list, tuple)) and len(train_size) == 4
          and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in train_size))
    if not ok:
        raise ArchOptionError('train_size', f'expected [N, C, H, W] (4 positive ints), got {train_size!r}')
    if train_size[1] != channels:
        raise ArchOptionError('train_size', f'expected {channels} channels (the network input), '
                                            f'got {train_size!r}')
    return tuple(train_size)
