"""Stereo consistency of a super-resolved pair: does the SR right view agree with the SR left view?

PSNR and SSIM score each view on its own; a network can score well and still invent details that differ between
the views. This metric warps the SR right view to the left view with the disparity of the ground-truth (HR) pair
and reports the mean absolute difference (grey levels, 0-255, lower is better) to the SR left view, on the pixels
where the disparity is trusted: non-occluded (they pass a left-right consistency check) and inside the right image.

Without a ground-truth disparity map it is estimated from the HR pair with OpenCV's semi-global matching (SGBM).
The HR pair's own value (``calculate_stereo_consistency(hr, hr)``) is the floor: views differ a little even
where the geometry is right (lighting, sensor noise, sub-pixel interpolation).
"""
import warnings

import cv2
import numpy as np

from basicsr.utils.registry import METRIC_REGISTRY


def sgbm_disparity(left, right, min_disparity=0, num_disparities=None, block_size=5):
    """Disparity (float32, pixels) of ``left`` w.r.t. ``right`` (uint8 HWC); NaN where SGBM finds none.

    Convention: the left pixel (y, x) matches the right pixel (y, x - d).
    """
    w = left.shape[1]
    if num_disparities is None:  # a quarter of the width covers the stereo SR test sets, capped for speed
        num_disparities = int(np.clip(16 * np.ceil(w / 4 / 16), 16, 256))
    if num_disparities % 16:
        raise ValueError(f'num_disparities must be a multiple of 16, got {num_disparities}')
    if w < int(min_disparity) + int(num_disparities) + int(block_size):  # nothing to search (and OpenCV fails)
        return np.full(left.shape[:2], np.nan, np.float32)
    channels = left.shape[2] if left.ndim == 3 else 1
    sgbm = cv2.StereoSGBM_create(minDisparity=int(min_disparity), numDisparities=int(num_disparities),
                                 blockSize=int(block_size), P1=8 * channels * block_size ** 2,
                                 P2=32 * channels * block_size ** 2, uniquenessRatio=10, speckleWindowSize=100,
                                 speckleRange=2, mode=cv2.STEREO_SGBM_MODE_SGBM_3WAY)
    raw = sgbm.compute(np.ascontiguousarray(left), np.ascontiguousarray(right))
    disp = raw.astype(np.float32) / 16.0  # SGBM returns fixed point with 4 fractional bits
    disp[raw < (min_disparity * 16)] = np.nan  # "no match" is reported as min_disparity - 1
    return disp


def right_disparity(left, right, **sgbm_kwargs):
    """Disparity of the right view (its pixel (y, x) matches left (y, x + d)), by SGBM on the mirrored pair."""
    mirrored = sgbm_disparity(np.ascontiguousarray(right[:, ::-1]), np.ascontiguousarray(left[:, ::-1]),
                              **sgbm_kwargs)
    return np.ascontiguousarray(mirrored[:, ::-1])


def consistent_mask(disp_left, disp_right, max_diff=1.0):
    """Pixels of the left view whose match in the right view exists and maps back within ``max_diff`` pixels."""
    h, w = disp_left.shape
    xs = np.arange(w, dtype=np.float32)[None, :] - np.nan_to_num(disp_left, nan=-1e6)
    xr = np.rint(xs).astype(np.int64)
    inside = np.isfinite(disp_left) & (xr >= 0) & (xr < w) & (xs >= 0) & (xs <= w - 1)
    back = np.full_like(disp_left, np.nan)
    rows = np.broadcast_to(np.arange(h)[:, None], (h, w))
    back[inside] = disp_right[rows[inside], xr[inside]]
    return inside & np.isfinite(back) & (np.abs(np.nan_to_num(back, nan=np.inf) - disp_left) <= max_diff)


def warp_right_to_left(right, disp_left):
    """Sample ``right`` at (y, x - d) for every left pixel (bilinear); float32 HWC."""
    h, w = disp_left.shape
    map_x = (np.arange(w, dtype=np.float32)[None, :] - np.nan_to_num(disp_left, nan=0.0)).astype(np.float32)
    map_y = np.broadcast_to(np.arange(h, dtype=np.float32)[:, None], (h, w)).astype(np.float32)
    return cv2.remap(right.astype(np.float32), map_x, map_y, interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


@METRIC_REGISTRY.register()
def calculate_stereo_consistency(img1, img2, crop_border=0, input_order='HWC', disparity=None, min_disparity=0,
                                 num_disparities=None, block_size=5, max_lr_diff=1.0):
    """Mean |SR left - warp(SR right)| in grey levels over the trusted pixels of the left view.

    ``img1``: the SR stereo image, ``img2``: the HR stereo image, both 6-channel uint8 (left 0:3, right 3:6).
    ``disparity``: optional ground-truth left disparity (HxW, pixels, NaN/inf or <= 0 where unknown); then every
    finite positive pixel whose match lies inside the right view is used. Otherwise SGBM on the HR pair with a
    left-right check (``max_lr_diff`` pixels) finds the non-occluded pixels.
    """
    def hwc(img):
        if hasattr(img, 'detach'):
            img = img.detach().cpu().numpy()
        img = np.asarray(img)
        return img.transpose(1, 2, 0) if input_order == 'CHW' else img

    sr, hr = hwc(img1), hwc(img2)
    if sr.shape != hr.shape:
        raise ValueError(f'images have different shapes: {sr.shape} and {hr.shape}')
    if sr.ndim != 3 or sr.shape[2] != 6:
        raise ValueError(f'calculate_stereo_consistency needs 6-channel stereo images (left, right), got shape '
                         f'{sr.shape}')
    hr_left, hr_right = hr[..., :3], hr[..., 3:]
    if disparity is None:
        hr_u8 = [np.clip(np.rint(v), 0, 255).astype(np.uint8) for v in (hr_left, hr_right)]
        kwargs = dict(min_disparity=min_disparity, num_disparities=num_disparities, block_size=block_size)
        disp = sgbm_disparity(*hr_u8, **kwargs)
        mask = consistent_mask(disp, right_disparity(*hr_u8, **kwargs), max_lr_diff)
    else:
        disp = np.asarray(disparity, np.float32).reshape(sr.shape[:2])
        disp = np.where(np.isfinite(disp) & (disp > 0), disp, np.nan)
        xs = np.arange(sr.shape[1])[None, :] - disp
        mask = np.isfinite(disp) & (xs >= 0)
    if crop_border:
        border = np.zeros_like(mask)
        border[crop_border:-crop_border, crop_border:-crop_border] = True
        mask &= border
    if not mask.any():
        warnings.warn(f'calculate_stereo_consistency: no pixel of this {sr.shape[1]}x{sr.shape[0]} pair could be '
                      'matched (too narrow for the disparity search, or no valid disparity): its score is nan, '
                      'and so is the mean of its dataset')
        return float('nan')
    warped = warp_right_to_left(sr[..., 3:], disp)
    diff = np.abs(sr[..., :3].astype(np.float32) - warped)
    return float(diff[mask].mean())


calculate_stereo_consistency.better = 'lower'  # an error: best checkpoints keep the lowest value
