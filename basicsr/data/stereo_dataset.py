"""Paired stereo SR dataset: left/right HR and LR views of each pair folder as 6-channel tensors.

Layout (see ``basicsr.data.layout``): ``dataroot_gt/<pair>/{hr0,hr1}.png`` and ``dataroot_lq/<pair>/{lr0,lr1}.png``;
for training patches both roots are the same ``patches_x4`` folder. With ``io_backend: {type: lmdb}`` the two roots
name LMDB folders made by ``scripts/create_lmdb.py`` instead (e.g. ``patches_x4.lmdb``, ``hr.lmdb``), and the
samples are byte for byte those of the PNG folders they were packed from.

Training mode (``phase: train``) draws all its randomness from ``numpy.random.default_rng(sample_seed)``, where
``sample_seed`` comes with the index from ``EnlargedSampler``; so a sample's crop and flips depend neither on the
number of workers nor on resuming. Augmentations, in this order: an aligned random crop (``gt_size_h`` x
``gt_size_w`` HR pixels), a horizontal flip that also swaps the views (a mirrored left view is a right view), a
vertical flip, and one random permutation of the colour channels shared by both views. Rotation is refused: it
would turn the epipolar rows into columns.

Tensors: ``lq`` (6, h, w) and ``gt`` (6, H, W) float32 in [0, 1], channels (left, right), each view in
``color_order`` (``bgr``, the NAFSSR release's order, or ``rgb``).
"""
import operator
import os

import numpy as np
import torch
from torch.utils.data import Dataset

from basicsr.data import layout
from basicsr.utils.errors import UserError
from basicsr.utils.img_util import ImageReadError, imfrombytes, imread
from basicsr.utils.registry import DATASET_REGISTRY


class StereoDataError(UserError, ValueError):
    """Bad data on disk or a bad dataset option; the message is one line naming the file or key path (raised in a
    data-loader worker, it keeps that line: see ``UserError``)."""


class _DiskReader:
    """Reads ``<root>/<pair>/<stem>.png``."""

    def __init__(self, root, what, key_path):
        if not os.path.isdir(root):
            raise StereoDataError(f'{key_path}: {root}: no such folder; expected a folder of pair folders')
        self.root = root
        self.pairs = layout.list_pair_folders(root)
        if not self.pairs:
            raise StereoDataError(f'{root}: no pair folders; expected <pair>/{what[0]}.png,{what[1]}.png inside')

    def location(self, pair):
        return os.path.join(self.root, pair)

    def read(self, pair, stem):
        path = layout.view_file(os.path.join(self.root, pair), stem)
        if not os.path.isfile(path):
            view = 'left' if stem.endswith('0') else 'right'
            raise StereoDataError(f'{path}: missing; expected the {view} view of pair {pair}')
        return imread(path), path


_LMDB_ENVS = {}  # (pid, real path) -> environment: LMDB allows one open environment per path and process


def _open_lmdb(path):
    key = (os.getpid(), os.path.realpath(path))
    if key not in _LMDB_ENVS:
        import lmdb
        _LMDB_ENVS[key] = lmdb.open(path, readonly=True, lock=False, readahead=False, meminit=False)
    return _LMDB_ENVS[key]


class _LmdbReader:
    """Reads key ``<pair>/<stem>`` of an LMDB made by scripts/create_lmdb.py; opened lazily in each process."""

    def __init__(self, root, what, key_path):
        meta = os.path.join(root, layout.LMDB_META)
        if not (os.path.isfile(os.path.join(root, 'data.mdb')) and os.path.isfile(meta)):
            raise StereoDataError(f'{key_path}: {root}: not an LMDB made by scripts/create_lmdb.py; expected '
                                  f'data.mdb and {layout.LMDB_META} in it (io_backend type is lmdb)')
        self.root = root
        with open(meta, encoding='utf-8') as f:
            keys = [line.split(' ', 1)[0] for line in f if line.strip()]
        self.pairs = sorted({k.rsplit('/', 1)[0] for k in keys})
        if not self.pairs:
            raise StereoDataError(f'{meta}: lists no images; expected lines "<pair>/{what[0]} (h,w,c) png"')

    def location(self, pair):
        return os.path.join(self.root, pair)

    def read(self, pair, stem):
        key = layout.lmdb_key(pair, stem)
        with _open_lmdb(self.root).begin(write=False) as txn:
            content = txn.get(key.encode('ascii'))
        where = f'{self.root}:{key}'
        if content is None:
            view = 'left' if stem.endswith('0') else 'right'
            raise StereoDataError(f'{where}: key not found; expected the {view} view of pair {pair}')
        return imfrombytes(content, where), where


