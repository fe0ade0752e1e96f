"""The built-in real stereo sample (nothing to download), built by ``scripts/data_preparation/make_sample.py``.

The source is the rectified Middlebury 2014 "Motorcycle" pair that scikit-image ships
(``skimage.data.stereo_motorcycle``, 500x741). The top rows become training patches, the rows below them a
held-out test pair, and both go through the same code as the Flickr1024 preparation
(``basicsr.data.preparation``). Output (default ``datasets/sample``)::

    patches_x2/000001/{hr0,hr1,lr0,lr1}.png ...    patches_x4/...
    test/Motorcycle/{hr,lr_x2,lr_x4}/motorcycle_bottom/{hr0,hr1 | lr0,lr1}.png

One pair cannot fill hundreds of patches on NAFSSR's stride of 20 LR pixels, so the sample uses smaller strides
(12 LR pixels at x2, 4 at x4: 253 and 276 patches); everything else is the standard protocol.
"""
import os

from basicsr.data import layout
from basicsr.data.preparation import build_test_set, build_training_patches, find_pairs
from basicsr.utils.img_util import imwrite

TRAIN_ROWS = 320  # rows [0, 320) train, rows [320, 500) test
SAMPLE_STRIDES = {2: 12, 4: 4}  # LR pixels (24 and 16 HR pixels)
SCALES = (2, 4)
TEST_SET = 'Motorcycle'
TEST_PAIR = 'motorcycle_bottom'


def _write_raw(out_dir):
    """Split scikit-image's pair into raw ``<name>_L.png / <name>_R.png`` files, as a downloaded set would be."""
    from skimage.data import stereo_motorcycle

    left, right, _ = stereo_motorcycle()  # RGB uint8
    left, right = left[:, :, ::-1], right[:, :, ::-1]  # to the BGR order of img_util
    raw = os.path.join(out_dir, 'raw')
    for part, rows in (('train', slice(0, TRAIN_ROWS)), ('test', slice(TRAIN_ROWS, None))):
        name = 'motorcycle_top' if part == 'train' else TEST_PAIR
        for view, img in (('L', left), ('R', right)):
            path = os.path.join(raw, part, f'{name}_{view}.png')
            if not os.path.isfile(path):
                imwrite(img[rows], path)
    return os.path.join(raw, 'train'), os.path.join(raw, 'test')


def make_sample(out_dir, workers=1):
    """Build (or finish building) the sample in ``out_dir``; returns ``{'patches_x2': n, 'patches_x4': n, ...}``."""
    train_raw, test_raw = _write_raw(out_dir)
    totals = build_training_patches(find_pairs(train_raw), out_dir, scales=SCALES, strides=SAMPLE_STRIDES,
                                    workers=workers)
    n_test = build_test_set(find_pairs(test_raw), os.path.join(out_dir, 'test', TEST_SET), scales=SCALES,
                            workers=workers, desc='test pair')
    counts = {os.path.basename(layout.patches_dir(out_dir, s)): n for s, n in totals.items()}
    counts[f'test/{TEST_SET}'] = n_test
    return counts
