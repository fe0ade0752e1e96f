"""Super-resolve your own stereo pairs, of any size, with a trained model.

    python scripts/inference_stereo.py --left L.png --right R.png --output out/ \\
        --arch NAFSSR-T --scale 4 --weights experiments/pretrained_models/NAFSSR-T_4x.pth
    python scripts/inference_stereo.py --input_dir pairs/ --output out/ -opt options/test/NAFSSR/NAFSSR-T_x4.yml
    python scripts/inference_stereo.py --sbs photo_sbs.jpg --output out/ --output_format anaglyph \\
        --arch NAFSSR-T --scale 4 --weights experiments/pretrained_models/NAFSSR-T_4x.safetensors
    python scripts/inference_stereo.py --mpo DSCF0001.MPO --output out/ --output_format sbs -opt <option file>

A folder holds pairs ``<name>_L.png`` + ``<name>_R.png``; the output is ``<name>_L.png`` + ``<name>_R.png``.
Stereo photos (``basicsr/utils/stereo_photo.py``): ``--sbs`` a side-by-side image or a folder of them
(``--sbs_order LR`` parallel or ``RL`` cross-eyed; ``--sbs_width half``: views squeezed to half width, whose results
are stretched back to the scene's aspect), ``--mpo`` a stereo camera's MPO file or a folder of them; every photo's
views are checked from its header before any compute. The EXIF orientation of every input (view files too) is
applied: a phone's portrait photo comes out upright. ``--output_format``: ``views`` (``<name>_L.png``,
``<name>_R.png``), ``sbs`` (``<name>_sbs.png``, full width, in ``--sbs_order``) or ``anaglyph``
(``<name>_anaglyph.png``, red-cyan).
Results already in ``--output`` are kept: a run that would write over one is refused, before any work, unless
``--overwrite`` is given.
Memory is bounded: the pair is processed in full-width horizontal strips with overlapping context rows (rows stay
whole, so the cross-view attention still sees each complete epipolar line); see ``--max_memory_gb``.
"""
import argparse
import functools
import glob
import math
import os
import sys

import numpy as np
import torch

from basicsr.evaluation import infer_in_strips
from basicsr.inference import (DEFAULT_MEMORY_GB, MIN_AUTO_ROWS, InputError, auto_strip_rows,  # noqa: F401
                               load_model, strip_bytes_per_row)
from basicsr.utils import stereo_photo
from basicsr.utils.errors import run_main
from basicsr.utils.img_util import ImageReadError, img2tensor, imread, imwrite

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pnm', '.jp2')


def read_view(path):
    """``uint8`` HWC BGR, upright (EXIF orientation applied); a 16-bit image is converted to 8 bits (with a note),
    grey and others are refused. The one reader of view files and side-by-side images."""
    try:
        return imread(path)
    except ImageReadError as err:
        if err.reason != '16bit':
            if err.reason == 'grey':
                raise InputError(f'{err} (refused: convert it to RGB first, e.g. by repeating the grey channel)'
                                 ) from None
            raise
    print(f'note: {path}: 16-bit image converted to 8 bits per channel', file=sys.stderr)
    return imread(path, allow_16bit=True)


def read_pair(left_path, right_path):
    left, right = read_view(left_path), read_view(right_path)
    if left.shape != right.shape:
        raise InputError(f'{right_path}: the right view is {right.shape[1]}x{right.shape[0]} but the left view '
                         f'{left_path} is {left.shape[1]}x{left.shape[0]} (width x height); the two views of a '
                         'rectified pair must have the same size')
    return left, right


