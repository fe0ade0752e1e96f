"""Real-ESRGAN's unsharp mask (``gt_usm``): ours against BasicSR's own ``usm_sharp`` and ``USMSharp`` run on a real
image (tests/data/data/usm_reference.npz, made by make_usm_reference.py beside it from a BasicSR checkout)."""
import os

import numpy as np
import pytest

from basicsr.data.degradations import usm_sharpen

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'usm_reference.npz')


@pytest.fixture(scope='module')
def reference():
    with np.load(FIXTURE, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def test_equals_basicsr_usm_sharp_and_usmsharp(reference):
    ours = usm_sharpen(reference['image']) / 255
    # BasicSR computes in float32 (its two implementations are 8e-7 apart), we in float64: 1.5e-7 and 7.7e-7 measured
    for key in ('usm_sharp', 'usm_torch'):
        np.testing.assert_allclose(ours, reference[key], rtol=0, atol=2e-6, err_msg=key)
    x = reference['image'] / 255
    assert np.abs(ours - x).max() > 0.2  # it sharpens: edges move by up to 56 levels on this crop


@pytest.mark.parametrize('other', [{'size': 49}, {'weight': 0.45}, {'threshold': 11}])
def test_the_reference_tells_the_settings_apart(reference, other):
    """Each setting of Real-ESRGAN's mask (kernel 51, weight 0.5, threshold 10) matters far above the tolerance."""
    assert np.abs(usm_sharpen(reference['image'], **other) / 255 - reference['usm_sharp']).max() > 5e-3


def test_flat_areas_are_kept_and_values_stay_in_range():
    rng = np.random.default_rng(0)
    flat = np.full((40, 60, 3), 120, np.uint8) + rng.integers(0, 3, (40, 60, 3), dtype=np.uint8)  # noise < threshold
    np.testing.assert_allclose(usm_sharpen(flat), flat, atol=1e-9)
    edge = np.zeros((40, 60, 3), np.uint8)
    edge[:, 30:] = 255
    out = usm_sharpen(edge)
    assert out.min() >= 0 and out.max() <= 255 + 1e-9 and out.dtype == np.float64  # a convex blend of [0, 255]
    assert out[:, 27:30].max() == 0 and out[:, 30:33].min() == 255  # the overshoot is clipped
    gray = np.full((40, 60), 100, np.uint8)
    gray[:, 30:] = 150
    assert usm_sharpen(gray).shape == (40, 60)  # one channel too
