"""Realistic degradations of stereo pairs (blur, resize, noise, JPEG), in numpy and OpenCV on the loader side.

The pipeline is Real-ESRGAN's second-order degradation (Wang et al., "Real-ESRGAN: Training Real-World Blind
Super-Resolution with Pure Synthetic Data", ICCVW 2021) with its option names, made stereo-aware:

1. blur (isotropic/anisotropic, generalized or plateau Gaussian, or sinc) -> random resize (up/down/keep,
   area/bilinear/bicubic) -> Gaussian or Poisson noise (colour or grey) -> JPEG;
2. (``second_order``) blur with ``second_blur_prob`` -> random resize relative to the LR size -> noise;
3. resize to exactly ``HR / scale`` and a sinc filter with ``final_sinc_prob``, then JPEG, or the other way round.

Stereo rules: the optics (kernels, resize factors and modes, the order of the last stage) are drawn once for the
pair (``stereo_shared_optics``) or per view; the noise level too (``stereo_shared_noise_level``), but the noise
itself is always drawn independently for each view; the JPEG qualities are shared (``stereo_shared_jpeg``) or
per view. Every draw comes from the ``numpy.random.Generator`` given to ``degrade_pair``, so one seed gives
byte-identical LR views. Pixels are float64 in [0, 255] between the stages: OpenCV's float64 filters and resizes
round far below what could change an 8-bit result, so the output does not depend on the CPU's vector unit.

Geometry: kernels are odd-sized and centred, resizes map the image extents onto each other (pixel centres at
``(i + 0.5) * in / out - 0.5``), so the LR pixel ``(i, j)`` stays the footprint of the HR pixels
``[s*i, s*(i+1)) x [s*j, s*(j+1))``, as with MATLAB's bicubic.
"""
import difflib
import hashlib
import math
import os
from dataclasses import dataclass, field
from typing import Optional, Tuple

import cv2
import numpy as np
import yaml

from basicsr.utils.errors import UserError

KERNEL_TYPES = ('iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso', 'sinc')
RESIZE_MODES = {'area': cv2.INTER_AREA, 'bilinear': cv2.INTER_LINEAR, 'bicubic': cv2.INTER_CUBIC}
RESIZE_KINDS = ('up', 'down', 'keep')  # the order of resize_prob
MIN_KERNEL_SIZE = 7  # kernel sizes are drawn among the odd sizes 7..blur_kernel_size, as in Real-ESRGAN
GRAY_WEIGHTS_BGR = (0.114, 0.587, 0.299)  # ITU-R BT.601 luma of a BGR pixel


class DegradationOptionError(UserError, ValueError):
    """A bad degradation option; the message is one line naming its key path and what was expected."""


# ---------------------------------------------------------------------------------------------------- kernels
def _grid(size):
    """(x, y) coordinates of a ``size x size`` kernel centred on 0; x varies along the columns."""
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2
    return np.meshgrid(ax, ax)


def _quadratic_form(size, sigma_x, sigma_y, theta):
    """``[x y] S^-1 [x y]^T`` on the kernel grid, S = R diag(sigma_x^2, sigma_y^2) R^T, R the rotation by theta."""
    xx, yy = _grid(size)
    c, s = math.cos(theta), math.sin(theta)
    u, v = c * xx + s * yy, -s * xx + c * yy  # coordinates along the rotated axes: R^T [x y]
    return (u / sigma_x) ** 2 + (v / sigma_y) ** 2


def gaussian_kernel(size, sigma_x, sigma_y=None, theta=0.0):
    """Bivariate Gaussian ``exp(-q/2)`` (q the quadratic form above), normalised to sum 1."""
    q = _quadratic_form(size, sigma_x, sigma_x if sigma_y is None else sigma_y, theta)
    k = np.exp(-0.5 * q)
    return k / k.sum()


