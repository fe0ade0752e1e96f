"""Running a trained model on one's own stereo pairs: what ``scripts/inference_stereo.py`` and the web demo
(``demo.py``) share.

- ``load_model`` builds the network of an option file or of a named zoo size and loads its weights;
  ``network_from_options`` is its first half, for parsed options (test.py, scripts/reproduce_tables.py);
- ``auto_strip_rows`` sizes the full-width strips of ``basicsr.evaluation.infer_in_strips`` to a memory budget.
"""
import sys

import torch

from basicsr.models.archs import define_network
from basicsr.option_checks import OPTION_CHECKS
from basicsr.utils.checkpoint import load_network, weight_options
from basicsr.utils.errors import UserError
from basicsr.utils.options import parse

DEFAULT_MEMORY_GB = 5.0  # --max_memory_gb
MIN_AUTO_ROWS = 8  # the smallest strip --max_memory_gb may choose


class InputError(UserError, ValueError):
    """A bad input pair or option; the message is one line naming the file or flag."""


def network_from_options(opt, weights=None, weights_flag=None):
    """``network_g`` of the parsed options ``opt`` with its weights loaded: the file ``weights`` (named
    ``weights_flag`` in errors) or else ``path:pretrain_network_g``, read with ``path:param_key_g`` and
    ``path:strict_load_g`` (``basicsr.utils.checkpoint.weight_options``)."""
    file, param_key, strict = weight_options(opt)
    if not (weights or file):
        instead = f'; give {weights_flag}' if weights_flag else ''
        raise InputError(f"{opt.get('opt_path', 'options')}: path:pretrain_network_g must name the network's "
                         f'weights{instead}')
    net = define_network(opt['network_g'], key_path='network_g')
    return load_network(net, weights or file, param_key, strict,
                        key_path=(weights_flag or 'weights') if weights else 'path:pretrain_network_g',
                        arch_key='network_g:type', strict_key='path:strict_load_g')


def load_model(opt_path=None, arch=None, scale=None, weights=None, param_key='params', color_order=None):
    """``(network, scale, color order)`` from an option file ``opt_path`` (``network_g``, ``scale``, and
    ``path:pretrain_network_g`` unless ``weights`` is given), or from a named size ``arch`` at ``scale`` with the
    checkpoint ``weights``. ``color_order`` (``'bgr'``/``'rgb'``) overrides what the option file or the family's
    released weights say. Errors name the command-line flag (``-opt``, ``--arch``, ``--weights``)."""
    if opt_path:
        opt = parse(opt_path, is_train=False, registries=OPTION_CHECKS)
        net = network_from_options(opt, weights, '--weights')
        datasets = list(opt['datasets'].values())
        return net, opt['scale'], color_order or (datasets[0].get('color_order', 'bgr') if datasets else 'bgr')
    if not (arch and scale and weights):
        raise InputError('give a model: -opt <option file>, or --arch NAFSSR-T --scale 4 --weights <file.pth>')
    from basicsr import zoo
    from basicsr.models.archs import arch_util

    try:
        net = arch_util.build_named(arch, scale)
    except ValueError as err:
        raise InputError(f'--arch: {err}') from None
    load_network(net, weights, param_key, key_path='--weights', arch_key='--arch')
    # the channel order the size's released weights were trained with (its zoo card: RGB for iPASSR, SwinFIRSSR, ...)
    return net, scale, color_order or zoo.card(arch).color_order


def strip_bytes_per_row(net, width, scale):
    """Estimated memory of one LR row of a strip, in bytes.

    Evaluation computes SCAM's attention with a fused kernel that never holds the width x width scores, so the
    cost of one LR row is linear in the width: about 8 feature maps of the network's width alive at once, plus
    the strip's up-sampled output and bilinear skip (measured for NAFSSR-T x4 at width 3000: 4.3 MB per extra
    row, below the 9.2 MB this estimate allows).
    """
    first = next((m for m in net.modules() if isinstance(m, torch.nn.Conv2d)), None)
    features = first.out_channels if first is not None else 64
    return 4 * width * (8 * features + 4 * 6 * scale * scale)


def auto_strip_rows(net, width, scale, overlap, max_memory_gb):
    """LR rows per strip so that one strip and its ``2 * overlap`` context rows stay within ``max_memory_gb``;
    ``MIN_AUTO_ROWS``, with a note, when not even that strip fits."""
    per_row = strip_bytes_per_row(net, width, scale)
    rows = int(max_memory_gb * 2 ** 30 / per_row) - 2 * overlap
    if rows < MIN_AUTO_ROWS:
        need = per_row * (MIN_AUTO_ROWS + 2 * overlap) / 2 ** 30
        print(f'note: --max_memory_gb {max_memory_gb:g} is below the estimate for the smallest strip '
              f'({MIN_AUTO_ROWS} LR rows + 2 x {overlap} overlap rows at width {width}: {need:.3g} GB); strips of '
              f'{MIN_AUTO_ROWS} rows are used', file=sys.stderr)
        rows = MIN_AUTO_ROWS
    return rows

