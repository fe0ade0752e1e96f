"""MATLAB bicubic ``imresize`` against weights derived by hand.

MATLAB's bicubic is Keys' kernel with a = -0.5; down-scaling by 1/s widens it by s (antialiasing), and borders
are padded symmetrically (the edge pixel repeated). For x2 down-scaling, output pixel j (0-based) is centred on
input position 2j + 0.5 and reads inputs 2j-3 .. 2j+4 with the weights below (kernel values at distances
0.25, 0.75, 1.25, 1.75 of the widened kernel, divided by 2): these numbers were worked out on paper.
"""
import numpy as np
import pytest
import torch

from basicsr.utils.matlab_functions import bgr2ycbcr, imresize, resize_weights, rgb2ycbcr

# cubic(1.75) = -0.0234375, cubic(1.25) = -0.0703125, cubic(0.75) = 0.2265625, cubic(0.25) = 0.8671875
DOWN2 = np.array([-0.0234375, -0.0703125, 0.2265625, 0.8671875, 0.8671875, 0.2265625, -0.0703125, -0.0234375]) / 2
# x2 up-scaling: output 2j+1 (0-based) sits at input j + 0.25 and reads inputs j-1 .. j+2 (distances 1.25, 0.25,
# 0.75, 1.75); output 2j sits at j - 0.25, the mirror image.
UP2_ODD = np.array([-0.0703125, 0.8671875, 0.2265625, -0.0234375])


def mirror(i, n):
    """Symmetric padding written out case by case: -1 -> 0, -2 -> 1, n -> n-1, n+1 -> n-2."""
    while i < 0 or i >= n:
        i = -1 - i if i < 0 else 2 * n - 1 - i
    return i


