"""Patch and test-set preparation: iPASSR's loop bounds, exact HR/LR alignment, resumability, the sample."""
import os

import numpy as np
import pytest

from basicsr.data import layout, preparation
from basicsr.data.preparation import (PairSource, PreparationError, build_test_set, build_training_patches,
                                      count_patches, find_pairs, make_lr, modcrop, patch_origins, read_pair)
from basicsr.utils.img_util import imread, imwrite
from basicsr.utils.matlab_functions import imresize


def matlab_origins(lr_h, lr_w):
    """iPASSR's loops ``for x_lr = 3:20:H-33, for y_lr = 3:20:W-93`` (1-based, inclusive), as 0-based corners."""
    return [(x - 1, y - 1) for x in range(3, lr_h - 33 + 1, 20) for y in range(3, lr_w - 93 + 1, 20)]


@pytest.mark.parametrize('lr_h,lr_w', [(30, 90), (36, 96), (37, 97), (94, 130), (150, 411), (33, 200)])
def test_patch_origins_follow_ipassr_loops(lr_h, lr_w):
    assert patch_origins(lr_h, lr_w) == matlab_origins(lr_h, lr_w)


def test_count_uses_the_cropped_lr_size():
    # 375x1101 HR at x4 -> HR 372x1100 -> LR 93x275: rows 2, 22, 42 (<= 59), cols 2, 22, ..., 162 (<= 181).
    assert count_patches(375, 1101, 4) == 3 * 9
    assert count_patches(375, 1101, 2) == len(matlab_origins(187, 550))


