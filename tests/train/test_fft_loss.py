"""EHFSSR's frequency loss (``train:freq_opt: {type: FFTLoss}``): hand values, the release's formula, and a model
built from options that adds it to the pixel loss."""
import math

import pytest
import torch

from basicsr.losses.losses import FFTLoss
from basicsr.models import build_model
from basicsr.utils.options import parse
from basicsr.utils.registry import LOSS_REGISTRY
from train_helpers import base_options, write_options

PRED = torch.tensor([0.0, 0.5, 1.0, 0.25]).view(1, 1, 2, 2)
TARGET = torch.tensor([0.5, 0.5, 0.0, 1.0]).view(1, 1, 2, 2)
# differences [[p, q], [r, s]] = [[-0.5, 0], [1, -0.75]]: for a 2 x 2 input the 2-D FFT is real, p+q+r+s,
# p-q+r-s, p+q-r-s, p-q-r+s = -0.25, 1.25, -0.75, -2.25; rfft2 keeps all four (W // 2 + 1 = 2 columns)


def test_fft_loss_matches_hand_values():
    expected = (0.25 + 1.25 + 0.75 + 2.25 + 4 * 0.0) / 8  # mean over 4 coefficients x (real, imaginary)
    assert FFTLoss()(PRED, TARGET).item() == pytest.approx(expected, rel=1e-6)
    assert FFTLoss(loss_weight=0.02)(PRED, TARGET).item() == pytest.approx(0.02 * expected, rel=1e-6)
    assert FFTLoss(reduction='sum')(PRED, TARGET).item() == pytest.approx(8 * expected, rel=1e-6)
    assert FFTLoss(reduction='none')(PRED, TARGET).shape == (1, 1, 2, 2, 2)  # (..., H, W // 2 + 1, re/im)
    assert 'FFTLoss' in LOSS_REGISTRY  # the name the release's option files use


def test_fft_loss_is_the_release_formula():
    """The release: L1 (mean) between torch.stack([fft.real, fft.imag], -1) of rfft2(pred) and of rfft2(target)."""
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(2, 6, 9, 14, generator=g), torch.rand(2, 6, 9, 14, generator=g)
    fp, ft = torch.fft.rfft2(pred), torch.fft.rfft2(target)
    release = torch.nn.functional.l1_loss(torch.stack([fp.real, fp.imag], -1), torch.stack([ft.real, ft.imag], -1))
    torch.testing.assert_close(FFTLoss(loss_weight=0.02)(pred, target), 0.02 * release)
    # a sinusoid of the target missing from the prediction costs in proportion to its amplitude at one frequency
    rows = torch.arange(8.0).view(1, 1, 8, 1).expand(1, 1, 8, 8)
    wave = torch.cos(2 * math.pi * rows / 4)
    assert FFTLoss(reduction='sum')(torch.zeros_like(wave), wave).item() == pytest.approx(2 * 32, rel=1e-5)


def test_freq_opt_is_added_to_the_pixel_loss(tiny_data, tmp_path):
    opt = base_options(tiny_data, 'fft_loss')
    opt['network_g']['drop_path_rate'] = 0.0
    opt['train'].update(mixup=False, ema_decay=None, warmup_iter=-1,
                        freq_opt={'type': 'FFTLoss', 'loss_weight': 0.02, 'reduction': 'mean'})
    torch.manual_seed(0)
    model = build_model(parse(write_options(tmp_path, opt), is_train=True, root_path=str(tmp_path)))
    g = torch.Generator().manual_seed(1)
    model.feed_data({'lq': torch.rand(2, 6, 4, 12, generator=g), 'gt': torch.rand(2, 6, 8, 24, generator=g)})
    with torch.no_grad():
        pred = model.net_g(model.lq)
    assert model.optimize_parameters(1)
    assert list(model.log_dict) == ['l_pix', 'l_freq']
    torch.testing.assert_close(model.log_dict['l_pix'], torch.nn.functional.mse_loss(pred, model.gt))
    torch.testing.assert_close(model.log_dict['l_freq'], FFTLoss(0.02)(pred, model.gt))
