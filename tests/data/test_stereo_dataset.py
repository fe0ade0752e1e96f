"""PairedStereoImageDataset: layout, tensors, augmentation geometry, and one-line errors for bad data."""
import os
import shutil

import numpy as np
import pytest
import torch

from basicsr.data import build_dataset, layout
from basicsr.data.stereo_dataset import PairedStereoImageDataset, StereoDataError
from basicsr.utils.img_util import imread, imwrite


def test_eval_mode_reads_whole_pairs_in_bgr_by_default(tiny_stereo_root):
    test = os.path.join(tiny_stereo_root, 'test', 'Tiny')
    ds = PairedStereoImageDataset(os.path.join(test, 'hr'), os.path.join(test, 'lr_x4'), scale=4, phase='test')
    assert len(ds) == 2 and ds.pairs == ['pair_a', 'pair_b']
    sample = ds[1]
    assert sample['name'] == 'pair_b'
    assert sample['lq'].shape == (6, 6, 12) and sample['gt'].shape == (6, 24, 48)
    assert sample['lq'].dtype == torch.float32
    assert sample['gt_path'] == os.path.join(test, 'hr', 'pair_b')
    assert sample['lq_path'] == os.path.join(test, 'lr_x4', 'pair_b')
    hr1 = imread(os.path.join(test, 'hr', 'pair_b', 'hr1.png'))
    np.testing.assert_array_equal((sample['gt'][3:].numpy() * 255).round().astype(np.uint8), hr1.transpose(2, 0, 1))
    lr0 = imread(os.path.join(test, 'lr_x4', 'pair_b', 'lr0.png'))
    np.testing.assert_array_equal((sample['lq'][:3].numpy() * 255).round().astype(np.uint8), lr0.transpose(2, 0, 1))


def test_rgb_order_reverses_the_channels_of_each_view(tiny_stereo_root):
    test = os.path.join(tiny_stereo_root, 'test', 'Tiny')
    bgr = PairedStereoImageDataset(os.path.join(test, 'hr'), os.path.join(test, 'lr_x2'), scale=2)[0]
    rgb = PairedStereoImageDataset(os.path.join(test, 'hr'), os.path.join(test, 'lr_x2'), scale=2,
                                   color_order='rgb')[0]
    for key in ('lq', 'gt'):
        assert torch.equal(rgb[key], bgr[key][[2, 1, 0, 5, 4, 3]])


def _coordinate_patches(root, scale, n=3, lr_hw=(20, 40)):
    """Patch folders whose pixels encode (row, col, view) so that geometry can be read back from the tensors.

    HR pixel (y, x) of view v holds (y // s, x // s, 100 + 50 v); LR pixel (y, x) holds (y, x, 100 + 50 v).
    """
    h, w = lr_hw
    rows, cols = np.mgrid[0:h, 0:w]
    for k in range(1, n + 1):
        folder = os.path.join(root, layout.patch_dir_name(k))
        for v in (0, 1):
            lr = np.stack([rows, cols, np.full_like(rows, 100 + 50 * v)], axis=2).astype(np.uint8)
            imwrite(lr, layout.view_file(folder, f'lr{v}'))
            imwrite(np.repeat(np.repeat(lr, scale, 0), scale, 1), layout.view_file(folder, f'hr{v}'))
    return root


def _train_set(root, scale=2, **kw):
    opts = dict(gt_size_h=8 * scale, gt_size_w=16 * scale, use_hflip=True, use_vflip=True, flip_RGB=True)
    opts.update(kw)
    return PairedStereoImageDataset(root, root, scale=scale, phase='train', **opts)


def _u8(t):
    return (t.numpy() * 255).round().astype(np.int64)


def test_crops_stay_aligned_under_every_augmentation(tmp_path):
    ds = _train_set(_coordinate_patches(str(tmp_path / 'p'), 2), scale=2)
    for seed in range(40):
        s = ds[(seed % 3, seed)]
        lq, gt = _u8(s['lq']), _u8(s['gt'])
        assert lq.shape == (6, 8, 16) and gt.shape == (6, 16, 32)
        # Every HR pixel shows the LR pixel it came from: nearest-neighbour upsampling of lq equals gt.
        np.testing.assert_array_equal(np.repeat(np.repeat(lq, 2, 1), 2, 2), gt)


