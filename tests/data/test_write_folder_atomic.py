"""preparation.write_folder_atomic: a pair folder appears whole or not at all; a failed image write (a full disk)
leaves no temporary folder behind."""
import os

import numpy as np
import pytest

from basicsr.data import preparation
from basicsr.utils.img_util import ImageWriteError, imwrite

VIEWS = {'lr0': np.zeros((4, 6, 3), np.uint8), 'lr1': np.full((4, 6, 3), 255, np.uint8)}


def test_a_failed_image_write_leaves_no_temporary_folder(tmp_path, monkeypatch):
    written = []

    def full_disk_after_one(img, path, mkdir=True):
        if written:
            raise ImageWriteError(f'{path}: cannot write the image (No space left on device); nothing was written')
        imwrite(img, path, mkdir=mkdir)
        written.append(path)

    monkeypatch.setattr(preparation, 'imwrite', full_disk_after_one)
    with pytest.raises(ImageWriteError, match='No space left'):
        preparation.write_folder_atomic(str(tmp_path / 'pair1'), VIEWS)
    assert written and os.listdir(tmp_path) == []  # neither pair1 nor its temporary folder


def test_a_whole_folder_is_renamed_in(tmp_path):
    preparation.write_folder_atomic(str(tmp_path / 'pair1'), VIEWS)
    assert os.listdir(tmp_path) == ['pair1'] and sorted(os.listdir(tmp_path / 'pair1')) == ['lr0.png', 'lr1.png']
