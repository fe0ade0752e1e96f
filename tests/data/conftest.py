"""Fixtures of the data tests."""
import os

import numpy as np
import pytest

from basicsr.utils.img_util import imwrite


@pytest.fixture(scope='session')
def scene(tmp_path_factory):
    """One 96x192 HR pair of a real photograph (skimage's Middlebury motorcycle, the built-in sample's source), the
    right view the real right view: ``<root>/p1/{hr0,hr1}.png``; returns ``<root>`` (str). Read only."""
    import skimage.data

    left, right, _ = skimage.data.stereo_motorcycle()
    root = tmp_path_factory.mktemp('scene') / 'pairs'
    for stem, img in (('hr0', left), ('hr1', right)):
        imwrite(np.ascontiguousarray(img[150:246, 200:392, ::-1]), os.path.join(root, 'p1', f'{stem}.png'))
    return str(root)
