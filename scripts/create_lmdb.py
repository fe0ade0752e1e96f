"""Pack stereo data into LMDB: ``python scripts/create_lmdb.py SRC [SRC ...] [--out-dir DIR] [--overwrite]``.

Each SRC is either a folder of pair folders (``datasets/StereoSR/patches_x4``, ``.../test/Flickr1024/hr``), which
becomes ``SRC.lmdb`` next to it, or a test-set folder holding ``hr/`` and ``lr_x*/`` (``.../test/Flickr1024``),
whose sub-folders become ``hr.lmdb``, ``lr_x2.lmdb``, ... inside it. Use the result with
``io_backend: {type: lmdb}`` and the ``.lmdb`` folders as ``dataroot_gt`` / ``dataroot_lq``.
"""
import argparse
import os
import sys

from basicsr.data.lmdb_util import make_lmdb_from_folder
from basicsr.data.preparation import PreparationError
from basicsr.utils.errors import run_main


def plan(src, out_dir=None):
    """``[(folder of pair folders, lmdb path)]`` for one SRC argument."""
    src = os.path.normpath(src)
    if not os.path.isdir(src):
        raise PreparationError(f'{src}: no such folder; expected a patch folder, a test-set folder or one of its hr/lr_x*')
    subs = sorted(d for d in os.listdir(src)
                  if (d == 'hr' or d.startswith('lr_x')) and os.path.isdir(os.path.join(src, d)))
    pairs = [(os.path.join(src, d), d) for d in subs] if subs else [(src, os.path.basename(src))]
    base = out_dir or (src if subs else os.path.dirname(src))
    return [(folder, os.path.join(base, name + '.lmdb')) for folder, name in pairs]


def run():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', nargs='+', help='patch folder(s) or test-set folder(s)')
    parser.add_argument('--out-dir', help='where to write the .lmdb folders (default: next to the sources)')
    parser.add_argument('--overwrite', action='store_true', help='replace existing .lmdb folders')
    args = parser.parse_args()
    for src in args.src:
        for folder, db in plan(src, args.out_dir):
            n = make_lmdb_from_folder(folder, db, overwrite=args.overwrite)
            print(f'{db}: {n} images from {folder}')
    return 0


def main():
    sys.exit(run_main('create_lmdb.py', run))


if __name__ == '__main__':
    main()
