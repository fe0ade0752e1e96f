"""Turn raw stereo pairs into NAFSSR's training patches and test sets (the code behind scripts/data_preparation).

The protocol is iPASSR's MATLAB script ``data/train/GenerateTrainingPatches.m``, which NAFSSR reuses:

* HR = the pair cropped to a multiple of the scale; LR = ``uint8(imresize(HR, 1/scale, 'bicubic'))``.
* Middlebury training pairs are first halved with the same MATLAB bicubic (``imresize(img, 1/2)``).
* LR patches of 30x90 on a stride of 20 LR pixels. MATLAB's loops ``for x = 3:20:H-33`` / ``for y = 3:20:W-93``
  become, 0-based, rows ``2, 22, ... <= H-34`` and columns ``2, 22, ... <= W-94``: a 2-pixel margin at the
  top/left and at least 4 at the bottom/right. Rows are the outer loop. The HR patch is exactly the LR patch's
  footprint, ``HR[s*r : s*(r+30), s*c : s*(c+90)]``.
* Patches are numbered from 000001 over the pairs in order (iPASSR: Middlebury first, then Flickr1024).

``build_degraded_lr`` adds fixed realistically degraded LR views (``lr_x4_<tag>/``) to a prepared test set.

Every output folder is written under a temporary name and renamed when complete, so an interrupted run never
leaves a folder that looks finished; a rerun skips finished folders and redoes the rest.
"""
import json
import math
import multiprocessing
import os
import shutil
import struct
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from basicsr.data import layout
from basicsr.data.degradations import degrade_pair
from basicsr.utils.errors import UserError
from basicsr.utils.img_util import imread, imwrite
from basicsr.utils.matlab_functions import imresize

PATCH_H, PATCH_W = 30, 90  # LR patch size
STRIDE = 20  # LR pixels
FIRST = 2  # 0-based first row/column of iPASSR's loops
LAST_MARGIN = 4  # the last patch ends at least this many LR pixels before the bottom/right edge


class PreparationError(UserError, ValueError):
    """Bad raw input (missing view, size mismatch, an output folder built from other inputs); one line."""


@dataclass(frozen=True)
class PairSource:
    """One raw stereo pair: ``name`` becomes the test-set folder name; ``halve`` = Middlebury training pair."""
    name: str
    left: str
    right: str
    halve: bool = False


def image_size(path):
    """(height, width) of an image file; PNG sizes come from the header without decoding."""
    try:
        with open(path, 'rb') as f:
            head = f.read(24)
    except OSError as err:
        raise PreparationError(f'{path}: cannot read ({err.strerror or err})') from None
    if head[:8] == b'\x89PNG\r\n\x1a\n' and head[12:16] == b'IHDR':
        width, height = struct.unpack('>II', head[16:24])
        return height, width
    return imread(path).shape[:2]


def pair_size(src):
    """Size of the pair as it enters patch extraction (after halving for Middlebury training pairs)."""
    h, w = image_size(src.left)
    h1, w1 = image_size(src.right)
    if (h, w) != (h1, w1):
        raise PreparationError(f'{src.right}: size {h1}x{w1} differs from its left view {src.left} ({h}x{w}); '
                               'expected a rectified pair of equal size')
    if src.halve:
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    return h, w


def read_pair(src):
    """The pair as ``uint8`` BGR arrays, halved with MATLAB bicubic when ``src.halve``."""
    left, right = imread(src.left), imread(src.right)
    if left.shape != right.shape:
        raise PreparationError(f'{src.right}: size {right.shape[0]}x{right.shape[1]} differs from its left view '
                               f'{src.left} ({left.shape[0]}x{left.shape[1]}); expected a rectified pair')
    if src.halve:
        left, right = imresize(left, 0.5), imresize(right, 0.5)
    return left, right


def modcrop(img, multiple):
    """Crop the bottom/right so that height and width are multiples of ``multiple`` (MATLAB ``modcrop``)."""
    h, w = img.shape[:2]
    return img[:h - h % multiple, :w - w % multiple]


