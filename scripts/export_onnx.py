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

from basicsr.toolbox import size_type
from basicsr.utils.errors import UserError, run_main


class OutputError(UserError, ValueError):
    """An --output that cannot be the ONNX file."""


def parse_args(argv=None):
    from basicsr import zoo
    from basicsr.export.onnx_export import OPSET

    p = argparse.ArgumentParser(description='Export a trained stereo SR network to ONNX (checked with onnxruntime).')
    model = p.add_argument_group('model')
    model.add_argument('-opt', '--opt', help='option file (network_g, path:pretrain_network_g, scale)')
    model.add_argument('--arch', help=f"named size of the zoo: {', '.join(zoo.sizes())} (with --scale and --weights)")
    model.add_argument('--scale', type=int, help='up-scaling factor of --arch')
    model.add_argument('--weights', help='checkpoint file ({"params": state_dict}); overrides the option file')
    model.add_argument('--param_key', default='params', help='key of the state dict in the checkpoint')
    p.add_argument('--output', required=True, help='the .onnx file to write (its folder is created)')
    p.add_argument('--opset', type=int, default=OPSET, help=f'ONNX opset (default {OPSET})')
    speed = p.add_argument_group('speed (after the export)')
    speed.add_argument('--time', type=size_type, metavar='HxW',
                       help='time one pair of this LR size in PyTorch and in onnxruntime, on the CPU, alternating')
    speed.add_argument('--threads', type=int, default=1, help='CPU threads of both for --time (default 1)')
    speed.add_argument('--repeats', type=int, default=3, help='timed runs of each for --time (default 3)')
    args = p.parse_args(argv)
    if args.threads < 1 or args.repeats < 1:
        p.error('--threads and --repeats must be >= 1')
    return args


def run(argv=None):
    from basicsr.export.onnx_export import OnnxStereoNetwork, export_onnx, time_against_pytorch
    from basicsr.inference import load_model

    args = parse_args(argv)
    if os.path.isdir(args.output):
        raise OutputError(f'--output {args.output}: is a folder; expected the path of the .onnx file to write')
    net, scale, color_order = load_model(args.opt, args.arch, args.scale, args.weights, args.param_key)
    name = args.arch or os.path.splitext(os.path.basename(args.opt))[0]
    report = export_onnx(net, args.output, opset=args.opset, metadata={'color_order': color_order, 'name': name})
    print(f'{args.output}: {type(net).__name__} x{report.scale} ({color_order.upper()} views), opset {report.opset}, '
          f'input (N, 6, H, W) with {report.describe_sizes()}; largest difference to PyTorch '
          f'{max(d for _, d in report.checks):.3g} ({report.seconds:.0f} s)', flush=True)
    if args.time:
        runner = OnnxStereoNetwork(args.output, threads=args.threads)
        torch_ms, onnx_ms = time_against_pytorch(net, runner, args.time, threads=args.threads, repeats=args.repeats)
        h, w = args.time
        print(f'time of one {h}x{w} pair, {args.threads} thread(s), alternating: PyTorch '
              f'{"/".join(f"{t:.0f}" for t in torch_ms)} ms, onnxruntime {"/".join(f"{t:.0f}" for t in onnx_ms)} ms',
              flush=True)
    return report


def main():
    from basicsr.utils.misc import tune_cpu_allocator

    tune_cpu_allocator()  # as inference_stereo.py does, so that --time measures the PyTorch path users run
    result = run_main('export_onnx.py', run)
    return result if isinstance(result, int) else 0


if __name__ == '__main__':
    sys.exit(main())
