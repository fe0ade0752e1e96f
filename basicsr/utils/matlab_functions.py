"""MATLAB-exact image functions that the stereo SR protocol is defined with.

``imresize`` reproduces MATLAB's ``imresize(img, scale, 'bicubic')``: the cubic convolution kernel with a = -0.5,
widened by ``1/scale`` when down-scaling (antialiasing), symmetric (edge-repeating) padding at the borders, the
rows resized before the columns, and, for ``uint8`` input, MATLAB's rounding of the intermediate result to
``uint8`` after each of the two passes. Each pass is a product with a sparse matrix of ``P`` weights per output
row (numpy) or a gather of ``P`` neighbour rows (torch), so a 2000x3000 RGB image takes a fraction of a second.

``rgb2ycbcr`` / ``bgr2ycbcr`` follow MATLAB's ``rgb2ycbcr`` (ITU-R BT.601, Y in [16, 235]).
"""
import math

import numpy as np
import torch


def cubic(x):
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``bicubic``); support [-2, 2]."""
    absx = np.abs(x)
    absx2 = absx * absx
    absx3 = absx2 * absx
    near = (1.5 * absx3 - 2.5 * absx2 + 1.0) * (absx <= 1)
    far = (-0.5 * absx3 + 2.5 * absx2 - 4.0 * absx + 2.0) * ((absx > 1) & (absx <= 2))
    return near + far


def resize_weights(in_length, out_length, scale, antialiasing=True, kernel_width=4.0):
    """MATLAB's ``contributions``: per output pixel, ``P`` input indices (0-based, mirrored) and their weights.

    Returns ``(weights, indices)``, both of shape ``(out_length, P)``; the weights of each row sum to 1.
    """
    widen = scale < 1 and antialiasing
    width = kernel_width / scale if widen else kernel_width
    x = np.arange(1, out_length + 1, dtype=np.float64)
    # Output pixel x (1-based) maps to input coordinate u; pixel centres line up at the corners of the grid.
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    num_taps = int(math.ceil(width)) + 2
    idx_1based = left[:, None] + np.arange(num_taps)[None, :]
    dist = u[:, None] - idx_1based
    weights = scale * cubic(scale * dist) if widen else cubic(dist)
    weights = weights / weights.sum(axis=1, keepdims=True)
    # Symmetric padding: ... 2 1 | 1 2 ... n | n n-1 ... (the edge pixel is repeated).
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirror[np.mod(idx_1based.astype(np.int64) - 1, 2 * in_length)]
    # Drop taps whose weight is zero for every output pixel (MATLAB does the same; it changes nothing numerically).
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


def _round_uint8(arr):
    """MATLAB's conversion of a double to uint8: saturate, then round half away from zero."""
    return np.floor(np.clip(arr, 0, 255) + 0.5).astype(np.uint8)


def _resize_matrix(weights, indices, in_length):
    """The pass as a sparse ``(out_length, in_length)`` matrix (taps that mirror onto the same pixel add up)."""
    from scipy import sparse

    rows = np.repeat(np.arange(weights.shape[0]), weights.shape[1])
    return sparse.csr_matrix((weights.ravel(), (rows, indices.ravel())), shape=(weights.shape[0], in_length))


def _resize_axis_numpy(img, axis, weights, indices):
    """One pass in float64: a sparse matrix product along ``axis`` (about P multiply-adds per output value)."""
    matrix = _resize_matrix(weights, indices, img.shape[axis])
    moved = np.moveaxis(img, axis, 0)
    flat = moved.reshape(moved.shape[0], -1).astype(np.float64, copy=False)
    out = np.asarray(matrix @ flat).reshape((weights.shape[0],) + moved.shape[1:])
    return np.moveaxis(out, 0, axis)


def _resize_axis_torch(img, axis, weights, indices):
    w = torch.from_numpy(weights).to(device=img.device, dtype=img.dtype)
    idx = torch.from_numpy(indices).to(img.device)
    shape = [1] * img.dim()
    shape[axis] = weights.shape[0]
    out = None
    for p in range(weights.shape[1]):
        term = img.index_select(axis, idx[:, p]) * w[:, p].reshape(shape)
        out = term if out is None else out + term
    return out


