"""Export a trained stereo SR network to ONNX, checked against PyTorch with onnxruntime before it is written.

    python scripts/export_onnx.py --arch NAFSSR-T --scale 4 --weights experiments/pretrained_models/NAFSSR-T_4x.pth \\
        --output NAFSSR-T_x4.onnx
    python scripts/export_onnx.py -opt options/test/NAFSSR/NAFSSR-T_x4.yml --output NAFSSR-T_x4.onnx
    python scripts/inference_stereo.py --onnx NAFSSR-T_x4.onnx --left L.png --right R.png --output out/

The graph takes the (N, 6, H, W) stereo tensor of PyTorch (left and right views on channels, values in [0, 1], the
channel order the weights were trained with: stored in the file) and gives (N, 6, sH, sW). Batch, height and width
are dynamic wherever the network allows (the line printed at the end says, per dim); opset 18 by default. The
file is compared with PyTorch in onnxruntime on two input sizes first and written only when the largest difference
is at most 1e-4. Needs the optional packages: pip install -c constraints.txt -e '.[onnx]'. See docs/export.md.
"""
import argparse
import os
import sys

from basicsr.utils.errors import UserError, run_main


class OutputError(UserError, ValueError):
    """An --output that cannot be the ONNX file."""


def parse_args(argv=None):
    from basicsr.export.onnx_export import OPSET

    p = argparse.ArgumentParser(description='Export a trained stereo SR network to ONNX (checked with onnxruntime).')
    model = p.add_argument_group('model')
    model.add_argument('-opt', '--opt', help='option file (network_g, path:pretrain_network_g, scale)')
    model.add_argument('--arch', help='named size of a zoo family: NAFSSR-T/S/B/L, CVHSSR-T/S, EHFSSR, EHFSSR-S, '
                                      'iPASSR, SwinFIRSSR (with --scale and --weights)')
    model.add_argument('--scale', type=int, help='up-scaling factor of --arch')
    model.add_argument('--weights', help='checkpoint file ({"params": state_dict}); overrides the option file')
    model.add_argument('--param_key', default='params', help='key of the state dict in the checkpoint')
    p.add_argument('--output', required=True, help='the .onnx file to write (its folder is created)')
    p.add_argument('--opset', type=int, default=OPSET, help=f'ONNX opset (default {OPSET})')
    return p.parse_args(argv)


def run(argv=None):
    from basicsr.export.onnx_export import export_onnx, load_trained_network

    args = parse_args(argv)
    if os.path.isdir(args.output):
        raise OutputError(f'--output {args.output}: is a folder; expected the path of the .onnx file to write')
    net, scale, color_order = load_trained_network(args.opt, args.arch, args.scale, args.weights, args.param_key)
    name = args.arch or os.path.splitext(os.path.basename(args.opt))[0]
    report = export_onnx(net, args.output, opset=args.opset, metadata={'color_order': color_order, 'name': name})
    print(f'{args.output}: {type(net).__name__} x{report.scale} ({color_order.upper()} views), opset {report.opset}, '
          f'input (N, 6, H, W) with {report.describe_sizes()}; largest difference to PyTorch '
          f'{max(d for _, d in report.checks):.3g} ({report.seconds:.0f} s)', flush=True)
    return report


def main():
    result = run_main('export_onnx.py', run)
    return result if isinstance(result, int) else 0


if __name__ == '__main__':
    sys.exit(main())