def find_pairs(input_dir):
    """``[(name, left path, right path)]`` for every ``<name>_L.<ext>`` with a ``<name>_R.<ext>``, sorted."""
    if not os.path.isdir(input_dir):
        raise InputError(f'{input_dir}: --input_dir is not a folder')
    pairs = []
    for left in sorted(glob.glob(os.path.join(input_dir, '*_L.*'))):
        stem, ext = os.path.splitext(left)
        if ext.lower() not in IMAGE_EXTENSIONS:
            print(f'note: {left}: skipped, not an image extension ({", ".join(IMAGE_EXTENSIONS)})', file=sys.stderr)
            continue
        right = stem[:-2] + '_R' + ext
        if not os.path.isfile(right):
            raise InputError(f'{left}: no right view {os.path.basename(right)} next to it')
        pairs.append((os.path.basename(stem[:-2]), left, right))
    if not pairs:
        raise InputError(f'{input_dir}: no stereo pairs found (expected <name>_L.png and <name>_R.png)')
    return pairs


def build_model(args):
    """(network, scale, color order) from ``-opt`` or ``--arch/--scale/--weights``, or the onnxruntime network of
    ``--onnx`` (same strips, colour order and outputs)."""
    if args.onnx:
        from basicsr.export.onnx_export import load_onnx_model

        if args.opt or args.arch or args.weights or args.amp:
            raise InputError('--onnx runs the exported file as it is: give it without -opt, --arch, --weights, --amp')
        return load_onnx_model(args.onnx, args.scale, args.color_order)
    return load_model(args.opt, args.arch, args.scale, args.weights, args.param_key, args.color_order)


def find_photos(path, kind, order='LR', width='full', name=None):
    """``[(name, read)]`` for the stereo photo ``path`` of ``kind`` (``'sbs'``/``'mpo'``), or each one in the folder
    ``path``; ``read()`` returns its ``(left, right)`` views. Every file is checked from its header first (odd SBS
    width, an MPO with one image or a JPEG that is not MPO, views of different sizes): one line naming it."""
    flag = f'--{kind}'
    if os.path.isdir(path):
        files = stereo_photo.find_stereo_photos(path, kind)
        if not files:
            raise InputError(f'{path}: no {"MPO files (.mpo, .jpg)" if kind == "mpo" else "images"} found in the '
                             f'{flag} folder')
    elif os.path.isfile(path):
        files = [path]
    else:
        raise InputError(f'{path}: {flag}: no such file or folder')
    if name and len(files) > 1:
        raise InputError(f'--name names the result of one photo, but the {flag} folder {path} holds {len(files)}')
    for file in files:
        stereo_photo.probe(file, kind, width)
    names = [name or os.path.splitext(os.path.basename(f))[0] for f in files]
    return [(n, (lambda f=f: stereo_photo.read_stereo_photo(f, kind, order, width, read_view)))
            for n, f in zip(names, files)]


def check_output(output, names, overwrite=False, output_format='views'):
    """Refuse, before any work, an ``--output`` that cannot be the folder of the results (``<name>_L.png`` and
    ``<name>_R.png``, or ``<name>_sbs.png``, or ``<name>_anaglyph.png``: ``output_format``), two pairs that would
    write the same files, and (unless ``overwrite``) a file that is already there."""
    found = output
    while not os.path.exists(found) and os.path.dirname(os.path.abspath(found)) != os.path.abspath(found):
        found = os.path.dirname(os.path.abspath(found))
    if not os.path.isdir(found):
        what = 'an existing file' if found == output else f'{found} is an existing file'
        raise InputError(f'--output {output}: {what}; expected a folder (created when missing)')
    what = {'views': ('the left view', 'the right view'), 'sbs': ('the side-by-side image',),
            'anaglyph': ('the anaglyph',)}[output_format]
    for name in names:
        for file, view in zip(stereo_photo.output_files(name, output_format), what):
            path = os.path.join(output, file)
            if os.path.isdir(path):
                raise InputError(f'--output {output}: {path} is a folder; expected to write {view} of '
                                 f'{name} there')
    twice = next((name for i, name in enumerate(names) if name in names[:i]), None)
    if twice is not None:
        raise InputError(f'--output {output}: two input pairs would both write '
                         f'{" and ".join(stereo_photo.output_files(twice, output_format))} '
                         '(the same name with other image extensions); keep one of them')
    if not overwrite:
        taken = next((path for name in names for file in stereo_photo.output_files(name, output_format)
                      if os.path.exists(path := os.path.join(output, file))), None)
        if taken is not None:
            raise InputError(f'--output {output}: {taken} is already there (an earlier result?); give --overwrite '
                             'to replace it, or choose another --output')


