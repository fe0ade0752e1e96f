"""Small building blocks shared by the NAFNet family (channel LayerNorm, SimpleGate), the option error, and the
networks of the zoo's cards by name (``build_named('NAFSSR-T_x4')``, ``build_named('EHFSSR-S', 2)``)."""
import copy
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from basicsr import zoo
from basicsr.utils.registry import ARCH_REGISTRY, OptionValueError


class ArchOptionError(OptionValueError):
    """A network's constructor argument with a bad value; ``arg`` names it so that ``ARCH_REGISTRY.build`` can put
    the YAML key path in front (``network_g:train_size: ...``)."""


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


# ------------------------------------------------------------------------------ the zoo's networks, by name
class _NamedSizes(Mapping):
    """``NAMED_SIZES['NAFSSR-T'] == (NAFSSR, {'width': 48, ...})``: every named size of the zoo's cards
    (basicsr/zoo.py), its class from ``ARCH_REGISTRY`` and its constructor keywords besides ``up_scale``."""

    def _table(self):
        table = {}
        for card in zoo.MODELS.values():
            if card.size not in table:
                table[card.size] = (ARCH_REGISTRY.get(card.arch), copy.deepcopy(card.kwargs))
        return table

    def __getitem__(self, name):
        return self._table()[name]

    def __iter__(self):
        return iter(self._table())

    def __len__(self):
        return len(self._table())


NAMED_SIZES = _NamedSizes()


def build_named(name, scale=None, **overrides):
    """The network of zoo card ``name`` (``build_named('NAFSSR-T_x4')``), or of the named size ``name`` at
    up-scaling ``scale`` (``build_named('NAFSSR-T', 3)``: its cards' network at any scale, released or not);
    ``overrides`` change constructor keywords. Built through ``ARCH_REGISTRY`` from the card's ``arch`` and
    ``kwargs`` (basicsr/zoo.py), with ``up_scale`` from the scale. Names as the papers write them (``EHFSSR-S``;
    ``_`` for ``-`` and any case accepted); an unknown name is a ValueError listing the sizes."""
    card = zoo.card(name)
    if card is None:
        raise ValueError(f"unknown size {name!r}; expected one of {', '.join(NAMED_SIZES)} (at a scale), or a zoo "
                         "name such as NAFSSR-T_x4")
    if zoo.name_key(name) == zoo.name_key(card.name):
        if scale not in (None, card.scale):
            raise ValueError(f'{card.name} is the x{card.scale} model; its size at x{scale} is {card.size}')
        scale = card.scale
    elif scale is None:
        raise ValueError(f'{name}: give a scale (a named size is one network at any scale; the zoo has '
                         f"{', '.join(c.name for c in zoo.MODELS.values() if c.size == card.size)})")
    return ARCH_REGISTRY.get(card.arch)(up_scale=scale, **{**copy.deepcopy(card.kwargs), **overrides})
