"""Shared fixtures: the built-in real sample and a tiny synthetic stereo layout.

``sample_root``: the real sample (scikit-image's Middlebury "Motorcycle" pair) built once per test session by
``scripts/data_preparation/make_sample.py`` into a temporary folder. Layout::

    <sample_root>/patches_x2/000001/{hr0,hr1,lr0,lr1}.png ...   (LR 30x90, HR 60x180)
    <sample_root>/patches_x4/000001/...                          (LR 30x90, HR 120x360)
    <sample_root>/test/Motorcycle/{hr,lr_x2,lr_x4}/motorcycle_bottom/   (HR 180x740)

``tiny_stereo_root``: random images in the same layout, small enough for very fast tests::

    <tiny_stereo_root>/patches_x2/00000{1..6}/   (LR 6x18, HR 12x36)
    <tiny_stereo_root>/patches_x4/00000{1..6}/   (LR 6x18, HR 24x72)
    <tiny_stereo_root>/test/Tiny/{hr,lr_x2,lr_x4}/{pair_a,pair_b}/   (HR 24x48)
"""
import os
import sys

import numpy as np
import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
for _path in (ROOT, TESTS):  # the package, and tests/helpers.py for every test folder
    if _path not in sys.path:
        sys.path.insert(0, _path)

from helpers import load_script  # noqa: E402


@pytest.fixture(scope='session')
def sample_root(tmp_path_factory):
    """Path (str) of the built-in real sample, built once per session."""
    out = tmp_path_factory.mktemp('sample')
    load_script('scripts/data_preparation/make_sample.py').make_sample(str(out))
    return str(out)


@pytest.fixture(scope='session')
def tiny_stereo_root(tmp_path_factory):
    """Path (str) of a tiny synthetic stereo layout (random pixels, LR made with MATLAB bicubic)."""
    from basicsr.utils.img_util import imwrite
    from basicsr.utils.matlab_functions import imresize

    root = str(tmp_path_factory.mktemp('tiny_stereo'))
    rng = np.random.default_rng(0)
    for scale in (2, 4):
        for k in range(1, 7):
            folder = os.path.join(root, f'patches_x{scale}', f'{k:06d}')
            for view in '01':
                hr = rng.integers(0, 256, (6 * scale, 18 * scale, 3), dtype=np.uint8)
                imwrite(hr, os.path.join(folder, f'hr{view}.png'))
                imwrite(imresize(hr, 1 / scale), os.path.join(folder, f'lr{view}.png'))
    test = os.path.join(root, 'test', 'Tiny')
    for pair in ('pair_a', 'pair_b'):
        for view in '01':
            hr = rng.integers(0, 256, (24, 48, 3), dtype=np.uint8)
            imwrite(hr, os.path.join(test, 'hr', pair, f'hr{view}.png'))
            for scale in (2, 4):
                imwrite(imresize(hr, 1 / scale), os.path.join(test, f'lr_x{scale}', pair, f'lr{view}.png'))
    return root