def parse_args(argv=None):
    from basicsr import zoo

    rgb = [size for size in zoo.sizes() if zoo.card(size).color_order == 'rgb']
    p = argparse.ArgumentParser(description='Super-resolve stereo pairs of any size with a trained model.')
    src = p.add_argument_group('input')
    src.add_argument('--left', help='left view image')
    src.add_argument('--right', help='right view image')
    src.add_argument('--input_dir', help='folder of <name>_L.png / <name>_R.png pairs')
    src.add_argument('--sbs', help='a side-by-side stereo image, or a folder of them (see --sbs_order, --sbs_width)')
    src.add_argument('--sbs_order', choices=stereo_photo.SBS_ORDERS, default='LR',
                     help='view order of --sbs inputs and of --output_format sbs: LR parallel (left view on the '
                          'left, default), RL cross-eyed')
    src.add_argument('--sbs_width', choices=stereo_photo.SBS_WIDTHS, default=None,
                     help='full: each half of the --sbs image is a view (default); half: each view was squeezed to '
                          'half width (3D TV format): the results are stretched back to twice their width (bicubic)')
    src.add_argument('--mpo', help="a stereo camera's MPO file (first image left, second right), or a folder of "
                                   'them (.mpo, .jpg)')
    p.add_argument('--output', required=True, help='output folder (created)')
    p.add_argument('--output_format', choices=stereo_photo.OUTPUT_FORMATS, default='views',
                   help='views: <name>_L.png and <name>_R.png (default); sbs: <name>_sbs.png (full width, in '
                        '--sbs_order); anaglyph: <name>_anaglyph.png (red-cyan)')
    p.add_argument('--overwrite', action='store_true',
                   help='replace results already in --output (without it, an existing result file is refused)')
    p.add_argument('--name', help='output name for --left/--right or one --sbs/--mpo file (default: the left file '
                                  'name without _L, the photo file name)')
    model = p.add_argument_group('model')
    model.add_argument('-opt', '--opt', help='option file (network_g, path:pretrain_network_g, scale)')
    model.add_argument('--arch', help=f"named size of the zoo: {', '.join(zoo.sizes())} (with --scale and --weights)")
    model.add_argument('--scale', type=int, help='up-scaling factor of --arch')
    model.add_argument('--weights', help='checkpoint file (.pth {"params": state_dict}, or .safetensors); '
                                         'overrides the option file')
    model.add_argument('--param_key', default='params', help='key of the state dict in the checkpoint')
    model.add_argument('--onnx', help='an ONNX file of scripts/export_onnx.py, run by onnxruntime on the CPU '
                                      'instead of PyTorch (scale and colour order from the file)')
    p.add_argument('--color_order', choices=['bgr', 'rgb'], default=None,
                   help='channel order the model was trained with (default: the option file, else the zoo card of '
                        f"--arch: rgb for {', '.join(rgb)}, bgr for the others)")
    run = p.add_argument_group('run')
    run.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    run.add_argument('--strip_rows', type=int, default=None, help='LR rows per strip (default: from --max_memory_gb)')
    run.add_argument('--overlap', type=int, default=16, help='LR context rows above and below each strip')
    run.add_argument('--max_memory_gb', type=float, default=None,
                     help=f'memory for one strip, sets the strip height (default {DEFAULT_MEMORY_GB:g})')
    run.add_argument('--self_ensemble', action='store_true', help='average 4 flips/view swaps (4x slower)')
    run.add_argument('--amp', choices=['bf16', 'fp16'], default=None, help='autocast dtype (default fp32)')
    args = p.parse_args(argv)
    if bool(args.left) != bool(args.right) or sum(bool(a) for a in (args.left, args.input_dir, args.sbs,
                                                                     args.mpo)) != 1:
        p.error('give one input: --left and --right, --input_dir, --sbs or --mpo')
    if args.sbs_width and not args.sbs:
        p.error('--sbs_width describes an --sbs input; give it with --sbs')
    args.sbs_width = args.sbs_width or 'full'
    check_numbers(args)
    return args


