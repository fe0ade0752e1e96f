"""RealisticStereoDataset as Real-ESRGAN trains: a true subclass of the paired dataset (all its options, horizontal
shift included), a larger window degraded and the patch cut out of its middle at a jittered offset (the same in both
views), and ``gt_usm``."""
import inspect
import os

import cv2
import numpy as np
import pytest

from basicsr.data import build_dataset, realistic_stereo_dataset
from basicsr.data.degradations import usm_sharpen
from basicsr.data.realistic_stereo_dataset import JPEG_JITTER, RealisticStereoDataset, window
from basicsr.data.stereo_dataset import PairedStereoImageDataset, StereoDataError
from basicsr.utils.img_util import imread, imwrite

SMALL = {'blur_kernel_size': 7, 'blur_kernel_size2': 7}  # radius 3: a margin of 8 LR pixels


def _u8(t):
    return (t.numpy() * 255).round().astype(np.uint8)


def _views(sample):
    """(left, right) HWC arrays of a sample's gt and lq tensors."""
    return [(a[:3].transpose(1, 2, 0), a[3:].transpose(1, 2, 0)) for a in (_u8(sample['gt']), _u8(sample['lq']))]


def _options(root, **kw):
    opt = {'type': 'RealisticStereoDataset', 'dataroot_gt': root, 'scale': 4, 'phase': 'train', 'gt_size_h': 32,
           'gt_size_w': 64, 'degradation': dict(SMALL)}
    opt.update(kw)
    return opt


