"""Stereo SR with realistic degradations made on the fly: HR pairs in, LR pairs degraded in the loader's workers.

Only HR views are read: ``dataroot_gt/<pair>/{hr0,hr1}.png`` (training patches ``patches_x4`` with or without
their ``lr*.png``, or whole images in the test-set layout ``hr/<pair>/``), from disk or LMDB as
``PairedStereoImageDataset``, whose options all apply (crop size, flips, horizontal shift, colour order, io backend).

Training, as Real-ESRGAN trains: the crop of ``gt_size_h x gt_size_w`` HR pixels is drawn as by the paired dataset
(anywhere on the LR grid; the right view's beside it with the horizontal shift), then a larger window around it is
taken: ``margin`` LR pixels more on each side, plus a jitter of 0-15 LR pixels (parts outside the image mirrored).
With ``gt_usm`` both windows are sharpened by Real-ESRGAN's unsharp mask. The windows are degraded (``degradation``:
``basicsr.data.degradations``, the Real-ESRGAN second-order pipeline under stereo rules) and the patch is cut out of
the middle at the same offset in both views, then flipped as the paired dataset flips. So the patch never touches
the blurred borders of what was degraded, and the JPEG block grid (8x8 luma, 16x16 chroma) meets it at every
phase, not always at its corner. ``margin`` is the largest kernel radius the degradation can draw (10 pixels for
Real-ESRGAN's 21-pixel kernels; counted in LR pixels, which is exact for the final sinc filter and more than enough
for the first stage's kernels, which act on HR pixels) rounded up to a multiple of 8.

Every draw comes from ``numpy.random.default_rng(sample_seed)`` with the seed the sampler hands over, so a resumed
run sees byte-identical samples. A plain index (other phases, or indexing by hand) degrades the whole pair (cropped
to a multiple of the scale) with ``pair_generator(0, <pair name>)``, the draw of
``scripts/data_preparation/prepare_test_sets.py --degradation ... --seed 0``, the better way to make fixed test sets.
The unsharp mask applies in training only: validation compares with the HR views themselves (as Real-ESRGAN).
"""
import math
import operator
import os

import numpy as np

from basicsr.data import layout
from basicsr.data.degradations import (degrade_pair, largest_kernel_radius, load_degradation, pair_generator,
                                       usm_sharpen)
from basicsr.data.stereo_dataset import PairedStereoImageDataset, StereoDataError
from basicsr.utils.img_util import ImageReadError
from basicsr.utils.registry import DATASET_REGISTRY

JPEG_BLOCK = 8  # the margin is a whole number of JPEG blocks
JPEG_JITTER = 16  # offsets 0-15: every phase of the 8x8 luma and the 16x16 chroma (4:2:0) block grids


def _mirrored(start, length, size):
    """Indices ``start .. start + length - 1`` into an axis of ``size``, those outside mirrored about its ends
    (reflect-101: -1 -> 1, size -> size - 2), as often as needed."""
    idx = np.arange(start, start + length)
    if size == 1:
        return np.zeros_like(idx)
    idx = np.abs(idx) % (2 * (size - 1))
    return np.where(idx >= size, 2 * (size - 1) - idx, idx)


def window(img, top, left, height, width):
    """``img[top:top + height, left:left + width]`` where the window may reach outside the image: the part outside
    is the image mirrored about its border (reflect-101, the border the filters use)."""
    h, w = img.shape[:2]
    if 0 <= top and top + height <= h and 0 <= left and left + width <= w:
        return img[top:top + height, left:left + width]
    return np.take(np.take(img, _mirrored(top, height, h), axis=0), _mirrored(left, width, w), axis=1)