def generalized_gaussian_kernel(size, sigma_x, sigma_y, theta, beta):
    """Generalized Gaussian ``exp(-q^beta / 2)``: beta < 1 gives heavier tails, beta > 1 a flatter top."""
    k = np.exp(-0.5 * _quadratic_form(size, sigma_x, sigma_y, theta) ** beta)
    return k / k.sum()


def plateau_kernel(size, sigma_x, sigma_y, theta, beta):
    """Plateau-shaped ``1 / (1 + q^beta)``."""
    k = 1.0 / (1.0 + _quadratic_form(size, sigma_x, sigma_y, theta) ** beta)
    return k / k.sum()


def sinc_kernel(size, cutoff):
    """Circularly symmetric ideal low-pass filter of cut-off ``cutoff`` (radians per pixel, pi = Nyquist):
    ``cutoff * J1(cutoff * r) / (2 pi r)``, ``cutoff^2 / (4 pi)`` at r = 0; normalised. Causes ringing."""
    from scipy.special import j1

    xx, yy = _grid(size)
    r = np.hypot(xx, yy)
    with np.errstate(divide='ignore', invalid='ignore'):
        k = cutoff * j1(cutoff * r) / (2 * np.pi * r)
    k[r == 0] = cutoff ** 2 / (4 * np.pi)
    return k / k.sum()


# ------------------------------------------------------------------------------------------- image operations
def separate(kernel):
    """``(column, row)`` 1-D factors of a rank-1 kernel (an isotropic or axis-aligned Gaussian), else None."""
    u, s, vt = np.linalg.svd(kernel)
    if s[1] > 1e-12 * s[0]:
        return None
    sign = 1.0 if u[:, 0].sum() >= 0 else -1.0
    return sign * u[:, 0] * s[0], sign * vt[0]


def blur(img, kernel):
    """Filter ``img`` (HxWxC float) with ``kernel`` (centred, point-symmetric); mirrored borders (reflect-101).

    A rank-1 kernel is applied as two 1-D passes (3-6x faster; the results differ by ~1e-13 of 255)."""
    factors = separate(kernel)
    if factors is not None:
        return cv2.sepFilter2D(img, -1, factors[1], factors[0], borderType=cv2.BORDER_REFLECT_101)
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101)


def resize(img, size_hw, mode):
    """Resize to ``(height, width)`` with OpenCV's ``area``, ``bilinear`` or ``bicubic``; the extents stay aligned."""
    if img.shape[:2] == tuple(size_hw):
        return img
    return cv2.resize(img, (size_hw[1], size_hw[0]), interpolation=RESIZE_MODES[mode])


def gaussian_noise(shape, sigma, gray, rng):
    """Zero-mean Gaussian noise of standard deviation ``sigma`` (8-bit units); ``gray``: one field for all channels."""
    if gray:
        return np.repeat(rng.standard_normal(shape[:2])[:, :, None] * sigma, shape[2], axis=2)
    return rng.standard_normal(shape) * sigma


def poisson_noise(img, scale, gray, rng):
    """Shot noise: an 8-bit value v counts v photons, so the noise has standard deviation ``scale * sqrt(v)``.

    ``gray``: drawn on the BT.601 luma and added to every channel."""
    lam = np.clip(img, 0, 255)
    if gray:
        lam = lam @ np.asarray(GRAY_WEIGHTS_BGR)
        noise = (rng.poisson(lam) - lam) * scale
        return np.repeat(noise[:, :, None], img.shape[2], axis=2)
    return (rng.poisson(lam) - lam) * scale


# Real-ESRGAN's unsharp mask of the HR target (its USMSharp: radius 50, i.e. a 51-pixel Gaussian, weight 0.5,
# threshold 10 in 8-bit units); the sigma follows from the size as in OpenCV (0.3 * (25 - 1) + 0.8 = 8).
USM_KERNEL_SIZE, USM_WEIGHT, USM_THRESHOLD = 51, 0.5, 10


