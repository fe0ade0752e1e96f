"""Flickr1024 (+ iPASSR's 60 Middlebury pairs) -> NAFSSR's training patches, validation set and test set.

    python scripts/data_preparation/prepare_flickr1024.py [--root datasets] [--workers N]
    (or: bash scripts/data_preparation/process_Flickr1024.sh [ROOT])

Input: ``ROOT/Flickr1024/{Train,Validation,Test}/NNNN_L.png, NNNN_R.png`` (extracted from ``ROOT/Flickr1024.zip``
when only the zip is there) and, optionally, ``ROOT/Middlebury_train/`` with iPASSR's 60 Middlebury training pairs
as ``<name>_L.png/<name>_R.png`` or as scene folders ``<scene>/im0.png, im1.png`` (halved with MATLAB bicubic
first, as iPASSR does). Output: ``ROOT/StereoSR/patches_x2``, ``patches_x4``, ``val/Flickr1024`` and
``test/Flickr1024`` (each with ``hr``, ``lr_x2``, ``lr_x4``), and with ``--whole_train`` the whole training pairs in
``train/{hr,lr_x2,lr_x4}`` too. Rerunning resumes; the counts are printed at the end.

Each output folder keeps a record, ``.sources.json``, of the pairs and settings it was made from. A rerun with other
inputs is refused before anything is written; ``--replace`` removes the folders the records list and prepares them
again. Folders it did not make are never removed nor overwritten.
"""
import argparse
import os
import shutil
import sys
import time
import zipfile

from basicsr.data.preparation import (REPLACE_FLAG, PairSource, PreparationError, execute, find_pairs,
                                      plan_test_set, plan_training_patches)
from basicsr.utils.errors import run_main

SCALES = (2, 4)


def extract_flickr1024(root):
    """``ROOT/Flickr1024/`` from ``ROOT/Flickr1024.zip`` if the folder is not there yet; returns its path."""
    folder = os.path.join(root, 'Flickr1024')
    if os.path.isdir(os.path.join(folder, 'Train')):
        return folder
    archive = os.path.join(root, 'Flickr1024.zip')
    if not os.path.isfile(archive):
        raise PreparationError(f'{folder}/Train: no such folder and no {archive}; expected the Flickr1024 download '
                               '(https://yingqianwang.github.io/Flickr1024/) in one of those places')
    tmp = os.path.join(root, '.tmp-Flickr1024')
    shutil.rmtree(tmp, ignore_errors=True)
    print(f'Extracting {archive} ...')
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp)
    inner = tmp if os.path.isdir(os.path.join(tmp, 'Train')) else os.path.join(tmp, 'Flickr1024')
    if not os.path.isdir(os.path.join(inner, 'Train')):
        raise PreparationError(f'{archive}: no Train/ folder inside; expected Train/, Validation/ and Test/')
    os.rename(inner, folder)
    shutil.rmtree(tmp, ignore_errors=True)
    return folder


def middlebury_sources(folder):
    """iPASSR's Middlebury training pairs (halved before patch extraction), or [] when the folder is absent."""
    if not os.path.isdir(folder):
        return []
    scenes = sorted(d for d in os.listdir(folder)
                    if os.path.isfile(os.path.join(folder, d, 'im0.png')) and not d.startswith('.'))
    if scenes:
        return [PairSource(s, os.path.join(folder, s, 'im0.png'), os.path.join(folder, s, 'im1.png'), halve=True)
                for s in scenes]
    return find_pairs(folder, halve=True)


def run():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--root', default='datasets', help='folder holding Flickr1024(.zip) (default: datasets)')
    parser.add_argument('--workers', type=int, default=None, help='processes (default: all cores)')
    parser.add_argument('--whole_train', action='store_true',
                        help='also write the whole training pairs to ROOT/StereoSR/train/{hr,lr_x2,lr_x4} (for '
                             'recipes that crop them at random, e.g. the second stage of EHFSSR)')
    parser.add_argument(REPLACE_FLAG, action='store_true',
                        help='when an output folder was prepared from other inputs: remove the folders its record '
                             '(.sources.json) lists and prepare it again; folders it did not make are kept')
    args = parser.parse_args()
    start = time.time()
    try:
        flickr = extract_flickr1024(args.root)
        out = os.path.join(args.root, 'StereoSR')
        middlebury = middlebury_sources(os.path.join(args.root, 'Middlebury_train'))
        train = middlebury + find_pairs(os.path.join(flickr, 'Train'))  # iPASSR's order: Middlebury first
        print(f'Training pairs: {len(middlebury)} Middlebury + {len(train) - len(middlebury)} Flickr1024')
        # every step is planned, and every refusal made, before anything is written
        sets = [('validation', find_pairs(os.path.join(flickr, 'Validation')), os.path.join(out, 'val', 'Flickr1024')),
                ('test', find_pairs(os.path.join(flickr, 'Test')), os.path.join(out, 'test', 'Flickr1024'))]
        if args.whole_train:
            sets.append(('whole training pairs', train, os.path.join(out, 'train')))
        plans = [plan_training_patches(train, out, scales=SCALES, replace=args.replace)]
        plans += [plan_test_set(sources, folder, scales=SCALES, replace=args.replace, desc=desc, workers=args.workers)
                  for desc, sources, folder in sets]
        totals, n_val, n_test, *n_train = execute(plans, workers=args.workers)
        if n_train:
            print(f'train: {n_train[0]} whole pairs')
    except OSError as err:  # an unreadable source or a full disk: name the file
        raise PreparationError(f'{err.filename or args.root}: {err.strerror or err}') from None
    print(f'Done in {time.time() - start:.0f} s: ' + ', '.join(f'patches_x{s}: {n}' for s, n in totals.items())
          + f', val/Flickr1024: {n_val} pairs, test/Flickr1024: {n_test} pairs (in {out})')


def main():
    sys.exit(run_main('prepare_flickr1024.py', run))


if __name__ == '__main__':
    main()
