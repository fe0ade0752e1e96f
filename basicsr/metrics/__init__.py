from basicsr.utils.scan import import_modules

import_modules(__name__, __file__)

import inspect  # noqa: E402

from basicsr.metrics.psnr_ssim import (calculate_psnr, calculate_psnr_left, calculate_skimage_ssim,  # noqa: E402,F401
                                       calculate_skimage_ssim_left, calculate_ssim, calculate_ssim_left)
from basicsr.metrics.stereo_consistency import calculate_stereo_consistency  # noqa: E402,F401
from basicsr.utils.registry import METRIC_REGISTRY, BuildError  # noqa: E402


ENTRY_KEYS = ('better',)  # keys of a val:metrics entry, besides type, that are not keyword arguments of the metric


def check_metric_opt(metric_opt, key_path='val:metrics'):
    """Check one ``val:metrics`` entry before any work is done, as ``Registry.build`` checks what it builds; return
    the metric function.

    One-line errors name ``key_path``: no ``type``, an unknown metric (with close names), an unknown keyword, or
    what the metric's own ``check_options(kwargs, key_path)`` refuses (a missing weight file).
    """
    return _resolve(metric_opt, key_path)[0]


def _resolve(metric_opt, key_path):
    """``(fn, kwargs)`` of a checked ``val:metrics`` entry."""
    if isinstance(metric_opt, dict) and metric_opt.get('better', 'higher') not in ('higher', 'lower'):
        raise BuildError(f"{key_path}:better: expected higher or lower, got {metric_opt['better']!r}")
    return METRIC_REGISTRY.resolve(metric_opt, key_path, meta_keys=ENTRY_KEYS, img1=None, img2=None)


def metric_better(metric_opt):
    """'higher' or 'lower': the entry's ``better`` key, else what the metric declares (``fn.better``), else higher."""
    if metric_opt.get('better'):
        return metric_opt['better']
    name = metric_opt.get('type')
    return getattr(METRIC_REGISTRY.get(name), 'better', 'higher') if name in METRIC_REGISTRY else 'higher'


def calculate_metric(data, metric_opt, key_path='val:metrics'):
    """Score ``data['img']`` against ``data['img2']`` with the metric that ``metric_opt['type']`` names.

    ``metric_opt`` is one entry of ``val:metrics`` (``{'type': 'calculate_psnr', 'crop_border': 0, ...}``); its
    other keys are the metric's keyword arguments. Images are uint8 HWC, 6 channels for a stereo pair. Other keys of
    ``data`` (``color_order``, ``disparity``) are passed to metrics whose signature takes them.
    """
    fn, kwargs = _resolve(metric_opt, key_path)
    params = inspect.signature(fn).parameters
    for key, value in data.items():
        if key not in ('img', 'img2') and key in params and key not in kwargs:
            kwargs[key] = value
    try:
        return fn(data['img'], data['img2'], **kwargs)
    except (ValueError, TypeError) as err:  # name the option entry, e.g. a bad num_disparities
        raise type(err)(f'{key_path}: {err}') from None