def usm_sharpen(img, weight=USM_WEIGHT, threshold=USM_THRESHOLD, size=USM_KERNEL_SIZE):
    """Unsharp mask of an HxWxC image in [0, 255] (``uint8`` or float), float64 in [0, 255] out, not rounded.

    ``residual = img - gaussian_blur(img)``; where ``|residual| > threshold`` the mask is 1, else 0; the mask is
    blurred by the same Gaussian into a soft mask ``m``; the result is ``m * clip(img + weight * residual) +
    (1 - m) * img``: edges are sharpened, flat areas (whose residual is noise-sized) are kept. Borders mirrored."""
    x = np.asarray(img, dtype=np.float64)
    residual = x - cv2.GaussianBlur(x, (size, size), 0, borderType=cv2.BORDER_REFLECT_101)
    mask = (np.abs(residual) > threshold).astype(np.float64)
    soft = cv2.GaussianBlur(mask, (size, size), 0, borderType=cv2.BORDER_REFLECT_101)
    if soft.ndim < x.ndim:  # OpenCV drops a single channel's axis
        soft = soft[..., None]
    sharp = np.clip(x + weight * residual, 0, 255)
    return soft * sharp + (1 - soft) * x


def to_uint8(img):
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def jpeg(img, quality):
    """Round trip through OpenCV's JPEG encoder at ``quality`` (1-100); BGR float or uint8 in, float64 out."""
    ok, buf = cv2.imencode('.jpg', to_uint8(img), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError('cv2.imencode failed to encode a JPEG')
    return cv2.imdecode(buf, cv2.IMREAD_COLOR).astype(np.float64)


# ---------------------------------------------------------------------------------------------------- options
@dataclass(frozen=True)
class BlurOptions:
    kernel_size: int
    kernel_list: Tuple[str, ...]
    kernel_prob: Tuple[float, ...]
    sigma: Tuple[float, float]
    betag_range: Tuple[float, float]
    betap_range: Tuple[float, float]
    sinc_prob: float


@dataclass(frozen=True)
class StageOptions:
    blur_prob: float  # 1 for the first stage, second_blur_prob for the second
    blur: BlurOptions
    resize_prob: Tuple[float, float, float]  # up, down, keep
    resize_range: Tuple[float, float]
    gaussian_noise_prob: float  # else Poisson noise
    noise_range: Tuple[float, float]
    poisson_scale_range: Tuple[float, float]
    gray_noise_prob: float
    jpeg_range: Tuple[int, int]


@dataclass(frozen=True)
class Degradation:
    """A validated degradation: the first stage, the optional second, the final sinc and the stereo rules."""
    stage1: StageOptions
    stage2: Optional[StageOptions]
    final_sinc_prob: float
    final_kernel_size: int
    shared_optics: bool
    shared_noise_level: bool
    shared_jpeg: bool
    options: dict = field(compare=False, repr=False)  # every key with its value, defaults filled in


_ISO_KINDS = ('iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso')
# Real-ESRGAN's train_realesrnet_x4plus.yml; a key left out of a degradation mapping takes this value.
DEFAULTS = {
    'second_order': True,
    'stereo_shared_optics': True,
    'stereo_shared_noise_level': True,
    'stereo_shared_jpeg': True,
    'blur_kernel_size': 21,
    'kernel_list': list(_ISO_KINDS),
    'kernel_prob': [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    'blur_sigma': [0.2, 3],
    'betag_range': [0.5, 4],
    'betap_range': [1, 2],
    'sinc_prob': 0.1,
    'resize_prob': [0.2, 0.7, 0.1],
    'resize_range': [0.15, 1.5],
    'gaussian_noise_prob': 0.5,
    'noise_range': [1, 30],
    'poisson_scale_range': [0.05, 3],
    'gray_noise_prob': 0.4,
    'jpeg_range': [30, 95],
    'second_blur_prob': 0.8,
    'blur_kernel_size2': 21,
    'kernel_list2': list(_ISO_KINDS),
    'kernel_prob2': [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    'blur_sigma2': [0.2, 1.5],
    'betag_range2': [0.5, 4],
    'betap_range2': [1, 2],
    'sinc_prob2': 0.1,
    'resize_prob2': [0.3, 0.4, 0.3],
    'resize_range2': [0.3, 1.2],
    'gaussian_noise_prob2': 0.5,
    'noise_range2': [1, 25],
    'poisson_scale_range2': [0.05, 2.5],
    'gray_noise_prob2': 0.4,
    'jpeg_range2': [30, 95],
    'final_sinc_prob': 0.8,
}


@dataclass(frozen=True)
class Bounds:
    """The allowed values of a degradation option: ``low <(=) value <= high``, each entry for a list."""
    low: float
    high: float
    what: str  # what the values are, for the messages
    low_open: bool = False  # low itself excluded
    whole: bool = False  # whole numbers only

    def text(self):
        """``'> 0 and <= 10'``: the range as the messages and docs/data.md write it."""
        return f"{'>' if self.low_open else '>='} {self.low:g} and <= {self.high:g}"

    def holds(self, value):
        return (self.low < value if self.low_open else self.low <= value) and value <= self.high and (
            not self.whole or float(value).is_integer())


# The allowed values of every numeric degradation option (a stage-2 key, ending in 2, has the range of its stage-1
# key), documented in docs/data.md. Real-ESRGAN's own values (DEFAULTS) lie well inside; the upper bounds stop a
# typo before it hangs the loader (a 4001-pixel kernel), exhausts memory (a 1000x resize) or buries the image in
# noise (sigma 50 is the heaviest level of the usual denoising benchmarks; Poisson scale 4 is sigma 64 on white).
RANGES = {
    'blur_kernel_size': Bounds(3, 41, 'odd kernel sizes', whole=True),  # the largest drawn; 7..21 in Real-ESRGAN
    'kernel_prob': Bounds(0, 1, 'probabilities'),
    'blur_sigma': Bounds(0, 10, 'sigmas', low_open=True),
    'betag_range': Bounds(0, 8, 'shape parameters', low_open=True),
    'betap_range': Bounds(0, 8, 'shape parameters', low_open=True),
    'sinc_prob': Bounds(0, 1, 'probabilities'),
    'resize_prob': Bounds(0, 1, 'probabilities'),
    'resize_range': Bounds(0, 4, 'scale factors', low_open=True),  # and min <= 1 <= max
    'gaussian_noise_prob': Bounds(0, 1, 'probabilities'),
    'noise_range': Bounds(0, 50, 'noise sigmas (8-bit units)'),
    'poisson_scale_range': Bounds(0, 4, 'Poisson noise scales'),
    'gray_noise_prob': Bounds(0, 1, 'probabilities'),
    'jpeg_range': Bounds(1, 100, 'whole JPEG qualities', whole=True),
    'second_blur_prob': Bounds(0, 1, 'probabilities'),
    'final_sinc_prob': Bounds(0, 1, 'probabilities'),
}


def bounds(key):
    """The ``Bounds`` of a degradation option; ``blur_sigma2`` has those of ``blur_sigma``."""
    return RANGES[key[:-1] if key.endswith('2') and key[:-1] in RANGES else key]


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fail(key_path, key, expected, value):
    raise DegradationOptionError(f'{key_path}:{key}: expected {expected}, got {value!r}')


def _probability(opt, key, key_path):
    value = opt[key]
    if not (_number(value) and bounds(key).holds(value)):
        _fail(key_path, key, 'a probability in [0, 1]', value)
    return float(value)


def _range(opt, key, key_path):
    """A ``[min, max]`` pair with both ends within ``bounds(key)``."""
    value, allowed = opt[key], bounds(key)
    expected = f'[min, max] with min <= max, both {allowed.what} {allowed.text()}'
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(_number(v) for v in value)):
        _fail(key_path, key, expected, value)
    if not all(allowed.holds(v) for v in value):
        _fail(key_path, key, expected, value)
    lo, hi = value
    if lo > hi:
        _fail(key_path, key, f'min <= max ({allowed.what})', value)
    return (int(lo), int(hi)) if allowed.whole else (float(lo), float(hi))


def _distribution(opt, key, key_path, length, names):
    value = opt[key]
    if not (isinstance(value, (list, tuple)) and all(_number(v) and bounds(key).holds(v) for v in value)):
        _fail(key_path, key, f'a list of {length} probabilities in [0, 1] summing to 1 ({names})', value)
    if len(value) != length:
        _fail(key_path, key, f'{length} probabilities ({names}), not {len(value)}', value)
    if abs(sum(value) - 1) > 1e-6:
        _fail(key_path, key, f'probabilities summing to 1 ({names}), not to {sum(value):g}', value)
    total = float(sum(value))
    return tuple(float(v) / total for v in value)


def _kernel_size(opt, key, key_path):
    value, allowed = opt[key], bounds(key)
    if not (isinstance(value, int) and not isinstance(value, bool) and allowed.holds(value) and value % 2 == 1):
        _fail(key_path, key, f'an odd kernel size {allowed.text()} (the largest drawn; sizes are odd from '
              f'{MIN_KERNEL_SIZE} up to it)', value)
    return value


def _stage(opt, key_path, suffix, blur_prob):
    """The options of one stage; ``suffix`` '2' reads the second stage's keys (kernel_list2, ...)."""
    def k(name):
        return name + suffix

    kinds = opt[k('kernel_list')]
    if not (isinstance(kinds, (list, tuple)) and kinds and all(isinstance(t, str) for t in kinds)):
        _fail(key_path, k('kernel_list'), f"a list of kernel names among {', '.join(KERNEL_TYPES)}", kinds)
    for name in kinds:
        if name not in KERNEL_TYPES:
            close = difflib.get_close_matches(name, KERNEL_TYPES, n=1, cutoff=0.6)
            hint = f' (did you mean {close[0]}?)' if close else ''
            raise DegradationOptionError(f"{key_path}:{k('kernel_list')}: unknown kernel {name!r}{hint}; expected "
                                         f"names among {', '.join(KERNEL_TYPES)}")
    blur_opts = BlurOptions(
        kernel_size=_kernel_size(opt, k('blur_kernel_size'), key_path),
        kernel_list=tuple(kinds),
        kernel_prob=_distribution(opt, k('kernel_prob'), key_path, len(kinds), f"one per entry of {k('kernel_list')}"),
        sigma=_range(opt, k('blur_sigma'), key_path),
        betag_range=_range(opt, k('betag_range'), key_path),
        betap_range=_range(opt, k('betap_range'), key_path),
        sinc_prob=_probability(opt, k('sinc_prob'), key_path))
    resize_range = _range(opt, k('resize_range'), key_path)
    if not resize_range[0] <= 1 <= resize_range[1]:
        _fail(key_path, k('resize_range'), f'[min, max] with 0 < min <= 1 <= max <= {bounds("resize_range").high:g} '
              '(down-scaling factors are drawn in [min, 1], up-scaling ones in [1, max])', opt[k('resize_range')])
    return StageOptions(
        blur_prob=blur_prob, blur=blur_opts,
        resize_prob=_distribution(opt, k('resize_prob'), key_path, 3, 'up, down, keep'),
        resize_range=resize_range,
        gaussian_noise_prob=_probability(opt, k('gaussian_noise_prob'), key_path),
        noise_range=_range(opt, k('noise_range'), key_path),
        poisson_scale_range=_range(opt, k('poisson_scale_range'), key_path),
        gray_noise_prob=_probability(opt, k('gray_noise_prob'), key_path),
        jpeg_range=_range(opt, k('jpeg_range'), key_path))


def parse_degradation(options, key_path='degradation'):
    """Validate a degradation mapping (Real-ESRGAN's keys; ``DEFAULTS`` fills the missing ones) into a
    ``Degradation``. A bad value raises one line naming ``<key_path>:<key>`` and what was expected."""
    if not isinstance(options, dict):
        raise DegradationOptionError(f'{key_path}: expected a mapping of degradation options (or the path of a '
                                     f'YAML file holding one), got {options!r}')
    unknown = [key for key in options if key not in DEFAULTS]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), DEFAULTS, n=1, cutoff=0.6)
        hint = f' (did you mean {close[0]}?)' if close else ''
        raise DegradationOptionError(f'{key_path}:{key}: unknown degradation option{hint}; expected a key of '
                                     "Real-ESRGAN's degradation (kernel_list, blur_sigma, resize_prob, noise_range, "
                                     'jpeg_range, ..., the same ending in 2 for the second stage, final_sinc_prob) '
                                     'or second_order, stereo_shared_optics, stereo_shared_noise_level, '
                                     'stereo_shared_jpeg')
    opt = {**DEFAULTS, **options}
    for key in ('second_order', 'stereo_shared_optics', 'stereo_shared_noise_level', 'stereo_shared_jpeg'):
        if not isinstance(opt[key], bool):
            _fail(key_path, key, 'true or false', opt[key])
    stage2 = _stage(opt, key_path, '2', _probability(opt, 'second_blur_prob', key_path))  # checked even when off
    return Degradation(
        stage1=_stage(opt, key_path, '', 1.0),
        stage2=stage2 if opt['second_order'] else None,
        final_sinc_prob=_probability(opt, 'final_sinc_prob', key_path),
        final_kernel_size=_kernel_size(opt, 'blur_kernel_size', key_path),
        shared_optics=opt['stereo_shared_optics'],
        shared_noise_level=opt['stereo_shared_noise_level'],
        shared_jpeg=opt['stereo_shared_jpeg'],
        options=opt)


