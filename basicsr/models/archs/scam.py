"""SCAM: the Stereo Cross-Attention Module of NAFSSR (Chu, Chen, Yu, CVPRW 2022).

In a rectified stereo pair a point of the left view lies on the same row of the right view, so each row of the
left features attends to the same row of the right features, and vice versa, with one shared attention map.
"""
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from basicsr.models.archs.arch_util import LayerNorm2d
from basicsr.utils.registry import BLOCK_REGISTRY


_EXPLICIT = [0]  # > 0 inside explicit_row_attention()


@contextmanager
def explicit_row_attention():
    """Inside this block the attention always takes the explicit score-matrix path (e.g. for MAC counting, which
    sees matrix products but not the fused kernel). Same results either way."""
    _EXPLICIT[0] += 1
    try:
        yield
    finally:
        _EXPLICIT[0] -= 1


def explicit_attention_requested():
    """True inside ``explicit_row_attention()``; other networks' fused attentions follow it too (EHFSSR's windows)."""
    return _EXPLICIT[0] > 0


def row_cross_attention(q_l, q_r, v_l, v_r, scale):
    """Attention along rows between two views, all inputs (N, C, H, W).

    Left queries attend to right keys (``q_r``) to gather ``v_r``, and right queries (``q_r``) attend to left
    keys (``q_l``) to gather ``v_l``; the two directions share the logits ``q_l . q_r``.
    Returns (right-to-left, left-to-right) features, (N, C, H, W) each (channels-last in memory when the inputs
    are, which makes every permute below free).

    Two exact ways to compute it (equal up to float rounding, see tests/perf):
    with autograd, one (N, H, W, W) score matrix with a softmax over each of its two axes (the second read
    transposed by the matmul, never copied); without autograd (evaluation), ``scaled_dot_product_attention``,
    whose fused kernel never holds the W x W scores, so memory stays linear in the width.
    """
    q_l, q_r = q_l.permute(0, 2, 3, 1), q_r.permute(0, 2, 3, 1)  # N, H, W, C
    v_l, v_r = v_l.permute(0, 2, 3, 1), v_r.permute(0, 2, 3, 1)
    if _EXPLICIT[0] or (torch.is_grad_enabled() and any(t.requires_grad for t in (q_l, q_r, v_l, v_r))):
        logits = torch.matmul(q_l * scale, q_r.transpose(-1, -2))  # N, H, W_left, W_right
        r2l = torch.matmul(torch.softmax(logits, dim=-1), v_r)
        l2r = torch.matmul(torch.softmax(logits, dim=-2).transpose(-1, -2), v_l)
    else:
        r2l = F.scaled_dot_product_attention(q_l, q_r, v_r, scale=scale)
        l2r = F.scaled_dot_product_attention(q_r, q_l, v_l, scale=scale)
    return r2l.permute(0, 3, 1, 2), l2r.permute(0, 3, 1, 2)


def set_cross_view_layers(block, c, proj, out_proj=None):
    """Set the layers of a SCAM-style cross-view block on ``block``, in the released checkpoints' order: ``scale``
    (c ** -0.5), ``norm_l``, ``norm_r``, ``l_proj1``, ``r_proj1`` (queries/keys), ``l_proj2``, ``r_proj2`` (values),
    each made by ``proj()``; ``l_proj3``, ``r_proj3`` by ``out_proj()`` when given; zero-initialised per-channel
    ``beta`` (into left) and ``gamma`` (into right)."""
    block.scale = c ** -0.5
    block.norm_l = LayerNorm2d(c)
    block.norm_r = LayerNorm2d(c)
    for name in ('l_proj1', 'r_proj1', 'l_proj2', 'r_proj2'):
        setattr(block, name, proj())
    if out_proj is not None:
        block.l_proj3 = out_proj()
        block.r_proj3 = out_proj()
    block.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
    block.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))


@BLOCK_REGISTRY.register()
class SCAM(nn.Module):
    """Stereo cross-attention: (x_l, x_r), each (N, c, H, W) -> the same, each view plus what it gathers from
    the other, scaled by zero-initialised per-channel factors ``beta`` (into left) and ``gamma`` (into right).

    Queries/keys are 1x1 projections of the LayerNorm'd features (``l_proj1``, ``r_proj1``); values are 1x1
    projections of the raw features (``l_proj2``, ``r_proj2``); logits are scaled by c ** -0.5.
    """
    block_kind = 'cross'

    def __init__(self, c):
        super().__init__()
        set_cross_view_layers(self, c, lambda: nn.Conv2d(c, c, 1))

    def attend(self, x_l, x_r):
        """The unscaled features each view gathers from the other: (right-to-left, left-to-right)."""
        return row_cross_attention(self.l_proj1(self.norm_l(x_l)), self.r_proj1(self.norm_r(x_r)),
                                   self.l_proj2(x_l), self.r_proj2(x_r), self.scale)

    def exchange(self, x_l, x_r):
        """The scaled features each view receives: (into left, into right)."""
        r2l, l2r = self.attend(x_l, x_r)
        return r2l * self.beta, l2r * self.gamma

    def forward(self, x_l, x_r):
        r2l, l2r = self.attend(x_l, x_r)
        return torch.addcmul(x_l, r2l, self.beta), torch.addcmul(x_r, l2r, self.gamma)
