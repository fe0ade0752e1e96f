"""Convert network weights between ``.pth`` and ``.safetensors`` (the format follows the target's name).

    python scripts/convert_weights.py experiments/pretrained_models/NAFSSR-T_4x.pth NAFSSR-T_4x.safetensors
    python scripts/convert_weights.py log/iPASSR_4xSR.pth.tar iPASSR_4xSR.safetensors
    python scripts/convert_weights.py net_g_best.safetensors net_g_best.pth --param_key params_ema

Every state dict of the file goes along (``params``, ``params_ema``; iPASSR's ``state_dict`` as ``params``), or
only ``--param_key``; tensors are copied bit for bit. The SHA-256 of both files is printed. An existing target is
kept unless ``--overwrite`` is given. Reading never runs code (see ``basicsr/utils/checkpoint.py`` for the
safetensors layout: metadata ``param_keys``, one state dict per key).
"""
import argparse
import sys

from basicsr.utils.checkpoint import WEIGHT_SUFFIXES, convert_weights, sha256_of
from basicsr.utils.errors import run_main


def main(argv=None):
    parser = argparse.ArgumentParser(description='Convert network weights between .pth and .safetensors.')
    parser.add_argument('source', help='a network file: .pth, .pth.tar (iPASSR release) or .safetensors')
    parser.add_argument('target',
                        help=f'the file to write; its ending chooses the format ({", ".join(WEIGHT_SUFFIXES)})')
    parser.add_argument('--param_key', default=None,
                        help='convert only this state dict (params, params_ema; default: all the file holds)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing target')
    args = parser.parse_args(argv)

    def run():
        keys, tensors, dropped = convert_weights(args.source, args.target, args.param_key, args.overwrite)
        print(f'{args.source}: sha256 {sha256_of(args.source)}')
        print(f'{args.target}: sha256 {sha256_of(args.target)} ({", ".join(keys)}: {tensors} tensors)')
        if dropped:
            print(f'note: not converted (neither tensors nor numbers/text): {", ".join(dropped)}', file=sys.stderr)
        return 0

    return run_main('convert_weights.py', run)


if __name__ == '__main__':
    sys.exit(main())
