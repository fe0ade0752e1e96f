"""Pictures of results (PNG, matplotlib Agg backend).

Side-by-side comparison, bicubic | ours | HR with zoomed crops, for chosen pairs of a test set::

    python scripts/plot_results.py compare --sr_dir results/NAFSSR-T_x4/visualization/Motorcycle \\
        --lq_dir datasets/sample/test/Motorcycle/lr_x4 --gt_dir datasets/sample/test/Motorcycle/hr \\
        --scale 4 --output figures/ [--pairs 0001 ...] [--view L] [--crop Y X SIZE]

Several models side by side (one --label each), with the LR input enlarged by pixel repetition after the bicubic
panel (``--show_lr``): bicubic | LR (nearest) | fidelity | perceptual | HR, as docs/tracks.md::

    python scripts/plot_results.py compare --sr_dir results/A/visualization results/B/visualization \\
        --label Fidelity Perceptual --show_lr --lq_dir ... --gt_dir ... --scale 4 --output figures/ --tag tracks

PSNR per dataset from one or more metrics.json (bars), or PSNR over iterations from a training log (lines)::

    python scripts/plot_results.py plot --metrics results/A/metrics.json results/B/metrics.json --output psnr.png
    python scripts/plot_results.py plot --log experiments/NAME/NAME_<time>.log --output curve.png

The model zoo (basicsr/zoo.py): published (Left+Right)/2 PSNR against MACs for a 320x180 LR pair, with the
figures measured by scripts/reproduce_tables.py beside them when its JSON is given::

    python scripts/plot_results.py zoo --output docs/zoo_psnr_macs.png --set KITTI2015 --scale 4 \\
        [--measured results/reproduce_tables.json] [--size 180x320]

iPASSR's parallax attention for one LR pair: the left view, the disparity read from the attention, the validity
(occlusion) mask, and SGBM's disparity of the same pair (random weights without --weights, for a smoke test)::

    python scripts/plot_results.py attention --pair datasets/sample/test/Motorcycle/lr_x4/motorcycle_bottom \
        --scale 4 --weights experiments/pretrained_models/iPASSR_4xSR.pth.tar --output attention.png
"""
import argparse
import json
import os
import sys

from basicsr.data.layout import LR_VIEWS
from basicsr.metrics import calculate_psnr
from basicsr.toolbox import read_views, size_type, zoo_option_file
from basicsr.utils import visualize
from basicsr.utils.errors import UserError, run_main
from basicsr.utils.img_util import imread


class PlotInputError(UserError, ValueError):
    """A missing or unreadable input of the plots; the message names the file or flag."""


def compare(args):
    from basicsr.utils.matlab_functions import imresize

    view = {'L': 0, 'R': 1}[args.view]
    labels = args.label or ['Ours']
    if len(labels) != len(args.sr_dir):
        raise PlotInputError(f'--label: {len(labels)} labels for {len(args.sr_dir)} --sr_dir folders (one each)')
    pairs = args.pairs or sorted(name[:-6] for name in os.listdir(args.sr_dir[0])
                                 if name.endswith(f'_{args.view}.png'))
    if not pairs:
        raise PlotInputError(f'{args.sr_dir[0]}: no <pair>_{args.view}.png images (run test.py with val:save_img true)')
    os.makedirs(args.output, exist_ok=True)
    written = []
    for pair in pairs:
        srs = [imread(os.path.join(folder, f'{pair}_{args.view}.png')) for folder in args.sr_dir]
        lq = imread(os.path.join(args.lq_dir, pair, f'lr{view}.png'))
        hr = imread(os.path.join(args.gt_dir, pair, f'hr{view}.png'))
        bicubic = imresize(lq, args.scale)
        for folder, sr in zip(args.sr_dir, srs):
            if not (sr.shape == hr.shape == bicubic.shape):
                raise PlotInputError(f'{pair}: sizes differ: SR {sr.shape[:2]} ({folder}), HR {hr.shape[:2]}, bicubic '
                                     f'x{args.scale} of LR {bicubic.shape[:2]} (is --scale right?)')
        panels = [(f'Bicubic ({calculate_psnr(bicubic, hr):.2f} dB)', bicubic)]
        if args.show_lr:  # what the network was given, each LR pixel as a scale x scale block
            panels.append((f'LR (nearest x{args.scale})', lq.repeat(args.scale, axis=0).repeat(args.scale, axis=1)))
        panels += [(f'{label} ({calculate_psnr(sr, hr):.2f} dB)', sr) for label, sr in zip(labels, srs)]
        panels.append(('HR', hr))
        path = os.path.join(args.output, f'{pair}_{args.view}_{args.tag}.png')
        crop = tuple(args.crop) if args.crop else visualize.pick_crop(hr, args.crop_size) if args.crop_size else None
        crop = visualize.side_by_side(panels, path, crop=crop, dpi=args.dpi)
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


