"""Bad data gives the same one line with or without data-loader worker processes, and before any work.

PyTorch re-raises an error of a worker process by building a new exception of the same class from the text
"Caught X in DataLoader worker process N.\\nOriginal Traceback ..."; the project's data errors keep their own
one-line message through that, so train.py prints the file and what is wrong, as with ``num_worker_per_gpu: 0``.
"""
import os
import shutil
import sys

import pytest
import yaml

from basicsr.data import build_dataloader, build_dataset
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.data.stereo_dataset import PairedStereoImageDataset, StereoDataError

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'train'))
from train_helpers import base_options, make_tiny_data, run_train  # noqa: E402


def _truncate(path):
    """A real corrupt PNG: the first half of a valid file (as left by an interrupted copy)."""
    content = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(content[:len(content) // 2])


@pytest.fixture(scope='module')
def corrupt_patches(tmp_path_factory):
    """The 12 tiny x2 training patches of tests/train, with the left HR view of patch 000007 truncated."""
    data = make_tiny_data(tmp_path_factory.mktemp('corrupt'))
    bad = os.path.join(data['patches'], '000007', 'hr0.png')
    _truncate(bad)
    return data, bad


def _train_opt(data, workers):
    return {'name': 'tiny', 'type': 'PairedStereoImageDataset', 'dataroot_gt': data['patches'],
            'dataroot_lq': data['patches'], 'gt_size_h': 8, 'gt_size_w': 24, 'phase': 'train', 'scale': 2,
            'num_worker_per_gpu': workers, 'batch_size_per_gpu': 2}


def _first_error(data, workers):
    opt = _train_opt(data, workers)
    dataset = build_dataset(opt)
    loader = build_dataloader(dataset, opt, num_gpu=0, dist=False, sampler=EnlargedSampler(dataset, 1, 0, seed=3),
                              seed=3)
    with pytest.raises(StereoDataError) as exc:
        for _ in loader:
            pass
    return exc.value


def test_worker_error_is_the_same_one_line_as_in_the_main_process(corrupt_patches):
    data, bad = corrupt_patches
    in_main = _first_error(data, workers=0)
    in_worker = _first_error(data, workers=2)
    assert str(in_main) == f'{bad}: truncated PNG (no IEND chunk at the end of the file)'
    assert type(in_worker) is StereoDataError and str(in_worker) == str(in_main)
    if sys.version_info >= (3, 11):  # where it came from, shown with the traceback (STEREO_SR_TRACEBACK=1)
        assert 'in DataLoader worker process' in in_worker.__notes__[0]


def test_error_text_that_is_not_from_a_worker_is_kept():
    assert str(StereoDataError('a: b')) == 'a: b'
    text = 'Caught StereoDataError in DataLoader worker process 0.\nOriginal Traceback: (nothing parsable)'
    assert str(StereoDataError(text)) == text


def test_corrupt_image_under_workers_ends_train_py_in_one_line(corrupt_patches, tmp_path):
    data, bad = corrupt_patches
    opt = base_options(data, 'corrupt_workers', total_iter=30)
    opt['datasets']['train']['num_worker_per_gpu'] = 2
    path = tmp_path / 'corrupt_workers.yml'
    path.write_text(yaml.safe_dump(opt))
    result = run_train(str(path), tmp_path, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last == f'train.py: error: {bad}: truncated PNG (no IEND chunk at the end of the file)', result.stderr


@pytest.mark.parametrize('key', ['dataroot_gt', 'dataroot_lq'])
@pytest.mark.parametrize('value', [None, 3, ''])
def test_dataset_refuses_a_dataroot_that_is_not_a_path(tiny_stereo_root, key, value):
    roots = dict(dataroot_gt=os.path.join(tiny_stereo_root, 'patches_x2'),
                 dataroot_lq=os.path.join(tiny_stereo_root, 'patches_x2'))
    roots[key] = value
    with pytest.raises(StereoDataError) as exc:
        PairedStereoImageDataset(**roots, scale=2, key_path='datasets:val')
    assert str(exc.value) == f'datasets:val:{key}: expected a folder path, got {value!r}'


def test_a_missing_view_under_workers_names_the_file(tmp_path):
    data = make_tiny_data(tmp_path / 'missing')
    gone = os.path.join(data['patches'], '000003', 'lr1.png')
    os.remove(gone)
    error = _first_error(data, workers=2)
    assert str(error) == f'{gone}: missing; expected the right view of pair 000003'
    shutil.rmtree(tmp_path / 'missing')
