"""Perceptual metrics: LPIPS and the NTIRE 2023 perceptual-track score of stereo SR.

LPIPS (Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric", CVPR 2018) is
computed by the ``lpips`` package: its calibrated linear layers ship inside the package, while the backbone
(torchvision's ImageNet AlexNet, VGG16 or SqueezeNet 1.1) is read from a local torchvision state-dict file, never
downloaded unless ``STEREO_SR_ALLOW_DOWNLOAD=1``:

1. ``weights_path`` when given (the ``val:metrics`` option), else
2. torch's hub cache, ``torch.hub.get_dir()/checkpoints/<torchvision file name>`` (where torchvision itself keeps
   them; ``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``).

A file under torchvision's own name (``alexnet-owt-7be5be79.pth``) must have the SHA-256 that name begins with, as
torch.hub checks on download (``basicsr.utils.checkpoint.check_hub_file``); under another name it is used
unverified, with a log line saying so.

Images follow the other metrics: two uint8 HWC images (or float in [0, 255]) in the dataset's ``color_order``;
a 6-channel stereo image scores (LPIPS(left) + LPIPS(right)) / 2. LPIPS is a distance: lower is better.
"""
import os
import warnings

import numpy as np
import torch

from basicsr.metrics.psnr_ssim import _left_view, _prepare, _views
from basicsr.metrics.stereo_consistency import sgbm_disparity
from basicsr.utils.errors import UserError
from basicsr.utils.registry import METRIC_REGISTRY

ALLOW_DOWNLOAD_ENV = 'STEREO_SR_ALLOW_DOWNLOAD'

# lpips' name -> (torchvision architecture, torchvision's ImageNet weight file, its address)
BACKBONES = {
    'alex': ('AlexNet', 'alexnet-owt-7be5be79.pth', 'https://download.pytorch.org/models/alexnet-owt-7be5be79.pth'),
    'vgg': ('VGG16', 'vgg16-397923af.pth', 'https://download.pytorch.org/models/vgg16-397923af.pth'),
    'squeeze': ('SqueezeNet 1.1', 'squeezenet1_1-b8a52dc0.pth',
                'https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth'),
}

_MODELS = {}  # (net, weights file, device) -> an LPIPS model in eval mode


class PerceptualWeightsError(UserError, ValueError):
    """The backbone weights of LPIPS are missing or are not the torchvision state dict they should be."""


def lpips_weights_file(net='alex', weights_path=None):
    """The backbone file LPIPS ``net`` reads: ``weights_path``, else the torch hub cache's copy.

    Missing: downloaded into the hub cache when ``STEREO_SR_ALLOW_DOWNLOAD=1``, else a one-line
    ``PerceptualWeightsError`` naming the file looked for and how to get it.
    """
    if net not in BACKBONES:
        raise PerceptualWeightsError(f'net: expected one of {", ".join(BACKBONES)}, got {net!r}')
    arch, filename, url = BACKBONES[net]
    if weights_path:
        path = os.path.abspath(os.path.expanduser(os.fspath(weights_path)))
        if not os.path.isfile(path):
            raise PerceptualWeightsError(f'weights_path: no file {path} (LPIPS net={net} needs the torchvision '
                                         f'{arch} ImageNet state dict {filename}, from {url})')
        return path
    hub_dir = os.path.join(torch.hub.get_dir(), 'checkpoints')
    path = os.path.join(hub_dir, filename)
    if not os.path.isfile(path):
        if os.environ.get(ALLOW_DOWNLOAD_ENV) != '1':
            raise PerceptualWeightsError(
                f'LPIPS net={net} needs the torchvision {arch} ImageNet weights: no file {path}; put {filename} '
                f'there (from {url}), or give its path as weights_path, or set {ALLOW_DOWNLOAD_ENV}=1 to download it')
        try:
            torch.hub.load_state_dict_from_url(url, model_dir=hub_dir, progress=False, check_hash=True)
        except Exception as err:  # noqa: BLE001  (no network, a proxy, a bad hash: all mean "get it by hand")
            raise PerceptualWeightsError(f'LPIPS net={net}: could not download {url} to {path} '
                                         f'({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ""})'
                                         ) from None
    return path


