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
"""
import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from basicsr.data.degradations import load_degradation  # noqa: E402
from basicsr.data.preparation import PairSource, PreparationError, build_degraded_lr, build_test_set  # noqa: E402
from basicsr.utils.errors import run_main  # noqa: E402

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
        if args.set != 'prepared':
            prepare_raw_set(args, out, out_name, left_dir, right_dir, default_count)
        if degradation is not None:
            n = build_degraded_lr(out, degradation, args.scale, args.seed, tag, workers=args.workers,
                                  desc=f'{os.path.basename(os.path.normpath(out))} {tag}')
            print(f'{os.path.join(out, f"lr_x{args.scale}_{tag}")}: {n} pairs (seed {args.seed})')
    except OSError as err:  # an unreadable source or a full disk: name the file
        raise PreparationError(f'{err.filename or args.src}: {err.strerror or err}') from None


def prepare_raw_set(args, out, out_name, left_dir, right_dir, default_count):
    """HR and MATLAB-bicubic LR views of a raw KITTI or Middlebury download."""
    count = args.count or default_count
    names = _read_names(args.names) if args.names else None
    if args.set == 'middlebury':
        sources = middlebury_sources(args.src, count, names)
    else:
        sources = kitti_sources(args.src, left_dir, right_dir, args.split, args.frame, count, names)
    if len(sources) < count and names is None:
        print(f'warning: only {len(sources)} pairs found in {args.src} (expected {count})')
    n = build_test_set(sources, out, scales=(2, 4), workers=args.workers, desc=out_name)
    with open(os.path.join(out, 'pairs.txt'), 'w', encoding='utf-8') as f:  # last: only for a finished set
        f.writelines(f'{s.name}\n' for s in sources)
    print(f'{out}: {n} pairs ({", ".join(s.name for s in sources)})')


def main():
    sys.exit(run_main('prepare_test_sets.py', run))


if __name__ == '__main__':
    main()