def zoo_points(test_set, scale, size, measured_json=None):
    """``[{model, family, macs, params, published, measured}]`` for the zoo's models at ``scale`` that have a
    published or measured (Left+Right)/2 PSNR on ``test_set`` and whose option file is here; MACs of one eval
    forward pass on a ``size`` (h, w) LR pair (basicsr.models.archs.complexity, as model_complexity.py)."""
    from pathlib import Path

    from basicsr import zoo
    from basicsr.models.archs import define_network
    from basicsr.models.archs.complexity import count_macs
    from basicsr.utils.options import yaml_load

    measured = {}
    if measured_json:
        try:
            with open(measured_json, encoding='utf-8') as f:
                rows = json.load(f)['rows']
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise PlotInputError(f'{measured_json}: cannot read the rows of reproduce_tables.py\'s JSON ({err})'
                                 ) from None
        measured = {(r['model'], r['set']): r['measured']['psnr'] for r in rows}
    points = []
    for model in zoo.MODELS.values():
        published = getattr(zoo.published(model.name, test_set), 'psnr', None)
        got = measured.get((model.name, test_set))
        if model.scale != scale or (published is None and got is None):
            continue
        option = zoo_option_file(model)
        if not os.path.isfile(option):
            print(f'note: {model.name}: left out, its option file {model.option} is not here', file=sys.stderr)
            continue
        net = define_network(yaml_load(Path(option))['network_g'], key_path=f'{model.option}: network_g').eval()
        # the card's count is for a 320x180 pair (counting the large networks again takes minutes on a CPU)
        counted = model.macs_g is not None and tuple(size) == (180, 320)
        points.append({'model': model.name, 'family': model.family, 'published': published, 'measured': got,
                       'macs': model.macs_g * 1e9 if counted else count_macs(net, (6, *size)),
                       'params': sum(p.numel() for p in net.parameters())})
    if not points:
        raise PlotInputError(f'zoo: no model at x{scale} with a published or measured PSNR on {test_set}')
    return points


def zoo_plot(args):
    points = zoo_points(args.set, args.scale, args.size, args.measured)
    plt = visualize._pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 4.5))
    colours = {}
    for p in points:
        colour = colours.setdefault(p['family'], f'C{len(colours)}')
        gmacs = p['macs'] / 1e9
        if p['published'] is not None:
            ax.scatter(gmacs, p['published'], color=colour, s=40, zorder=3)
        if p['measured'] is not None:
            ax.scatter(gmacs, p['measured'], facecolors='none', edgecolors=colour, s=90, zorder=3)
        above = p['published'] is None  # a measured-only label goes above its point: it may sit on a published one
        anchor = p['measured'] if above else p['published']
        ax.annotate(f"{p['model']} ({p['params'] / 1e6:.2f}M)", (gmacs, anchor), textcoords='offset points',
                    xytext=(6, 5 if above else -4), fontsize=8)
    for family, colour in colours.items():
        ax.scatter([], [], color=colour, marker='s', s=30, label=family)
    ax.scatter([], [], color='grey', s=40, label='published')
    if any(p['measured'] is not None for p in points):
        ax.scatter([], [], facecolors='none', edgecolors='grey', s=90, label='measured here (released weights)')
    ax.set_xscale('log')
    ax.set_xlabel(f'GMACs for one {args.size[1]}x{args.size[0]} LR stereo pair (log scale)')
    ax.set_ylabel(f'(Left+Right)/2 PSNR on {args.set} x{args.scale} (dB)')
    ax.set_title(f'Model zoo: PSNR against MACs ({args.set}, x{args.scale})')
    ax.grid(alpha=0.3, which='both')
    ax.legend(fontsize=8, loc='lower right')
    ax.margins(x=0.25, y=0.15)
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    plt.close(fig)
    for p in points:
        published = f"{p['published']:.2f}" if p['published'] is not None else '-'
        measured = f"{p['measured']:.4f}" if p['measured'] is not None else '-'
        print(f"{p['model']:<14} {p['params']:>11,d} params {p['macs'] / 1e9:>9.2f} GMACs  published {published}  "
              f'measured {measured}')
    print(args.output)
    return args.output


