"""PSNR and SSIM on [0, 255] images, with the stereo conventions of the field.

Every function takes two images of the same shape, ``uint8`` (or float already in [0, 255]), HWC by default.
A 6-channel image is a stereo pair (left = channels 0:3, right = 3:6) and its score is the mean of the left-view
and right-view scores ("(Left+Right)/2" of the papers). The ``*_left`` variants score the left view only, without
its 64 leftmost columns (the "Left" column of the papers: those columns have no match in the right view).

The peak value is fixed by ``data_range`` (255), never guessed from the image content.
Signatures follow BasicSR (``img1, img2, crop_border, input_order='HWC', test_y_channel=False``); the released
NAFSSR option files name ``calculate_psnr`` and ``calculate_skimage_ssim``.
"""
import cv2
import numpy as np
from skimage.metrics import structural_similarity

from basicsr.utils.registry import METRIC_REGISTRY

LEFT_CROP = 64  # columns of the left view without a counterpart in the right view (iPASSR protocol)


def _to_hwc_float(img, input_order):
    if input_order not in ('HWC', 'CHW'):
        raise ValueError(f"input_order must be 'HWC' or 'CHW', got {input_order!r}")
    if hasattr(img, 'detach'):  # a torch tensor
        img = img.detach().cpu().numpy()
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[..., None]
    elif input_order == 'CHW':
        img = img.transpose(1, 2, 0)
    return img.astype(np.float64)


def _prepare(img1, img2, crop_border, input_order):
    a, b = _to_hwc_float(img1, input_order), _to_hwc_float(img2, input_order)
    if a.shape != b.shape:
        raise ValueError(f'images have different shapes: {a.shape} and {b.shape}')
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    return a, b


def _views(img):
    """A 6-channel stereo image -> [left, right]; any other image -> [img]."""
    if img.shape[2] == 6:
        return [img[..., :3], img[..., 3:]]
    return [img]


def _left_view(img):
    if img.shape[2] != 6 and img.shape[2] != 3:
        raise ValueError(f'expected a 3- or 6-channel image, got {img.shape[2]} channels')
    if img.shape[1] <= LEFT_CROP:
        raise ValueError(f'image width {img.shape[1]} leaves nothing after cropping {LEFT_CROP} left columns')
    return img[:, LEFT_CROP:, :3]


def to_y_channel(img, color_order='bgr'):
    """HWC image in [0, 255] (float64) -> its Y channel (HxWx1, [16, 235] scale) by MATLAB's rgb2ycbcr."""
    from basicsr.utils import matlab_functions  # the data area's MATLAB-exact colour conversions

    if img.shape[2] != 3:
        raise ValueError(f'test_y_channel needs a 3-channel view, got {img.shape[2]} channels')
    convert = matlab_functions.rgb2ycbcr if color_order == 'rgb' else matlab_functions.bgr2ycbcr
    y = convert(img / 255.0, y_only=True)
    return np.asarray(y, np.float64)[..., None] * 255.0


def _mean_over_views(img1, img2, score, test_y_channel, color_order):
    scores = []
    for a, b in zip(_views(img1), _views(img2)):
        if test_y_channel:
            a, b = to_y_channel(a, color_order), to_y_channel(b, color_order)
        scores.append(score(a, b))
    return float(np.mean(scores))


def _psnr(a, b, data_range):
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float('inf')
    return float(10.0 * np.log10(data_range ** 2 / mse))


def _ssim_gaussian(a, b, data_range):
    """BasicSR's SSIM: 11x11 Gaussian window (sigma 1.5), population statistics, valid region, channel mean."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    kernel = cv2.getGaussianKernel(11, 1.5)
    window = kernel @ kernel.T

    def blur(x):
        return cv2.filter2D(x, -1, window, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]

    if a.shape[0] < 11 or a.shape[1] < 11:
        raise ValueError(f'SSIM needs images of at least 11x11 pixels, got {a.shape[0]}x{a.shape[1]}')
    values = []
    for ch in range(a.shape[2]):
        x, y = a[..., ch], b[..., ch]
        mu_x, mu_y = blur(x), blur(y)
        var_x = blur(x * x) - mu_x ** 2
        var_y = blur(y * y) - mu_y ** 2
        cov = blur(x * y) - mu_x * mu_y
        ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
        values.append(ssim_map.mean())
    return float(np.mean(values))


def _ssim_skimage(a, b, data_range):
    """scikit-image's default SSIM (7x7 uniform window, sample covariance), mean over channels."""
    return float(structural_similarity(a, b, data_range=data_range, channel_axis=2))


def _registered_pair(name, per_view, doc, left_doc):
    """Register and return ``name`` (both views, see the module docstring) and ``name + '_left'`` (the left view
    without its ``LEFT_CROP`` leftmost columns), each scoring a view with ``per_view(a, b, data_range)``."""

    def both(img1, img2, crop_border=0, input_order='HWC', test_y_channel=False, color_order='bgr', data_range=255.0):
        a, b = _prepare(img1, img2, crop_border, input_order)
        return _mean_over_views(a, b, lambda x, y: per_view(x, y, data_range), test_y_channel, color_order)

    def left(img1, img2, crop_border=0, input_order='HWC', test_y_channel=False, color_order='bgr', data_range=255.0):
        a, b = _prepare(img1, img2, 0, input_order)
        return both(_left_view(a), _left_view(b), crop_border, 'HWC', test_y_channel, color_order, data_range)

    for fn, fn_name, fn_doc in ((both, name, doc), (left, f'{name}_left', left_doc)):
        fn.__name__ = fn.__qualname__ = fn_name
        fn.__doc__ = fn_doc
        METRIC_REGISTRY.register(fn)
    return both, left


calculate_psnr, calculate_psnr_left = _registered_pair(
    'calculate_psnr', _psnr,
    'PSNR in dB with peak ``data_range``; a 6-channel stereo image scores (PSNR(left) + PSNR(right)) / 2.',
    'PSNR of the left view without its 64 leftmost columns (the papers\' "Left" column).')
calculate_ssim, calculate_ssim_left = _registered_pair(
    'calculate_ssim', _ssim_gaussian,
    """BasicSR's Gaussian SSIM (equal to scikit-image's ``gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False``); stereo images score the mean of the two views.""",
    'Gaussian SSIM of the left view without its 64 leftmost columns.')
calculate_skimage_ssim, calculate_skimage_ssim_left = _registered_pair(
    'calculate_skimage_ssim', _ssim_skimage,
    """The SSIM of the published stereo SR tables: scikit-image's default 7x7 uniform window, averaged over the
    channels (for a stereo image, over both views), as the release's ``multichannel=True`` call computed it.""",
    'scikit-image SSIM of the left view without its 64 leftmost columns.')
