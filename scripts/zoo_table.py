"""The zoo's cards as a Markdown table (what README.md's "Model zoo" table says of each model, from basicsr/zoo.py):

    python scripts/zoo_table.py                     # x4 cards
    python scripts/zoo_table.py --scale 2 --sets KITTI2012 Middlebury

One row per card at ``--scale``: name, published parameters, GMACs of a 320x180 LR pair, published (Left+Right)/2
PSNR/SSIM on each of ``--sets`` (``*``: a note in the zoo, e.g. another protocol), colour order and where the
weights are.
"""
import argparse
import sys

from basicsr import zoo
from basicsr.toolbox import ToolInputError
from basicsr.utils.errors import run_main


def _figure(name, test_set):
    fig = zoo.published(name, test_set)
    if fig is None or fig.psnr is None:
        return 'not published'
    text = f'{fig.psnr:.2f}' + (f'/{fig.ssim:.4f}' if fig.ssim is not None else '')
    return text + (' *' if fig.notes else '')


def _weights(card):
    return 'direct link' if card.weights.url else 'manual download'


def table(scale, sets):
    """The Markdown lines of the cards at ``scale``."""
    lines = ['| model | params | GMACs (320x180) | ' + ' | '.join(f'published {s}' for s in sets)
             + ' | colour | weights |', '|---' * (5 + len(sets)) + '|']
    for card in zoo.MODELS.values():
        if card.scale != scale:
            continue
        params = f'{card.params_m:.2f}M' if card.params_m is not None else 'not published'
        macs = f'{card.macs_g:,.1f}' if card.macs_g is not None else 'not counted'
        cells = [card.name, params, macs, *(_figure(card.name, s) for s in sets), card.color_order.upper(),
                 _weights(card)]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return lines


def run(argv=None):
    p = argparse.ArgumentParser(description='Print the zoo\'s cards at one scale as a Markdown table.')
    p.add_argument('--scale', type=int, default=4, help='up-scaling factor of the cards to list (default 4)')
    p.add_argument('--sets', nargs='+', default=['KITTI2015', 'Flickr1024'], metavar='SET',
                   help=f"test sets of the published columns (default KITTI2015 Flickr1024; of {', '.join(zoo.TEST_SETS)})")
    args = p.parse_args(argv)
    unknown = [s for s in args.sets if s not in zoo.TEST_SETS]
    if unknown:
        raise ToolInputError(f"--sets: unknown {', '.join(unknown)}; expected some of {', '.join(zoo.TEST_SETS)}")
    scales = sorted({card.scale for card in zoo.MODELS.values()})
    if args.scale not in scales:
        raise ToolInputError(f"--scale: the zoo has no card at x{args.scale}; its scales: {', '.join(map(str, scales))}")
    print('\n'.join(table(args.scale, args.sets)))
    return 0


if __name__ == '__main__':
    sys.exit(run_main('zoo_table.py', run))
