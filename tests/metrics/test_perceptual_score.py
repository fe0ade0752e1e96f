"""The NTIRE 2023 perceptual-track score, 1 - LPIPS(left)/2 - LPIPS(right)/2 - MAE(D_SR, D_HR), by hand.

LPIPS is stubbed with fixed per-view values (it has its own tests in test_lpips.py), so every expected number
here is a hand computation; the disparity term is our SGBM stand-in for the organisers' RAFT-Stereo.
"""
import cv2
import numpy as np
import pytest

from basicsr.metrics import calculate_metric, metric_better
from basicsr.metrics import perceptual
from basicsr.metrics.perceptual import calculate_ntire2023_perceptual_score, disparity_mae
from basicsr.reports import table_columns, with_left_variants
from basicsr.utils.registry import METRIC_REGISTRY

SHIFT = 6  # disparity of the synthetic pair, pixels


@pytest.fixture(scope='module')
def hr_pair():
    """A textured 32x96 pair whose left pixel (y, x) is the right pixel (y, x - SHIFT)."""
    rng = np.random.default_rng(1)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (32, 96 + SHIFT, 3)).astype(np.float32), (0, 0), 1.2)
    texture = np.clip(texture * 3 - 255, 0, 255).astype(np.uint8)
    return np.concatenate([texture[:, :96], texture[:, SHIFT:]], axis=2)


def shifted_right_view(pair, pixels):
    """The pair with its right view drawn ``pixels`` to the right: its disparity drops by that much."""
    out = pair.copy()
    out[..., 3:] = np.roll(pair[..., 3:], pixels, axis=1)
    return out


@pytest.fixture
def stub_lpips(monkeypatch):
    """LPIPS(left) = 0.1, LPIPS(right) = 0.3 whatever the images; records the calls."""
    calls = []

    def per_view(a, b, color_order, net, weights_path, device):
        calls.append((a.shape, color_order, net, weights_path, device))
        return [0.1, 0.3]

    monkeypatch.setattr(perceptual, '_lpips_per_view', per_view)
    return calls


def test_disparity_term_is_zero_for_the_hr_pair_itself(hr_pair):
    assert disparity_mae(hr_pair, hr_pair) == 0.0  # SGBM is deterministic: the same pair, the same map


@pytest.mark.parametrize('pixels', [1, 3])
def test_disparity_term_measures_a_shifted_view(hr_pair, pixels):
    # every matched pixel's disparity is off by `pixels` (measured 0.9997 and 3.0005: SGBM's sub-pixel steps)
    assert disparity_mae(shifted_right_view(hr_pair, pixels), hr_pair) == pytest.approx(pixels, abs=0.05)


def test_perfect_pair_scores_one(hr_pair, monkeypatch):
    monkeypatch.setattr(perceptual, '_lpips_per_view', lambda *args: [0.0, 0.0])
    assert calculate_ntire2023_perceptual_score(hr_pair, hr_pair) == 1.0  # 1 - 0 - 0 - 0, exactly


def test_score_by_hand(hr_pair, stub_lpips):
    assert calculate_ntire2023_perceptual_score(hr_pair, hr_pair) == pytest.approx(1 - 0.05 - 0.15, abs=1e-12)
    sr = shifted_right_view(hr_pair, 3)
    mae = disparity_mae(sr, hr_pair)
    assert calculate_ntire2023_perceptual_score(sr, hr_pair) == pytest.approx(1 - 0.05 - 0.15 - mae, abs=1e-12)
    assert calculate_ntire2023_perceptual_score(sr, hr_pair, disparity_weight=0.1) == pytest.approx(
        1 - 0.05 - 0.15 - 0.1 * mae, abs=1e-12)


def test_options_reach_lpips_and_sgbm(hr_pair, stub_lpips, tmp_path):
    weights = tmp_path / 'vgg16_stub.pth'  # not torchvision's name: an empty file under it would be refused
    weights.touch()  # the options check wants the file to exist; the stub never reads it
    opt = {'type': 'calculate_ntire2023_perceptual_score', 'net': 'vgg', 'weights_path': str(weights),
           'num_disparities': 16}
    sr = shifted_right_view(hr_pair, 3)
    score = calculate_metric({'img': sr, 'img2': hr_pair, 'color_order': 'rgb'}, opt)
    assert stub_lpips[-1] == ((32, 96, 6), 'rgb', 'vgg', str(weights), 'cpu')
    assert score == pytest.approx(0.8 - disparity_mae(sr, hr_pair, num_disparities=16), abs=1e-12)


def test_needs_stereo_images(hr_pair, stub_lpips):
    with pytest.raises(ValueError, match='6-channel stereo'):
        calculate_ntire2023_perceptual_score(hr_pair[..., :3], hr_pair[..., :3])


def test_higher_is_better_and_has_no_left_variant():
    assert metric_better({'type': 'calculate_ntire2023_perceptual_score'}) == 'higher'
    # the disparity term needs both views: no "Left" column
    assert 'calculate_ntire2023_perceptual_score_left' not in METRIC_REGISTRY
    metrics = with_left_variants({'ntire': {'type': 'calculate_ntire2023_perceptual_score'},
                                  'lpips': {'type': 'calculate_lpips'}})
    assert table_columns(metrics) == [('Left', 'LPIPS', 'lpips_left'), ('(Left+Right)/2', 'LPIPS', 'lpips'),
                                      ('', 'NTIRE23', 'ntire')]
