"""PSNR/SSIM against scikit-image and hand-computed values, and the stereo conventions (mean of views, Left)."""
import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from basicsr.metrics import calculate_metric
from basicsr.metrics.psnr_ssim import (calculate_psnr, calculate_psnr_left, calculate_skimage_ssim,
                                       calculate_skimage_ssim_left, calculate_ssim, calculate_ssim_left)
from basicsr.utils.registry import METRIC_REGISTRY


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (40, 100, 6), dtype=np.uint8)
    noise = rng.integers(-20, 21, hr.shape)
    sr = np.clip(hr.astype(int) + noise, 0, 255).astype(np.uint8)
    return sr, hr


def test_psnr_hand_computed():
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 5, np.uint8)  # MSE 25
    assert calculate_psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / 25), abs=1e-12)
    assert calculate_psnr(a, a) == float('inf')


def test_psnr_peak_is_fixed_not_guessed_from_content():
    # a dark image (max <= 1) still uses the 255 peak; the release guessed 1 here
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.ones((8, 8, 3), np.uint8)
    assert calculate_psnr(a, b) == pytest.approx(20 * math.log10(255), abs=1e-12)


def test_psnr_equals_skimage(pair):
    sr, hr = pair
    left = calculate_psnr(sr[..., :3], hr[..., :3])
    # the same float64 formula as scikit-image (measured difference 0); 1e-6 dB allows another summation order
    assert left == pytest.approx(peak_signal_noise_ratio(hr[..., :3], sr[..., :3], data_range=255), abs=1e-6)


def test_stereo_score_is_mean_of_views():
    hr = np.zeros((16, 80, 6), np.uint8)
    sr = hr.copy()
    sr[..., :3] = 5    # left MSE 25
    sr[..., 3:] = 10   # right MSE 100
    expected = (10 * math.log10(255 ** 2 / 25) + 10 * math.log10(255 ** 2 / 100)) / 2
    assert calculate_psnr(sr, hr) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize('fn', [calculate_psnr, calculate_ssim, calculate_skimage_ssim])
def test_stereo_averaging_for_every_metric(pair, fn):
    sr, hr = pair
    both = fn(sr, hr)
    assert both == pytest.approx((fn(sr[..., :3], hr[..., :3]) + fn(sr[..., 3:], hr[..., 3:])) / 2, abs=1e-12)


def test_skimage_ssim_matches_release_call_on_six_channels(pair):
    # the release called structural_similarity(img1, img2, multichannel=True) on the 6-channel image
    sr, hr = pair
    expected = structural_similarity(sr, hr, channel_axis=2, data_range=255)
    assert calculate_skimage_ssim(sr, hr) == pytest.approx(expected, abs=1e-12)
    assert calculate_skimage_ssim(sr[..., :3], hr[..., :3]) == structural_similarity(
        sr[..., :3], hr[..., :3], channel_axis=2, data_range=255)


def test_gaussian_ssim_equals_skimage_gaussian(pair):
    sr, hr = pair
    for a, b in ((sr[..., :3], hr[..., :3]), (sr, hr)):
        expected = structural_similarity(a, b, channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False)
        # measured 1e-16 apart; 1e-5 allows another Gaussian filter implementation (cv2 vs scipy) of the same window
        assert calculate_ssim(a, b) == pytest.approx(expected, abs=1e-5)


def test_ssim_of_identical_images_is_one(pair):
    _, hr = pair
    assert calculate_ssim(hr, hr) == pytest.approx(1.0, abs=1e-12)
    assert calculate_skimage_ssim(hr, hr) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize('fn, full', [(calculate_psnr_left, calculate_psnr), (calculate_ssim_left, calculate_ssim),
                                      (calculate_skimage_ssim_left, calculate_skimage_ssim)])