def load_degradation(spec, key_path='degradation'):
    """``parse_degradation`` of a mapping, or of the mapping in the YAML file ``spec`` names (a path)."""
    if isinstance(spec, (str, os.PathLike)):
        path = os.fspath(spec)
        try:
            with open(path, encoding='utf-8') as f:
                options = yaml.safe_load(f)
        except OSError as err:
            raise DegradationOptionError(f'{key_path}: {path}: cannot read ({err.strerror or err}); expected a '
                                         'YAML file of degradation options') from None
        except yaml.YAMLError as err:
            where = getattr(err, 'problem_mark', None)
            line = f' (line {where.line + 1})' if where is not None else ''
            raise DegradationOptionError(f'{key_path}: {path}: not valid YAML{line}') from None
        return parse_degradation(options, key_path=path)
    return parse_degradation(spec, key_path)


# ------------------------------------------------------------------------------------------------------ plans
@dataclass(frozen=True)
class OpticsPlan:
    """What one view's camera does: kernels (None = no blur), resize factors and modes, last-stage order."""
    kernel1: np.ndarray
    resize1: Tuple[float, str]  # factor relative to the HR size, mode
    kernel2: Optional[np.ndarray]
    resize2: Optional[Tuple[float, str]]  # factor relative to the LR size, mode
    final_mode: str
    final_sinc: Optional[np.ndarray]
    jpeg_last: bool  # resize + sinc, then JPEG (else JPEG first)