def _geometry(lq):
    """(view shown on the left, rows increasing?, cols increasing?) of a coordinate-encoded LR tensor."""
    rows, cols, views = lq[0], lq[1], lq[2]
    return int((views[0, 0] - 100) // 50), bool(rows[-1, 0] > rows[0, 0]), bool(cols[0, -1] > cols[0, 0])


def test_hflip_swaps_the_views_and_vflip_does_not(tmp_path):
    root = _coordinate_patches(str(tmp_path / 'p'), 2)
    hflip_only = _train_set(root, use_vflip=False, flip_RGB=False)
    seen = set()
    for seed in range(30):
        view, rows_up, cols_up = _geometry(_u8(hflip_only[(0, seed)]['lq']))
        assert rows_up
        assert (view == 0) == cols_up  # mirrored exactly when the right view is shown on the left
        seen.add(view)
    assert seen == {0, 1}
    vflip_only = _train_set(root, use_hflip=False, flip_RGB=False)
    seen = set()
    for seed in range(30):
        view, rows_up, cols_up = _geometry(_u8(vflip_only[(0, seed)]['lq']))
        assert view == 0 and cols_up
        seen.add(rows_up)
    assert seen == {True, False}


def test_rgb_permutation_is_shared_by_both_views(tmp_path):
    root = str(tmp_path / 'p')
    for v in (0, 1):  # constant colours; the right view is the left one plus 1
        folder = os.path.join(root, '000001')
        imwrite(np.full((10, 20, 3), (10 + v, 20 + v, 30 + v), np.uint8), layout.view_file(folder, f'lr{v}'))
        imwrite(np.full((20, 40, 3), (10 + v, 20 + v, 30 + v), np.uint8), layout.view_file(folder, f'hr{v}'))
    ds = _train_set(root, gt_size_h=10, gt_size_w=20, use_hflip=False, use_vflip=False)
    perms = set()
    for seed in range(40):
        lq = _u8(ds[(0, seed)]['lq'])[:, 0, 0]
        assert sorted(lq[:3]) == [10, 20, 30]
        np.testing.assert_array_equal(lq[3:], lq[:3] + 1)
        perms.add(tuple(lq[:3]))
    assert len(perms) == 6


def test_augmentation_is_a_function_of_the_sample_seed(tiny_stereo_root):
    root = layout.patches_dir(tiny_stereo_root, 4)
    ds = _train_set(root, scale=4, gt_size_h=16, gt_size_w=32)
    a, b = ds[(2, 12345)], ds[(2, 12345)]
    assert torch.equal(a['lq'], b['lq']) and torch.equal(a['gt'], b['gt'])
    assert any(not torch.equal(ds[(2, s)]['lq'], a['lq']) for s in range(5))
    assert torch.equal(ds[3]['gt'], ds[(3, 3)]['gt'])  # a plain index seeds itself


def test_build_dataset_from_release_style_options(sample_root):
    opt = {'name': 'Flickr1024-sr-train', 'type': 'PairedStereoImageDataset', 'phase': 'train', 'scale': 4,
           'dataroot_gt': layout.patches_dir(sample_root, 4), 'dataroot_lq': layout.patches_dir(sample_root, 4),
           'io_backend': {'type': 'disk'}, 'gt_size_h': 120, 'gt_size_w': 360, 'use_hflip': True,
           'use_vflip': True, 'use_rot': False, 'flip_RGB': True, 'use_shuffle': True, 'num_worker_per_gpu': 4,
           'batch_size_per_gpu': 4, 'dataset_enlarge_ratio': 1, 'prefetch_mode': None}
    ds = build_dataset(opt)
    s = ds[(0, 1)]
    assert s['lq'].shape == (6, 30, 90) and s['gt'].shape == (6, 120, 360) and s['name'] == '000001'
    with pytest.raises(TypeError, match='gt_sise_h'):
        build_dataset(dict(opt, gt_sise_h=1))


# ---------------------------------------------------------------- bad input: one line naming the file

def _copy_test_set(tiny_stereo_root, tmp_path):
    dst = str(tmp_path / 'Tiny')
    shutil.copytree(os.path.join(tiny_stereo_root, 'test', 'Tiny'), dst)
    return dst


def _eval_set(root, scale=4, **kw):
    return PairedStereoImageDataset(os.path.join(root, 'hr'), os.path.join(root, f'lr_x{scale}'), scale=scale, **kw)


def _one_line_error(fn, pattern):
    with pytest.raises(StereoDataError, match=pattern) as info:
        fn()
    assert '\n' not in str(info.value)
    return str(info.value)


def test_missing_view(tiny_stereo_root, tmp_path):
    root = _copy_test_set(tiny_stereo_root, tmp_path)
    os.remove(os.path.join(root, 'lr_x4', 'pair_a', 'lr1.png'))
    ds = _eval_set(root)
    _one_line_error(lambda: ds[0], r'pair_a/lr1\.png: missing; expected the right view of pair pair_a')


def test_truncated_and_non_image_files(tiny_stereo_root, tmp_path):
    root = _copy_test_set(tiny_stereo_root, tmp_path)
    path = os.path.join(root, 'hr', 'pair_b', 'hr0.png')
    with open(path, 'rb') as f:
        content = f.read()
    with open(path, 'wb') as f:
        f.write(content[:len(content) // 2])
    _one_line_error(lambda: _eval_set(root)[1], r'pair_b/hr0\.png: (truncated|cannot decode)')
    with open(path, 'wb') as f:
        f.write(b'not an image at all')
    _one_line_error(lambda: _eval_set(root)[1], r'pair_b/hr0\.png: cannot decode')
    open(path, 'wb').close()
    _one_line_error(lambda: _eval_set(root)[1], r'pair_b/hr0\.png: empty file')


def test_left_right_size_mismatch(tiny_stereo_root, tmp_path):
    root = _copy_test_set(tiny_stereo_root, tmp_path)
    imwrite(np.zeros((6, 11, 3), np.uint8), os.path.join(root, 'lr_x4', 'pair_a', 'lr1.png'))
    _one_line_error(lambda: _eval_set(root)[0], r'pair_a/lr1\.png: size 6x11 differs from the left view')


def test_hr_not_scale_times_lr(tiny_stereo_root, tmp_path):
    root = _copy_test_set(tiny_stereo_root, tmp_path)
    ds = PairedStereoImageDataset(os.path.join(root, 'hr'), os.path.join(root, 'lr_x4'), scale=2)
    _one_line_error(lambda: ds[0], r'pair_a/hr0\.png: HR size 24x48 is not 2 x the LR size .* expected 12x24')


def test_missing_and_empty_folders(tiny_stereo_root, tmp_path):
    root = _copy_test_set(tiny_stereo_root, tmp_path)
    shutil.rmtree(os.path.join(root, 'lr_x2', 'pair_b'))
    _one_line_error(lambda: _eval_set(root, scale=2), r'lr_x2/pair_b: missing; expected an LR pair for every HR')
    shutil.rmtree(os.path.join(root, 'hr', 'pair_a'))
    _one_line_error(lambda: _eval_set(root, scale=4), r'hr/pair_a: missing; expected an HR pair for every LR')
    empty = tmp_path / 'empty'
    empty.mkdir()
    _one_line_error(lambda: PairedStereoImageDataset(str(empty), str(empty), scale=4),
                    r'empty: no pair folders; expected <pair>/hr0\.png,hr1\.png')
    _one_line_error(lambda: PairedStereoImageDataset(str(tmp_path / 'nope'), str(empty), scale=4,
                                                     key_path='datasets:val'),
                    r'datasets:val:dataroot_gt: .*nope: no such folder')


def test_crop_larger_than_the_patch(tiny_stereo_root):
    root = layout.patches_dir(tiny_stereo_root, 2)
    ds = _train_set(root, scale=2, gt_size_h=120, gt_size_w=360)
    _one_line_error(lambda: ds[(0, 0)], r'000001/hr0\.png: size 12x36 is smaller than the training crop 120x360')


def test_bad_options_name_the_key(tiny_stereo_root):
    root = layout.patches_dir(tiny_stereo_root, 2)
    _one_line_error(lambda: _train_set(root, use_rot=True),
                    r'datasets:use_rot: rotation is not allowed for stereo pairs')
    with pytest.raises(StereoDataError, match=r'datasets:train:use_rot'):
        build_dataset({'type': 'PairedStereoImageDataset', 'phase': 'train', 'scale': 2, 'dataroot_gt': root,
                       'dataroot_lq': root, 'gt_size_h': 12, 'gt_size_w': 36, 'use_rot': True})
    _one_line_error(lambda: _train_set(root, color_order='RGB'), r'datasets:color_order: expected bgr or rgb')
    _one_line_error(lambda: _train_set(root, gt_size_h=13), r'datasets:gt_size_h: expected a positive multiple')
    _one_line_error(lambda: _train_set(root, gt_size_h=None, gt_size_w=None),
                    r'datasets:gt_size_h: expected a positive multiple')
    _one_line_error(lambda: _train_set(root, io_backend={'type': 'hdf5'}),
                    r'datasets:io_backend:type: expected disk or lmdb')


def test_broken_images_give_our_line_and_nothing_from_opencv(tmp_path, capfd):
    """A truncated PNG is caught before libpng sees it, and OpenCV's own warning lines stay off stderr."""
    import cv2
    import numpy as np

    from basicsr.utils.img_util import ImageReadError, imfrombytes

    ok, png = cv2.imencode('.png', np.full((8, 8, 3), 7, np.uint8))
    png = png.tobytes()
    for content, reason in ((png[:len(png) // 2], 'truncated'),
                            (b'\x89PNG\r\n\x1a\n' + b'garbage' * 9 + b'IEND\xaeB`\x82', 'undecodable')):
        with pytest.raises(ImageReadError) as err:
            imfrombytes(content, 'x.png')
        assert err.value.reason == reason and str(err.value).startswith('x.png: ')
    assert capfd.readouterr().err == ''


def test_train_crop_is_the_datasets_rule_read_from_the_options():
    """train.py (the logged MACs of the LR patch) and the GAN's discriminator check take the training crop from
    datasets:train by the dataset's own rule: gt_size_h/gt_size_w, gt_size for either one not given."""
    from basicsr.data.stereo_dataset import train_crop

    assert train_crop({'datasets': {'train': {'gt_size_h': 120, 'gt_size_w': 360}}}) == (120, 360)
    assert train_crop({'datasets': {'train': {'gt_size': 96}}}) == (96, 96)
    assert train_crop({'datasets': {'train': {'gt_size': 96, 'gt_size_w': 288}}}) == (96, 288)
    assert train_crop({'datasets': {'train': {'gt_size_h': 120}}}) is None
    assert train_crop({'datasets': {'test': {}}}) is None