def _build_lpips(net, weights_file, device):
    """``lpips.LPIPS(net)`` with its packaged linear layers and the backbone from ``weights_file``; eval, frozen."""
    import lpips  # imported on first use: the package pulls in torchvision's model zoo

    from basicsr.utils.checkpoint import CheckpointError, check_hub_file, load_state_dict, tensors_mismatch

    arch, _, url = BACKBONES[net]
    try:
        check_hub_file(weights_file, f'LPIPS net={net}', url)  # refuses another file under torchvision's name
    except CheckpointError as err:
        raise PerceptualWeightsError(str(err)) from None
    state = load_state_dict(weights_file, param_key=None)
    with warnings.catch_warnings():  # lpips 0.1.4 still passes torchvision's deprecated `pretrained=False`
        warnings.simplefilter('ignore', UserWarning)
        model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
    # lpips splits torchvision's `features` into slices that keep the layer indices: sliceK.<i>.w = features.<i>.w
    own = model.net.state_dict()
    wanted = {key: 'features.' + key.split('.', 1)[1] for key in own}
    problem = tensors_mismatch(state, {src: tuple(own[key].shape) for key, src in wanted.items()},
                               f'torchvision {arch} weights')
    if problem:
        raise PerceptualWeightsError(f'LPIPS net={net}: {weights_file}: {problem}')
    model.net.load_state_dict({key: state[src] for key, src in wanted.items()})
    model.eval().requires_grad_(False)
    return model.to(device)


def lpips_model(net='alex', weights_path=None, device='cpu'):
    """The LPIPS model for ``(net, backbone file, device)``, built once and kept for the process."""
    weights_file = lpips_weights_file(net, weights_path)
    key = (net, os.path.realpath(weights_file), str(torch.device(device)))
    if key not in _MODELS:
        _MODELS[key] = _build_lpips(net, weights_file, device)
    return _MODELS[key]


def _to_lpips_input(views, color_order):
    """[HWC float64 views in [0, 255]] -> an (N, 3, H, W) float32 RGB tensor in [-1, 1], as ``lpips.im2tensor``."""
    if color_order not in ('bgr', 'rgb'):
        raise ValueError(f"color_order must be 'bgr' or 'rgb', got {color_order!r}")
    batch = np.stack([v[..., ::-1] if color_order == 'bgr' else v for v in views]) / 127.5 - 1.0
    return torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2))).float()


def _lpips_per_view(a, b, color_order, net, weights_path, device):
    """LPIPS of each view of the HWC float images ``a`` and ``b`` (3 channels: one view; 6: left, right)."""
    if a.shape[2] not in (3, 6):
        raise ValueError(f'LPIPS needs 3-channel images or 6-channel stereo images, got {a.shape[2]} channels')
    model = lpips_model(net, weights_path, device)
    x, y = (_to_lpips_input(_views(img), color_order).to(device) for img in (a, b))
    try:
        with torch.no_grad():
            return model(x, y).flatten().double().cpu().tolist()
    except RuntimeError as err:  # a view smaller than the backbone's receptive field (AlexNet: 31x31)
        raise ValueError(f'LPIPS net={net} cannot score a {a.shape[1]}x{a.shape[0]} view '
                         f'({str(err).splitlines()[0]})') from None


@METRIC_REGISTRY.register()
def calculate_lpips(img1, img2, crop_border=0, input_order='HWC', color_order='bgr', net='alex', weights_path=None,
                    device='cpu'):
    """LPIPS distance (lower is better); a 6-channel stereo image scores (LPIPS(left) + LPIPS(right)) / 2.

    ``net``: the backbone, ``alex`` (LPIPS' default), ``vgg`` or ``squeeze``; ``weights_path``: its torchvision
    state-dict file (default: the torch hub cache's); ``device``: where the network runs (``cpu``, ``cuda``).
    """
    a, b = _prepare(img1, img2, crop_border, input_order)
    return float(np.mean(_lpips_per_view(a, b, color_order, net, weights_path, device)))


@METRIC_REGISTRY.register()
def calculate_lpips_left(img1, img2, crop_border=0, input_order='HWC', color_order='bgr', net='alex',
                         weights_path=None, device='cpu'):
    """LPIPS of the left view without its 64 leftmost columns (the papers' "Left" column)."""
    a, b = _prepare(img1, img2, 0, input_order)
    return calculate_lpips(_left_view(a), _left_view(b), crop_border, 'HWC', color_order, net, weights_path, device)


