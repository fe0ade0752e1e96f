"""Stereo SR with realistic degradations made on the fly: HR pairs in, LR pairs degraded in the loader's workers.

Only HR views are read: ``dataroot_gt/<pair>/{hr0,hr1}.png`` (training patches ``patches_x4`` with or without
their ``lr*.png``, or whole images in the test-set layout ``hr/<pair>/``), from disk or LMDB as
``PairedStereoImageDataset``. Training: an HR crop of ``gt_size_h`` x ``gt_size_w`` anywhere in the pair, the
stereo flips of ``PairedStereoImageDataset``, then the ``degradation`` (``basicsr.data.degradations``: the
Real-ESRGAN second-order pipeline under stereo rules) makes the LR views of exactly ``HR / scale``.
Every draw, crop and degradation alike, comes from ``numpy.random.default_rng(sample_seed)`` with the seed the
sampler hands over, so a resumed run sees byte-identical samples. Other phases degrade whole pairs (cropped to a
multiple of the scale), each with its index as seed; fixed test sets are better made once with
``scripts/data_preparation/prepare_test_sets.py --degradation``.
"""
import operator
import os

import numpy as np

from basicsr.data import layout
from basicsr.data.degradations import degrade_pair, load_degradation
from basicsr.data.stereo_dataset import PairedStereoImageDataset, StereoDataError
from basicsr.utils.img_util import ImageReadError
from basicsr.utils.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class RealisticStereoDataset(PairedStereoImageDataset):
    """HR stereo pairs from ``dataroot_gt`` and their LR views degraded on the fly; see the module docstring.

    Args:
        dataroot_gt: folder of pair folders holding ``hr0.png, hr1.png`` (disk) or an LMDB folder (lmdb).
        scale: down-scaling factor of the degradation; the LR views are exactly ``HR / scale``.
        degradation: the degradation options (Real-ESRGAN's keys, docs/data.md), or the path of a YAML file of them.
        phase, name, io_backend, gt_size_h, gt_size_w, gt_size, use_hflip, use_vflip, use_rot, flip_RGB,
        color_order, key_path: as for ``PairedStereoImageDataset``.
    """

    def __init__(self, dataroot_gt, scale, degradation, phase='test', name=None, io_backend=None,
                 gt_size_h=None, gt_size_w=None, gt_size=None, use_hflip=False, use_vflip=False, use_rot=False,
                 flip_RGB=False, color_order='bgr', key_path='datasets'):
        if not isinstance(dataroot_gt, (str, os.PathLike)) or not os.fspath(dataroot_gt).strip():
            raise StereoDataError(f'{key_path}:dataroot_gt: expected a folder path, got {dataroot_gt!r}')
        reader = self._set_options(key_path, name, scale, phase, io_backend, gt_size_h, gt_size_w, gt_size,
                                   use_hflip, use_vflip, use_rot, flip_RGB, color_order)
        self.degradation = load_degradation(degradation, f'{key_path}:degradation')  # before any work
        self.gt_reader = reader(dataroot_gt, layout.HR_VIEWS, f'{key_path}:dataroot_gt')
        self.pairs = self.gt_reader.pairs

    def load_hr(self, index):
        """(hr0, hr1) as ``uint8`` HWC BGR arrays, checked against the training crop."""
        try:
            hr0, hr1, path = self._read_views(self.gt_reader, self.pairs[index], layout.HR_VIEWS)
        except ImageReadError as err:
            raise StereoDataError(str(err)) from None
        need = self.gt_size if self.train else (self.scale, self.scale)
        if hr0.shape[0] < need[0] or hr0.shape[1] < need[1]:
            what = (f'the training crop {need[0]}x{need[1]} ({self.key_path}:gt_size_h/gt_size_w)' if self.train
                    else f'the scale {self.scale}')
            raise StereoDataError(f'{path}: size {hr0.shape[0]}x{hr0.shape[1]} is smaller than {what}; expected '
                                  'at least that')
        return hr0, hr1

    def crop_and_flip(self, hr0, hr1, rng):
        """A random ``gt_size`` crop at any position, then the stereo flips; every draw comes from ``rng``."""
        gh, gw = self.gt_size
        top = int(rng.integers(0, hr0.shape[0] - gh + 1))
        left = int(rng.integers(0, hr0.shape[1] - gw + 1))
        hr0, hr1 = (v[top:top + gh, left:left + gw] for v in (hr0, hr1))
        ((hr0, hr1),) = self.flip((hr0, hr1), rng=rng)
        return hr0, hr1

    def __getitem__(self, item):
        if isinstance(item, (tuple, list)):
            index, seed = operator.index(item[0]), operator.index(item[1])
        else:
            index = operator.index(item)
            seed = index  # a plain index seeds its own crop and degradation
        hr0, hr1 = self.load_hr(index)
        rng = np.random.default_rng(seed)
        if self.train:
            hr0, hr1 = self.crop_and_flip(hr0, hr1, rng)
        else:
            s = self.scale
            hr0, hr1 = (v[:v.shape[0] - v.shape[0] % s, :v.shape[1] - v.shape[1] % s] for v in (hr0, hr1))
        lr0, lr1 = degrade_pair(hr0, hr1, self.scale, self.degradation, rng)
        location = self.gt_reader.location(self.pairs[index])
        return {
            'lq': self._to_tensor(lr0, lr1),
            'gt': self._to_tensor(hr0, hr1),
            'lq_path': location,
            'gt_path': location,
            'name': self.pairs[index],
        }
