"""basicsr.data.degradations: kernels against their closed forms, the stereo rules, noise, JPEG, geometry,
determinism, and the one-line errors for bad options."""
import math
import os

import numpy as np
import pytest

from basicsr.data import degradations as D

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A pipeline reduced to what a test looks at: no blur to speak of (sigma 0.1: the neighbours weigh exp(-50)),
# no resize before the final one, no noise, near-lossless JPEG, no final sinc.
QUIET = {'second_order': False, 'kernel_list': ['iso'], 'kernel_prob': [1], 'blur_sigma': [0.1, 0.1],
         'sinc_prob': 0, 'resize_prob': [0, 0, 1], 'noise_range': [0, 0], 'poisson_scale_range': [0, 0],
         'jpeg_range': [100, 100], 'final_sinc_prob': 0}


def smooth_pair(h=96, w=192, seed=0):
    """A smooth random scene (low frequencies only, values ~40-215) and its right view (shifted by 3 pixels)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(40, 215, size=(h // 16 + 2, w // 16 + 2, 3))
    import cv2
    big = cv2.resize(coarse, (w + 16 * 2, h + 16 * 2), interpolation=cv2.INTER_CUBIC)[16:16 + h]
    left = np.clip(np.rint(big[:, 16:16 + w]), 0, 255).astype(np.uint8)
    right = np.clip(np.rint(big[:, 19:19 + w]), 0, 255).astype(np.uint8)
    return left, right


# ------------------------------------------------------------------------------------------------------ kernels
def test_isotropic_gaussian_equals_the_formula_computed_by_hand():
    size, sigma = 5, 1.3
    hand = [[math.exp(-((i - 2) ** 2 + (j - 2) ** 2) / (2 * sigma ** 2)) for j in range(size)] for i in range(size)]
    total = sum(map(sum, hand))
    expected = np.array(hand) / total
    kernel = D.gaussian_kernel(size, sigma)
    np.testing.assert_allclose(kernel, expected, rtol=1e-12)
    assert kernel.sum() == pytest.approx(1, abs=1e-12)
    # by hand at sigma 1.3: centre weight 1 / (sum over the 5x5 grid of exp(-r^2 / 3.38)) = 0.09896...
    assert kernel[2, 2] == pytest.approx(1 / total, rel=1e-12)


def test_anisotropic_gaussian_axes_and_rotation():
    wide = D.gaussian_kernel(9, 2.0, 0.7, 0.0)  # sigma_x along the columns
    np.testing.assert_allclose(wide, np.outer(D.gaussian_kernel(9, 0.7).sum(1), D.gaussian_kernel(9, 2.0).sum(1)),
                               rtol=1e-10)
    assert wide[4, 8] > wide[8, 4]  # spread along the row
    np.testing.assert_allclose(D.gaussian_kernel(9, 2.0, 0.7, np.pi / 2), D.gaussian_kernel(9, 0.7, 2.0, 0.0),
                               atol=1e-15)
    diagonal = D.gaussian_kernel(9, 2.0, 0.7, np.pi / 4)
    np.testing.assert_allclose(diagonal, diagonal.T, atol=1e-15)  # symmetric about the main diagonal
    assert diagonal[8, 8] > diagonal[0, 8]


def _by_hand(size, sigma_x, sigma_y, theta, shape):
    """``shape(q)`` normalised, q = p^T S^-1 p with S = R diag(sigma_x^2, sigma_y^2) R^T, p = (x, y) from the centre."""
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    inv = np.linalg.inv(rot @ np.diag([sigma_x ** 2, sigma_y ** 2]) @ rot.T)
    c = (size - 1) / 2
    k = np.array([[shape(np.array([j - c, i - c]) @ inv @ np.array([j - c, i - c])) for j in range(size)]
                  for i in range(size)])
    return k / k.sum()


def test_rotated_generalized_and_plateau_kernels_follow_their_formulas():
    np.testing.assert_allclose(D.gaussian_kernel(9, 2.0, 0.8, 0.4),
                               _by_hand(9, 2.0, 0.8, 0.4, lambda q: math.exp(-q / 2)), rtol=1e-10)
    np.testing.assert_allclose(D.generalized_gaussian_kernel(9, 2.0, 0.8, 0.4, 0.6),
                               _by_hand(9, 2.0, 0.8, 0.4, lambda q: math.exp(-q ** 0.6 / 2)), rtol=1e-10)
    np.testing.assert_allclose(D.plateau_kernel(8, 1.5, 1.1, -1.0, 1.5),
                               _by_hand(8, 1.5, 1.1, -1.0, lambda q: 1 / (1 + q ** 1.5)), rtol=1e-10)
    np.testing.assert_allclose(D.generalized_gaussian_kernel(7, 1.1, 1.1, 0.0, 1.0), D.gaussian_kernel(7, 1.1),
                               rtol=1e-12)


def test_sinc_kernel_is_a_circular_low_pass_filter():
    kernel = D.sinc_kernel(41, np.pi / 2)
    assert kernel.sum() == pytest.approx(1, abs=1e-12)
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-16)
    np.testing.assert_allclose(kernel, kernel.T, atol=1e-16)
    response = np.abs(np.fft.fft2(kernel, (256, 256)))
    freqs = np.fft.fftfreq(256) * 2 * np.pi  # radians per pixel
    assert response[0, 0] == pytest.approx(1)
    passband = response[0, np.abs(freqs) < 0.35 * np.pi].min()
    stopband = response[0, np.abs(freqs) > 0.65 * np.pi].max()
    assert passband > 0.9 and stopband < 0.1  # cut-off at pi/2


@pytest.mark.parametrize('kind', D.KERNEL_TYPES)
def test_every_drawn_kernel_is_odd_centred_symmetric_and_sums_to_one(kind):
    blur = D.parse_degradation({'kernel_list': [kind], 'kernel_prob': [1], 'sinc_prob': 0}).stage1.blur
    rng = np.random.default_rng(0)
    for _ in range(20):
        kernel = D.random_kernel(blur, rng)
        assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1 and 7 <= kernel.shape[0] <= 21
        assert kernel.sum() == pytest.approx(1, abs=1e-12)
        np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-15)  # no shift of the image


def test_separable_blur_equals_the_2d_filter():
    import cv2
    img = np.random.default_rng(0).uniform(0, 255, (40, 60, 3))
    kernel = D.gaussian_kernel(15, 1.7, 1.2, 0.0)
    assert D.separate(kernel) is not None and D.separate(D.gaussian_kernel(15, 1.7, 1.2, 0.3)) is None
    np.testing.assert_allclose(D.blur(img, kernel), cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101),
                               atol=1e-10)


# ------------------------------------------------------------------------------------------------ stereo rules
def _optics_equal(a, b):
    def same(x, y):
        return (x is None and y is None) or (x is not None and y is not None and np.array_equal(x, y))
    return (same(a.kernel1, b.kernel1) and same(a.kernel2, b.kernel2) and same(a.final_sinc, b.final_sinc)
            and (a.resize1, a.resize2, a.final_mode, a.jpeg_last) == (b.resize1, b.resize2, b.final_mode, b.jpeg_last))


def test_optics_are_shared_between_the_views_unless_drawn_per_view():
    shared = D.parse_degradation({})
    per_view = D.parse_degradation({'stereo_shared_optics': False})
    for seed in range(10):
        left, right = D.plan_pair(shared, np.random.default_rng(seed))
        assert _optics_equal(left.optics, right.optics)
        left, right = D.plan_pair(per_view, np.random.default_rng(seed))
        assert not np.array_equal(left.optics.kernel1, right.optics.kernel1)
        assert not _optics_equal(left.optics, right.optics)


def test_shared_optics_give_equal_views_of_an_equal_pair_without_noise():
    left, _ = smooth_pair()
    deg = D.parse_degradation({'noise_range': [0, 0], 'poisson_scale_range': [0, 0],
                               'noise_range2': [0, 0], 'poisson_scale_range2': [0, 0]})
    for seed in range(4):
        lr0, lr1 = D.degrade_pair(left, left, 4, deg, np.random.default_rng(seed))
        np.testing.assert_array_equal(lr0, lr1)
    per_view = D.parse_degradation({**deg.options, 'stereo_shared_optics': False})
    lr0, lr1 = D.degrade_pair(left, left, 4, per_view, np.random.default_rng(0))
    assert not np.array_equal(lr0, lr1)


def test_jpeg_quality_and_noise_level_shared_or_per_view():
    for key, field in (('stereo_shared_jpeg', 'jpeg'), ('stereo_shared_noise_level', 'noise')):
        shared = D.parse_degradation({key: True})
        per_view = D.parse_degradation({key: False})
        plans = [D.plan_pair(shared, np.random.default_rng(s)) for s in range(20)]
        assert all(getattr(a, field) == getattr(b, field) for a, b in plans)
        plans = [D.plan_pair(per_view, np.random.default_rng(s)) for s in range(20)]
        assert sum(getattr(a, field) != getattr(b, field) for a, b in plans) >= 18


@pytest.mark.parametrize('noise', [{'gaussian_noise_prob': 1, 'noise_range': [8, 8]},
                                   {'gaussian_noise_prob': 0, 'poisson_scale_range': [1, 1]},
                                   {'gaussian_noise_prob': 1, 'noise_range': [8, 8], 'gray_noise_prob': 1}])
def test_noise_is_independent_between_the_views(noise):
    left, _ = smooth_pair(128, 256)
    clean = D.degrade_pair(left, left, 2, D.parse_degradation(QUIET), np.random.default_rng(0))[0].astype(float)
    deg = D.parse_degradation({**QUIET, **noise})
    lr0, lr1 = D.degrade_pair(left, left, 2, deg, np.random.default_rng(0))
    n0, n1 = (v.astype(float) - clean for v in (lr0, lr1))
    assert n0.std() > 1.5 and n1.std() > 1.5  # the noise survived the x2 resize
    # 64x128x3 values (grey: 64x128 independent ones): the correlation of independent fields is ~N(0, 0.005-0.01)
    assert abs(np.corrcoef(n0.ravel(), n1.ravel())[0, 1]) < 0.06
    again = D.degrade_pair(left, left, 2, deg, np.random.default_rng(0))[0].astype(float) - clean
    assert np.corrcoef(n0.ravel(), again.ravel())[0, 1] == pytest.approx(1)  # same seed: the same noise


def test_poisson_noise_grows_with_the_square_root_of_the_value():
    rng = np.random.default_rng(0)
    for value in (16.0, 144.0):
        noise = D.poisson_noise(np.full((200, 200, 3), value), 2.0, False, rng)
        assert noise.std() == pytest.approx(2.0 * math.sqrt(value), rel=0.03)
        assert abs(noise.mean()) < 0.1 * math.sqrt(value)
    grey = D.poisson_noise(np.full((50, 60, 3), 100.0), 1.0, True, rng)
    np.testing.assert_array_equal(grey[:, :, 0], grey[:, :, 2])


# ---------------------------------------------------------------------------------------------------- JPEG
def _block_edge_ratio(img):
    """Mean |difference| between horizontally adjacent pixels across 8-pixel block boundaries / inside blocks."""
    diff = np.abs(np.diff(img.astype(float).mean(2), axis=1))  # diff[:, j] is between columns j and j+1
    across = diff[:, 7::8].mean()
    inside = np.delete(diff, np.s_[7::8], axis=1).mean()
    return across / inside


def test_jpeg_leaves_measurable_8x8_block_edges_on_a_smooth_image():
    left, _ = smooth_pair(128, 256)
    assert _block_edge_ratio(left) == pytest.approx(1, abs=0.15)  # no blocks before
    assert _block_edge_ratio(D.jpeg(left, 15)) > 1.5
    assert _block_edge_ratio(D.jpeg(left, 95)) < _block_edge_ratio(D.jpeg(left, 15))
    # the pipeline's JPEG: last in a first-order pipeline at scale 1 (no resize or sinc after it)
    deg = D.parse_degradation({**QUIET, 'jpeg_range': [10, 20]})
    lr0, lr1 = D.degrade_pair(left, left, 1, deg, np.random.default_rng(0))
    assert _block_edge_ratio(lr0) > 1.5 and _block_edge_ratio(lr1) > 1.5


def test_jpeg_is_deterministic():
    left, _ = smooth_pair()
    np.testing.assert_array_equal(D.jpeg(left, 40), D.jpeg(left, 40))


# ------------------------------------------------------------------------------- sizes, geometry, determinism
@pytest.mark.parametrize('hr_hw,scale', [((120, 360), 4), ((60, 180), 2), ((96, 100), 4), ((8, 24), 2)])
def test_lr_is_exactly_hr_over_scale(hr_hw, scale):
    hr = np.zeros((*hr_hw, 3), np.uint8)
    extreme = D.parse_degradation({'resize_range': [0.1, 2.0], 'resize_range2': [0.1, 2.0]})
    for seed in range(6):
        for deg in (D.parse_degradation({}), extreme):
            lr0, lr1 = D.degrade_pair(hr, hr, scale, deg, np.random.default_rng(seed))
            assert lr0.shape == lr1.shape == (hr_hw[0] // scale, hr_hw[1] // scale, 3)
            assert lr0.dtype == np.uint8


def test_hr_and_lr_stay_aligned_through_random_resizes():
    """A bright blob at HR (y, x) lands at LR ((y + 0.5) / s - 0.5, (x + 0.5) / s - 0.5) whatever the resizes."""
    h, w, s = 160, 320, 4
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = 70.3, 141.7
    blob = 40 + 200 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 6.0 ** 2))
    hr = np.repeat(np.rint(blob)[:, :, None], 3, axis=2).astype(np.uint8)
    deg = D.parse_degradation({**QUIET, 'second_order': True, 'resize_prob': [0.3, 0.5, 0.2],
                               'resize_range': [0.3, 1.5], 'second_blur_prob': 0, 'resize_prob2': [0.3, 0.4, 0.3], 'noise_range2': [0, 0],
                               'poisson_scale_range2': [0, 0], 'jpeg_range2': [100, 100]})
    for seed in range(8):
        lr = D.degrade_pair(hr, hr, s, deg, np.random.default_rng(seed))[0][:, :, 1].astype(float) - 40
        lr = np.clip(lr, 0, None)
        ly, lx = np.mgrid[0:h // s, 0:w // s]
        centroid = ((lr * ly).sum() / lr.sum(), (lr * lx).sum() / lr.sum())
        assert centroid == pytest.approx(((cy + 0.5) / s - 0.5, (cx + 0.5) / s - 0.5), abs=0.15)


def test_same_seed_byte_identical_other_seed_different():
    left, right = smooth_pair()
    deg = D.parse_degradation({})
    first = D.degrade_pair(left, right, 4, deg, np.random.default_rng(123))
    again = D.degrade_pair(left, right, 4, deg, np.random.default_rng(123))
    other = D.degrade_pair(left, right, 4, deg, np.random.default_rng(124))
    assert all(a.tobytes() == b.tobytes() for a, b in zip(first, again))
    assert all(a.tobytes() != b.tobytes() for a, b in zip(first, other))


def test_opencv_thread_count_does_not_change_the_result():
    import cv2
    left, right = smooth_pair(240, 480)
    deg = D.parse_degradation({})
    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(1)
        one = D.degrade_pair(left, right, 4, deg, np.random.default_rng(5))
        cv2.setNumThreads(4)
        four = D.degrade_pair(left, right, 4, deg, np.random.default_rng(5))
    finally:
        cv2.setNumThreads(before)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(one, four))


# ------------------------------------------------------------------------------------------------ bad options
@pytest.mark.parametrize('options,line', [
    ({'kernel_list': ['iso', 'gausian']}, "kernel_list: unknown kernel 'gausian'"),
    ({'kernel_list': ['iso', 'aniso'], 'kernel_prob': [1.0]}, 'kernel_prob: expected 2 probabilities'),
    ({'kernel_prob': [0.5, 0.25, 0.12, 0.03, 0.12, 0.03]}, 'kernel_prob: expected probabilities summing to 1'),
    ({'blur_sigma': [3, 0.2]}, 'blur_sigma: expected min <= max'),
    ({'noise_range2': [10, 1]}, 'noise_range2: expected min <= max'),
    ({'blur_sigma': [-0.5, 2]}, 'blur_sigma: expected [min, max] with min <= max, both sigmas > 0'),
    ({'jpeg_range': [0, 95]},
     'jpeg_range: expected [min, max] with min <= max, both whole JPEG qualities >= 1 and <= 100'),
    ({'jpeg_range2': [30, 101]}, 'jpeg_range2: expected'),
    ({'resize_prob': [0.2, 0.7]}, 'resize_prob: expected 3 probabilities (up, down, keep)'),
    ({'resize_range': [0.5, 0.9]}, 'resize_range: expected [min, max] with 0 < min <= 1 <= max'),
    ({'sinc_prob': 1.5}, 'sinc_prob: expected a probability in [0, 1]'),
    ({'blur_kernel_size': 20}, 'blur_kernel_size: expected an odd kernel size'),
    ({'stereo_shared_optics': 'yes'}, 'stereo_shared_optics: expected true or false'),
    ({'kernel_probs': [1]}, 'kernel_probs: unknown degradation option (did you mean kernel_prob?)'),
    ({'second_order': False, 'jpeg_range2': [95, 30]}, 'jpeg_range2: expected min <= max'),  # checked while off
])
def test_bad_options_are_one_line_naming_the_key_path(options, line):
    with pytest.raises(D.DegradationOptionError) as info:
        D.parse_degradation(options, 'datasets:train:degradation')
    message = str(info.value)
    assert message.startswith('datasets:train:degradation:') and line in message, message
    assert '\n' not in message


def test_a_degradation_file_is_read_and_checked(tmp_path):
    path = tmp_path / 'mine.yml'
    path.write_text('kernel_list: [iso]\nkernel_prob: [1]\njpeg_range: [40, 60]\n')
    deg = D.load_degradation(str(path), 'datasets:train:degradation')
    assert deg.stage1.blur.kernel_list == ('iso',) and deg.stage1.jpeg_range == (40, 60)
    path.write_text('jpeg_range: [40, 160]\n')
    with pytest.raises(D.DegradationOptionError, match=f'^{path}:jpeg_range: expected'):
        D.load_degradation(str(path), 'datasets:train:degradation')
    with pytest.raises(D.DegradationOptionError, match='datasets:train:degradation: .*missing.yml: cannot read'):
        D.load_degradation(str(tmp_path / 'missing.yml'), 'datasets:train:degradation')


# -------------------------------------------------------------------------------------------- allowed values
def _bound_cases():
    """``(key, value at the bounds, [values just outside])`` for every bounded key of both stages."""
    for key in D.DEFAULTS:
        if key.rstrip('2') not in D.RANGES:
            continue
        b = D.bounds(key)
        if key.startswith('blur_kernel_size'):
            yield key, b.low, [b.low - 2, b.high + 2]
            yield key, b.high, []
        elif key.endswith(('kernel_prob', 'kernel_prob2', 'resize_prob', 'resize_prob2')):
            n = len(D.DEFAULTS[key])
            yield key, [b.high] + [b.low] * (n - 1), [[b.high + 1e-3, b.low - 1e-3] + [b.low] * (n - 2)]
        elif isinstance(D.DEFAULTS[key], list):  # [min, max]
            step = 1 if b.whole else 1e-3
            low_ok = b.low + 1e-6 if b.low_open else b.low
            low_out = b.low if b.low_open else b.low - step
            yield key, [low_ok, b.high], [[low_out, b.high], [low_ok, b.high + step]]
        else:  # a probability
            yield key, b.low, [b.low - 1e-3, b.high + 1e-3]
            yield key, b.high, []


@pytest.mark.parametrize('key,inside,outside', list(_bound_cases()),
                         ids=[f'{c[0]}={c[1]}' for c in _bound_cases()])
def test_values_at_the_bounds_are_accepted_and_just_outside_refused(key, inside, outside):
    D.parse_degradation({key: inside}, 'datasets:train:degradation')
    allowed = D.bounds(key)
    for value in outside:
        with pytest.raises(D.DegradationOptionError) as info:
            D.parse_degradation({key: value}, 'datasets:train:degradation')
        message = str(info.value)
        assert message.startswith(f'datasets:train:degradation:{key}: expected ') and '\n' not in message
        assert (allowed.text() if allowed.high > 1 else '[0, 1]') in message, message


@pytest.mark.parametrize('options', [{'blur_kernel_size': 4001}, {'resize_range': [0.3, 1000]},
                                     {'noise_range': [1000, 100000]}])
def test_the_values_that_hung_crashed_or_made_pure_noise_are_refused(options):
    """Issue 18: a 4001-pixel kernel hung the loader, a 1000x resize ended in OpenCV's allocation traceback."""
    with pytest.raises(D.DegradationOptionError, match=f'^datasets:train:degradation:{next(iter(options))}: expected '):
        D.parse_degradation(options, 'datasets:train:degradation')


