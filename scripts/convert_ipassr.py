"""Convert a released iPASSR checkpoint (``{'epoch', 'state_dict'}``, e.g. log/iPASSR_4xSR.pth.tar) to this
project's network file ``{'params': state_dict}``; the up-scaling factor is read from the weights, and the file is
loaded strictly into our iPASSR first, so only a file that fits is written. Loading never runs code.

    python scripts/convert_ipassr.py log/iPASSR_4xSR.pth.tar experiments/pretrained_models/iPASSR_x4.pth

The conversion is optional: the option files of options/test/iPASSR load the released file itself
(``path:param_key_g: state_dict``).
"""
import argparse
import sys

from basicsr.models.archs.ipassr_arch import iPASSR
from basicsr.utils.checkpoint import CheckpointError, load_network, load_state_dict, save_atomic
from basicsr.utils.errors import run_main


def convert(source, target):
    """Write ``target`` = ``{'params': ...}`` from the released ``source``; returns the up-scaling factor."""
    state = load_state_dict(source, param_key='state_dict')
    up = state.get('upscale.0.weight')
    width = state['init_feature.weight'].shape[0] if 'init_feature.weight' in state else None
    scale = round((up.shape[0] / width) ** 0.5) if up is not None and width else 0
    if scale < 1 or scale ** 2 * width != up.shape[0]:
        raise CheckpointError(f'{source}: not an iPASSR checkpoint (no init_feature.weight / upscale.0.weight '
                              f'of a whole up-scaling factor)')
    net = load_network(iPASSR(up_scale=scale, width=width), source, param_key='state_dict', key_path=None)
    save_atomic({'params': {k: v.detach().clone() for k, v in net.state_dict().items()}}, target)
    return scale


def main(argv=None):
    parser = argparse.ArgumentParser(description="Convert a released iPASSR .pth.tar to {'params': ...}.")
    parser.add_argument('source', help='the released checkpoint, e.g. log/iPASSR_4xSR.pth.tar')
    parser.add_argument('target', help='the network file to write, e.g. experiments/pretrained_models/iPASSR_x4.pth')
    args = parser.parse_args(argv)

    def run():
        scale = convert(args.source, args.target)
        print(f'{args.target}: iPASSR x{scale} weights of {args.source}')
        return 0

    return run_main('convert_ipassr.py', run)


if __name__ == '__main__':
    sys.exit(main())
