"""Small building blocks shared by the NAFNet family (channel LayerNorm, SimpleGate), the option error, and the
table of named sizes of every family (``NAFSSR-T``, ``CVHSSR-S``, ``EHFSSR-S``, ...)."""
import inspect

import torch
import torch.nn.functional as F
from torch import nn

from basicsr.utils.errors import UserError


class ArchOptionError(UserError, ValueError):
    """A constructor argument with a bad value; ``arg`` names it so that ``define_network`` can add the YAML
    key path in front (``network_g.train_size: ...``)."""

    def __init__(self, arg, message):
        super().__init__(f'{arg}: {message}')
        self.arg = arg
        self.message = message


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of an (N, C, H, W) tensor, separately at every pixel.

    Biased variance and ``eps`` inside the square root, as in NAFNet; parameters ``weight`` and ``bias`` of
    shape (C,), so released checkpoints load unchanged.
    """

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        # layer_norm normalises the last dim; an NHWC view of the tensor puts the channels there
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)

    def extra_repr(self):
        return f'{self.weight.shape[0]}, eps={self.eps}'


class _SimpleGateFunction(torch.autograd.Function):
    """``a * b`` for the two channel halves of ``x``; the backward writes both halves of the gradient straight into
    one tensor shaped like ``x`` (autograd's ``chunk`` backward would concatenate two temporaries, which is slow in
    channels-last memory). Same values as ``a * b`` and its autograd gradient, bit for bit."""

    @staticmethod
    def forward(ctx, x):
        a, b = x.chunk(2, dim=1)
        ctx.save_for_backward(x)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        a, b = x.chunk(2, dim=1)
        half = a.shape[1]
        grad_x = torch.empty_like(x, dtype=grad.dtype)  # keeps x's memory format
        torch.mul(grad, b, out=grad_x[:, :half])
        torch.mul(grad, a, out=grad_x[:, half:])
        return grad_x


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them: the non-linearity of NAFNet (no activation)."""

    def forward(self, x):
        if x.requires_grad and torch.is_grad_enabled():
            return _SimpleGateFunction.apply(x)
        a, b = x.chunk(2, dim=1)
        return a * b



# 'NAFSSR-T' -> (class, constructor kwargs without up_scale); each family file registers its sizes
NAMED_SIZES = {}


def register_sizes(sizes):
    """Record the named sizes of a family: ``{'NAFSSR-T': (NAFSSR, {'width': 48, ...}), ...}``."""
    NAMED_SIZES.update(sizes)


def build_named(name, scale, family=None, **overrides):
    """The network of the named size ``name`` at up-scaling ``scale`` (``overrides`` change constructor keys).

    ``name`` is written as the papers do (``NAFSSR-T``, ``EHFSSR-S``; ``_`` for ``-`` also accepted); with
    ``family``, the size alone also works (``build_named('T', 4, family='NAFSSR')``) and only that family's names
    are offered in the error.
    """
    key = name.replace('_', '-')
    if family and not key.upper().startswith(family.upper()):
        key = f'{family}-{key}'
    known = [n for n in NAMED_SIZES if family is None or n == family or n.startswith(f'{family}-')]
    match = next((n for n in known if n.upper() == key.upper()), None)
    if match is None:
        raise ValueError(f"unknown {family + ' ' if family else ''}size {name!r}; expected one of {', '.join(known)}")
    cls, sizes = NAMED_SIZES[match]
    scale_key = 'up_scale' if 'up_scale' in inspect.signature(cls).parameters else 'upscale'  # SwinFIR's spelling
    return cls(**{scale_key: scale, **sizes, **overrides})