@DATASET_REGISTRY.register()
class RealisticStereoDataset(PairedStereoImageDataset):
    """HR stereo pairs from ``dataroot_gt`` and their LR views degraded on the fly; see the module docstring.

    Args:
        dataroot_gt: folder of pair folders holding ``hr0.png, hr1.png`` (disk) or an LMDB folder (lmdb).
        scale: down-scaling factor of the degradation; the LR views are exactly ``HR / scale``.
        degradation: the degradation options (Real-ESRGAN's keys, docs/data.md), or the path of a YAML file of them.
        gt_usm: sharpen the HR windows (training) with Real-ESRGAN's unsharp mask before degrading them, so that
            the target ``gt`` and the LR views come from the sharpened HR (Real-ESRGAN's ``gt_usm: True``); the
            sample then also holds ``gt_plain``, the same patch unsharpened, for the GAN model's
            ``train:l1_gt_usm/percep_gt_usm/gan_gt_usm`` (Real-ESRGAN keeps both HR tensors the same way).
        phase, name, io_backend, gt_size_h, gt_size_w, gt_size, use_hflip, use_vflip, use_rot, flip_RGB,
        color_order, hshift_prob, hshift_max, key_path: as for ``PairedStereoImageDataset``.
    """

    def __init__(self, dataroot_gt, scale, degradation, phase='test', name=None, io_backend=None,
                 gt_size_h=None, gt_size_w=None, gt_size=None, use_hflip=False, use_vflip=False, use_rot=False,
                 flip_RGB=False, color_order='bgr', hshift_prob=0.0, hshift_max=0, gt_usm=False,
                 key_path='datasets'):
        self.degradation = load_degradation(degradation, f'{key_path}:degradation')  # before any work
        if not isinstance(gt_usm, bool):
            raise StereoDataError(f'{key_path}:gt_usm: expected true or false, got {gt_usm!r}')
        self.gt_usm = gt_usm
        self.margin = JPEG_BLOCK * math.ceil(largest_kernel_radius(self.degradation) / JPEG_BLOCK)
        super().__init__(dataroot_gt, None, scale, phase=phase, name=name, io_backend=io_backend,
                         gt_size_h=gt_size_h, gt_size_w=gt_size_w, gt_size=gt_size, use_hflip=use_hflip,
                         use_vflip=use_vflip, use_rot=use_rot, flip_RGB=flip_RGB, color_order=color_order,
                         hshift_prob=hshift_prob, hshift_max=hshift_max, key_path=key_path)

    def open_readers(self, reader, dataroot_gt, dataroot_lq):
        """Only the HR root: the LR views are made here."""
        if not isinstance(dataroot_gt, (str, os.PathLike)) or not os.fspath(dataroot_gt).strip():
            raise StereoDataError(f'{self.key_path}:dataroot_gt: expected a folder path, got {dataroot_gt!r}')
        self.gt_reader = reader(dataroot_gt, layout.HR_VIEWS, f'{self.key_path}:dataroot_gt')
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

    def degrade_crop(self, hr0, hr1, rng):
        """The training sample ``(hr0, hr1, lr0, lr1, (plain0, plain1))``: the crop (``draw_crop``), its windows,
        sharpened with ``gt_usm``, degraded, the patch cut out at the same offset in both views, the flips; draws
        from ``rng``. ``plain`` is the HR patch before sharpening (the same pixels as ``hr`` without ``gt_usm``)."""
        s, m = self.scale, self.margin
        ch, cw = self.gt_size[0] // s, self.gt_size[1] // s
        top, left, right = self.draw_crop(hr0.shape[0] // s, hr0.shape[1] // s, rng)
        dy, dx = (int(v) for v in rng.integers(0, JPEG_JITTER, size=2))
        height, width = ch + 2 * m + JPEG_JITTER - 1, cw + 2 * m + JPEG_JITTER - 1  # LR pixels
        views = [window(hr, s * (top - m - dy), s * (col - m - dx), s * height, s * width)
                 for hr, col in ((hr0, left), (hr1, right))]
        plain = views
        if self.gt_usm:
            views = [usm_sharpen(v) for v in views]
        lrs = degrade_pair(*views, s, self.degradation, rng)
        y, x = m + dy, m + dx
        hr, plain = (tuple(v[s * y:s * (y + ch), s * x:s * (x + cw)] for v in vs) for vs in (views, plain))
        lr = tuple(v[y:y + ch, x:x + cw] for v in lrs)
        (hr0, hr1), (lr0, lr1), plain = self.flip(hr, lr, plain, rng=rng)
        return hr0, hr1, lr0, lr1, plain

    def __getitem__(self, item):
        if isinstance(item, (tuple, list)):
            index = operator.index(item[0])
            rng = np.random.default_rng(operator.index(item[1]))
        else:
            index = operator.index(item)
            rng = pair_generator(0, self.pairs[index])  # the draw of a fixed test set made with seed 0
        hr0, hr1 = self.load_hr(index)
        plain = None
        if self.train:
            hr0, hr1, lr0, lr1, plain = self.degrade_crop(hr0, hr1, rng)
        else:
            s = self.scale
            hr0, hr1 = (v[:v.shape[0] - v.shape[0] % s, :v.shape[1] - v.shape[1] % s] for v in (hr0, hr1))
            lr0, lr1 = degrade_pair(hr0, hr1, s, self.degradation, rng)
        location = self.gt_reader.location(self.pairs[index])
        sample = {
            'lq': self._to_tensor(lr0, lr1),
            'gt': self._to_tensor(hr0, hr1),
            'lq_path': location,
            'gt_path': location,
            'name': self.pairs[index],
        }
        if self.train and self.gt_usm:  # Real-ESRGAN keeps both: GAN losses may compare with either
            sample['gt_plain'] = self._to_tensor(*plain)
        return sample