def attention_plot(args):
    """Left view | disparity from iPASSR's attention | validity mask | SGBM disparity, for one LR pair."""
    import numpy as np
    import torch

    from basicsr.metrics.stereo_consistency import sgbm_disparity
    from basicsr.models.archs.ipassr_arch import attention_disparity, iPASSR
    from basicsr.utils.checkpoint import load_network

    views = read_views(args.pair, LR_VIEWS, '--pair')
    net = iPASSR(up_scale=args.scale)
    if args.weights:
        load_network(net, args.weights, param_key='state_dict' if args.weights.endswith('.tar') else 'params',
                     key_path='--weights')
    else:
        print('attention: no --weights, random weights (the maps show nothing learnt)', file=sys.stderr)
    rgb = np.concatenate([view[..., ::-1] for view in views], axis=2)  # iPASSR was trained on RGB views
    lq = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div(255)[None]
    with torch.inference_mode():
        _, (m_r2l, _), (v_left, _) = net.eval()(lq, return_attention=True)
    disparity = attention_disparity(m_r2l, args.disparity)[0].numpy()
    sgbm = sgbm_disparity(views[0], views[1])
    finite = sgbm[np.isfinite(sgbm)]
    # one colour scale for both disparities: SGBM's range (the attention of an untrained network is anywhere)
    top = max(float(np.percentile(finite if finite.size else disparity, 99)), 1.0)
    plt = visualize._pyplot()
    h, w = disparity.shape
    fig, axes = plt.subplots(1, 4, figsize=(4 * 4, 4 * h / w + 1.2), dpi=args.dpi)
    panels = [(f'left view ({os.path.basename(os.path.normpath(args.pair))})', views[0][..., ::-1], {}),
              (f'disparity from attention ({args.disparity}), LR px', disparity, dict(cmap='magma', vmin=0, vmax=top)),
              ('validity mask (dark: occluded)', v_left[0, 0].numpy(), dict(cmap='gray', vmin=0, vmax=1)),
              ('SGBM disparity, LR px (white: none)', sgbm, dict(cmap='magma', vmin=0, vmax=top))]
    magma = plt.get_cmap('magma').with_extremes(bad='white')  # white: SGBM's pixels without a match
    for ax, (title, img, style) in zip(axes, panels):
        shown = ax.imshow(img, **(dict(style, cmap=magma) if style.get('cmap') == 'magma' else style))
        ax.set_title(title, fontsize=8)
        ax.axis('off')
        if style:
            fig.colorbar(shown, ax=ax, orientation='horizontal', fraction=0.08, pad=0.04)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    fig.savefig(args.output)
    plt.close(fig)
    print(args.output)
    return args.output


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Comparison pictures and metric plots.')
    sub = parser.add_subparsers(dest='command', required=True)
    c = sub.add_parser('compare', help='bicubic | ours | HR with zoomed crops')
    c.add_argument('--sr_dir', required=True, nargs='+',
                   help='folder(s) of <pair>_L.png / <pair>_R.png (test.py visualization), one panel each')
    c.add_argument('--lq_dir', required=True, help='LR test set folder (<pair>/lr0.png, lr1.png)')
    c.add_argument('--gt_dir', required=True, help='HR test set folder (<pair>/hr0.png, hr1.png)')
    c.add_argument('--scale', type=int, required=True)
    c.add_argument('--pairs', nargs='+', help='pair names (default: every pair in --sr_dir)')
    c.add_argument('--view', choices=['L', 'R'], default='L')
    c.add_argument('--crop', nargs=3, type=int, metavar=('Y', 'X', 'SIZE'),
                   help='zoomed window in HR pixels (default: the most detailed quarter-size window)')
    c.add_argument('--crop_size', type=int, help='side of the automatic zoomed window (default: a quarter of the '
                   'short side)')
    c.add_argument('--dpi', type=int, default=100, help='resolution of the PNG: 4 inches per panel (default 100)')
    c.add_argument('--label', nargs='+', help='title of each SR panel, one per --sr_dir (default: Ours)')
    c.add_argument('--show_lr', action='store_true', help='add the LR view enlarged by pixel repetition')
    c.add_argument('--tag', default='compare', help='file name: <pair>_<view>_<tag>.png (default compare)')
    c.add_argument('--output', required=True, help='output folder')
    p = sub.add_parser('plot', help='PSNR per dataset (metrics.json) or over iterations (training log)')
    p.add_argument('--metrics', nargs='+', help='metrics.json files written by test.py')
    p.add_argument('--labels', nargs='+', help='one label per metrics file (default: its folder name)')
    p.add_argument('--log', help='training log with validation lines')
    p.add_argument('--metric', default='psnr', help='metric name (default psnr)')
    p.add_argument('--output', required=True, help='output PNG')
    z = sub.add_parser('zoo', help='the model zoo: published (and measured) PSNR against MACs')
    z.add_argument('--set', default='KITTI2015', help='test set of the PSNR (default KITTI2015)')
    z.add_argument('--scale', type=int, default=4, help='up-scaling factor (default 4)')
    z.add_argument('--size', type=size_type, default=(180, 320), metavar='HxW',
                   help='LR size of one view for the MACs (default 180x320, the NTIRE 2024 budget size)')
    z.add_argument('--measured', help="results/reproduce_tables.json: add the figures measured here")
    z.add_argument('--output', required=True, help='output PNG')
    a = sub.add_parser('attention', help="iPASSR's attention disparity and occlusion mask beside SGBM's disparity")
    a.add_argument('--pair', required=True, help='folder of one LR pair (lr0.png, lr1.png)')
    a.add_argument('--scale', type=int, choices=[2, 4], default=4, help="the network's up-scaling factor (default 4)")
    a.add_argument('--weights', help="iPASSR weights: the release's .pth.tar or our .pth (default: random weights)")
    a.add_argument('--disparity', choices=['expectation', 'argmax'], default='expectation',
                   help='read each attention row by its expected or its most attended position (default expectation)')
    a.add_argument('--dpi', type=int, default=100)
    a.add_argument('--output', required=True, help='output PNG')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    command = {'compare': compare, 'plot': plot, 'zoo': zoo_plot, 'attention': attention_plot}[args.command]
    result = run_main('plot_results.py', command, args)
    return result if isinstance(result, int) and not isinstance(result, bool) else 0 if result else 1


if __name__ == '__main__':
    sys.exit(main())
