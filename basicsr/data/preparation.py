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
leaves a folder that looks finished; a rerun skips finished folders and redoes the rest. Each step keeps a record,
``.sources.json``, of its inputs and settings (from which the pair folders it made follow) and plans its work
before writing anything: a rerun with other settings is refused, or with ``replace`` removes the folders its record
lists; folders it did not make are never removed nor overwritten.
"""
import contextlib
import json
import math
import multiprocessing
import os
import re
import shutil
import struct
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from tqdm import tqdm

from basicsr.data import layout
from basicsr.data.degradations import degrade_pair, pair_generator
from basicsr.utils.errors import UserError
from basicsr.utils.img_util import imread, imwrite
from basicsr.utils.matlab_functions import imresize
from basicsr.utils.misc import process_gone
from basicsr.zoo import LR_PATCH

PATCH_H, PATCH_W = LR_PATCH  # LR patch size
STRIDE = 20  # LR pixels
FIRST = 2  # 0-based first row/column of iPASSR's loops
LAST_MARGIN = 4  # the last patch ends at least this many LR pixels before the bottom/right edge
RECORD = '.sources.json'  # in every output folder: what the preparation made there, and from what
REPLACE_FLAG = '--replace'  # the scripts' flag that lets a run with other settings remove what an earlier run made


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
    try:
        for stem, img in images.items():
            imwrite(np.ascontiguousarray(img), layout.view_file(tmp, stem), mkdir=False)
        try:
            os.rename(tmp, final_dir)
        except OSError:
            if not os.path.isdir(final_dir):
                raise
            # someone else finished it first
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed write (a full disk, Ctrl-C) leaves no half folder


def _is_stale_tmp(name):
    """Whether ``name`` is a temporary folder of ``write_folder_atomic`` whose process is gone (an interrupted run);
    anything else, a user's ``.tmp-notes`` included, is not ours to remove."""
    match = re.fullmatch(re.escape(layout.TMP_PREFIX) + r'.+-(\d+)', name)
    return bool(match) and process_gone(int(match.group(1)))


def remove_stale_tmp(folder):
    """Remove the temporary folders that interrupted preparation runs left in ``folder``."""
    if not os.path.isdir(folder):
        return
    with os.scandir(folder) as it:
        stale = [entry.path for entry in it if entry.is_dir() and _is_stale_tmp(entry.name)]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)


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


# ------------------------------------------------------------------------------------------- records of ownership
# Every output folder holds a record, ``.sources.json``: the settings and inputs of the run that made it, from which
# the pair folders it made follow (patches 000001..N, or one folder per pair name). A run removes nothing but the
# folders a record lists, and only with ``replace``; everything it refuses, it refuses before writing anything.
def read_record(folder):
    """The record of what a preparation made in ``folder`` (``None`` when there is none)."""
    path = os.path.join(folder, RECORD)
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise PreparationError(f'{path}: cannot read it ({getattr(err, "strerror", None) or err}); expected the '
                               'record of what the preparation made there. Move the folder away or choose another '
                               'output folder') from None


