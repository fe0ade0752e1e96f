"""The one image reader/writer of the project, and the tensor <-> image conversions.

Images on disk are 8-bit PNGs. In memory an image is ``uint8`` HWC in OpenCV's BGR order; a stereo pair is the
6-channel concatenation (left, right). Tensors are float CHW (or NCHW) in [0, 1].
"""
import os

import cv2
import numpy as np
import torch

from basicsr.utils.atomic import write_atomic
from basicsr.utils.errors import UserError


class ImageReadError(UserError, OSError):
    """An image file that is missing, not an image, truncated, or not of the expected kind.

    ``reason`` is a short machine-readable tag ('unreadable', 'empty', 'undecodable', 'truncated', '16bit',
    'dtype', 'grey', 'channels') so callers never have to parse the message (which holds the path).
    """

    def __init__(self, message, reason='unreadable'):
        super().__init__(message)
        self.reason = reason


class ImageWriteError(UserError, OSError):
    """An image file that cannot be written (a full disk, a quota, a read-only folder)."""


# Bit depth and colour as stored, alpha dropped, and the EXIF orientation applied (OpenCV applies it for every flag
# but IMREAD_UNCHANGED): a phone's portrait JPEG comes out upright, as viewers and Pillow's exif_transpose show it.
_DECODE_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR


def _decode_quietly(buf):
    """``cv2.imdecode`` without OpenCV's own warning lines on stderr (our error names the file instead)."""
    log = getattr(getattr(cv2, 'utils', None), 'logging', None)
    if log is None:
        return cv2.imdecode(buf, _DECODE_FLAGS)
    level = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        return cv2.imdecode(buf, _DECODE_FLAGS)
    finally:
        log.setLogLevel(level)


def imfrombytes(content, path='<bytes>', allow_16bit=False):
    """Decode encoded image bytes to ``uint8`` HWC BGR, upright (EXIF orientation applied, alpha dropped); one-line
    ``ImageReadError`` naming ``path`` otherwise. ``allow_16bit``: 16-bit images are rounded to 8 bits."""
    if not content:
        raise ImageReadError(f'{path}: empty file, expected an image', 'empty')
    if content[:8] == b'\x89PNG\r\n\x1a\n' and b'IEND' not in content[-16:]:  # before libpng complains on stderr
        raise ImageReadError(f'{path}: truncated PNG (no IEND chunk at the end of the file)', 'truncated')
    buf = np.frombuffer(content, np.uint8)
    img = _decode_quietly(buf)
    if img is None:
        raise ImageReadError(f'{path}: cannot decode, expected a PNG/JPEG image (not an image or corrupt)',
                             'undecodable')
    if img.dtype == np.uint16:
        if not allow_16bit:
            raise ImageReadError(f'{path}: 16-bit image, expected 8 bits per channel', '16bit')
        img = np.round(img.astype(np.float64) / 257.0).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageReadError(f'{path}: unsupported pixel type {img.dtype}, expected 8-bit', 'dtype')
    if img.ndim == 2:
        raise ImageReadError(f'{path}: grey-scale image, expected a 3-channel colour image', 'grey')
    if img.shape[2] != 3:
        raise ImageReadError(f'{path}: {img.shape[2]} channels, expected 3 (colour)', 'channels')
    return np.ascontiguousarray(img)


def imread(path, allow_16bit=False, name=None):
    """Read an image file as ``uint8`` HWC BGR, upright (see ``imfrombytes``); errors call it ``name`` (default: the
    path)."""
    path = os.fspath(path)
    name = path if name is None else name
    try:
        with open(path, 'rb') as f:
            content = f.read()
    except OSError as err:
        raise ImageReadError(f'{name}: cannot read ({err.strerror or err})') from None
    return imfrombytes(content, name, allow_16bit=allow_16bit)


def imwrite(img, path, mkdir=True):
    """Write ``uint8`` HWC BGR as a lossless PNG (atomic: a temporary file is renamed into place).

    A write that fails (a full disk) or is interrupted leaves no temporary file and the earlier file, if any,
    untouched; the failure is one ``ImageWriteError`` line naming the file."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1] or '.png'
    ok, buf = cv2.imencode(ext, img)
    if not ok:
        raise OSError(f'{path}: cannot encode image of shape {img.shape}')
    write_atomic(path, lambda f: f.write(buf.tobytes()), mkdir=mkdir, error=ImageWriteError, what='the image')


def img2tensor(img):
    """``uint8`` (or float in [0, 1]) HWC -> float32 CHW tensor in [0, 1]; channel order is kept."""
    arr = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def tensor2img(tensor):
    """Float CHW (or 1xCHW) tensor in [0, 1] -> ``uint8`` HWC, clamped and rounded; channel order is kept."""
    t = tensor.detach()
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f'tensor2img expects one image, got a batch of {t.shape[0]}')
        t = t[0]
    arr = t.float().clamp_(0, 1).cpu().numpy().transpose(1, 2, 0)
    return np.round(arr * 255.0).astype(np.uint8)