def _check_backbone(kwargs, key_path):
    """``check_metric_opt``'s early check (when the options are read, before anything is written): the backbone
    file is there, and is torchvision's when it has torchvision's name (``check_hub_file``)."""
    from basicsr.utils.checkpoint import CheckpointError, check_hub_file

    net = kwargs.get('net', 'alex')
    try:
        path = lpips_weights_file(net, kwargs.get('weights_path'))
        check_hub_file(path, f'LPIPS net={net}', BACKBONES[net][2])
    except (PerceptualWeightsError, CheckpointError) as err:
        raise PerceptualWeightsError(f'{key_path}: {err}') from None


calculate_lpips.better = 'lower'  # a distance: best checkpoints keep the lowest value
calculate_lpips_left.better = 'lower'
calculate_lpips.check_options = calculate_lpips_left.check_options = _check_backbone


def disparity_mae(sr, hr, min_disparity=0, num_disparities=None, block_size=5):
    """Mean |D_SR - D_HR| in pixels between the SGBM disparity maps of two 6-channel uint8 stereo pairs.

    Only pixels where SGBM finds a disparity in both pairs count (SGBM, unlike RAFT-Stereo, leaves holes: the
    leftmost columns, textureless areas); NaN with a warning when there is none.
    """
    kwargs = dict(min_disparity=min_disparity, num_disparities=num_disparities, block_size=block_size)
    pairs = [np.clip(np.rint(img), 0, 255).astype(np.uint8) for img in (sr, hr)]
    d_sr, d_hr = (sgbm_disparity(p[..., :3], p[..., 3:], **kwargs) for p in pairs)
    both = np.isfinite(d_sr) & np.isfinite(d_hr)
    if not both.any():
        warnings.warn(f'disparity_mae: SGBM matched no pixel of this {sr.shape[1]}x{sr.shape[0]} pair in both the '
                      'SR and the HR pair (too narrow for the disparity search, or no texture): its score is nan')
        return float('nan')
    return float(np.abs(d_sr[both] - d_hr[both]).mean())


@METRIC_REGISTRY.register()
def calculate_ntire2023_perceptual_score(img1, img2, input_order='HWC', color_order='bgr', net='alex',
                                         weights_path=None, device='cpu', disparity_weight=1.0, min_disparity=0,
                                         num_disparities=None, block_size=5):
    """The NTIRE 2023 stereo SR perceptual-track score (higher is better; 1 for a perfect pair):

        1 - 0.5 * LPIPS(SR left, HR left) - 0.5 * LPIPS(SR right, HR right) - disparity_weight * MAE(D_SR, D_HR)

    as the organisers' challenge page states it (Stereo-Image-SR repository, NTIRE2023 branch, track 2), with
    ``D_SR``, ``D_HR`` the disparity maps of the SR and the HR pair. Ours differs in the disparity estimator: the
    organisers used RAFT-Stereo; we use the SGBM matcher of ``stereo_consistency`` (nothing to download), so
    absolute values are not comparable with the challenge's, only between models scored here. The page neither
    names the LPIPS backbone nor normalises the MAE; we use AlexNet (the ``lpips`` default; ``net`` to change) and
    the plain MAE in pixels over the pixels SGBM matches in both pairs (see ``disparity_mae``). One participant's
    public re-implementation weighted the MAE by 0.1 (``disparity_weight: 0.1`` reproduces that).

    ``img1``: the SR pair, ``img2``: the HR pair, 6-channel (left 0:3, right 3:6). There is no "Left" variant: the
    disparity term needs both views.
    """
    a, b = _prepare(img1, img2, 0, input_order)
    if a.shape[2] != 6:
        raise ValueError(f'calculate_ntire2023_perceptual_score needs 6-channel stereo images (left, right), got '
                         f'{a.shape[2]} channels')
    perceptual = calculate_lpips(a, b, 0, 'HWC', color_order, net, weights_path, device)
    disparity = disparity_mae(a, b, min_disparity, num_disparities, block_size)
    return float(1.0 - perceptual - float(disparity_weight) * disparity)


calculate_ntire2023_perceptual_score.better = 'higher'
calculate_ntire2023_perceptual_score.check_options = _check_backbone
