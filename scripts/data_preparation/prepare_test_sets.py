"""KITTI 2012, KITTI 2015 and Middlebury test sets in NAFSSR's layout (``<out>/{hr,lr_x2,lr_x4}/<pair>/``).

    python scripts/data_preparation/prepare_test_sets.py kitti2012  --src datasets/KITTI2012  [--out ...]
    python scripts/data_preparation/prepare_test_sets.py kitti2015  --src datasets/KITTI2015  [--out ...]
    python scripts/data_preparation/prepare_test_sets.py middlebury --src datasets/Middlebury [--out ...]

Fixed realistic test sets: ``--degradation <yml> [--seed N] [--tag T] [--scale 4]`` also writes
``<out>/lr_x4_<tag>/<pair>/lr0.png, lr1.png`` (tag: the YAML file's name, ``lr_x4_realistic_x4`` for
``options/degradations/realistic_x4.yml``), byte-identical for the same seed on any machine. The set ``prepared``
adds them to a test set already in the layout (Flickr1024 from prepare_flickr1024.py, iPASSR's prepared folders):

    python scripts/data_preparation/prepare_test_sets.py prepared --src datasets/StereoSR/test/Flickr1024 \
        --degradation options/degradations/realistic_x4.yml --seed 0

Raw downloads: KITTI 2012 ``data_stereo_flow`` (``<split>/colored_0|colored_1/NNNNNN_10.png``), KITTI 2015
``data_scene_flow`` (``<split>/image_2|image_3/NNNNNN_10.png``), Middlebury 2014 scenes (``<scene>/im0.png, im1.png``).
``--src`` is the extracted folder (holding ``training``/``testing`` for KITTI). Default ``--out``:
``datasets/StereoSR/test/{KITTI2012,KITTI2015,Middlebury}``.

Pair selection (deterministic, printed, and written to ``<out>/pairs.txt``): iPASSR and NAFSSR distribute their
test sets already prepared (20 KITTI 2012 pairs, 20 KITTI 2015 pairs, 5 Middlebury pairs) and their code does not
list which pairs they are. By default we take, in sorted order, the first 20 ``*_10.png`` frames of the KITTI
``testing`` split and the first 5 Middlebury scenes; ``--names FILE`` (one name per line: ``000003_10`` or a
scene name) or ``--count``/``--split`` select others. If you have iPASSR's prepared test folders, they are already
in this layout: copy them to ``datasets/StereoSR/test/`` to reproduce the published tables exactly.

Ownership: each output folder keeps a record, ``.sources.json`` (the set's in ``<out>``, the degraded views' in
``lr_x4_<tag>``), of the pairs, files and settings it was made from. A rerun with the same settings resumes (or does
nothing); one with other settings is refused before anything is written, and with ``--replace`` removes the pair
folders the records list and prepares again. Pair folders it did not make (your own, iPASSR's) are never removed
nor overwritten: one under a name it would write is refused.
"""
import argparse
import os
import re
import sys

from basicsr.data.degradations import load_degradation
from basicsr.data.preparation import (REPLACE_FLAG, PairSource, PreparationError, execute, plan_degraded_lr,
                                      plan_test_set)
from basicsr.utils.errors import run_main

SETS = {  # name: (output name, left folder, right folder, default count)
    'kitti2012': ('KITTI2012', 'colored_0', 'colored_1', 20),
    'kitti2015': ('KITTI2015', 'image_2', 'image_3', 20),
    'middlebury': ('Middlebury', None, None, 5),
    'prepared': (None, None, None, None),  # a set folder already holding hr/<pair>/: only --degradation to do
}


def _read_names(path):
    with open(path, encoding='utf-8') as f:
        return [line.strip() for line in f if line.strip() and not line.startswith('#')]


def kitti_sources(src, left_dir, right_dir, split, frame, count, names=None):
    """KITTI pairs ``<split>/<left_dir>/<name>.png`` + ``<right_dir>/<name>.png``, the first ``count`` sorted."""
    base = os.path.join(src, split) if os.path.isdir(os.path.join(src, split)) else src
    left_root, right_root = os.path.join(base, left_dir), os.path.join(base, right_dir)
    if not os.path.isdir(left_root):
        raise PreparationError(f'{left_root}: no such folder; expected the extracted KITTI download '
                               f'(<src>/{split}/{left_dir}/NNNNNN_{frame}.png)')
    if names is None:
        names = sorted(f[:-4] for f in os.listdir(left_root) if f.endswith(f'_{frame}.png'))[:count]
    sources = []
    for name in names:
        left, right = os.path.join(left_root, name + '.png'), os.path.join(right_root, name + '.png')
        for path, what in ((left, 'left'), (right, 'right')):
            if not os.path.isfile(path):
                raise PreparationError(f'{path}: missing; expected the {what} view of KITTI pair {name}')
        sources.append(PairSource(name, left, right))
    return sources


def middlebury_sources(src, count, names=None):
    """Middlebury scenes ``<scene>/im0.png, im1.png``, the first ``count`` in sorted order."""
    if not os.path.isdir(src):
        raise PreparationError(f'{src}: no such folder; expected Middlebury scenes <scene>/im0.png, im1.png')
    if names is None:
        names = sorted(d for d in os.listdir(src) if os.path.isfile(os.path.join(src, d, 'im0.png')))[:count]
    sources = []
    for name in names:
        left, right = os.path.join(src, name, 'im0.png'), os.path.join(src, name, 'im1.png')
        for path, what in ((left, 'left'), (right, 'right')):
            if not os.path.isfile(path):
                raise PreparationError(f'{path}: missing; expected the {what} view of Middlebury scene {name}')
        sources.append(PairSource(name, left, right))
    return sources


