"""iPASSR's stereo losses on its parallax attention (Wang et al., CVPRW 2021, Sec. 3.3), selected by
``train:photometric_opt``, ``train:cycle_opt``, ``train:smoothness_opt`` and ``train:consistency_opt`` of an
``IPASSRModel`` run.

They work at the LR resolution on residuals, which the paper argues are robust to the illuminance differences
between the views: ``lr_residual`` = bicubic down-scaling of |HR - bicubic up-scaling of LR|. Attention maps are
``(m_r2l, m_l2r)``, each (N, h, w, w) (row ``i`` of ``m_r2l[n, y]``: the weights of left pixel (y, i) over row y of
the right view); validity masks ``(v_left, v_right)`` are (N, 1, h, w). Each loss is the release's: the sum over the
two views of a mean absolute error, times ``loss_weight`` (default 0.1, the release's weight for each of them).
"""
import torch
import torch.nn.functional as F
from torch import nn

from basicsr.utils.registry import LOSS_REGISTRY

RELEASE_WEIGHT = 0.1


def lr_residual(lq, gt, scale):
    """|gt - bicubic up-scaling of lq|, bicubically down-scaled by ``scale`` (no antialiasing), as the release: the
    high frequencies that SR must restore, at the LR size. (N, C, h, w) from lq (N, C, h, w) and gt (N, C, sh, sw)."""
    up = F.interpolate(lq, scale_factor=scale, mode='bicubic', align_corners=False)
    return F.interpolate((gt - up).abs(), scale_factor=1 / scale, mode='bicubic', align_corners=False)


def warp_rows(m, x):
    """Gather ``x`` (N, C, H, W) along rows with attention ``m`` (N, H, W_out, W): (N, C, H, W_out)."""
    return torch.matmul(m, x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _views(x):
    return x[:, :3], x[:, 3:]


def _masked_l1(a, b, mask):
    return F.l1_loss(a * mask, b * mask)


class _ParallaxLoss(nn.Module):
    def __init__(self, loss_weight=RELEASE_WEIGHT):
        super().__init__()
        self.loss_weight = float(loss_weight)


@LOSS_REGISTRY.register()
class PhotometricLoss(_ParallaxLoss):
    """Each view's LR residual against the other view's warped to it by the attention, where valid.

    ``forward(residual, maps, masks)``: ``residual`` (N, 6, h, w), e.g. ``lr_residual(lq, gt, scale)``."""

    def forward(self, residual, maps, masks):
        (res_l, res_r), (m_r2l, m_l2r), (v_l, v_r) = _views(residual), maps, masks
        return self.loss_weight * (_masked_l1(res_l, warp_rows(m_r2l, res_r), v_l) +
                                   _masked_l1(res_r, warp_rows(m_l2r, res_l), v_r))


@LOSS_REGISTRY.register()
class CycleLoss(_ParallaxLoss):
    """Each view's LR residual against itself warped to the other view and back, where valid.

    ``forward(residual, maps, masks)`` as ``PhotometricLoss``."""

    def forward(self, residual, maps, masks):
        (res_l, res_r), (m_r2l, m_l2r), (v_l, v_r) = _views(residual), maps, masks
        return self.loss_weight * (_masked_l1(res_l, warp_rows(m_r2l, warp_rows(m_l2r, res_l)), v_l) +
                                   _masked_l1(res_r, warp_rows(m_l2r, warp_rows(m_r2l, res_r)), v_r))


@LOSS_REGISTRY.register()
class SmoothnessLoss(_ParallaxLoss):
    """Attention that changes little between neighbouring rows (vertical) and along the diagonal (a pixel and its
    right neighbour attend to neighbouring pixels, i.e. locally constant disparity). ``forward(maps)``."""

    def forward(self, maps):
        rows = sum(F.l1_loss(m[:, :-1], m[:, 1:]) for m in maps)
        diagonal = sum(F.l1_loss(m[:, :, :-1, :-1], m[:, :, 1:, 1:]) for m in maps)
        return self.loss_weight * (diagonal + rows)


@LOSS_REGISTRY.register()
class ConsistencyLoss(_ParallaxLoss):
    """Stereo consistency of the SR errors: each view's down-scaled |HR - SR| against the other view's warped to
    it by the (fixed) attention, where valid. ``forward(sr, gt, maps, masks, scale)``; gradients reach the SR
    output only (the maps are detached, as in the release)."""

    def forward(self, sr, gt, maps, masks, scale):
        err_l, err_r = _views(F.interpolate((gt - sr).abs(), scale_factor=1 / scale, mode='bicubic',
                                            align_corners=False))
        (m_r2l, m_l2r), (v_l, v_r) = maps, masks
        return self.loss_weight * (_masked_l1(err_l, warp_rows(m_r2l.detach(), err_r), v_l) +
                                   _masked_l1(err_r, warp_rows(m_l2r.detach(), err_l), v_r))
