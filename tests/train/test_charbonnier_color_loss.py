"""CharbonnierLossColor (SwinFIRSSR's training loss): the release's formula, by hand and against a direct reading."""
import math

import pytest
import torch

from basicsr.losses.losses import CharbonnierLossColor
from basicsr.utils.registry import LOSS_REGISTRY


def test_hand_values():
    # one pixel, 6 channels (a stereo tensor): errors 1 and 0 -> mean squared error over channels 3/6 = 0.5
    pred = torch.tensor([1., 1., 1., 0., 0., 0.]).view(1, 6, 1, 1)
    target = torch.zeros(1, 6, 1, 1)
    assert CharbonnierLossColor(eps=0.)(pred, target).item() == pytest.approx(math.sqrt(0.5))
    # two pixels: errors 0 everywhere at the first, 2 at the second -> (sqrt(eps) + sqrt(4 + eps)) / 2, weighted
    pred = torch.cat([torch.zeros(1, 6, 1, 1), torch.full((1, 6, 1, 1), 2.)], dim=3)
    loss = CharbonnierLossColor(loss_weight=0.5)(pred, torch.zeros(1, 6, 1, 2))
    assert loss.item() == pytest.approx(0.5 * (math.sqrt(1e-6) + math.sqrt(4 + 1e-6)) / 2)


def test_equals_the_release_formula_and_differs_from_per_channel_charbonnier():
    torch.manual_seed(0)
    pred, target = torch.rand(2, 6, 5, 7), torch.rand(2, 6, 5, 7)
    # the release: diff_sq_color = mean(diff * diff, 1, keepdim); loss = mean(sqrt(diff_sq_color + eps))
    diff = pred - target
    expected = torch.mean(torch.sqrt(torch.mean(diff * diff, 1, True) + 1e-6))
    loss = LOSS_REGISTRY.build({'type': 'CharbonnierLossColor', 'loss_weight': 1.0, 'reduction': 'mean'}, 'train:pixel_opt')
    torch.testing.assert_close(loss(pred, target), expected, rtol=1e-6, atol=0)
    per_channel = torch.sqrt(diff ** 2 + 1e-6).mean()
    assert (loss(pred, target) - per_channel).abs() > 1e-3


def test_bad_reduction_is_named():
    with pytest.raises(ValueError, match='CharbonnierLossColor: reduction must be one of'):
        CharbonnierLossColor(reduction='max')