def test_every_option_at_its_upper_bound_still_degrades_a_pair():
    heaviest = {'blur_kernel_size': 41, 'blur_kernel_size2': 41, 'kernel_list': ['generalized_aniso', 'sinc'],
                'kernel_prob': [0.5, 0.5], 'kernel_list2': ['plateau_aniso'], 'kernel_prob2': [1],
                'blur_sigma': [10, 10], 'blur_sigma2': [10, 10], 'betag_range': [8, 8], 'betap_range2': [8, 8], 'resize_prob': [1, 0, 0],
                'resize_range': [1, 4], 'resize_prob2': [1, 0, 0], 'resize_range2': [1, 4], 'gaussian_noise_prob': 1,
                'noise_range': [50, 50], 'gaussian_noise_prob2': 0, 'poisson_scale_range2': [4, 4],
                'second_blur_prob': 1, 'final_sinc_prob': 1}  # always up-scaled, by a factor drawn in [1, 4]
    left, right = smooth_pair(48, 96)
    lr0, lr1 = D.degrade_pair(left, right, 4, D.parse_degradation(heaviest), np.random.default_rng(0))
    assert lr0.shape == lr1.shape == (12, 24, 3)


def test_the_docs_table_lists_every_range():
    with open(os.path.join(ROOT, 'docs', 'data.md'), encoding='utf-8') as f:
        rows = [line for line in f if line.startswith('| `')]
    for key, allowed in D.RANGES.items():
        row = [r for r in rows if f'`{key}`' in r.split('|')[1]]
        assert len(row) == 1 and allowed.text() in row[0].split('|')[2], key