@dataclass(frozen=True)
class NoisePlan:
    kind: str  # 'gaussian' (level = sigma) or 'poisson' (level = scale)
    level: float
    gray: bool


@dataclass(frozen=True)
class ViewPlan:
    optics: OpticsPlan
    noise: Tuple[NoisePlan, ...]  # one per stage
    jpeg: Tuple[int, ...]  # one quality per JPEG
    seed: int  # of the view's own noise generator


def _beta(rng, lo, hi):
    """A shape parameter in [lo, hi]; when the range straddles 1, below and above 1 are equally likely."""
    if lo < 1 < hi:
        return rng.uniform(lo, 1) if rng.random() < 0.5 else rng.uniform(1, hi)
    return rng.uniform(lo, hi)


def _sinc_cutoff(rng, size):
    """Real-ESRGAN's cut-off range: [pi/3, pi] for kernels below 13 pixels, [pi/5, pi] for larger ones."""
    return rng.uniform(np.pi / 3 if size < 13 else np.pi / 5, np.pi)


def _kernel_sizes(largest):
    return np.arange(min(MIN_KERNEL_SIZE, largest), largest + 1, 2)


def random_kernel(blur_opts, rng):
    """A blur kernel drawn from ``blur_opts`` (a ``BlurOptions``)."""
    size = int(rng.choice(_kernel_sizes(blur_opts.kernel_size)))
    kind = 'sinc' if rng.random() < blur_opts.sinc_prob else \
        blur_opts.kernel_list[int(rng.choice(len(blur_opts.kernel_list), p=blur_opts.kernel_prob))]
    if kind == 'sinc':
        return sinc_kernel(size, _sinc_cutoff(rng, size))
    sigma_x = rng.uniform(*blur_opts.sigma)
    if kind.endswith('aniso'):
        sigma_y, theta = rng.uniform(*blur_opts.sigma), rng.uniform(-np.pi, np.pi)
    else:
        sigma_y, theta = sigma_x, 0.0
    if kind.startswith('generalized'):
        return generalized_gaussian_kernel(size, sigma_x, sigma_y, theta, _beta(rng, *blur_opts.betag_range))
    if kind.startswith('plateau'):
        return plateau_kernel(size, sigma_x, sigma_y, theta, _beta(rng, *blur_opts.betap_range))
    return gaussian_kernel(size, sigma_x, sigma_y, theta)