def make_lr(hr, scale):
    """LR image of an HR image whose size is a multiple of ``scale``: MATLAB bicubic, rounded to uint8."""
    if hr.shape[0] % scale or hr.shape[1] % scale:
        raise ValueError(f'make_lr: HR size {hr.shape[:2]} is not a multiple of the scale {scale}')
    return imresize(hr, 1.0 / scale)


def patch_origins(lr_h, lr_w, stride=STRIDE):
    """Top-left LR corners (row, col) of the patches of an LR image, in iPASSR's order (rows outer)."""
    rows = range(FIRST, lr_h - PATCH_H - LAST_MARGIN + 1, stride)
    cols = range(FIRST, lr_w - PATCH_W - LAST_MARGIN + 1, stride)
    return [(r, c) for r in rows for c in cols]


def count_patches(height, width, scale, stride=STRIDE):
    """Number of patches of a pair of HR size ``height x width`` (before cropping to the scale)."""
    return len(patch_origins(height // scale, width // scale, stride))


def extract_patches(hr0, hr1, scale, stride=STRIDE):
    """Yield ``{'hr0','hr1','lr0','lr1'} -> uint8 patch`` for a pair of (uncropped) HR views."""
    hr0, hr1 = modcrop(hr0, scale), modcrop(hr1, scale)
    lr0, lr1 = make_lr(hr0, scale), make_lr(hr1, scale)
    for r, c in patch_origins(lr0.shape[0], lr0.shape[1], stride):
        hr_rows = slice(scale * r, scale * (r + PATCH_H))
        hr_cols = slice(scale * c, scale * (c + PATCH_W))
        yield {
            'hr0': hr0[hr_rows, hr_cols], 'hr1': hr1[hr_rows, hr_cols],
            'lr0': lr0[r:r + PATCH_H, c:c + PATCH_W], 'lr1': lr1[r:r + PATCH_H, c:c + PATCH_W],
        }


def write_folder_atomic(final_dir, images):
    """Write ``{stem: uint8 image}`` as PNGs into ``final_dir`` via a temporary folder renamed at the end."""
    parent, name = os.path.split(final_dir)
    tmp = os.path.join(parent, f'{layout.TMP_PREFIX}{name}-{os.getpid()}')
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for stem, img in images.items():
        imwrite(np.ascontiguousarray(img), layout.view_file(tmp, stem), mkdir=False)
    try:
        os.rename(tmp, final_dir)
    except OSError:
        if not os.path.isdir(final_dir):
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # someone else finished it first


def remove_stale_tmp(folder):
    """Remove temporary folders left by an interrupted run (one preparation run per output folder at a time)."""
    if not os.path.isdir(folder):
        return
    with os.scandir(folder) as it:
        for entry in it:
            if entry.name.startswith(layout.TMP_PREFIX) and entry.is_dir():
                shutil.rmtree(entry.path, ignore_errors=True)


def _run(fn, jobs, workers, desc):
    """Run ``fn`` over ``jobs`` on ``workers`` processes with a progress bar; returns the results in any order."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    results = []
    with tqdm(total=len(jobs), desc=desc, unit='pair', disable=not jobs) as bar:
        if workers == 1:
            for job in jobs:
                results.append(fn(job))
                bar.update()
        else:
            with multiprocessing.get_context('fork').Pool(workers) as pool:
                for res in pool.imap_unordered(fn, jobs):
                    results.append(res)
                    bar.update()
    return results


def _patch_job(job):
    src, tasks = job
    hr0, hr1 = read_pair(src)
    written = 0
    for scale, stride, first, out_dir in tasks:
        for i, patch in enumerate(extract_patches(hr0, hr1, scale, stride)):
            final = os.path.join(out_dir, layout.patch_dir_name(first + i))
            if not os.path.isdir(final):
                write_folder_atomic(final, patch)
                written += 1
    return written


def _legacy_match(old, manifest):
    """A manifest written before the file sizes were recorded, for the same names, counts and settings."""
    pairs = old.get('pairs')
    return (isinstance(pairs, list) and all(isinstance(p, list) and len(p) == 4 for p in pairs)
            and {**old, 'pairs': None} == {**manifest, 'pairs': None}
            and [p[:4] for p in manifest['pairs']] == pairs)


def _check_manifest(out_dir, manifest):
    path = os.path.join(out_dir, '.sources.json')
    if os.path.isfile(path):
        with open(path, encoding='utf-8') as f:
            old = json.load(f)
        if old == manifest:
            return
        if not _legacy_match(old, manifest):
            raise PreparationError(f'{out_dir}: was built from other pairs or settings (see {path}); expected '
                                   f'the same inputs to resume. Delete the folder or choose another output')
    os.makedirs(out_dir, exist_ok=True)
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
        json.dump(manifest, f, indent=1)
    os.replace(path + '.tmp', path)


def build_training_patches(sources, out_root, scales=(2, 4), strides=None, workers=None):
    """Cut every pair of ``sources`` into ``out_root/patches_x{s}/NNNNNN/`` for each scale.

    ``strides`` maps a scale to its LR stride (default 20 for all). Returns ``{scale: number of patches}``.
    """
    strides = {s: (strides or {}).get(s, STRIDE) for s in scales}
    sizes = [pair_size(src) for src in sources]
    totals, tasks_per_pair = {}, [[] for _ in sources]
    for scale in scales:
        out_dir = layout.patches_dir(out_root, scale)
        counts = [count_patches(h, w, scale, strides[scale]) for h, w in sizes]
        # names, counts and the byte sizes of both views: a pair replaced by another image under the same name is
        # caught (sizes rather than times, so that extracting the same zip again still resumes)
        manifest = {'scale': scale, 'stride': strides[scale], 'patch_lr': [PATCH_H, PATCH_W],
                    'pairs': [[src.name, os.path.basename(src.left), src.halve, n,
                               os.path.getsize(src.left), os.path.getsize(src.right)]
                              for src, n in zip(sources, counts)]}
        _check_manifest(out_dir, manifest)
        remove_stale_tmp(out_dir)
        existing = set(layout.list_pair_folders(out_dir))
        first = 1
        for k, n in enumerate(counts):
            names = {layout.patch_dir_name(first + i) for i in range(n)}
            if not names <= existing:
                tasks_per_pair[k].append((scale, strides[scale], first, out_dir))
            first += n
        totals[scale] = first - 1
    jobs = [(src, tasks) for src, tasks in zip(sources, tasks_per_pair) if tasks]
    _run(_patch_job, jobs, workers, desc='patches')
    return totals


def _test_job(job):
    src, set_root, scales = job
    multiple = math.lcm(*scales)
    hr0, hr1 = read_pair(src)
    hr0, hr1 = modcrop(hr0, multiple), modcrop(hr1, multiple)
    for scale in scales:
        final = os.path.join(layout.lr_dir(set_root, scale), src.name)
        if not os.path.isdir(final):
            write_folder_atomic(final, {'lr0': make_lr(hr0, scale), 'lr1': make_lr(hr1, scale)})
    final = os.path.join(layout.hr_dir(set_root), src.name)
    if not os.path.isdir(final):  # HR last: a pair is complete when its HR folder exists
        write_folder_atomic(final, {'hr0': hr0, 'hr1': hr1})
    return src.name


def build_test_set(sources, set_root, scales=(2, 4), workers=None, desc='test set'):
    """Write ``set_root/hr/<name>/`` and ``set_root/lr_x{s}/<name>/`` for every pair; returns the pair count.

    One HR, cropped to a multiple of every scale (4 for x2 and x4), serves all scales.
    """
    names = [src.name for src in sources]
    if len(set(names)) != len(names):
        raise PreparationError(f'{set_root}: duplicate pair names in the sources; expected unique names')
    folders = [layout.hr_dir(set_root)] + [layout.lr_dir(set_root, s) for s in scales]
    stale = set()
    for folder in folders:
        os.makedirs(folder, exist_ok=True)
        remove_stale_tmp(folder)
        for name in set(layout.list_pair_folders(folder)) - set(names):  # from an earlier run with other inputs
            shutil.rmtree(os.path.join(folder, name))
            stale.add(name)
    if stale:
        print(f'{set_root}: removed {len(stale)} pair folder(s) that are not among the current inputs: '
              f'{", ".join(sorted(stale)[:5])}{" ..." if len(stale) > 5 else ""}', flush=True)
    jobs = [(src, set_root, tuple(scales)) for src in sources
            if not all(os.path.isdir(os.path.join(f, src.name)) for f in folders)]
    _run(_test_job, jobs, workers, desc=desc)
    return len(sources)


def _degrade_job(job):
    hr_root, name, index, out_dir, scale, degradation, seed = job
    folder = os.path.join(hr_root, name)
    hr0, hr1 = (imread(layout.view_file(folder, stem)) for stem in layout.HR_VIEWS)
    if hr0.shape != hr1.shape or hr0.shape[0] % scale or hr0.shape[1] % scale:
        raise PreparationError(f'{folder}: HR views of {hr0.shape[0]}x{hr0.shape[1]} and {hr1.shape[0]}x'
                               f'{hr1.shape[1]}; expected equal sizes that are multiples of the scale {scale}')
    lr0, lr1 = degrade_pair(hr0, hr1, scale, degradation, np.random.default_rng([seed, index]))
    write_folder_atomic(os.path.join(out_dir, name), {'lr0': lr0, 'lr1': lr1})
    return name


def build_degraded_lr(set_root, degradation, scale, seed, tag, workers=None, desc='degraded LR'):
    """Write ``set_root/lr_x{scale}_{tag}/<pair>/lr0.png, lr1.png``: the HR pairs of ``set_root/hr/`` degraded by
    ``degradation`` (a ``basicsr.data.degradations.Degradation``). Pair number ``i`` (sorted names, from 0) draws
    everything from ``numpy.random.default_rng([seed, i])``, so the files are byte-identical on every run and
    machine. An interrupted run resumes; a folder made with another seed, degradation or pair list is refused.
    Returns the pair count."""
    hr_root = layout.hr_dir(set_root)
    if not os.path.isdir(hr_root):
        raise PreparationError(f'{hr_root}: no such folder; expected the HR pairs of a prepared test set '
                               '(hr/<pair>/hr0.png, hr1.png)')
    names = layout.list_pair_folders(hr_root)
    if not names:
        raise PreparationError(f'{hr_root}: no pair folders; expected hr/<pair>/hr0.png, hr1.png')
    out_dir = layout.lr_dir(set_root, scale, tag)
    manifest = {'scale': scale, 'seed': seed, 'degradation': degradation.options, 'pairs': names}
    _check_manifest(out_dir, json.loads(json.dumps(manifest)))  # as read back: lists, not tuples
    remove_stale_tmp(out_dir)
    jobs = [(hr_root, name, i, out_dir, scale, degradation, seed) for i, name in enumerate(names)
            if not os.path.isdir(os.path.join(out_dir, name))]
    _run(_degrade_job, jobs, workers, desc=desc)
    return len(names)


def find_pairs(folder, left_suffix='_L', right_suffix='_R', halve=False):
    """Pairs ``<name>{left_suffix}.png`` / ``<name>{right_suffix}.png`` in ``folder``, sorted by name."""
    if not os.path.isdir(folder):
        raise PreparationError(f'{folder}: no such folder; expected stereo pairs <name>{left_suffix}.png / '
                               f'<name>{right_suffix}.png')
    files = set(os.listdir(folder))
    names = sorted(f[:-len(left_suffix) - 4] for f in files if f.endswith(left_suffix + '.png'))
    rights = sorted(f[:-len(right_suffix) - 4] for f in files if f.endswith(right_suffix + '.png'))
    for name in sorted(set(names) ^ set(rights)):
        have, want = (left_suffix, right_suffix) if name in names else (right_suffix, left_suffix)
        raise PreparationError(f'{os.path.join(folder, name + have + ".png")}: missing its other view; expected '
                               f'{os.path.join(folder, name + want + ".png")}')
    if not names:
        raise PreparationError(f'{folder}: no stereo pairs found; expected <name>{left_suffix}.png / '
                               f'<name>{right_suffix}.png files')
    return [PairSource(name, os.path.join(folder, name + left_suffix + '.png'),
                       os.path.join(folder, name + right_suffix + '.png'), halve) for name in names]
