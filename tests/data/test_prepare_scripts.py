"""The data-preparation commands users run, on tiny trees in the layouts of the real downloads made here.

``process_Flickr1024.sh`` / ``prepare_flickr1024.py`` (from a zip and from extracted folders; Train/Validation/Test
routing; iPASSR's Middlebury training pairs first and halved) and ``prepare_test_sets.py`` on raw KITTI 2012
(``colored_0/1``, frame ``_10``), KITTI 2015 (``image_2/3``) and Middlebury (``<scene>/im0.png, im1.png``) folders.
Every expected file is computed here from the source images with MATLAB bicubic (``matlab_functions.imresize``)
and plain slicing, not with the preparation module.
"""
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from basicsr.utils.img_util import imread, imwrite
from basicsr.utils.matlab_functions import imresize
from helpers import ROOT, load_script

SHELL_SCRIPT = os.path.join(ROOT, 'scripts', 'data_preparation', 'process_Flickr1024.sh')


def _image(shape, seed):
    """A smooth random uint8 BGR image (up-sampled noise, so that bicubic down-sampling is not trivial)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (shape[0] // 4 + 2, shape[1] // 4 + 2, 3), dtype=np.uint8)
    return np.ascontiguousarray(imresize(small, 4)[:shape[0], :shape[1]])


def _modcrop(img, m):
    return img[:img.shape[0] // m * m, :img.shape[1] // m * m]


def _files(root):
    """Every file below ``root`` as a sorted list of paths relative to it."""
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


# ---------------------------------------------------------------------------------------------- Flickr1024
# Train: 2 pairs of 150x400 (x4: LR 37x100 -> 1 patch each; x2: LR 75x200 -> 2 rows x 6 columns = 12 each).
# Middlebury_train: one scene of 300x800, halved to 150x400 first (the same patch counts). Validation and Test:
# one pair each, of sizes that are not multiples of 4.
FLICKR = {'Train': {'0001': (150, 400), '0002': (150, 401)}, 'Validation': {'0801': (42, 61)},
          'Test': {'0901': (45, 66)}}
MIDDLEBURY_SCENE = ('Adirondack', (300, 800))


def _write_flickr_tree(root):
    """``root/Flickr1024/{Train,Validation,Test}/NNNN_{L,R}.png`` and ``root/Middlebury_train/<scene>/im{0,1}.png``;
    returns ``{relative path: image}``."""
    images = {}
    seed = 0
    for split, pairs in FLICKR.items():
        for name, shape in pairs.items():
            for view in 'LR':
                seed += 1
                images[os.path.join(split, f'{name}_{view}.png')] = _image(shape, seed)
    scene, shape = MIDDLEBURY_SCENE
    for view in '01':
        seed += 1
        images[os.path.join('Middlebury_train', scene, f'im{view}.png')] = _image(shape, seed)
    for rel, img in images.items():
        base = root if rel.startswith('Middlebury_train') else os.path.join(root, 'Flickr1024')
        imwrite(img, os.path.join(base, rel))
    return images


def _expected_patches(images, scale):
    """Patches in iPASSR's order: the Middlebury scene (halved) first, then Train 0001, 0002; LR 30x90 at LR
    rows 2, 22, ... <= h - 34 and columns 2, 22, ... <= w - 94."""
    scene = MIDDLEBURY_SCENE[0]
    pairs = [[imresize(images[os.path.join('Middlebury_train', scene, f'im{v}.png')], 0.5) for v in '01']]
    pairs += [[images[os.path.join('Train', f'{name}_{v}.png')] for v in 'LR'] for name in sorted(FLICKR['Train'])]
    patches = []
    for views in pairs:
        hrs = [_modcrop(v, scale) for v in views]
        lrs = [imresize(h, 1 / scale) for h in hrs]
        lr_h, lr_w = lrs[0].shape[:2]
        for r in range(2, lr_h - 34 + 1, 20):
            for c in range(2, lr_w - 94 + 1, 20):
                patches.append({f'hr{i}': h[scale * r:scale * (r + 30), scale * c:scale * (c + 90)]
                                for i, h in enumerate(hrs)}
                               | {f'lr{i}': lr[r:r + 30, c:c + 90] for i, lr in enumerate(lrs)})
    return patches


def _check_flickr_output(root, images):
    out = os.path.join(root, 'StereoSR')
    expected_files = []
    for scale, count in ((2, 12 + 12 + 12), (4, 1 + 1 + 1)):
        patches = _expected_patches(images, scale)
        assert len(patches) == count
        for k, patch in enumerate(patches, 1):
            folder = os.path.join(out, f'patches_x{scale}', f'{k:06d}')
            for stem, img in patch.items():
                np.testing.assert_array_equal(imread(os.path.join(folder, f'{stem}.png')), img,
                                              err_msg=f'patches_x{scale}/{k:06d}/{stem}')
                expected_files.append(os.path.join(f'patches_x{scale}', f'{k:06d}', f'{stem}.png'))
        expected_files.append(os.path.join(f'patches_x{scale}', '.sources.json'))
    for split, target in (('Validation', 'val'), ('Test', 'test')):  # each split goes to its own set, and only there
        expected_files.append(os.path.join(target, 'Flickr1024', '.sources.json'))  # the set's record
        for name in FLICKR[split]:
            hrs = [_modcrop(images[os.path.join(split, f'{name}_{v}.png')], 4) for v in 'LR']
            for i, hr in enumerate(hrs):
                set_root = os.path.join(target, 'Flickr1024')
                np.testing.assert_array_equal(imread(os.path.join(out, set_root, 'hr', name, f'hr{i}.png')), hr)
                expected_files.append(os.path.join(set_root, 'hr', name, f'hr{i}.png'))
                for scale in (2, 4):
                    np.testing.assert_array_equal(
                        imread(os.path.join(out, set_root, f'lr_x{scale}', name, f'lr{i}.png')),
                        imresize(hr, 1 / scale))
                    expected_files.append(os.path.join(set_root, f'lr_x{scale}', name, f'lr{i}.png'))
    assert _files(out) == sorted(expected_files)


def _prepare_flickr(root, capsys, monkeypatch, *extra):
    script = load_script('scripts/data_preparation/prepare_flickr1024.py')
    monkeypatch.setattr(sys, 'argv', ['prepare_flickr1024.py', '--root', str(root), '--workers', '1', *extra])
    script.run()
    return capsys.readouterr().out


def test_flickr1024_from_folders_with_middlebury_first_and_halved(tmp_path, capsys, monkeypatch):
    images = _write_flickr_tree(str(tmp_path))
    out = _prepare_flickr(tmp_path, capsys, monkeypatch)
    assert 'Training pairs: 1 Middlebury + 2 Flickr1024' in out
    assert ('patches_x2: 36, patches_x4: 3, val/Flickr1024: 1 pairs, test/Flickr1024: 1 pairs') in out
    _check_flickr_output(str(tmp_path), images)


def test_flickr1024_whole_train_writes_the_training_pairs_in_order(tmp_path, capsys, monkeypatch):
    images = _write_flickr_tree(str(tmp_path))
    out = _prepare_flickr(tmp_path, capsys, monkeypatch, '--whole_train')
    assert 'train: 3 whole pairs' in out
    train = tmp_path / 'StereoSR' / 'train'
    assert sorted(os.listdir(train / 'hr')) == ['0001', '0002', MIDDLEBURY_SCENE[0]]
    halved = imresize(images[os.path.join('Middlebury_train', MIDDLEBURY_SCENE[0], 'im1.png')], 0.5)
    np.testing.assert_array_equal(imread(str(train / 'hr' / MIDDLEBURY_SCENE[0] / 'hr1.png')), _modcrop(halved, 4))
    np.testing.assert_array_equal(imread(str(train / 'lr_x4' / '0002' / 'lr0.png')),
                                  imresize(_modcrop(images[os.path.join('Train', '0002_L.png')], 4), 0.25))


def test_process_flickr1024_sh_from_the_zip_equals_the_folder_run(tmp_path):
    """The shell entry point on a download that is only ``Flickr1024.zip`` (with its top folder), no Middlebury:
    the zip is extracted to ``Flickr1024/`` and the outputs are exactly those of the protocol."""
    staging, root = tmp_path / 'staging', tmp_path / 'root'
    images = _write_flickr_tree(str(staging))
    root.mkdir()
    with zipfile.ZipFile(root / 'Flickr1024.zip', 'w') as zf:
        for d, _, files in os.walk(staging / 'Flickr1024'):
            for f in files:
                zf.write(os.path.join(d, f), os.path.relpath(os.path.join(d, f), staging))
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1',
               PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    result = subprocess.run(['bash', SHELL_SCRIPT, str(root), '--workers', '1'], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert 'Training pairs: 0 Middlebury + 2 Flickr1024' in result.stdout
    assert 'patches_x2: 24, patches_x4: 2, val/Flickr1024: 1 pairs' in result.stdout
    assert sorted(os.listdir(root)) == ['Flickr1024', 'Flickr1024.zip', 'StereoSR']  # no temporary folder left
    assert _files(root / 'Flickr1024') == _files(staging / 'Flickr1024')
    # without the Middlebury scene, patch 1 is Train 0001's first patch
    first = _expected_patches({k: v for k, v in images.items()}, 4)[1]
    for stem, img in first.items():
        np.testing.assert_array_equal(imread(str(root / 'StereoSR' / 'patches_x4' / '000001' / f'{stem}.png')), img)
    assert sorted(os.listdir(root / 'StereoSR' / 'patches_x4')) == ['.sources.json', '000001', '000002']


def test_flickr1024_without_data_is_one_line_naming_both_places(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=ROOT)
    env.pop('STEREO_SR_TRACEBACK', None)
    result = subprocess.run(['bash', SHELL_SCRIPT, str(tmp_path)], capture_output=True, text=True, env=env,
                            timeout=60)
    assert result.returncode == 2
    line, = result.stderr.strip().splitlines()
    assert line.startswith('prepare_flickr1024.py: error: ') and 'Flickr1024.zip' in line and 'Train' in line
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------- raw test sets
def _run_test_sets(monkeypatch, *argv):
    script = load_script('scripts/data_preparation/prepare_test_sets.py')
    monkeypatch.setattr(sys, 'argv', ['prepare_test_sets.py', *argv, '--workers', '1'])
    script.run()


def _check_test_set(out, pairs):
    """``out/{hr,lr_x2,lr_x4}/<name>/`` for ``pairs`` = ``{name: (left, right)}`` (HR cropped to a multiple of 4,
    LR by MATLAB bicubic), ``pairs.txt`` in order, the set's record, and nothing else."""
    expected = ['pairs.txt', '.sources.json']
    for name, views in pairs.items():
        for i, view in enumerate(views):
            hr = _modcrop(view, 4)
            np.testing.assert_array_equal(imread(os.path.join(out, 'hr', name, f'hr{i}.png')), hr)
            expected.append(os.path.join('hr', name, f'hr{i}.png'))
            for scale in (2, 4):
                np.testing.assert_array_equal(imread(os.path.join(out, f'lr_x{scale}', name, f'lr{i}.png')),
                                              imresize(hr, 1 / scale))
                expected.append(os.path.join(f'lr_x{scale}', name, f'lr{i}.png'))
    assert _files(out) == sorted(expected)
    assert open(os.path.join(out, 'pairs.txt')).read().split() == list(pairs)