class _Recorder:
    """Stands in for degrade_pair: keeps the HR windows it is given and returns their area means (cheap, and an LR
    pixel stays the footprint of its HR pixels)."""

    def __init__(self):
        self.calls = []

    def __call__(self, hr0, hr1, scale, deg, rng):
        self.calls.append((hr0, hr1))
        return tuple(cv2.resize(np.asarray(v, np.float64), (v.shape[1] // scale, v.shape[0] // scale),
                                interpolation=cv2.INTER_AREA) for v in (hr0, hr1))


def _find(patch, img):
    """The (top, left) of the places where ``patch`` sits in ``img``."""
    h, w = patch.shape[:2]
    diff = cv2.matchTemplate(np.float32(img), np.float32(patch), cv2.TM_SQDIFF_NORMED)  # candidates, then exact
    return [(t, l) for t, l in zip(*np.nonzero(diff < 1e-3)) if np.array_equal(img[t:t + h, l:l + w], patch)]


# ------------------------------------------------------------------------------------------ a true subclass
def test_a_subclass_with_every_option_of_the_paired_dataset():
    assert issubclass(RealisticStereoDataset, PairedStereoImageDataset)
    paired = set(inspect.signature(PairedStereoImageDataset).parameters) - {'dataroot_lq'}
    realistic = set(inspect.signature(RealisticStereoDataset).parameters)
    assert paired <= realistic and realistic - paired == {'degradation', 'gt_usm'}


def test_the_paired_option_checks_apply(scene):
    for key, value, expected in (
            ('hshift_prob', 1.5, 'datasets:train:hshift_prob: expected a probability in [0, 1], got 1.5'),
            ('use_rot', True, 'datasets:train:use_rot: rotation is not allowed for stereo pairs'),
            ('gt_usm', 'yes', "datasets:train:gt_usm: expected true or false, got 'yes'"),
            ('dataroot_gt', '', "datasets:train:dataroot_gt: expected a folder path, got ''")):
        with pytest.raises(StereoDataError) as info:
            build_dataset(_options(scene, **{key: value}), 'datasets:train')
        assert str(info.value).startswith(expected)


def test_horizontal_shift_moves_the_right_crop_with_lr_and_hr_aligned(tmp_path, monkeypatch):
    """HR pixels that encode their column: the right view's gt is the left one's plus ``scale * d``, constant."""
    monkeypatch.setattr(realistic_stereo_dataset, 'degrade_pair', _Recorder())
    cols = np.arange(240, dtype=np.uint8)
    hr = np.ascontiguousarray(np.broadcast_to(cols[None, :, None], (32, 240, 3)))
    for stem in ('hr0', 'hr1'):
        imwrite(hr, os.path.join(tmp_path, 'p', '000001', f'{stem}.png'))
    ds = build_dataset(_options(str(tmp_path / 'p'), gt_size_h=16, gt_size_w=40, hshift_prob=1.0, hshift_max=6),
                       'datasets:train')
    shifts = set()
    for seed in range(40):
        (gt0, gt1), (lq0, lq1) = _views(ds[(0, seed)])
        d = int(gt1[0, 0, 0]) - int(gt0[0, 0, 0])
        assert (gt1.astype(int) - gt0 == d).all() and d % 4 == 0 and abs(d) <= 24
        lq = ds[(0, seed)]['lq'].numpy() * 255  # LR pixels: the mean of 4 HR columns, so shifted by d too
        np.testing.assert_allclose(lq[3:] - lq[:3], d, atol=1e-4)
        shifts.add(d // 4)
    assert len(shifts) >= 8  # 13 possible shifts, 40 draws
    plain = build_dataset(_options(str(tmp_path / 'p'), gt_size_h=16, gt_size_w=40), 'datasets:train')
    assert all(np.array_equal(*_views(plain[(0, seed)])[0]) for seed in range(5))  # off by default


# ------------------------------------------------------------------------------ degrade a window, then crop
def test_window_mirrors_what_lies_outside_the_image():
    img = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    np.testing.assert_array_equal(window(img, 1, 2, 3, 4), img[1:4, 2:6])
    np.testing.assert_array_equal(window(img, -2, -3, 9, 13), np.pad(img, ((2, 2), (3, 3), (0, 0)), mode='reflect'))
    np.testing.assert_array_equal(window(img, -2, 4, 3, 5), np.pad(img, ((2, 0), (0, 2), (0, 0)), 'reflect')[:3, 4:])


@pytest.mark.parametrize('kernel, margin', [(7, 8), (21, 16), (41, 24)])
def test_margin_is_the_largest_kernel_radius_in_whole_jpeg_blocks(scene, kernel, margin):
    ds = build_dataset(_options(scene, degradation={'blur_kernel_size': kernel, 'blur_kernel_size2': 7}),
                       'datasets:train')
    assert ds.margin == margin


def test_a_larger_window_is_degraded_and_the_patch_cut_from_its_middle(scene, monkeypatch):
    """The degradation sees ``patch + 2 * margin + 15`` LR pixels; the patch sits at ``margin + jitter`` in it, the
    jitter covering all 16 phases of the JPEG grid, at the same offset in both views; LR and HR stay aligned."""
    recorder = _Recorder()
    monkeypatch.setattr(realistic_stereo_dataset, 'degrade_pair', recorder)
    ds = build_dataset(_options(scene), 'datasets:train')  # no flips: the patch is read back where it was cut
    m, s = ds.margin, 4
    size = (s * (8 + 2 * m + JPEG_JITTER - 1), s * (16 + 2 * m + JPEG_JITTER - 1))
    rows, cols = set(), set()
    for seed in range(80):
        (gt0, gt1), (lq0, lq1) = _views(ds[(0, seed)])
        win0, win1 = recorder.calls[-1]
        assert win0.shape[:2] == win1.shape[:2] == size
        (y, x), = _find(gt0, win0)  # a real photograph: one place only
        assert y % s == 0 and x % s == 0 and m <= y // s < m + JPEG_JITTER and m <= x // s < m + JPEG_JITTER
        np.testing.assert_array_equal(win1[y:y + 32, x:x + 64], gt1)  # the same offset in the right view
        lr = recorder(win0, win1, s, None, None)
        np.testing.assert_array_equal(lq0, lr[0][y // s:y // s + 8, x // s:x // s + 16].round())
        rows.add(y // s - m)
        cols.add(x // s - m)
    assert rows == cols == set(range(JPEG_JITTER))


def test_windows_reaching_outside_the_image_are_mirrored_and_the_patch_stays_inside(tmp_path, monkeypatch):
    """Patches of exactly the crop size (the release's patches_x4): the window is the patch and its mirror image."""
    recorder = _Recorder()
    monkeypatch.setattr(realistic_stereo_dataset, 'degrade_pair', recorder)
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)
    for stem in ('hr0', 'hr1'):
        imwrite(hr, os.path.join(tmp_path, 'p', '000001', f'{stem}.png'))
    ds = build_dataset(_options(str(tmp_path / 'p')), 'datasets:train')
    for seed in range(5):
        (gt0, _), _ = _views(ds[(0, seed)])
        np.testing.assert_array_equal(gt0, hr)
        win = recorder.calls[-1][0]
        m = ds.margin  # the mirrored window repeats the patch: the one in the middle is cut out
        (y, x), = [(t, l) for t, l in _find(hr, win) if m <= t // 4 < m + JPEG_JITTER and m <= l // 4 < m + JPEG_JITTER]
        np.testing.assert_array_equal(win, window(hr, -y, -x, *win.shape[:2]))


def test_the_real_pipeline_crops_the_same_way_and_stays_exact(scene):
    ds = build_dataset(_options(scene, use_hflip=True, use_vflip=True, flip_RGB=True), 'datasets:train')
    a, b = ds[(0, 3)], ds[(0, 3)]
    assert a['gt'].shape == (6, 32, 64) and a['lq'].shape == (6, 8, 16)
    assert all(np.array_equal(a[k], b[k]) for k in ('gt', 'lq'))


# ------------------------------------------------------------------------------------------------- gt_usm
def test_gt_usm_sharpens_the_target_of_both_views_alike_and_degrades_the_sharpened_views(scene, monkeypatch):
    recorder = _Recorder()
    monkeypatch.setattr(realistic_stereo_dataset, 'degrade_pair', recorder)
    hr0, hr1 = (imread(os.path.join(scene, 'p1', f'hr{v}.png')) for v in (0, 1))
    sharp0, sharp1 = usm_sharpen(hr0), usm_sharpen(hr1)
    plain = build_dataset(_options(scene, degradation={}), 'datasets:train')  # 21-pixel kernels: margin 16 LR
    usm = build_dataset(_options(scene, degradation={}, gt_usm=True), 'datasets:train')
    assert usm.margin * 4 >= 50  # the mask reaches 2 x 25 HR pixels: within the window it equals the whole image's
    for seed in range(4):
        (gt0, _), _ = _views(plain[(0, seed)])  # gt_usm draws nothing: the same crop
        (t, l), = _find(gt0, hr0)
        sample = usm[(0, seed)]
        gt = sample['gt'].numpy().transpose(1, 2, 0)
        np.testing.assert_allclose(gt[:, :, :3], sharp0[t:t + 32, l:l + 64] / 255, atol=1e-6)
        np.testing.assert_allclose(gt[:, :, 3:], sharp1[t:t + 32, l:l + 64] / 255, atol=1e-6)
        assert np.abs(gt[:, :, :3] - gt0 / 255).max() > 0.05
        lq = sample['lq'].numpy()[:3].transpose(1, 2, 0)  # the LR comes from the sharpened views too
        np.testing.assert_allclose(lq, cv2.resize(sharp0[t:t + 32, l:l + 64], (16, 8), interpolation=cv2.INTER_AREA)
                                   / 255, atol=1e-6)
    val = build_dataset(_options(scene, phase='val', degradation={}, gt_usm=True), 'datasets:val')
    np.testing.assert_array_equal(_views(val[0])[0][0], hr0)  # validation compares with the HR views themselves