def check_numbers(args):
    """One line for a strip height, overlap or memory budget that cannot be used (0 is not "automatic")."""
    if args.strip_rows is not None and args.strip_rows < 1:
        raise InputError(f'--strip_rows must be >= 1 (LR rows per strip), got {args.strip_rows}')
    if args.overlap < 0:
        raise InputError(f'--overlap must be >= 0 (LR context rows above and below each strip), got {args.overlap}')
    if args.max_memory_gb is not None and not (0 < args.max_memory_gb < math.inf):
        raise InputError(f'--max_memory_gb must be a positive number of GB, got {args.max_memory_gb}')
    if args.strip_rows is not None and args.max_memory_gb is not None:
        raise InputError('give --strip_rows or --max_memory_gb, not both (--max_memory_gb chooses the --strip_rows '
                         'that fits)')


def run(argv=None):
    args = parse_args(argv)
    if args.left:
        name = args.name or os.path.splitext(os.path.basename(args.left))[0]
        name = name[:-2] if not args.name and name.endswith('_L') else name
        pairs = [(name, functools.partial(read_pair, args.left, args.right))]
    elif args.input_dir:
        pairs = [(name, functools.partial(read_pair, left, right)) for name, left, right in find_pairs(args.input_dir)]
    else:  # every photo is checked from its header here
        pairs = find_photos(args.sbs or args.mpo, 'sbs' if args.sbs else 'mpo', args.sbs_order, args.sbs_width,
                            args.name)
    check_output(args.output, [name for name, _ in pairs], args.overwrite, args.output_format)
    first = pairs[0][1]()  # fail on a bad first input before building the model
    net, scale, color_order = build_model(args)
    device = torch.device(args.device)
    net.to(device).eval()
    from tqdm import tqdm

    outputs = []
    for i, (name, read) in enumerate(pairs):
        left, right = first if i == 0 else read()
        if color_order == 'rgb':
            left, right = left[..., ::-1], right[..., ::-1]
        lq = img2tensor(np.concatenate([left, right], axis=2))[None].to(device)
        h, w = left.shape[:2]
        rows = args.strip_rows
        if rows is None:
            rows = auto_strip_rows(net, w, scale, args.overlap, args.max_memory_gb or DEFAULT_MEMORY_GB)
        with tqdm(total=h, desc=name, unit='row', dynamic_ncols=True, disable=None) as bar:
            sr = infer_in_strips(net, lq, scale, strip_rows=rows, overlap=args.overlap,
                                 self_ensemble=args.self_ensemble, amp_dtype=args.amp, progress=bar.update)
        views = (sr[..., :3], sr[..., 3:])
        if color_order == 'rgb':
            views = tuple(v[..., ::-1] for v in views)
        views = tuple(np.ascontiguousarray(v) for v in views)
        stretched = ''
        if args.sbs and args.sbs_width == 'half':  # squeezed views: back to the scene's aspect
            views = tuple(stereo_photo.unsqueeze(v) for v in views)
            stretched = f', stretched to {views[0].shape[1]}x{views[0].shape[0]}'
        for file, image in stereo_photo.output_images(name, *views, args.output_format, args.sbs_order).items():
            path = os.path.join(args.output, file)
            imwrite(image, path)
            outputs.append(path)
        print(f'{name}: {w}x{h} -> {w * scale}x{h * scale} (x{scale}, strips of {rows} rows + {args.overlap} '
              f'overlap{stretched}) -> {args.output}', flush=True)
    return outputs


def main():
    """One line and exit code 2 for a bad input, option or checkpoint; a traceback for anything else."""
    from basicsr.utils.misc import tune_cpu_allocator

    tune_cpu_allocator()
    result = run_main('inference_stereo.py', run)
    return result if isinstance(result, int) else 0


if __name__ == '__main__':
    sys.exit(main())