def down2_matrix(n):
    m = np.zeros((n // 2, n))
    for j in range(n // 2):
        for k, w in enumerate(DOWN2):
            m[j, mirror(2 * j - 3 + k, n)] += w
    return m


def up2_matrix(n):
    m = np.zeros((2 * n, n))
    for j in range(n):
        for k, w in enumerate(UP2_ODD):
            m[2 * j + 1, mirror(j - 1 + k, n)] += w  # output 2j+1: at j + 0.25
            m[2 * j, mirror(j + 1 - k, n)] += w  # output 2j: at j - 0.25, the mirror image
    return m


def keys_cubic(x):
    x = abs(x)
    if x <= 1:
        return 1.5 * x**3 - 2.5 * x**2 + 1
    if x <= 2:
        return -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2
    return 0.0


def test_hand_derived_weights_sum_to_one():
    assert DOWN2.sum() == pytest.approx(1.0, abs=1e-15)
    assert UP2_ODD.sum() == pytest.approx(1.0, abs=1e-15)


def test_down2_matches_hand_weights_including_borders():
    rng = np.random.default_rng(1)
    img = rng.random((10, 14, 3))
    expected = np.einsum('ih,hwc,jw->ijc', down2_matrix(10), img, down2_matrix(14))
    out = imresize(img, 0.5)
    assert out.shape == (5, 7, 3) and out.dtype == np.float64
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_up2_matches_hand_weights_including_borders():
    rng = np.random.default_rng(2)
    img = rng.random((5, 6))
    expected = up2_matrix(5) @ img @ up2_matrix(6).T
    np.testing.assert_allclose(imresize(img, 2), expected, atol=1e-12)


def test_down4_weights_are_the_widened_kernel():
    # Interior x4 output pixel: centred at input 4j + 1.5, taps at distances +-0.5 .. +-7.5, kernel(d / 4) / 4.
    dists = np.arange(-7.5, 8.0, 1.0)
    expected = np.array([keys_cubic(d / 4) / 4 for d in dists])
    weights, indices = resize_weights(64, 16, 0.25)
    row = 8
    nonzero = weights[row] != 0
    np.testing.assert_allclose(weights[row][nonzero], expected, atol=1e-15)
    np.testing.assert_array_equal(indices[row][nonzero], np.arange(4 * row - 6, 4 * row + 10))


def test_symmetric_border_indices():
    _, indices = resize_weights(8, 4, 0.5)
    # Output 0 reads inputs -3..4, mirrored: 2 1 0 0 1 2 3 4.
    assert list(indices[0]) == [2, 1, 0, 0, 1, 2, 3, 4]
    # The last output reads 3..10 -> 3 4 5 6 7 7 6 5.
    assert list(indices[-1]) == [3, 4, 5, 6, 7, 7, 6, 5]


def test_constant_and_linear_images():
    const = np.full((12, 20, 3), 0.3)
    for scale in (0.5, 0.25, 1 / 3, 2, 3):
        np.testing.assert_allclose(imresize(const, scale), 0.3, atol=1e-12)
    # A symmetric kernel whose weights sum to 1 reproduces a ramp away from the borders (x2: at 2j + 0.5).
    ramp = np.tile(np.arange(40, dtype=np.float64), (8, 1))
    out = imresize(ramp, 0.5)
    np.testing.assert_allclose(out[:, 2:-2], np.tile(2 * np.arange(2, 18) + 0.5, (4, 1)), atol=1e-12)


def test_output_size_is_ceil():
    assert imresize(np.zeros((5, 7)), 0.5).shape == (3, 4)
    assert imresize(np.zeros((9, 10, 3)), 1 / 3).shape == (3, 4, 3)
    assert imresize(np.zeros((3, 4, 3)), 4).shape == (12, 16, 3)


def test_uint8_rounds_after_each_pass_like_matlab():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    rows = np.einsum('ih,hwc->iwc', down2_matrix(12), img.astype(np.float64))
    rows = np.floor(np.clip(rows, 0, 255) + 0.5)
    expected = np.floor(np.clip(np.einsum('hwc,jw->hjc', rows, down2_matrix(16)), 0, 255) + 0.5)
    out = imresize(img, 0.5)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected.astype(np.uint8))


def test_no_antialiasing_keeps_the_narrow_kernel():
    weights, _ = resize_weights(16, 8, 0.5, antialiasing=False)
    # Unwidened: output at input 2j + 0.5 reads 4 taps at distances 1.5, 0.5, 0.5, 1.5.
    nonzero = weights[3][weights[3] != 0]
    expected = np.array([keys_cubic(1.5), keys_cubic(0.5), keys_cubic(0.5), keys_cubic(1.5)])
    np.testing.assert_allclose(nonzero, expected / expected.sum(), atol=1e-15)


def test_torch_matches_numpy():
    rng = np.random.default_rng(4)
    img = rng.random((3, 13, 22))
    ref = imresize(img.transpose(1, 2, 0), 0.25).transpose(2, 0, 1)
    out = imresize(torch.from_numpy(img), 0.25)
    assert out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)
    batch = imresize(torch.from_numpy(np.stack([img, img])).float(), 0.25)
    assert batch.shape == (2, 3, 4, 6)
    np.testing.assert_allclose(batch[1].numpy(), ref, atol=1e-5)


def test_bad_inputs():
    with pytest.raises(TypeError):
        imresize(np.zeros((4, 4), dtype=np.int32), 0.5)
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)), 0)
    with pytest.raises(TypeError):
        imresize(torch.zeros(3, 4, 4, dtype=torch.uint8), 0.5)


def test_rgb2ycbcr_matches_bt601_by_hand():
    # White -> Y 235; black -> Y 16; pure red: Y = 16 + 65.481, Cb = 128 - 37.797, Cr = 128 + 112.
    img = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0]]], dtype=np.uint8)
    ycc = rgb2ycbcr(img)
    np.testing.assert_array_equal(ycc[0, 0], [235, 128, 128])
    np.testing.assert_array_equal(ycc[0, 1], [16, 128, 128])
    np.testing.assert_array_equal(ycc[0, 2], [np.floor(81.481 + 0.5), np.floor(90.203 + 0.5), 240])
    y = rgb2ycbcr(img.astype(np.float64) / 255, y_only=True)
    np.testing.assert_allclose(y[0], [235 / 255, 16 / 255, 81.481 / 255], atol=1e-12)
    np.testing.assert_array_equal(bgr2ycbcr(img[..., ::-1]), ycc)