def test_left_variants_use_left_view_without_64_columns(pair, fn, full):
    sr, hr = pair
    assert fn(sr, hr) == pytest.approx(full(sr[:, 64:, :3], hr[:, 64:, :3]), abs=1e-12)
    changed = sr.copy()
    changed[:, :64, :3] = 0       # the cropped columns of the left view
    changed[..., 3:] = 255 - changed[..., 3:]   # the right view
    assert fn(changed, hr) == fn(sr, hr)
    changed[:, 64:70, :3] = 0
    assert fn(changed, hr) != fn(sr, hr)


def test_crop_border_and_chw(pair):
    sr, hr = pair
    assert calculate_psnr(sr, hr, crop_border=4) == pytest.approx(calculate_psnr(sr[4:-4, 4:-4], hr[4:-4, 4:-4]))
    chw = calculate_psnr(sr.transpose(2, 0, 1), hr.transpose(2, 0, 1), input_order='CHW')
    assert chw == calculate_psnr(sr, hr)
    with pytest.raises(ValueError, match='input_order'):
        calculate_psnr(sr, hr, input_order='NHWC')
    with pytest.raises(ValueError, match='different shapes'):
        calculate_psnr(sr, hr[:-1])


def _matlab_y(rgb):
    """MATLAB rgb2ycbcr's Y on [0, 255] values, written out from its definition."""
    rgb = rgb.astype(np.float64) / 255.0
    return 16.0 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]


def test_y_channel_follows_matlab_rgb2ycbcr(pair):
    sr, hr = pair
    sr_bgr, hr_bgr = sr[..., :3], hr[..., :3]
    y_sr, y_hr = _matlab_y(sr_bgr[..., ::-1]), _matlab_y(hr_bgr[..., ::-1])
    expected = 10 * np.log10(255.0 ** 2 / np.mean((y_sr - y_hr) ** 2))
    # measured difference 0; 1e-3 dB allows rounding of the Y coefficients' products in another order
    assert calculate_psnr(sr_bgr, hr_bgr, test_y_channel=True) == pytest.approx(expected, abs=1e-3)
    # the same pixels in RGB order give the same score when the order is declared
    rgb = calculate_psnr(sr_bgr[..., ::-1], hr_bgr[..., ::-1], test_y_channel=True, color_order='rgb')
    assert rgb == pytest.approx(calculate_psnr(sr_bgr, hr_bgr, test_y_channel=True), abs=1e-9)
    # stereo: mean of the two views' Y PSNR
    both = calculate_psnr(sr, hr, test_y_channel=True)
    assert both == pytest.approx((calculate_psnr(sr[..., :3], hr[..., :3], test_y_channel=True)
                                  + calculate_psnr(sr[..., 3:], hr[..., 3:], test_y_channel=True)) / 2)
    assert 0 < calculate_ssim(sr, hr, test_y_channel=True) < 1


def test_every_metric_is_registered():
    for name in ('calculate_psnr', 'calculate_psnr_left', 'calculate_ssim', 'calculate_ssim_left',
                 'calculate_skimage_ssim', 'calculate_skimage_ssim_left', 'calculate_stereo_consistency'):
        assert name in METRIC_REGISTRY


def test_calculate_metric_with_release_options(pair):
    sr, hr = pair
    data = {'img': sr, 'img2': hr, 'color_order': 'bgr'}
    assert calculate_metric(data, {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False}) \
        == calculate_psnr(sr, hr)
    assert calculate_metric(data, {'type': 'calculate_skimage_ssim'}) == calculate_skimage_ssim(sr, hr)
    # color_order of the data reaches the Y-channel conversion: the same pixels stored as RGB score the same
    def to_rgb(img):
        return np.concatenate([img[..., 2::-1], img[..., 5:2:-1]], axis=2)

    rgb = {'img': to_rgb(sr), 'img2': to_rgb(hr), 'color_order': 'rgb'}
    y_opt = {'type': 'calculate_psnr', 'test_y_channel': True}
    assert calculate_metric(rgb, y_opt) == pytest.approx(calculate_psnr(sr, hr, test_y_channel=True), abs=1e-9)
    assert calculate_metric({**rgb, 'color_order': 'bgr'}, y_opt) != pytest.approx(calculate_metric(rgb, y_opt))