def write_record(folder, record):
    """Write ``folder/.sources.json`` atomically: a crash or a full disk leaves the old record or the new one."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, RECORD)
    tmp = f'{path}.tmp{os.getpid()}'
    try:
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(record, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _names(entries, limit=3):
    names = [e[0] if isinstance(e, list) and e else e for e in entries]
    return f'{len(names)} ({", ".join(map(str, names[:limit]))}{", ..." if len(names) > limit else ""})'


def describe_change(old, new, limit=3):
    """The recorded settings against the new ones in a few words: ``pairs: recorded 3 (a, b, c), now 1 (a)``."""
    parts = []
    for key in [*new, *(k for k in old if k not in new)]:
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if key == 'pairs' and isinstance(a, list) and isinstance(b, list):
            same_names = [e[0] if isinstance(e, list) else e for e in a] == [e[0] if isinstance(e, list) else e
                                                                             for e in b]
            if same_names:  # the same pair names from other files: name the first pair that differs
                x, y = next((x, y) for x, y in zip(a, b) if x != y)
                parts.append(f'pair {y[0]} from other files: recorded {json.dumps(x[1:])}, now {json.dumps(y[1:])}')
            else:
                parts.append(f'pairs: recorded {_names(a)}, now {_names(b)}')
        elif isinstance(a, dict) and isinstance(b, dict):
            parts += [f'{key}.{part}' for part in describe_change(a, b, limit).split('; ')]
        else:
            parts.append(f'{key}: recorded {json.dumps(a)}, now {json.dumps(b)}')
    return '; '.join(parts[:limit] + (['...'] if len(parts) > limit else []))


def _compare_record(folder, record, made, replace, upgrade=None):
    """Check ``folder``'s record against the new ``record``; returns ``(recorded folders, folders to remove)``.

    ``made(record)`` lists the folders a record says were made; ``upgrade(old, new)`` accepts a record of an earlier
    version for the same inputs. Other settings are refused unless ``replace``, which removes the recorded folders
    (those still there) and nothing else.
    """
    old = read_record(folder)
    if old is None:
        return set(), []
    try:
        recorded = made(old)
    except (KeyError, TypeError, IndexError, AttributeError, ValueError):
        raise PreparationError(f'{os.path.join(folder, RECORD)}: not a record this preparation writes; move the '
                               'folder away or choose another output folder') from None
    if old == record or (upgrade is not None and upgrade(old, record)):
        return set(recorded), []
    if not replace:
        raise PreparationError(
            f'{folder}: was prepared with other settings ({describe_change(old, record)}); rerun with {REPLACE_FLAG} '
            f'to remove the {len(recorded)} folder(s) its record {RECORD} lists and prepare it again (nothing else '
            'there is touched), or choose another output folder')
    return set(recorded), [path for path in recorded if os.path.isdir(path)]


def _refuse_foreign(path, folder):
    raise PreparationError(f'{path}: already there and not made by this preparation ({os.path.join(folder, RECORD)} '
                           'does not list it); move it away or choose another output folder')


@dataclass
class Plan:
    """The work of one preparation step in ``root``, decided (every refusal made) before anything is written.

    ``remove``: folders an earlier run made with other settings (``replace``); ``records``: ``(folder, record)`` to
    write before the first pair; ``jobs`` for ``job``, one per pair with folders still to write; ``result``: what the
    step returns (a count or counts). For a test set, ``hr_names``: its HR pair names once the step has run (the
    user's included); ``made_names``: those it makes; ``recorded``: whether an earlier run left a record.
    """
    root: str
    desc: str
    job: Callable
    jobs: list
    records: list
    remove: list = field(default_factory=list)
    folders: list = field(default_factory=list)
    result: object = None
    hr_names: tuple = ()
    made_names: frozenset = frozenset()
    recorded: bool = False


def execute(plans, workers=None):
    """Carry out planned steps: every removal first, then each step's record, then its pair folders."""
    for plan in plans:
        if plan.remove:
            for path in plan.remove:
                shutil.rmtree(path)
            names = sorted(os.path.relpath(p, plan.root) for p in plan.remove)
            print(f'{plan.root}: removed {len(names)} folder(s) that its record lists (made by an earlier run with '
                  f'other settings): {", ".join(names[:5])}{" ..." if len(names) > 5 else ""}', flush=True)
    for plan in plans:
        for folder, record in plan.records:
            write_record(folder, record)
        for folder in plan.folders:
            os.makedirs(folder, exist_ok=True)
            remove_stale_tmp(folder)
        _run(plan.job, plan.jobs, workers, plan.desc)
    return [plan.result for plan in plans]


def _check_name(name, where):
    if not name or name in ('.', '..') or name.startswith('.') or '/' in name or os.sep in name:
        raise PreparationError(f'{where}: pair name {name!r} cannot be a folder name; expected a plain name that does '
                               'not start with a dot')


# ------------------------------------------------------------------------------------------------ training patches
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


def _patch_folders(out_dir, record):
    """The patch folders a record of ``patches_x{s}`` says were made: 000001 to the total of its pairs' counts."""
    total = sum(int(p[3]) for p in record['pairs'])
    return [os.path.join(out_dir, layout.patch_dir_name(i)) for i in range(1, total + 1)]


def plan_training_patches(sources, out_root, scales=(2, 4), strides=None, replace=False):
    """Plan ``out_root/patches_x{s}/NNNNNN/`` for every pair and scale (see ``build_training_patches``)."""
    strides = {s: (strides or {}).get(s, STRIDE) for s in scales}
    sizes = [pair_size(src) for src in sources]
    totals, tasks_per_pair, records, remove, folders = {}, [[] for _ in sources], [], [], []
    for scale in scales:
        out_dir = layout.patches_dir(out_root, scale)
        counts = [count_patches(h, w, scale, strides[scale]) for h, w in sizes]
        # names, counts and the byte sizes of both views: a pair replaced by another image under the same name is
        # caught (sizes rather than times, so that extracting the same zip again still resumes)
        record = {'scale': scale, 'stride': strides[scale], 'patch_lr': [PATCH_H, PATCH_W],
                  'pairs': [[src.name, os.path.basename(src.left), src.halve, n,
                             os.path.getsize(src.left), os.path.getsize(src.right)]
                            for src, n in zip(sources, counts)]}
        recorded, stale = _compare_record(out_dir, record, lambda r, d=out_dir: _patch_folders(d, r), replace,
                                          upgrade=_legacy_match)
        existing = {os.path.join(out_dir, n) for n in layout.list_pair_folders(out_dir)} if os.path.isdir(
            out_dir) else set()
        targets = _patch_folders(out_dir, record)
        foreign = sorted(set(targets) & existing - recorded)
        if foreign:
            _refuse_foreign(foreign[0], out_dir)
        done = existing - set(stale)
        first = 1
        for k, n in enumerate(counts):
            if not all(os.path.join(out_dir, layout.patch_dir_name(first + i)) in done for i in range(n)):
                tasks_per_pair[k].append((scale, strides[scale], first, out_dir))
            first += n
        totals[scale] = first - 1
        remove += stale
        folders.append(out_dir)
        if read_record(out_dir) != record:
            records.append((out_dir, record))
    jobs = [(src, tasks) for src, tasks in zip(sources, tasks_per_pair) if tasks]
    return Plan(root=out_root, desc='patches', job=_patch_job, jobs=jobs, records=records, remove=remove,
                folders=folders, result=totals)


def build_training_patches(sources, out_root, scales=(2, 4), strides=None, workers=None, replace=False):
    """Cut every pair of ``sources`` into ``out_root/patches_x{s}/NNNNNN/`` for each scale.

    ``strides`` maps a scale to its LR stride (default 20 for all). Returns ``{scale: number of patches}``. A rerun
    with the same inputs resumes; with others it is refused unless ``replace`` (see ``_compare_record``).
    """
    return execute([plan_training_patches(sources, out_root, scales, strides, replace)], workers)[0]


# ------------------------------------------------------------------------------------------------------- test sets
def _test_images(src, scales):
    """``{folder name: {stem: image}}`` of one pair of a test set: one HR cropped to a multiple of every scale."""
    hr0, hr1 = read_pair(src)
    multiple = math.lcm(*scales)
    hr0, hr1 = modcrop(hr0, multiple), modcrop(hr1, multiple)
    images = {os.path.basename(layout.lr_dir('', s)): {'lr0': make_lr(hr0, s), 'lr1': make_lr(hr1, s)}
              for s in scales}
    images[os.path.basename(layout.hr_dir(''))] = {'hr0': hr0, 'hr1': hr1}  # HR last: a pair is complete with it
    return images


def _test_job(job):
    src, set_root, scales = job
    for sub, views in _test_images(src, scales).items():
        final = os.path.join(set_root, sub, src.name)
        if not os.path.isdir(final):
            write_folder_atomic(final, views)
    return src.name


def _same_pair(job):
    """The first of ``folders`` (test-set folders of ``src`` that a preparation did not record) whose images are not
    exactly those the preparation writes, or ``None``."""
    src, set_root, scales, folders = job
    images = _test_images(src, scales)
    for folder in folders:
        views = images[os.path.basename(os.path.dirname(folder))]
        files = sorted(os.listdir(folder))
        if files != sorted(os.path.basename(layout.view_file('', stem)) for stem in views):
            return folder
        for stem, img in views.items():
            have = imread(layout.view_file(folder, stem))
            if have.shape != img.shape or not np.array_equal(have, img):
                return folder
    return None


def _test_set_folders(set_root, record):
    """The pair folders a test-set record says were made: ``hr/<pair>`` and ``lr_x{s}/<pair>`` for each pair."""
    subs = [layout.hr_dir(set_root)] + [layout.lr_dir(set_root, int(s)) for s in record['scales']]
    return [os.path.join(sub, str(p[0])) for p in record['pairs'] for sub in subs]


def plan_test_set(sources, set_root, scales=(2, 4), replace=False, desc='test set', workers=None):
    """Plan ``set_root/hr/<name>/`` and ``set_root/lr_x{s}/<name>/`` for every pair (see ``build_test_set``)."""
    names = [src.name for src in sources]
    if len(set(names)) != len(names):
        raise PreparationError(f'{set_root}: duplicate pair names in the sources; expected unique names')
    for src in sources:
        _check_name(src.name, src.left)
        pair_size(src)  # readable, equal sizes: refused now rather than halfway
    scales = sorted(int(s) for s in scales)
    record = {'scales': scales, 'pairs': [[src.name, os.path.basename(src.left), os.path.basename(src.right),
                                           src.halve, os.path.getsize(src.left), os.path.getsize(src.right)]
                                          for src in sources]}
    recorded, stale = _compare_record(set_root, record, lambda r: _test_set_folders(set_root, r), replace)
    subs = [layout.hr_dir(set_root)] + [layout.lr_dir(set_root, s) for s in scales]
    gone = set(stale)
    foreign = {}  # pair -> its folders that are there but not recorded
    for src in sources:
        for sub in subs:
            path = os.path.join(sub, src.name)
            if os.path.isdir(path) and path not in recorded:
                foreign.setdefault(src.name, []).append(path)
    if foreign:  # adopted only when they hold exactly what this preparation writes (a set an earlier version made)
        by_name = {src.name: src for src in sources}
        checks = [(by_name[name], set_root, scales, paths) for name, paths in foreign.items()]
        differing = sorted(p for p in _run(_same_pair, checks, workers, f'{desc}: checking folders') if p)
        if differing:
            _refuse_foreign(differing[0], set_root)
    jobs = [(src, set_root, tuple(scales)) for src in sources
            if not all(os.path.isdir(os.path.join(sub, src.name)) and os.path.join(sub, src.name) not in gone
                       for sub in subs)]
    hr_root = layout.hr_dir(set_root)
    before = set(layout.list_pair_folders(hr_root)) if os.path.isdir(hr_root) else set()
    removed_hr = {os.path.basename(p) for p in stale if os.path.dirname(p) == hr_root}
    old = read_record(set_root)
    return Plan(root=set_root, desc=desc, job=_test_job, jobs=jobs, records=[] if old == record else
                [(set_root, record)], remove=stale, folders=subs, result=len(sources),
                hr_names=tuple(sorted(before - removed_hr | set(names))), made_names=frozenset(names),
                recorded=old is not None)


def build_test_set(sources, set_root, scales=(2, 4), workers=None, desc='test set', replace=False):
    """Write ``set_root/hr/<name>/`` and ``set_root/lr_x{s}/<name>/`` for every pair; returns the pair count.

    One HR, cropped to a multiple of every scale (4 for x2 and x4), serves all scales. The set's record
    (``set_root/.sources.json``) lists the pairs, their files and the scales; a rerun with the same resumes, one with
    others is refused unless ``replace`` (which removes the recorded pair folders, and nothing else). Pair folders of
    others are never removed nor overwritten: one under a name of ``sources`` is refused, unless it holds exactly the
    images this function writes (a set made before records existed).
    """
    return execute([plan_test_set(sources, set_root, scales, replace, desc, workers)], workers)[0]


# --------------------------------------------------------------------------------------- fixed realistic LR views
def _degrade_job(job):
    hr_root, name, out_dir, scale, degradation, seed = job
    folder = os.path.join(hr_root, name)
    hr0, hr1 = (imread(layout.view_file(folder, stem)) for stem in layout.HR_VIEWS)
    if hr0.shape != hr1.shape or hr0.shape[0] % scale or hr0.shape[1] % scale:
        raise PreparationError(f'{folder}: HR views of {hr0.shape[0]}x{hr0.shape[1]} and {hr1.shape[0]}x'
                               f'{hr1.shape[1]}; expected equal sizes that are multiples of the scale {scale}')
    lr0, lr1 = degrade_pair(hr0, hr1, scale, degradation, pair_generator(seed, name))  # a subset keeps its LR
    write_folder_atomic(os.path.join(out_dir, name), {'lr0': lr0, 'lr1': lr1})
    return name


def _check_hr_pair(folder, scale):
    """An HR pair folder that is already there: both views, of equal sizes that are multiples of ``scale``."""
    sizes = []
    for stem in layout.HR_VIEWS:
        path = layout.view_file(folder, stem)
        if not os.path.isfile(path):
            raise PreparationError(f'{path}: missing; expected the HR views {" and ".join(layout.HR_VIEWS)} in every '
                                   f'pair folder of {os.path.dirname(folder)}')
        sizes.append(image_size(path))
    if sizes[0] != sizes[1] or sizes[0][0] % scale or sizes[0][1] % scale:
        raise PreparationError(f'{folder}: HR views of {sizes[0][0]}x{sizes[0][1]} and {sizes[1][0]}x{sizes[1][1]}; '
                               f'expected equal sizes that are multiples of the scale {scale}')


def plan_degraded_lr(set_root, degradation, scale, seed, tag, replace=False, desc='degraded LR', upstream=None):
    """Plan ``set_root/lr_x{scale}_{tag}/`` (see ``build_degraded_lr``); ``upstream``: the plan of the test set's
    own preparation when it runs first in the same command (its HR pairs are not written yet)."""
    hr_root = layout.hr_dir(set_root)
    if upstream is None:
        if not os.path.isdir(hr_root):
            raise PreparationError(f'{hr_root}: no such folder; expected the HR pairs of a prepared test set '
                                   '(hr/<pair>/hr0.png, hr1.png)')
        names = layout.list_pair_folders(hr_root)
    else:
        names = list(upstream.hr_names)
    if not names:
        raise PreparationError(f'{hr_root}: no pair folders; expected hr/<pair>/hr0.png, hr1.png')
    for name in names:
        if upstream is None or name not in upstream.made_names:
            _check_hr_pair(os.path.join(hr_root, name), scale)
    out_dir = layout.lr_dir(set_root, scale, tag)
    record = json.loads(json.dumps({'scale': scale, 'seed': seed, 'seeding': 'by pair name',  # not by position
                                    'degradation': degradation.options, 'pairs': names}))  # as read back: lists
    recorded, stale = _compare_record(out_dir, record, lambda r: [os.path.join(out_dir, n) for n in r['pairs']],
                                      replace)
    for name in names:
        path = os.path.join(out_dir, name)
        if os.path.isdir(path) and path not in recorded:
            _refuse_foreign(path, out_dir)
    gone = set(stale)
    jobs = [(hr_root, name, out_dir, scale, degradation, seed) for name in names
            if not os.path.isdir(os.path.join(out_dir, name)) or os.path.join(out_dir, name) in gone]
    return Plan(root=out_dir, desc=desc, job=_degrade_job, jobs=jobs, records=[] if read_record(out_dir) == record else
                [(out_dir, record)], remove=stale, folders=[out_dir], result=len(names))


def build_degraded_lr(set_root, degradation, scale, seed, tag, workers=None, desc='degraded LR', replace=False):
    """Write ``set_root/lr_x{scale}_{tag}/<pair>/lr0.png, lr1.png``: the HR pairs of ``set_root/hr/`` degraded by
    ``degradation`` (a ``basicsr.data.degradations.Degradation``). The pair named ``name`` draws everything from
    ``pair_generator(seed, name)`` (seeded by a hash of both), so the files are byte-identical on every run and
    machine, and a set of fewer pairs keeps the LR views of those it keeps. An interrupted run resumes; a folder
    made with another seed, degradation or pair list is refused unless ``replace``. Returns the pair count."""
    return execute([plan_degraded_lr(set_root, degradation, scale, seed, tag, replace, desc)], workers)[0]


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
