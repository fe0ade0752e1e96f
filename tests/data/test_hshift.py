"""Random horizontal disparity shift (hshift_prob, hshift_max): the right view is cropped d LR pixels (scale * d HR
pixels) beside the left view's crop, so every disparity changes by the same constant and LR/HR stay aligned."""
import os

import numpy as np
import pytest

from basicsr.data.stereo_dataset import PairedStereoImageDataset, StereoDataError
from basicsr.utils.img_util import imwrite

SCALE = 2


@pytest.fixture()
def coded_pair(tmp_path):
    """One pair whose pixels encode their own column: value = column (LR) or column // scale (HR), so a crop tells
    where it was taken from."""
    h, w = 4, 40
    cols = np.arange(w, dtype=np.uint8)
    lr = np.repeat(np.repeat(cols[None, :, None], h, 0), 3, 2)
    hr = np.repeat(np.repeat(lr, SCALE, 0), SCALE, 1)
    folder = tmp_path / 'p' / '000001'
    for view in '01':
        imwrite(lr, os.path.join(folder, f'lr{view}.png'))
        imwrite(hr, os.path.join(folder, f'hr{view}.png'))
    return str(tmp_path / 'p')


def _dataset(root, **kw):
    return PairedStereoImageDataset(root, root, SCALE, phase='train', gt_size_h=8, gt_size_w=20, **kw)


def test_shift_is_a_constant_disparity_with_lr_and_hr_aligned(coded_pair):
    ds = _dataset(coded_pair, hshift_prob=1.0, hshift_max=5)
    shifts = set()
    for seed in range(60):
        sample = ds[(0, seed)]
        lq, gt = ((sample[k].numpy() * 255).round().astype(int) for k in ('lq', 'gt'))
        d = lq[3, 0, 0] - lq[0, 0, 0]  # right view's first column minus the left view's
        assert (lq[3] - lq[0] == d).all()  # one constant over the whole crop
        assert abs(d) <= 5
        assert (gt[:, :, ::SCALE] == lq.repeat(SCALE, axis=1)).all()  # HR columns are still the LR columns x scale
        shifts.add(int(d))
    assert len(shifts) >= 6  # 11 possible shifts, 60 draws


def test_off_by_default_and_the_draws_of_other_runs_unchanged(coded_pair):
    plain, off = _dataset(coded_pair), _dataset(coded_pair, hshift_prob=0.0, hshift_max=5)
    for seed in range(10):
        a, b = plain[(0, seed)], off[(0, seed)]
        assert (a['lq'] == b['lq']).all() and (a['gt'] == b['gt']).all()
        assert (a['lq'][:3] == a['lq'][3:]).all()  # no shift: identical views of this pair stay identical


@pytest.mark.parametrize('kw, message', [
    ({'hshift_prob': 1.5}, r'datasets:hshift_prob: expected a probability in \[0, 1\], got 1.5'),
    ({'hshift_max': -2}, 'datasets:hshift_max: expected a whole number of LR pixels >= 0, got -2'),
])
def test_bad_values(coded_pair, kw, message):
    with pytest.raises(StereoDataError, match=message):
        _dataset(coded_pair, **kw)