def _random_resize(stage, rng):
    kind = RESIZE_KINDS[int(rng.choice(3, p=stage.resize_prob))]
    if kind == 'up':
        factor = rng.uniform(1, stage.resize_range[1])
    elif kind == 'down':
        factor = rng.uniform(stage.resize_range[0], 1)
    else:
        factor = 1.0
    return float(factor), str(rng.choice(list(RESIZE_MODES)))


def _draw_optics(deg, rng):
    kernel1 = random_kernel(deg.stage1.blur, rng)
    resize1 = _random_resize(deg.stage1, rng)
    kernel2 = resize2 = None
    if deg.stage2 is not None:
        if rng.random() < deg.stage2.blur_prob:
            kernel2 = random_kernel(deg.stage2.blur, rng)
        resize2 = _random_resize(deg.stage2, rng)
    final_mode = str(rng.choice(list(RESIZE_MODES)))
    final_sinc = None
    if rng.random() < deg.final_sinc_prob:
        size = int(rng.choice(_kernel_sizes(deg.final_kernel_size)))
        final_sinc = sinc_kernel(size, rng.uniform(np.pi / 3, np.pi))
    return OpticsPlan(kernel1, resize1, kernel2, resize2, final_mode, final_sinc, bool(rng.random() < 0.5))