def _tag(args):
    tag = args.tag or os.path.splitext(os.path.basename(args.degradation))[0]
    if not re.fullmatch(r'[A-Za-z0-9][A-Za-z0-9_.-]*', tag):
        raise PreparationError(f'--tag: {tag!r} cannot be part of a folder name; expected letters, digits, _ . -')
    return tag


def run():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('set', choices=sorted(SETS))
    parser.add_argument('--src', required=True, help='extracted raw download (prepared: the set folder)')
    parser.add_argument('--out', help='output set folder (default datasets/StereoSR/test/<Set>; prepared: --src)')
    parser.add_argument('--split', default='testing', choices=('training', 'testing'), help='KITTI split')
    parser.add_argument('--frame', default='10', help='KITTI frame suffix (10 = the reference frame)')
    parser.add_argument('--count', type=int, help='number of pairs (default 20 for KITTI, 5 for Middlebury)')
    parser.add_argument('--names', help='file with the pair names to use, one per line')
    parser.add_argument('--workers', type=int, default=None, help='processes (default: all cores)')
    parser.add_argument('--degradation', help='YAML file of degradation options: also write lr_x<scale>_<tag>/')
    parser.add_argument('--seed', type=int, default=0, help='seed of the degradation (default 0)')
    parser.add_argument('--tag', help="folder suffix (default: the degradation file's name without .yml)")
    parser.add_argument('--scale', type=int, default=4, choices=(2, 4), help='scale of the degraded LR (default 4)')
    parser.add_argument(REPLACE_FLAG, action='store_true',
                        help='when the output was prepared with other settings: remove the pair folders its records '
                             '(.sources.json) list and prepare it again; folders it did not make are kept')
    args = parser.parse_args()
    if args.set == 'prepared' and not args.degradation:
        parser.error('prepared: --degradation is required (the set already has its HR and bicubic LR views)')
    if args.seed < 0:
        parser.error(f'--seed: expected a non-negative integer, got {args.seed}')
    out_name, left_dir, right_dir, default_count = SETS[args.set]
    out = args.out or (args.src if args.set == 'prepared' else os.path.join('datasets', 'StereoSR', 'test', out_name))
    try:
        degradation = None
        if args.degradation:  # checked before any work
            degradation, tag = load_degradation(args.degradation, '--degradation'), _tag(args)
        plans, sources = [], None
        if args.set != 'prepared':  # every step is planned, and every refusal made, before anything is written
            sources = raw_sources(args, left_dir, right_dir, default_count)
            plans.append(plan_test_set(sources, out, scales=(2, 4), replace=args.replace, desc=out_name,
                                       workers=args.workers))
            _check_pair_list(out, sources, plans[0])
        if degradation is not None:
            plans.append(plan_degraded_lr(out, degradation, args.scale, args.seed, tag, replace=args.replace,
                                          desc=f'{os.path.basename(os.path.normpath(out))} {tag}',
                                          upstream=plans[0] if plans else None))
        results = execute(plans, workers=args.workers)
        if sources is not None:
            _write_pair_list(out, sources)  # last: only for a finished set
            print(f'{out}: {results[0]} pairs ({", ".join(s.name for s in sources)})')
        if degradation is not None:
            print(f'{os.path.join(out, f"lr_x{args.scale}_{tag}")}: {results[-1]} pairs (seed {args.seed})')
    except OSError as err:  # an unreadable source or a full disk: name the file
        raise PreparationError(f'{err.filename or args.src}: {err.strerror or err}') from None


def _pair_list_text(sources):
    return ''.join(f'{s.name}\n' for s in sources)


def _check_pair_list(out, sources, plan):
    """``<out>/pairs.txt`` is this script's; one that is there without a record of the set and lists other pairs is
    not (a file of the user's), and is kept."""
    path = os.path.join(out, 'pairs.txt')
    if plan.recorded or not os.path.isfile(path):
        return
    with open(path, encoding='utf-8') as f:
        if f.read() != _pair_list_text(sources):
            raise PreparationError(f'{path}: already there and not written by this preparation (no record of the set '
                                   'lists it); move it away or choose another --out')


def _write_pair_list(out, sources):
    path = os.path.join(out, 'pairs.txt')
    if os.path.isfile(path):
        with open(path, encoding='utf-8') as f:
            if f.read() == _pair_list_text(sources):
                return
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(_pair_list_text(sources))
    os.replace(tmp, path)


def raw_sources(args, left_dir, right_dir, default_count):
    """The raw KITTI or Middlebury pairs to prepare (HR and MATLAB-bicubic LR views)."""
    count = args.count or default_count
    names = _read_names(args.names) if args.names else None
    if args.set == 'middlebury':
        sources = middlebury_sources(args.src, count, names)
    else:
        sources = kitti_sources(args.src, left_dir, right_dir, args.split, args.frame, count, names)
    if len(sources) < count and names is None:
        print(f'warning: only {len(sources)} pairs found in {args.src} (expected {count})')
    return sources


def main():
    sys.exit(run_main('prepare_test_sets.py', run))


if __name__ == '__main__':
    main()
