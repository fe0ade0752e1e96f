"""The stereo-consistency metric on a synthetic pair with known disparity and on the real Motorcycle pair."""
import cv2
import numpy as np
import pytest
from skimage import data as skdata

from basicsr.metrics import calculate_metric
from basicsr.metrics.stereo_consistency import (calculate_stereo_consistency, consistent_mask, right_disparity,
                                                sgbm_disparity)

SHIFT = 6


@pytest.fixture(scope='module')
def shifted_pair():
    """A textured pair whose left pixel (y, x) is the right pixel (y, x - SHIFT): disparity SHIFT everywhere."""
    rng = np.random.default_rng(1)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (64, 160 + SHIFT, 3)).astype(np.float32), (0, 0), 1.2)
    texture = np.clip(texture * 3 - 255, 0, 255).astype(np.uint8)
    left, right = texture[:, :160], texture[:, SHIFT:]
    assert np.array_equal(left[:, SHIFT:], right[:, :-SHIFT])
    return np.concatenate([left, right], axis=2)


def test_perfect_pair_scores_zero_with_ground_truth_disparity(shifted_pair):
    disparity = np.full(shifted_pair.shape[:2], SHIFT, np.float32)
    assert calculate_stereo_consistency(shifted_pair, shifted_pair, disparity=disparity) == 0.0


def test_error_of_right_view_is_measured_on_matched_pixels(shifted_pair):
    disparity = np.full(shifted_pair.shape[:2], SHIFT, np.float32)
    sr = shifted_pair.astype(np.int16)
    sr[..., 3:] += 4                                  # right view 4 grey levels too bright
    sr[:, :SHIFT, :3] = 0                             # left pixels without a match are not scored
    sr = np.clip(sr, 0, 255).astype(np.uint8)
    expected = np.abs(sr[:, SHIFT:, :3].astype(float) - sr[:, :-SHIFT, 3:].astype(float)).mean()
    assert calculate_stereo_consistency(sr, shifted_pair, disparity=disparity) == pytest.approx(expected)


def test_sgbm_recovers_the_shift_and_flags_the_unmatched_band(shifted_pair):
    left, right = shifted_pair[..., :3], shifted_pair[..., 3:]
    disp = sgbm_disparity(left, right, num_disparities=16)
    mask = consistent_mask(disp, right_disparity(left, right, num_disparities=16))
    assert mask.mean() > 0.5  # measured 0.84: all but the unmatched band and SGBM's border (29 Nov 2026)
    assert not mask[:, :SHIFT].any()                  # nothing to match left of the shift
    assert np.median(np.abs(disp[mask] - SHIFT)) < 0.5  # measured 0.0; half a pixel would be a wrong match


def test_sgbm_path_separates_consistent_from_inconsistent_views(shifted_pair):
    good = calculate_stereo_consistency(shifted_pair, shifted_pair, num_disparities=16)
    bad = shifted_pair.copy()
    bad[..., 3:] = np.roll(bad[..., 3:], 3, axis=1)   # a right view drawn 3 pixels off
    assert good < 2.0  # measured 0.001 grey levels: only SGBM's sub-pixel slips remain
    # measured 52 grey levels for a 3-pixel error on this texture; 5x a 1-level floor is a loose, safe bar
    assert calculate_stereo_consistency(bad, shifted_pair, num_disparities=16) > 5 * max(good, 1.0)


def test_real_motorcycle_pair():
    left, right, disp = skdata.stereo_motorcycle()
    # half size keeps the test fast; the disparity halves with the width
    left, right = (cv2.resize(v, (v.shape[1] // 2, v.shape[0] // 2), interpolation=cv2.INTER_AREA)
                   for v in (left, right))
    disp = cv2.resize(np.nan_to_num(disp, nan=-1, posinf=-1), (left.shape[1], left.shape[0]),
                      interpolation=cv2.INTER_NEAREST) / 2
    hr = np.concatenate([left, right], axis=2)
    est = sgbm_disparity(left, right, num_disparities=96)
    mask = consistent_mask(est, right_disparity(left, right, num_disparities=96))
    known = mask & (disp > 0)
    assert known.mean() > 0.4  # measured 0.46 of the pixels consistent and with Middlebury ground truth
    assert np.median(np.abs(est[known] - disp[known])) < 1.5   # SGBM agrees with the Middlebury ground truth (0.18)
    shifted = hr.copy()
    shifted[..., 3:] = np.roll(hr[..., 3:], 4, axis=1)
    data = {'img': hr, 'img2': hr}
    opt = {'type': 'calculate_stereo_consistency', 'num_disparities': 96}
    honest = calculate_metric(data, opt)
    assert honest < calculate_metric({'img': shifted, 'img2': hr}, opt) - 3  # measured 6.4 vs 27.4 grey levels
    with_gt = calculate_stereo_consistency(hr, hr, disparity=np.where(disp > 0, disp, np.nan))
    assert with_gt == pytest.approx(honest, abs=3)  # measured 7.8 vs 6.4: SGBM's and the true disparity agree


def test_needs_stereo_images(shifted_pair):
    with pytest.raises(ValueError, match='6-channel stereo'):
        calculate_stereo_consistency(shifted_pair[..., :3], shifted_pair[..., :3])
