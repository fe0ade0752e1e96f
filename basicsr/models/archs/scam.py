"""SCAM: the Stereo Cross-Attention Module of NAFSSR (Chu, Chen, Yu, CVPRW 2022).

In a rectified stereo pair a point of the left view lies on the same row of the right view, so each row of the
left features attends to the same row of the right features, and vice versa, with one shared attention map.
"""
import torch
from torch import nn

from basicsr.models.archs.arch_util import LayerNorm2d
from basicsr.utils.registry import BLOCK_REGISTRY


def row_cross_attention(q_l, q_r, v_l, v_r, scale):
    """Attention along rows between two views, all inputs (N, C, H, W).

    Left queries attend to right keys (``q_r``) to gather ``v_r``, and right queries (``q_r``) attend to left
    keys (``q_l``) to gather ``v_l``; the two directions share the logits ``q_l . q_r``.
    Returns (right-to-left, left-to-right) features, (N, C, H, W) each.
    """
    q_l = q_l.permute(0, 2, 3, 1)  # N, H, W, C
    q_r = q_r.permute(0, 2, 1, 3)  # N, H, C, W
    logits = torch.matmul(q_l, q_r) * scale  # N, H, W_left, W_right
    r2l = torch.matmul(torch.softmax(logits, dim=-1), v_r.permute(0, 2, 3, 1))
    l2r = torch.matmul(torch.softmax(logits.transpose(-1, -2), dim=-1), v_l.permute(0, 2, 3, 1))
    return r2l.permute(0, 3, 1, 2), l2r.permute(0, 3, 1, 2)


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
        self.scale = c ** -0.5
        self.norm_l = LayerNorm2d(c)
        self.norm_r = LayerNorm2d(c)
        self.l_proj1 = nn.Conv2d(c, c, 1)
        self.r_proj1 = nn.Conv2d(c, c, 1)
        self.l_proj2 = nn.Conv2d(c, c, 1)
        self.r_proj2 = nn.Conv2d(c, c, 1)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def exchange(self, x_l, x_r):
        """The scaled features each view receives: (into left, into right)."""
        r2l, l2r = row_cross_attention(self.l_proj1(self.norm_l(x_l)), self.r_proj1(self.norm_r(x_r)),
                                       self.l_proj2(x_l), self.r_proj2(x_r), self.scale)
        return r2l * self.beta, l2r * self.gamma

    def forward(self, x_l, x_r):
        to_l, to_r = self.exchange(x_l, x_r)
        return x_l + to_l, x_r + to_r