def _draw_noise(deg, rng):
    plans = []
    for stage in (deg.stage1, deg.stage2):
        if stage is None:
            continue
        if rng.random() < stage.gaussian_noise_prob:
            kind, level = 'gaussian', rng.uniform(*stage.noise_range)
        else:
            kind, level = 'poisson', rng.uniform(*stage.poisson_scale_range)
        plans.append(NoisePlan(kind, float(level), bool(rng.random() < stage.gray_noise_prob)))
    return tuple(plans)


def _draw_jpeg(deg, rng):
    return tuple(int(rng.integers(s.jpeg_range[0], s.jpeg_range[1] + 1)) for s in (deg.stage1, deg.stage2) if s)


def plan_pair(deg, rng):
    """The ``ViewPlan`` of the left and of the right view, drawn from ``rng`` under the stereo rules of ``deg``."""
    views = []
    for draw, shared in ((_draw_optics, deg.shared_optics), (_draw_noise, deg.shared_noise_level),
                         (_draw_jpeg, deg.shared_jpeg)):
        first = draw(deg, rng)
        views.append((first, first if shared else draw(deg, rng)))
    seeds = rng.integers(0, 2**63 - 1, size=2)  # the noise of each view comes from its own generator
    return tuple(ViewPlan(views[0][v], views[1][v], views[2][v], int(seeds[v])) for v in range(2))