@pytest.mark.parametrize('kind,left_dir,right_dir', [('kitti2012', 'colored_0', 'colored_1'),
                                                     ('kitti2015', 'image_2', 'image_3')])
def test_raw_kitti_uses_frame_10_of_the_testing_split_in_sorted_order(tmp_path, monkeypatch, kind, left_dir,
                                                                      right_dir):
    """A KITTI download holds frames _10 and _11 of each scene in ``training`` and ``testing``; the first
    ``--count`` ``_10`` frames of ``testing`` are taken, left from the left camera's folder."""
    src, out = tmp_path / 'raw', tmp_path / 'out'
    views, seed = {}, 100
    for split in ('training', 'testing'):
        for scene in ('000002', '000000', '000001'):
            for frame in ('10', '11'):
                for folder in (left_dir, right_dir):
                    seed += 1
                    img = _image((19, 43), seed)
                    imwrite(img, str(src / split / folder / f'{scene}_{frame}.png'))
                    views[(split, folder, f'{scene}_{frame}')] = img
    _run_test_sets(monkeypatch, kind, '--src', str(src), '--out', str(out), '--count', '2')
    _check_test_set(str(out), {name: (views[('testing', left_dir, name)], views[('testing', right_dir, name)])
                               for name in ('000000_10', '000001_10')})


def test_raw_middlebury_takes_the_first_five_scenes_unhalved(tmp_path, monkeypatch):
    src, out = tmp_path / 'Middlebury', tmp_path / 'out'
    scenes = {}
    for k, scene in enumerate(['Piano', 'Adirondack', 'Motorcycle', 'Jadeplant', 'Recycle', 'Playtable']):
        scenes[scene] = tuple(_image((21 + k, 34), 10 * k + v) for v in range(2))
        for v, img in enumerate(scenes[scene]):
            imwrite(img, str(src / scene / f'im{v}.png'))
    (src / 'notes').mkdir()  # a folder without im0.png is not a scene
    _run_test_sets(monkeypatch, 'middlebury', '--src', str(src), '--out', str(out))
    _check_test_set(str(out), {s: scenes[s] for s in sorted(scenes)[:5]})
