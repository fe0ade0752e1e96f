"""Parameters and MACs of the network of an option file, at its training patch size and at a KITTI-size input.

    python scripts/model_complexity.py -opt options/test/NAFSSR/NAFSSR-T_x4.yml
    python scripts/model_complexity.py -opt <yml> --size 30x90 --size 128x128
    python scripts/model_complexity.py --model CVHSSR-T_x4 --size 180x320   # a zoo model: its test option file

Sizes are the low-resolution input of one view (h x w); a stereo network gets both views (N=1, 6 channels).
MACs are counted by ptflops' ``aten`` backend, which counts every convolution and every matrix product
(``aten.mm/bmm/matmul/addmm``), so SCAM's attention products are included; element-wise operations, norms,
softmax and pooling are not counted (they are a few percent at most). The network runs in eval mode, so TLSC is
active: above 1.5x the training size the channel-attention 1x1 conv runs at every pixel, and is counted so.

The last line says whether the network fits the budget of the NTIRE 2024 stereo SR challenge (x4, both tracks): at
most 1M parameters and 400 GMACs for one 320x180 LR stereo pair, both views (``--size 180x320``: a stereo network's
count already covers both views; a single-view network with a 3-channel input is counted twice).
"""
import argparse
import os
import sys
from pathlib import Path

import torch

from basicsr.models.archs import complexity, define_network
from basicsr.toolbox import size_type, zoo_model, zoo_option_file
from basicsr.utils.errors import run_main
from basicsr.utils.options import OptionError, get_path, yaml_load
from basicsr.zoo import LR_PATCH

DEFAULT_PATCH = LR_PATCH
KITTI_HR = (375, 1242)  # KITTI 2012/2015 image size
BUDGET_SIZE = (180, 320)  # NTIRE 2024 stereo SR: the budget is for one 320x180 (w x h) LR pair
BUDGET_PARAMS, BUDGET_MACS = 1_000_000, 400 * 10**9
BUDGET_NAME = 'NTIRE 2024 budget (1M params, 400 GMACs at 180x320)'


def default_sizes(opt, opt_path):
    """The training patch (``datasets:train:gt_size_h/w`` / scale, else 30x90) and the KITTI LR size."""
    scale = get_path(opt, 'scale') or get_path(opt, 'network_g:up_scale') or 1
    if not isinstance(scale, int) or scale < 1:
        raise OptionError(f'{opt_path}: scale must be a positive integer, got {scale!r}')
    gt_h, gt_w = get_path(opt, 'datasets:train:gt_size_h'), get_path(opt, 'datasets:train:gt_size_w')
    patch = (gt_h // scale, gt_w // scale) if gt_h and gt_w else DEFAULT_PATCH
    kitti = (KITTI_HR[0] // scale, KITTI_HR[1] // scale)
    return [(patch, 'training patch'), (kitti, f'KITTI {KITTI_HR[0]}x{KITTI_HR[1]} / {scale}')]


def input_channels(net):
    """Channels of the network input: its ``in_channels`` (6 for stereo networks), else its first conv's."""
    first = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    return getattr(net, 'in_channels', None) or first.in_channels


def count_macs(net, channels, size):
    """Multiply-accumulates of one eval forward pass on a (1, channels, h, w) input (see
    ``basicsr.utils.complexity``; a convolution counts one extra MAC per output for its bias, as ptflops does)."""
    return complexity.count_macs(net, (channels, *size))


def budget_verdict(params, pair_macs):
    """``fits`` or ``exceeds: <what>`` against the NTIRE 2024 budget; ``pair_macs``: MACs for one 180x320 LR
    stereo pair, both views."""
    over = ([f'{params / 1e6:.2f}M params > 1M'] if params > BUDGET_PARAMS else []) + \
        ([f'{pair_macs / 1e9:.2f} GMACs > 400'] if pair_macs > BUDGET_MACS else [])
    return f"exceeds: {', '.join(over)}" if over else 'fits'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument('-opt', '--opt', help='option YAML file with a network_g section')
    which.add_argument('--model', help='a name of the zoo (basicsr/zoo.py: NAFSSR-T_x4, CVHSSR-T_x4, EHFSSR_S_x4, '
                                       '...): its test option file')
    parser.add_argument('--size', type=size_type, action='append', metavar='HxW',
                        help='LR input size of one view; repeat for several (default: training patch and KITTI)')
    args = parser.parse_args(argv)
    card = zoo_model(args.model) if args.model is not None else None
    if card is not None:
        args.opt = zoo_option_file(card)
    if not os.path.isfile(args.opt):
        raise OptionError(f'{args.opt}: option file not found')
    opt = yaml_load(Path(args.opt))
    if not isinstance(get_path(opt, 'network_g'), dict):
        raise OptionError(f'{args.opt}: missing required option network_g (a mapping with a type key)')
    net = define_network(opt['network_g'], key_path='network_g').eval()
    sizes = [(s, 'requested') for s in args.size] if args.size else default_sizes(opt, args.opt)

    params = sum(p.numel() for p in net.parameters())
    channels = input_channels(net)
    print(f"{opt['network_g']['type']} from {args.opt}")
    print(f'params: {params:,} ({params / 1e6:.2f} M)')
    print(f"{'input (LR h x w)':<16} {'MACs':>18} {'GMACs':>9}  note")
    counted = {}
    for size, note in sizes:
        counted[size] = count_macs(net, channels, size)
        print(f'{size[0]:>5d} x {size[1]:<8d} {counted[size]:>18,d} {counted[size] / 1e9:>9.2f}  {note}')
    if BUDGET_SIZE not in counted and card is not None and card.macs_g is not None:
        pair_macs = round(card.macs_g * 1e9)  # the card's count is for one 320x180 pair (counting again takes long)
    else:
        macs = counted[BUDGET_SIZE] if BUDGET_SIZE in counted else count_macs(net, channels, BUDGET_SIZE)
        pair_macs = macs * (2 if channels == 3 else 1)  # a single-view network runs once per view
    verdict = budget_verdict(params, pair_macs)
    detail = f' ({params / 1e6:.2f}M params, {pair_macs / 1e9:.2f} GMACs per pair)' if verdict == 'fits' else ''
    print(f'{BUDGET_NAME}: {verdict}{detail}')


if __name__ == '__main__':
    sys.exit(run_main('model_complexity.py', main))
