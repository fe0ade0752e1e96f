"""Pictures of results (PNG, matplotlib Agg backend).

Side-by-side comparison, bicubic | ours | HR with zoomed crops, for chosen pairs of a test set::

    python scripts/plot_results.py compare --sr_dir results/NAFSSR-T_x4/visualization/Motorcycle \\
        --lq_dir datasets/sample/test/Motorcycle/lr_x4 --gt_dir datasets/sample/test/Motorcycle/hr \\
        --scale 4 --output figures/ [--pairs 0001 ...] [--view L] [--crop Y X SIZE]

PSNR per dataset from one or more metrics.json (bars), or PSNR over iterations from a training log (lines)::

    python scripts/plot_results.py plot --metrics results/A/metrics.json results/B/metrics.json --output psnr.png
    python scripts/plot_results.py plot --log experiments/NAME/NAME_<time>.log --output curve.png
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from basicsr.metrics import calculate_psnr  # noqa: E402
from basicsr.utils import visualize  # noqa: E402
from basicsr.utils.errors import UserError, run_main  # noqa: E402
from basicsr.utils.img_util import imread  # noqa: E402



class PlotInputError(UserError, ValueError):
    """A missing or unreadable input of the plots; the message names the file or flag."""

def compare(args):
    from basicsr.utils.matlab_functions import imresize

    view = {'L': 0, 'R': 1}[args.view]
    pairs = args.pairs or sorted(name[:-6] for name in os.listdir(args.sr_dir) if name.endswith(f'_{args.view}.png'))
    if not pairs:
        raise PlotInputError(f'{args.sr_dir}: no <pair>_{args.view}.png images (run test.py with val:save_img true)')
    os.makedirs(args.output, exist_ok=True)
    written = []
    for pair in pairs:
        sr = imread(os.path.join(args.sr_dir, f'{pair}_{args.view}.png'))
        lq = imread(os.path.join(args.lq_dir, pair, f'lr{view}.png'))
        hr = imread(os.path.join(args.gt_dir, pair, f'hr{view}.png'))
        bicubic = imresize(lq, args.scale)
        if not (sr.shape == hr.shape == bicubic.shape):
            raise PlotInputError(f'{pair}: sizes differ: SR {sr.shape[:2]}, HR {hr.shape[:2]}, bicubic x{args.scale} of '
                             f'LR {bicubic.shape[:2]} (is --scale right?)')
        panels = [(f'Bicubic ({calculate_psnr(bicubic, hr):.2f} dB)', bicubic),
                  (f'{args.label} ({calculate_psnr(sr, hr):.2f} dB)', sr), ('HR', hr)]
        path = os.path.join(args.output, f'{pair}_{args.view}_compare.png')
        crop = visualize.side_by_side(panels, path, crop=tuple(args.crop) if args.crop else None)
        print(f'{path}  (crop y={crop[0]} x={crop[1]} size={crop[2]})')
        written.append(path)
    return written


def plot(args):
    if bool(args.metrics) == bool(args.log):
        raise PlotInputError('plot: give either --metrics FILE [FILE ...] or --log FILE')
    if args.metrics:
        labels = args.labels or [os.path.basename(os.path.dirname(os.path.abspath(p))) for p in args.metrics]
        if len(labels) != len(args.metrics):
            raise PlotInputError(f'--labels: {len(labels)} labels for {len(args.metrics)} metrics files')
        runs = {}
        for label, path in zip(labels, args.metrics):
            try:
                with open(path, encoding='utf-8') as f:
                    runs[label] = json.load(f)
            except (OSError, json.JSONDecodeError) as err:
                raise PlotInputError(f'{path}: cannot read a metrics.json ({err})') from None
        visualize.plot_metric_bars(runs, args.metric, args.output)
    else:
        try:
            with open(args.log, encoding='utf-8', errors='replace') as f:
                curves = visualize.parse_training_log(f.read())
        except OSError as err:
            raise PlotInputError(f'{args.log}: cannot read the training log ({err.strerror})') from None
        visualize.plot_curves(curves, args.metric, args.output)
    print(args.output)
    return args.output


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Comparison pictures and metric plots.')
    sub = parser.add_subparsers(dest='command', required=True)
    c = sub.add_parser('compare', help='bicubic | ours | HR with zoomed crops')
    c.add_argument('--sr_dir', required=True, help='folder of <pair>_L.png / <pair>_R.png (test.py visualization)')
    c.add_argument('--lq_dir', required=True, help='LR test set folder (<pair>/lr0.png, lr1.png)')
    c.add_argument('--gt_dir', required=True, help='HR test set folder (<pair>/hr0.png, hr1.png)')
    c.add_argument('--scale', type=int, required=True)
    c.add_argument('--pairs', nargs='+', help='pair names (default: every pair in --sr_dir)')
    c.add_argument('--view', choices=['L', 'R'], default='L')
    c.add_argument('--crop', nargs=3, type=int, metavar=('Y', 'X', 'SIZE'),
                   help='zoomed window in HR pixels (default: the most detailed quarter-size window)')
    c.add_argument('--label', default='Ours', help='title of the SR panel')
    c.add_argument('--output', required=True, help='output folder')
    p = sub.add_parser('plot', help='PSNR per dataset (metrics.json) or over iterations (training log)')
    p.add_argument('--metrics', nargs='+', help='metrics.json files written by test.py')
    p.add_argument('--labels', nargs='+', help='one label per metrics file (default: its folder name)')
    p.add_argument('--log', help='training log with validation lines')
    p.add_argument('--metric', default='psnr', help='metric name (default psnr)')
    p.add_argument('--output', required=True, help='output PNG')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    result = run_main('plot_results.py', compare if args.command == 'compare' else plot, args)
    return result if isinstance(result, int) and not isinstance(result, bool) else 0 if result else 1


if __name__ == '__main__':
    sys.exit(main())