def _write_pair(folder, name, shape, seed):
    rng = np.random.default_rng(seed)
    smooth = rng.integers(0, 256, (shape[0] // 8 + 2, shape[1] // 8 + 2, 3), dtype=np.uint8)
    for view, shift in (('L', 0), ('R', 3)):  # a smooth image and a shifted copy, like a stereo pair
        img = imresize(smooth, 8)[:shape[0], shift:shift + shape[1]]
        imwrite(img, os.path.join(folder, f'{name}_{view}.png'))


@pytest.fixture()
def raw_pairs(tmp_path):
    folder = str(tmp_path / 'raw')
    _write_pair(folder, '0001', (161, 431), 0)
    _write_pair(folder, '0002', (150, 403), 1)
    return find_pairs(folder)


def test_patches_are_exact_crops_of_the_whole_image_hr_and_lr(raw_pairs, tmp_path):
    out = str(tmp_path / 'out')
    totals = build_training_patches(raw_pairs, out, scales=(2, 4), workers=1)
    for scale in (2, 4):
        number = 1
        for src in raw_pairs:
            hr0, hr1 = (modcrop(v, scale) for v in read_pair(src))
            lr0, lr1 = make_lr(hr0, scale), make_lr(hr1, scale)
            for r, c in patch_origins(*lr0.shape[:2]):
                folder = os.path.join(layout.patches_dir(out, scale), layout.patch_dir_name(number))
                patch = {stem: imread(layout.view_file(folder, stem)) for stem in ('hr0', 'hr1', 'lr0', 'lr1')}
                np.testing.assert_array_equal(patch['lr0'], lr0[r:r + 30, c:c + 90])
                np.testing.assert_array_equal(patch['lr1'], lr1[r:r + 30, c:c + 90])
                np.testing.assert_array_equal(patch['hr0'], hr0[scale * r:scale * (r + 30), scale * c:scale * (c + 90)])
                np.testing.assert_array_equal(patch['hr1'], hr1[scale * r:scale * (r + 30), scale * c:scale * (c + 90)])
                number += 1
        assert totals[scale] == number - 1
        assert layout.list_pair_folders(layout.patches_dir(out, scale))[-1] == layout.patch_dir_name(number - 1)
    assert totals == {2: count_patches(161, 431, 2) + count_patches(150, 403, 2),
                      4: count_patches(161, 431, 4) + count_patches(150, 403, 4)}


def test_parallel_run_equals_serial_run(raw_pairs, tmp_path):
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    build_training_patches(raw_pairs, a, scales=(4,), workers=1)
    build_training_patches(raw_pairs, b, scales=(4,), workers=2)
    names = layout.list_pair_folders(layout.patches_dir(a, 4))
    assert names == layout.list_pair_folders(layout.patches_dir(b, 4))
    for name in names:
        for stem in ('hr0', 'lr1'):
            with open(layout.view_file(os.path.join(layout.patches_dir(a, 4), name), stem), 'rb') as fa, \
                    open(layout.view_file(os.path.join(layout.patches_dir(b, 4), name), stem), 'rb') as fb:
                assert fa.read() == fb.read()


def test_rerun_redoes_missing_patches_and_drops_half_written_ones(raw_pairs, tmp_path):
    out = str(tmp_path / 'out')
    build_training_patches(raw_pairs, out, scales=(4,), workers=1)
    pdir = layout.patches_dir(out, 4)
    victim = os.path.join(pdir, layout.patch_dir_name(2))
    with open(layout.view_file(victim, 'lr0'), 'rb') as f:
        original = f.read()
    for stem in ('hr0', 'hr1', 'lr0', 'lr1'):
        os.remove(layout.view_file(victim, stem))
    os.rmdir(victim)
    stale = os.path.join(pdir, layout.TMP_PREFIX + '000002-999')
    os.makedirs(stale)  # what a killed run leaves: never listed as a patch
    assert layout.list_pair_folders(pdir) == ['000001']
    build_training_patches(raw_pairs, out, scales=(4,), workers=1)
    with open(layout.view_file(victim, 'lr0'), 'rb') as f:
        assert f.read() == original
    assert not os.path.exists(stale)


def test_rerun_with_other_inputs_is_refused(raw_pairs, tmp_path):
    out = str(tmp_path / 'out')
    build_training_patches(raw_pairs[:1], out, scales=(4,), workers=1)
    with pytest.raises(PreparationError, match='was prepared with other settings'):
        build_training_patches(raw_pairs, out, scales=(4,), workers=1)


def test_rerun_with_a_replaced_image_of_the_same_name_is_refused(raw_pairs, tmp_path):
    out = str(tmp_path / 'out')
    build_training_patches(raw_pairs, out, scales=(4,), workers=1)
    build_training_patches(raw_pairs, out, scales=(4,), workers=1)  # same inputs: resumes, nothing to do
    _write_pair(os.path.dirname(raw_pairs[0].left), '0001', (161, 431), 7)  # other pixels, same name and size
    with pytest.raises(PreparationError, match='was prepared with other settings'):
        build_training_patches(raw_pairs, out, scales=(4,), workers=1)


def test_manifest_of_an_earlier_version_is_upgraded_not_refused(raw_pairs, tmp_path):
    import json
    out = str(tmp_path / 'out')
    build_training_patches(raw_pairs, out, scales=(4,), workers=1)
    path = os.path.join(out, 'patches_x4', '.sources.json')
    manifest = json.load(open(path))
    json.dump(dict(manifest, pairs=[p[:4] for p in manifest['pairs']]), open(path, 'w'))  # no file sizes yet
    build_training_patches(raw_pairs, out, scales=(4,), workers=1)
    assert json.load(open(path)) == manifest


def test_test_set_rerun_with_other_pairs_is_refused_and_replace_keeps_only_the_current_pairs(raw_pairs, tmp_path,
                                                                                            capsys):
    root = str(tmp_path / 'set')
    assert build_test_set(raw_pairs, root, workers=1) == 2
    with pytest.raises(PreparationError, match=r'pairs: recorded 2 \(0001, 0002\), now 1 \(0001\)\); rerun with '
                                               r'--replace'):
        build_test_set(raw_pairs[:1], root, workers=1)
    assert build_test_set(raw_pairs[:1], root, workers=1, replace=True) == 1
    assert ('removed 6 folder(s) that its record lists (made by an earlier run with other settings): hr/0001, hr/0002, '
            'lr_x2/0001, lr_x2/0002, lr_x4/0001 ...') in capsys.readouterr().out
    for sub in ('hr', 'lr_x2', 'lr_x4'):
        assert sorted(os.listdir(os.path.join(root, sub))) == ['0001']


def test_test_set_uses_one_hr_cropped_to_a_multiple_of_4(raw_pairs, tmp_path):
    set_root = str(tmp_path / 'test' / 'Tiny')
    assert build_test_set(raw_pairs, set_root, scales=(2, 4), workers=1) == 2
    src = raw_pairs[0]
    hr0, hr1 = (modcrop(v, 4) for v in read_pair(src))
    assert hr0.shape[:2] == (160, 428)  # 161x431 cropped to multiples of 4 (the largest scale)
    np.testing.assert_array_equal(imread(layout.view_file(os.path.join(layout.hr_dir(set_root), '0001'), 'hr1')),
                                  hr1)
    for scale in (2, 4):
        lr = imread(layout.view_file(os.path.join(layout.lr_dir(set_root, scale), '0001'), 'lr0'))
        np.testing.assert_array_equal(lr, make_lr(hr0, scale))


def test_middlebury_pairs_are_halved_with_matlab_bicubic(raw_pairs):
    src = raw_pairs[0]
    halved = PairSource(src.name, src.left, src.right, halve=True)
    left, _ = read_pair(halved)
    np.testing.assert_array_equal(left, imresize(imread(src.left), 0.5))
    assert preparation.pair_size(halved) == (81, 216)  # ceil(161 / 2), ceil(431 / 2): MATLAB imresize's output size


def test_bad_raw_inputs_name_the_file(tmp_path):
    folder = tmp_path / 'raw'
    folder.mkdir()
    with pytest.raises(PreparationError, match='no stereo pairs found'):
        find_pairs(str(folder))
    imwrite(np.zeros((40, 100, 3), np.uint8), str(folder / '0001_L.png'))
    with pytest.raises(PreparationError, match=r'0001_L\.png: missing its other view; expected .*0001_R\.png'):
        find_pairs(str(folder))
    imwrite(np.zeros((40, 104, 3), np.uint8), str(folder / '0001_R.png'))
    with pytest.raises(PreparationError, match=r'0001_R\.png: size 40x104 differs from its left view'):
        build_training_patches(find_pairs(str(folder)), str(tmp_path / 'out'), scales=(2,), workers=1)
    with pytest.raises(PreparationError, match='no such folder'):
        find_pairs(str(tmp_path / 'nope'))


def test_builtin_sample_layout(sample_root):
    for scale, hr_shape in ((2, (60, 180, 3)), (4, (120, 360, 3))):
        pdir = layout.patches_dir(sample_root, scale)
        names = layout.list_pair_folders(pdir)
        # make_sample.py's strides give 253 (x2) and 276 (x4) patches; 200 leaves room for a change of stride
        assert len(names) >= 200 and names[0] == '000001' and names[-1] == f'{len(names):06d}'
        first = os.path.join(pdir, names[0])
        assert imread(layout.view_file(first, 'hr0')).shape == hr_shape
        assert imread(layout.view_file(first, 'lr1')).shape == (30, 90, 3)
    test = os.path.join(sample_root, 'test', 'Motorcycle')
    assert os.listdir(layout.hr_dir(test)) == ['motorcycle_bottom']
    hr = imread(layout.view_file(os.path.join(layout.hr_dir(test), 'motorcycle_bottom'), 'hr0'))
    lr = imread(layout.view_file(os.path.join(layout.lr_dir(test, 4), 'motorcycle_bottom'), 'lr0'))
    # rows 320-500 of scikit-image's 500x741 pair (make_sample.TRAIN_ROWS), cropped to a multiple of 4; LR = HR / 4
    assert hr.shape == (180, 740, 3) and lr.shape == (45, 185, 3)