def _output_length(length, scale):
    return int(math.ceil(length * scale))


def imresize(img, scale, antialiasing=True):
    """Resize like MATLAB's ``imresize(img, scale, 'bicubic')``.

    Args:
        img: numpy ``HxW`` or ``HxWxC`` array, either float (any range, typically [0, 1]) or ``uint8``; or a torch
            float tensor ``CxHxW`` / ``NxCxHxW``.
        scale: resize factor, e.g. ``1/4`` to make a x4 LR image. The output size is ``ceil(scale * size)``.
        antialiasing: widen the kernel by ``1/scale`` when down-scaling (MATLAB's default).

    Returns:
        Float input: the unrounded float result (numpy float64 for float64 input, else float32; torch keeps the
        dtype). ``uint8`` input: ``uint8``, rounded after each pass exactly as MATLAB does for ``uint8`` images.
    """
    if scale <= 0:
        raise ValueError(f'imresize: scale must be positive, got {scale}')
    if isinstance(img, torch.Tensor):
        if not img.is_floating_point():
            raise TypeError(f'imresize: torch input must be a float tensor, got {img.dtype}')
        if img.dim() not in (3, 4):
            raise ValueError(f'imresize: torch input must be CxHxW or NxCxHxW, got shape {tuple(img.shape)}')
        h_axis, w_axis = img.dim() - 2, img.dim() - 1
        resize_axis = _resize_axis_torch
        finish = (lambda x: x)
        between = (lambda x: x)
    else:
        img = np.asarray(img)
        if img.ndim not in (2, 3):
            raise ValueError(f'imresize: numpy input must be HxW or HxWxC, got shape {img.shape}')
        h_axis, w_axis = 0, 1
        resize_axis = _resize_axis_numpy
        if img.dtype == np.uint8:
            finish = between = _round_uint8
        elif np.issubdtype(img.dtype, np.floating):
            out_dtype = np.float64 if img.dtype == np.float64 else np.float32
            finish = (lambda x: x.astype(out_dtype, copy=False))
            between = (lambda x: x)
        else:
            raise TypeError(f'imresize: numpy input must be uint8 or float, got {img.dtype}')

    in_h, in_w = img.shape[h_axis], img.shape[w_axis]
    out_h, out_w = _output_length(in_h, scale), _output_length(in_w, scale)
    wh, ih = resize_weights(in_h, out_h, scale, antialiasing)
    ww, iw = resize_weights(in_w, out_w, scale, antialiasing)
    # Same scale on both axes: MATLAB's stable sort of the scales puts the rows first.
    out = between(resize_axis(img, h_axis, wh, ih))
    out = resize_axis(out, w_axis, ww, iw)
    return finish(out)


_YCBCR_FROM_RGB = np.array([[65.481, 128.553, 24.966],
                            [-37.797, -74.203, 112.0],
                            [112.0, -93.786, -18.214]], dtype=np.float64)
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0])


def rgb2ycbcr(img, y_only=False):
    """MATLAB's ``rgb2ycbcr`` for a ``uint8`` or float-in-[0, 1] HxWx3 RGB image.

    Returns the same kind as the input: ``uint8`` (rounded) or float in [0, 1] (Y in [16/255, 235/255]).
    With ``y_only`` the result is HxW.
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'rgb2ycbcr: expected an HxWx3 image, got shape {img.shape}')
    is_uint8 = img.dtype == np.uint8
    x = img.astype(np.float64) / 255.0 if is_uint8 else img.astype(np.float64)
    matrix = _YCBCR_FROM_RGB[:1] if y_only else _YCBCR_FROM_RGB
    offset = _YCBCR_OFFSET[:1] if y_only else _YCBCR_OFFSET
    out = x @ matrix.T + offset
    if y_only:
        out = out[..., 0]
    if is_uint8:
        return _round_uint8(out)
    return (out / 255.0).astype(np.float32 if img.dtype == np.float32 else np.float64)


def bgr2ycbcr(img, y_only=False):
    """``rgb2ycbcr`` for an image in OpenCV's BGR channel order."""
    return rgb2ycbcr(np.asarray(img)[..., ::-1], y_only=y_only)