def test_calculate_metric_errors_name_the_key_path(pair):
    sr, hr = pair
    data = {'img': sr, 'img2': hr}
    with pytest.raises(KeyError, match=r'val:metrics:psnr:type.*calculate_psnr'):
        calculate_metric(data, {'type': 'calculate_psnrr'}, key_path='val:metrics:psnr')
    with pytest.raises(TypeError, match=r'val:metrics:psnr:crop_bordr \(did you mean crop_border'):
        calculate_metric(data, {'type': 'calculate_psnr', 'crop_bordr': 0}, key_path='val:metrics:psnr')
    with pytest.raises(KeyError, match='val:metrics:psnr: expected a mapping with a "type" key'):
        calculate_metric(data, {'crop_border': 0}, key_path='val:metrics:psnr')


def test_best_value_follows_the_direction_the_metric_declares():
    """The stereo-consistency error is lower-is-better without any `better` key; `better` still overrides."""
    from types import SimpleNamespace

    from basicsr.metrics import metric_better
    from basicsr.models.image_restoration_model import ImageRestorationModel

    assert metric_better({'type': 'calculate_stereo_consistency'}) == 'lower'
    assert metric_better({'type': 'calculate_psnr'}) == 'higher'
    assert metric_better({'type': 'calculate_stereo_consistency', 'better': 'higher'}) == 'higher'
    fake = SimpleNamespace(opt={'val': {'metrics': {'cons': {'type': 'calculate_stereo_consistency'},
                                                    'psnr': {'type': 'calculate_psnr'}}}}, best={})
    update = ImageRestorationModel._update_best
    assert update(fake, 'Set', {'cons': 40.4, 'psnr': 20.0}, 1)
    assert update(fake, 'Set', {'cons': 36.5, 'psnr': 19.0}, 2)  # lower error: a new best
    assert not update(fake, 'Set', {'cons': 50.0, 'psnr': 30.0}, 3)
    assert fake.best['Set'] == {'cons': {'value': 36.5, 'iter': 2}, 'psnr': {'value': 30.0, 'iter': 3}}


def test_stereo_consistency_warns_when_nothing_can_be_matched():
    import numpy as np
    import pytest

    from basicsr.metrics import calculate_metric

    img = np.random.default_rng(0).integers(0, 256, (8, 6, 6), dtype=np.uint8)
    with pytest.warns(UserWarning, match='no pixel of this 6x8 pair could be matched'):
        value = calculate_metric({'img': img, 'img2': img}, {'type': 'calculate_stereo_consistency'})
    assert np.isnan(value)


def test_metric_entries_are_checked_like_networks():
    """A val:metrics entry goes through the registry's checks (Registry.resolve): an unknown metric names its key
    path and the closest registered names, an unknown keyword its closest keyword."""
    from basicsr.metrics import check_metric_opt
    from basicsr.utils.registry import OptionKeywordError, UnknownTypeError

    with pytest.raises(UnknownTypeError) as excinfo:
        check_metric_opt({'type': 'calculate_psnr_lft'}, 'val:metrics:psnr')
    assert str(excinfo.value).startswith("val:metrics:psnr:type: unknown metric type 'calculate_psnr_lft'. "
                                         'Did you mean calculate_psnr_left')
    with pytest.raises(OptionKeywordError, match=r'val:metrics:psnr:crop_boarder \(did you mean crop_border\?\)'):
        check_metric_opt({'type': 'calculate_psnr', 'crop_boarder': 0}, 'val:metrics:psnr')
    with pytest.raises(ValueError, match='val:metrics:psnr:better: expected higher or lower'):
        check_metric_opt({'type': 'calculate_psnr', 'better': 'up'}, 'val:metrics:psnr')