_READERS = {'disk': _DiskReader, 'lmdb': _LmdbReader}


def hr_crop(gt_size_h=None, gt_size_w=None, gt_size=None):
    """``(h, w)`` of the HR training crop: ``gt_size_h`` and ``gt_size_w``, ``gt_size`` standing for either one not
    given (BasicSR's square ``gt_size``); None where neither is set."""
    return (gt_size_h if gt_size_h is not None else gt_size, gt_size_w if gt_size_w is not None else gt_size)


def train_crop(opt):
    """``(h, w)`` of the HR training crop that the options' ``datasets:train`` asks for (``hr_crop``), or None when
    it sets none; the LR patch is this divided by ``scale`` (30x90 LR in the stereo releases)."""
    train = (opt.get('datasets') or {}).get('train') or {}
    crop = hr_crop(train.get('gt_size_h'), train.get('gt_size_w'), train.get('gt_size'))
    return crop if None not in crop else None


@DATASET_REGISTRY.register()
class PairedStereoImageDataset(Dataset):
    """Stereo pairs from ``dataroot_gt`` (HR) and ``dataroot_lq`` (LR); see the module docstring.

    Args:
        dataroot_gt, dataroot_lq: folders of pair folders (disk) or LMDB folders (lmdb).
        scale: up-scaling factor; every HR view must be exactly ``scale`` times its LR view.
        phase: ``train`` enables cropping and augmentation; anything else (val, test, test0...) reads whole pairs.
        io_backend: ``{type: disk}`` (default) or ``{type: lmdb}``.
        gt_size_h, gt_size_w: HR crop size in training (multiples of ``scale``); ``gt_size`` sets both.
        use_hflip, use_vflip, flip_RGB: training augmentations; ``use_rot: true`` is refused.
        hshift_prob, hshift_max: random horizontal disparity shift (training): with probability ``hshift_prob`` the
            right view is cropped ``d`` LR pixels (``scale * d`` HR pixels) beside the left view's crop, ``d``
            uniform in [-hshift_max, hshift_max] (within the image), so every disparity changes by the same
            constant and LR and HR stay aligned.
        color_order: ``bgr`` (release default) or ``rgb``, the channel order of each view in the tensors.
        name: the dataset's display name. key_path: YAML key path used in error messages.
    """

    def __init__(self, dataroot_gt, dataroot_lq, scale, phase='test', name=None, io_backend=None,
                 gt_size_h=None, gt_size_w=None, gt_size=None, use_hflip=False, use_vflip=False, use_rot=False,
                 flip_RGB=False, color_order='bgr', hshift_prob=0.0, hshift_max=0, key_path='datasets'):
        reader = self._set_options(key_path, name, scale, phase, io_backend, gt_size_h, gt_size_w, gt_size,
                                   use_hflip, use_vflip, use_rot, flip_RGB, color_order)
        if not isinstance(hshift_prob, (int, float)) or isinstance(hshift_prob, bool) or not 0 <= hshift_prob <= 1:
            raise StereoDataError(f'{key_path}:hshift_prob: expected a probability in [0, 1], got {hshift_prob!r}')
        if not isinstance(hshift_max, int) or isinstance(hshift_max, bool) or hshift_max < 0:
            raise StereoDataError(f'{key_path}:hshift_max: expected a whole number of LR pixels >= 0, got '
                                  f'{hshift_max!r}')
        self.hshift_prob, self.hshift_max = float(hshift_prob), hshift_max
        self.open_readers(reader, dataroot_gt, dataroot_lq)

    def open_readers(self, reader, dataroot_gt, dataroot_lq):
        """Check the roots, then open them with ``reader`` (the io backend's class): ``gt_reader``, ``lq_reader``
        and ``pairs``, the pair names both roots must share. A subclass that reads other roots overrides this."""
        key_path = self.key_path
        for key, root in (('dataroot_gt', dataroot_gt), ('dataroot_lq', dataroot_lq)):
            if not isinstance(root, (str, os.PathLike)) or not os.fspath(root).strip():
                raise StereoDataError(f'{key_path}:{key}: expected a folder path, got {root!r}')
        self.gt_reader = reader(dataroot_gt, layout.HR_VIEWS, f'{key_path}:dataroot_gt')
        self.lq_reader = reader(dataroot_lq, layout.LR_VIEWS, f'{key_path}:dataroot_lq')
        gt_pairs, lq_pairs = self.gt_reader.pairs, self.lq_reader.pairs
        if gt_pairs != lq_pairs:
            only_gt = sorted(set(gt_pairs) - set(lq_pairs))
            if only_gt:
                raise StereoDataError(f'{self.lq_reader.location(only_gt[0])}: missing; expected an LR pair '
                                      f'for every HR pair in {dataroot_gt}')
            only_lq = sorted(set(lq_pairs) - set(gt_pairs))
            raise StereoDataError(f'{self.gt_reader.location(only_lq[0])}: missing; expected an HR pair for '
                                  f'every LR pair in {dataroot_lq}')
        self.pairs = gt_pairs

    def _set_options(self, key_path, name, scale, phase, io_backend, gt_size_h, gt_size_w, gt_size, use_hflip,
                     use_vflip, use_rot, flip_rgb, color_order):
        """Check and keep the options every stereo dataset shares; returns the reader class of the io backend."""
        self.key_path = key_path
        self.name = name
        self.scale = int(scale)
        self.train = phase == 'train'
        if use_rot:
            raise StereoDataError(f'{key_path}:use_rot: rotation is not allowed for stereo pairs (it turns the '
                                  'epipolar rows into columns); expected use_rot: false')
        if color_order not in ('bgr', 'rgb'):
            raise StereoDataError(f'{key_path}:color_order: expected bgr or rgb, got {color_order!r}')
        self.rgb = color_order == 'rgb'
        backend = dict(io_backend or {'type': 'disk'})
        kind = backend.pop('type', 'disk')
        if kind not in _READERS:
            raise StereoDataError(f'{key_path}:io_backend:type: expected disk or lmdb, got {kind!r}')
        if backend:
            raise StereoDataError(f"{key_path}:io_backend: unknown option(s) {', '.join(sorted(backend))}; "
                                  'expected only type (disk or lmdb)')
        self.use_hflip, self.use_vflip, self.flip_rgb = bool(use_hflip), bool(use_vflip), bool(flip_rgb)
        if self.train:
            gt_size_h, gt_size_w = hr_crop(gt_size_h, gt_size_w, gt_size)
            for key, val in (('gt_size_h', gt_size_h), ('gt_size_w', gt_size_w)):
                if not isinstance(val, int) or val <= 0 or val % self.scale:
                    raise StereoDataError(f'{key_path}:{key}: expected a positive multiple of the scale '
                                          f'{self.scale} (HR crop size for training), got {val!r}')
            self.gt_size = (gt_size_h, gt_size_w)
        return _READERS[kind]

    def __len__(self):
        return len(self.pairs)

    def _read_views(self, reader, pair, stems):
        (img0, path0), (img1, path1) = reader.read(pair, stems[0]), reader.read(pair, stems[1])
        if img0.shape != img1.shape:
            raise StereoDataError(f'{path1}: size {img1.shape[0]}x{img1.shape[1]} differs from the left view '
                                  f'{path0} ({img0.shape[0]}x{img0.shape[1]}); expected equal sizes')
        return img0, img1, path0

    def load_pair(self, index):
        """(hr0, hr1, lr0, lr1) as ``uint8`` HWC BGR arrays, with all size checks done."""
        pair = self.pairs[index]
        try:
            hr0, hr1, hr_path = self._read_views(self.gt_reader, pair, layout.HR_VIEWS)
            lr0, lr1, lr_path = self._read_views(self.lq_reader, pair, layout.LR_VIEWS)
        except ImageReadError as err:
            raise StereoDataError(str(err)) from None
        s = self.scale
        if hr0.shape[:2] != (s * lr0.shape[0], s * lr0.shape[1]):
            raise StereoDataError(f'{hr_path}: HR size {hr0.shape[0]}x{hr0.shape[1]} is not {s} x the LR size of '
                                  f'{lr_path} ({lr0.shape[0]}x{lr0.shape[1]}); expected '
                                  f'{s * lr0.shape[0]}x{s * lr0.shape[1]}')
        if self.train:
            gh, gw = self.gt_size
            if hr0.shape[0] < gh or hr0.shape[1] < gw:
                raise StereoDataError(f'{hr_path}: size {hr0.shape[0]}x{hr0.shape[1]} is smaller than the training '
                                      f'crop {gh}x{gw} ({self.key_path}:gt_size_h/gt_size_w); expected at least that')
        return hr0, hr1, lr0, lr1

    def augment(self, hr0, hr1, lr0, lr1, rng):
        """Aligned crop, hflip+swap, vflip, shared channel permutation; every draw comes from ``rng``."""
        s = self.scale
        ch, cw = self.gt_size[0] // s, self.gt_size[1] // s
        top, left, right = self.draw_crop(lr0.shape[0], lr0.shape[1], rng)
        lr0, lr1 = lr0[top:top + ch, left:left + cw], lr1[top:top + ch, right:right + cw]
        hr0 = hr0[s * top:s * (top + ch), s * left:s * (left + cw)]
        hr1 = hr1[s * top:s * (top + ch), s * right:s * (right + cw)]
        (hr0, hr1), (lr0, lr1) = self.flip((hr0, hr1), (lr0, lr1), rng=rng)
        return hr0, hr1, lr0, lr1

    def draw_crop(self, height, width, rng):
        """``(top, left, right)``: where the training crop of ``gt_size / scale`` LR pixels sits in views of
        ``height x width`` LR pixels: its top row, the left view's first column and the right view's (``left``
        unless the horizontal shift is drawn); every draw comes from ``rng``."""
        ch, cw = self.gt_size[0] // self.scale, self.gt_size[1] // self.scale
        top = int(rng.integers(0, height - ch + 1))
        left = int(rng.integers(0, width - cw + 1))
        right = left  # drawn only with the shift on, so other runs keep their streams
        if self.hshift_prob > 0 and self.hshift_max > 0 and rng.random() < self.hshift_prob:
            low, high = max(-self.hshift_max, -left), min(self.hshift_max, width - cw - left)
            right = left + int(rng.integers(low, high + 1))
        return top, left, right

    def flip(self, *pairs, rng):
        """The enabled flips of each ``(left, right)`` pair in ``pairs``, all drawn once from ``rng``: a horizontal
        flip that swaps the views, a vertical flip, one permutation of the colour channels."""
        hflip, vflip, perm = rng.random() < 0.5, rng.random() < 0.5, rng.permutation(3)
        if self.use_hflip and hflip:  # mirrored left view = right view of the mirrored scene
            pairs = [(right[:, ::-1], left[:, ::-1]) for left, right in pairs]
        if self.use_vflip and vflip:
            pairs = [(left[::-1], right[::-1]) for left, right in pairs]
        if self.flip_rgb:
            pairs = [(left[:, :, perm], right[:, :, perm]) for left, right in pairs]
        return pairs

    def _to_tensor(self, view0, view1):
        if self.rgb:
            view0, view1 = view0[:, :, ::-1], view1[:, :, ::-1]
        arr = np.concatenate([view0, view1], axis=2).transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(arr)).float().div_(255.0)

    def __getitem__(self, item):
        if isinstance(item, (tuple, list)):
            index, seed = operator.index(item[0]), operator.index(item[1])
        else:
            index = operator.index(item)
            seed = index  # a plain index seeds its own augmentation
        hr0, hr1, lr0, lr1 = self.load_pair(index)
        if self.train:
            hr0, hr1, lr0, lr1 = self.augment(hr0, hr1, lr0, lr1, np.random.default_rng(seed))
        pair = self.pairs[index]
        return {
            'lq': self._to_tensor(lr0, lr1),
            'gt': self._to_tensor(hr0, hr1),
            'lq_path': self.lq_reader.location(pair),
            'gt_path': self.gt_reader.location(pair),
            'name': pair,
        }