def pair_generator(seed, pair):
    """The generator that degrades the pair named ``pair`` (its folder name) under the base ``seed``: seeded by
    SHA-256 of both, so a pair's draw depends on neither its position nor the other pairs of its set (a subset
    keeps its LR views) and is the same in every process (unlike Python's salted ``hash``)."""
    digest = hashlib.sha256(f'{int(seed)}/{pair}'.encode('utf-8')).digest()
    return np.random.default_rng(int.from_bytes(digest, 'little'))


def largest_kernel_radius(deg):
    """The largest radius of the kernels ``deg`` may draw, in pixels of the stage applying it (stage 1: HR pixels,
    the final sinc: LR pixels, stage 2: pixels in between)."""
    sizes = [deg.final_kernel_size] + [stage.blur.kernel_size for stage in (deg.stage1, deg.stage2) if stage]
    return max(sizes) // 2


# --------------------------------------------------------------------------------------------------- pipeline
def _add_noise(img, plan, rng):
    if plan.level == 0:
        return img
    if plan.kind == 'gaussian':
        noisy = img + gaussian_noise(img.shape, plan.level, plan.gray, rng)
    else:
        noisy = img + poisson_noise(img, plan.level, plan.gray, rng)
    return np.clip(noisy, 0, 255)


def _scaled(size_hw, factor):
    return tuple(max(1, int(n * factor)) for n in size_hw)


def degrade_view(hr, scale, plan):
    """The LR view (``uint8``, exactly ``HR / scale``) of a ``uint8`` HR view whose size is a multiple of ``scale``."""
    h, w = hr.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f'degrade_view: HR size {h}x{w} is not a multiple of the scale {scale}')
    lr_hw = (h // scale, w // scale)
    optics, rng = plan.optics, np.random.default_rng(plan.seed)
    x = blur(hr.astype(np.float64), optics.kernel1)
    x = resize(x, _scaled((h, w), optics.resize1[0]), optics.resize1[1])
    x = _add_noise(x, plan.noise[0], rng)
    x = jpeg(x, plan.jpeg[0])
    if optics.resize2 is not None:
        if optics.kernel2 is not None:
            x = blur(x, optics.kernel2)
        x = resize(x, _scaled(lr_hw, optics.resize2[0]), optics.resize2[1])
        x = _add_noise(x, plan.noise[1], rng)
        if not optics.jpeg_last:
            x = jpeg(x, plan.jpeg[1])
    x = resize(x, lr_hw, optics.final_mode)
    if optics.final_sinc is not None:
        x = blur(x, optics.final_sinc)
    if optics.resize2 is not None and optics.jpeg_last:
        x = jpeg(x, plan.jpeg[1])
    return to_uint8(x)


def degrade_pair(hr0, hr1, scale, deg, rng):
    """``(lr0, lr1)``: the left and right HR views (``uint8`` HxWx3, sizes multiples of ``scale``) degraded by
    ``deg`` (a ``Degradation``) with every draw from ``rng`` (a ``numpy.random.Generator``)."""
    plan0, plan1 = plan_pair(deg, rng)
    return degrade_view(hr0, scale, plan0), degrade_view(hr1, scale, plan1)
