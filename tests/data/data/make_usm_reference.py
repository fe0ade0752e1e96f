"""Make ``usm_reference.npz``: BasicSR's own unsharp mask on a real image, for test_usm.py.

    python tests/data/data/make_usm_reference.py --basicsr /path/to/BasicSR [--output FILE] [--check]

``--basicsr`` is a checkout of XPixelGroup/BasicSR (made at commit 8d56e3a0, May 2024). Only its
``basicsr/utils/img_process_util.py`` is used, imported from there by path, unmodified and never copied (it needs
cv2, numpy and torch; BasicSR's package ``__init__`` is not run). Real-ESRGAN's models sharpen their HR target with
its ``USMSharp`` (``gt_usm: True``); ``usm_sharp`` is the same filter in OpenCV.

What is made: the input is rows 200-239, columns 330-393 of the left view of ``skimage.data.stereo_motorcycle()``
(a real Middlebury photograph: edges and flat areas, so both sides of the threshold occur), in BGR order;
``usm_sharp`` is BasicSR's ``usm_sharp(img)`` with its defaults (weight 0.5, radius 50 -> a 51-pixel Gaussian of
sigma 0, i.e. 8, threshold 10) on the float32 image in [0, 1]; ``usm_torch`` is ``USMSharp()(x)`` (the same
defaults, the module Real-ESRGAN trains with) on the same image as a (1, 3, H, W) tensor, back to HxWx3.
``--check`` compares with the existing file instead of writing: the input must be identical, the outputs within 1e-6.
"""
import argparse
import importlib.util
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FILE = os.path.join('basicsr', 'utils', 'img_process_util.py')
ROWS, COLS = slice(200, 240), slice(330, 394)


def load_reference(checkout):
    """BasicSR's ``img_process_util`` module, imported from the checkout by its path."""
    spec = importlib.util.spec_from_file_location('basicsr_img_process_util', os.path.join(checkout, FILE))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make(checkout):
    import skimage.data
    import torch

    ref = load_reference(checkout)
    image = np.ascontiguousarray(skimage.data.stereo_motorcycle()[0][ROWS, COLS, ::-1])  # RGB -> BGR
    x = image.astype(np.float32) / 255
    usm_sharp = ref.usm_sharp(x)
    with torch.no_grad():
        tensor = torch.from_numpy(x.transpose(2, 0, 1).copy())[None]
        usm_torch = ref.USMSharp()(tensor)[0].numpy().transpose(1, 2, 0)
    return {'image': image, 'usm_sharp': usm_sharp.astype(np.float32), 'usm_torch': usm_torch.astype(np.float32)}


def main(argv=None):
    parser = argparse.ArgumentParser(description='Make usm_reference.npz from a checkout of XPixelGroup/BasicSR.')
    parser.add_argument('--basicsr', required=True, help='folder of a XPixelGroup/BasicSR checkout')
    parser.add_argument('--output', default=os.path.join(HERE, 'usm_reference.npz'), help='file to write')
    parser.add_argument('--check', action='store_true', help='compare with --output instead of writing it')
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.basicsr, FILE)):
        parser.error(f'--basicsr {args.basicsr}: not a BasicSR checkout (missing {FILE})')
    made = make(args.basicsr)
    if args.check:
        with np.load(args.output, allow_pickle=False) as old:
            same = np.array_equal(old['image'], made['image']) and all(
                np.abs(old[k] - made[k]).max() <= 1e-6 for k in ('usm_sharp', 'usm_torch'))
        print('same' if same else 'differs')
        return 0 if same else 1
    tmp = f'{args.output}.tmp{os.getpid()}.npz'
    np.savez_compressed(tmp, **made)
    os.replace(tmp, args.output)
    print(f'wrote {args.output} ({os.path.getsize(args.output):,} bytes)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
