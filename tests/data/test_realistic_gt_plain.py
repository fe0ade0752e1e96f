"""RealisticStereoDataset with ``gt_usm`` keeps both HR patches, as Real-ESRGAN keeps ``gt`` and ``gt_usm``: the
sharpened one as ``gt`` (the target, as before) and the plain one as ``gt_plain``, cut and flipped with it."""
import os

import numpy as np

from basicsr.data import build_dataset
from basicsr.data.degradations import usm_sharpen
from basicsr.utils.img_util import imread


def _dataset(root, phase='train', **kw):
    opt = {'type': 'RealisticStereoDataset', 'dataroot_gt': root, 'scale': 4, 'phase': phase, 'gt_size_h': 32,
           'gt_size_w': 64, 'use_hflip': True, 'use_vflip': True, 'flip_RGB': True,
           'degradation': {'second_order': False}, **kw}
    return build_dataset(opt, f'datasets:{phase}')


def test_gt_plain_is_the_unsharpened_patch_under_the_same_crop_and_flips(scene):
    plain, usm = _dataset(scene), _dataset(scene, gt_usm=True)
    for seed in range(6):
        before, sample = plain[(0, seed)], usm[(0, seed)]  # gt_usm draws nothing: the same crop and flips
        assert 'gt_plain' not in before
        assert np.array_equal(sample['gt_plain'].numpy(), before['gt'].numpy())
        assert (sample['gt'] - sample['gt_plain']).abs().max() > 0.05  # the target is the sharpened one


def test_the_sharpened_target_is_the_mask_of_the_plain_hr(scene):
    """Without flips: ``gt`` is Real-ESRGAN's unsharp mask of the HR views at the place ``gt_plain`` was cut."""
    usm = _dataset(scene, gt_usm=True, use_hflip=False, use_vflip=False, flip_RGB=False)
    hr = [imread(os.path.join(scene, 'p1', f'hr{v}.png')) for v in (0, 1)]
    sample = usm[(0, 3)]
    left = (sample['gt_plain'].numpy()[:3].transpose(1, 2, 0) * 255).round().astype(np.uint8)
    (t, l), = [(t, l) for t in range(96 - 31) for l in range(192 - 63)
               if np.array_equal(hr[0][t:t + 32, l:l + 64], left)]
    for view in (0, 1):
        want = usm_sharpen(hr[view])[t:t + 32, l:l + 64] / 255
        got = sample['gt'].numpy()[3 * view:3 * view + 3].transpose(1, 2, 0)
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_no_gt_plain_outside_training(scene):
    assert 'gt_plain' not in _dataset(scene, phase='val', gt_usm=True)[0]
