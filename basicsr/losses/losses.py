"""Pixel, frequency and perceptual losses selected by ``train:pixel_opt`` / ``train:freq_opt`` /
``train:perceptual_opt`` in the YAML.

Every loss takes ``(pred, target)`` float tensors of the same shape (N, C, H, W) and returns a scalar tensor already
multiplied by its ``loss_weight``. Stereo tensors have 6 channels (left 0:3, right 3:6).
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

from basicsr.utils.registry import LOSS_REGISTRY

_REDUCTIONS = ('none', 'mean', 'sum')


def _check_reduction(reduction, name):
    if reduction not in _REDUCTIONS:
        raise ValueError(f'{name}: reduction must be one of {", ".join(_REDUCTIONS)}, got {reduction!r}')


def _reduce(loss, reduction):
    if reduction == 'mean':
        return loss.mean()
    if reduction == 'sum':
        return loss.sum()
    return loss


class _WeightedLoss(nn.Module):
    def __init__(self, loss_weight=1.0, reduction='mean'):
        super().__init__()
        _check_reduction(reduction, type(self).__name__)
        self.loss_weight = float(loss_weight)
        self.reduction = reduction


@LOSS_REGISTRY.register()
class L1Loss(_WeightedLoss):
    """Mean absolute error."""

    def forward(self, pred, target):
        return self.loss_weight * F.l1_loss(pred, target, reduction=self.reduction)


@LOSS_REGISTRY.register()
class MSELoss(_WeightedLoss):
    """Mean squared error (what the NAFSSR release trains with)."""

    def forward(self, pred, target):
        return self.loss_weight * F.mse_loss(pred, target, reduction=self.reduction)


@LOSS_REGISTRY.register()
class CharbonnierLoss(_WeightedLoss):
    """``sqrt((pred - target)^2 + eps)``: a differentiable L1."""

    def __init__(self, loss_weight=1.0, reduction='mean', eps=1e-12):
        super().__init__(loss_weight, reduction)
        self.eps = float(eps)

    def forward(self, pred, target):
        return self.loss_weight * _reduce(torch.sqrt((pred - target) ** 2 + self.eps), self.reduction)


@LOSS_REGISTRY.register()
class CharbonnierLossColor(nn.Module):
    """SwinFIR's Charbonnier loss over colour: ``mean(sqrt(mean_c((pred - target)^2) + eps))``, the squared error
    averaged over all channels of a pixel (both views' six of a stereo tensor, as the release trains) before the
    root. As in the release, ``reduction`` is accepted but the loss is always a mean; ``eps`` defaults to 1e-6."""

    def __init__(self, loss_weight=1.0, reduction='mean', eps=1e-6):
        super().__init__()
        _check_reduction(reduction, 'CharbonnierLossColor')
        self.loss_weight = float(loss_weight)
        self.eps = float(eps)

    def forward(self, pred, target):
        return self.loss_weight * torch.sqrt((pred - target).square().mean(dim=1) + self.eps).mean()


@LOSS_REGISTRY.register()
class FrequencyCharbonnierLoss(nn.Module):
    """Charbonnier distance between the 2-D real FFTs (over H, W) of prediction and target, real and imaginary
    parts separately: mean of ``sqrt(dRe^2 + eps) + sqrt(dIm^2 + eps)`` (CVHSSR's ``FrequencyCharLoss``)."""

    def __init__(self, loss_weight=1.0, eps=1e-12):
        super().__init__()
        self.loss_weight = float(loss_weight)
        self.eps = float(eps)

    def forward(self, pred, target):
        # float32 FFT: half-precision FFTs need power-of-two sizes on CUDA
        diff = torch.fft.rfft2(pred.float()) - torch.fft.rfft2(target.float())
        distance = torch.sqrt(diff.real ** 2 + self.eps) + torch.sqrt(diff.imag ** 2 + self.eps)
        return self.loss_weight * distance.mean()


@LOSS_REGISTRY.register()
class ComposeLoss(nn.Module):
    """CVHSSR's training loss under its release's name: ``MSE + loss_weight * FrequencyCharbonnierLoss``.

    As in the release, ``loss_weight`` (default 0.01) weighs only the frequency term and ``reduction`` is accepted
    but the loss is always a mean.
    """

    def __init__(self, loss_weight=0.01, reduction='mean'):
        super().__init__()
        _check_reduction(reduction, 'ComposeLoss')
        self.loss_weight = float(loss_weight)
        self.frequency = FrequencyCharbonnierLoss()

    def forward(self, pred, target):
        return F.mse_loss(pred, target) + self.loss_weight * self.frequency(pred, target)


@LOSS_REGISTRY.register()
class FFTLoss(_WeightedLoss):
    """Mean absolute difference of the 2-D real FFTs over (H, W) of each channel, real and imaginary parts as
    separate entries (EHFSSR's ``FFTLoss``, selected there by ``train:freq_opt``). The FFTs run in float32."""

    def forward(self, pred, target):
        diff = torch.view_as_real(torch.fft.rfft2(pred.float()) - torch.fft.rfft2(target.float()))
        return self.loss_weight * _reduce(diff.abs(), self.reduction)


@LOSS_REGISTRY.register()
class PSNRLoss(nn.Module):
    """Negative PSNR: ``10/ln(10) * log(mse + 1e-8)`` per image, averaged over the batch (NAFNet's definition).

    ``toY`` measures the error on the luma (BT.601, images in [0, 1]) of each 3-channel view instead of on RGB.
    """

    def __init__(self, loss_weight=1.0, reduction='mean', toY=False):
        super().__init__()
        if reduction != 'mean':
            raise ValueError(f"PSNRLoss: reduction must be 'mean', got {reduction!r}")
        self.loss_weight = float(loss_weight)
        self.scale = 10.0 / math.log(10.0)
        self.toY = bool(toY)
        self.register_buffer('coef', torch.tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1), persistent=False)

    def _luma(self, img):
        n, c, h, w = img.shape
        views = img.reshape(n * (c // 3), 3, h, w)
        y = (views * self.coef.to(img)).sum(dim=1, keepdim=True) + 16.0
        return (y / 255.0).reshape(n, c // 3, h, w)

    def forward(self, pred, target):
        if pred.dim() != 4:
            raise ValueError(f'PSNRLoss expects (N, C, H, W) tensors, got shape {tuple(pred.shape)}')
        if self.toY:
            pred, target = self._luma(pred), self._luma(target)
        mse = ((pred - target) ** 2).mean(dim=(1, 2, 3))
        return self.loss_weight * self.scale * torch.log(mse + 1e-8).mean()


VGG19_URL = 'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth'  # torchvision's ImageNet VGG19


@LOSS_REGISTRY.register()
class PerceptualLoss(nn.Module):
    """VGG feature (and optional Gram-matrix style) distance, computed on each 3-channel view.

    The VGG weights come from a local file (``vgg_weights_path``: torchvision's VGG19 state dict
    ``vgg19-dcbb9e9d.pth`` from ``VGG19_URL``, whose SHA-256 is checked against its name; under another name it is
    used unverified, with a log line; only its ``features`` are read); nothing is downloaded. ``layer_weights`` maps
    torchvision layer names such as ``conv5_4`` to weights. Inputs are in [0, 1] and in the dataset's channel order
    (``input_bgr`` says whether to flip them to the RGB order VGG expects). Returns ``(perceptual, style)``; a term
    whose weight is 0 is None.
    """

    _VGG19_NAMES = (
        'conv1_1', 'relu1_1', 'conv1_2', 'relu1_2', 'pool1',
        'conv2_1', 'relu2_1', 'conv2_2', 'relu2_2', 'pool2',
        'conv3_1', 'relu3_1', 'conv3_2', 'relu3_2', 'conv3_3', 'relu3_3', 'conv3_4', 'relu3_4', 'pool3',
        'conv4_1', 'relu4_1', 'conv4_2', 'relu4_2', 'conv4_3', 'relu4_3', 'conv4_4', 'relu4_4', 'pool4',
        'conv5_1', 'relu5_1', 'conv5_2', 'relu5_2', 'conv5_3', 'relu5_3', 'conv5_4', 'relu5_4', 'pool5')

    def __init__(self, layer_weights=None, vgg_weights_path=None, use_input_norm=True, input_bgr=True,
                 perceptual_weight=1.0, style_weight=0.0, criterion='l1'):
        super().__init__()
        from torchvision.models import vgg19

        from basicsr.utils.checkpoint import CheckpointError, check_hub_file, load_state_dict, tensors_mismatch

        if not vgg_weights_path:
            raise ValueError('train:perceptual_opt:vgg_weights_path: PerceptualLoss needs a local torchvision VGG19 '
                             'state dict file (e.g. vgg19-dcbb9e9d.pth); nothing is downloaded')
        layer_weights = layer_weights or {'conv5_4': 1.0}
        unknown = [k for k in layer_weights if k not in self._VGG19_NAMES]
        if unknown:
            raise ValueError(f'train:perceptual_opt:layer_weights: unknown VGG19 layer(s) {", ".join(unknown)}; '
                             f'expected names like conv5_4 or relu3_1')
        if criterion not in ('l1', 'l2', 'fro'):
            raise ValueError(f"train:perceptual_opt:criterion: expected l1, l2 or fro, got {criterion!r}")
        key_path = 'train:perceptual_opt:vgg_weights_path'
        check_hub_file(vgg_weights_path, key_path, VGG19_URL)  # refuses another file under torchvision's name
        with torch.device('meta'):  # no memory, no random init: the features get the file's tensors, the
            vgg = vgg19(weights=None)  # classifier (0.5 GB in float32) is never used
        state = load_state_dict(vgg_weights_path, param_key=None)
        expected = {f'features.{k}': tuple(v.shape) for k, v in vgg.features.state_dict().items()}
        problem = tensors_mismatch(state, expected, 'torchvision VGG19 weights')
        if problem:
            raise CheckpointError(f'{key_path}: {vgg_weights_path}: {problem}')
        vgg.features.load_state_dict({k[len('features.'):]: state[k].float() for k in expected}, assign=True)
        last = max(self._VGG19_NAMES.index(k) for k in layer_weights)
        self.features = vgg.features[:last + 1].eval()
        for p in self.features.parameters():
            p.requires_grad_(False)
        for layer in self.features:  # torchvision's in-place ReLUs would overwrite a kept conv output (conv5_4)
            if isinstance(layer, nn.ReLU):
                layer.inplace = False
        self.layer_weights = {k: float(v) for k, v in layer_weights.items()}
        self.use_input_norm = use_input_norm
        self.input_bgr = input_bgr
        self.perceptual_weight = float(perceptual_weight)
        self.style_weight = float(style_weight)
        self.criterion = criterion
        self.register_buffer('mean', torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def train(self, mode=True):
        super().train(mode)
        self.features.eval()  # VGG is a fixed feature extractor
        return self

    def _feats(self, x):
        n, c, h, w = x.shape
        x = x.reshape(n * (c // 3), 3, h, w)
        if self.input_bgr:
            x = x.flip(1)
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        out = {}
        for name, layer in zip(self._VGG19_NAMES, self.features):
            x = layer(x)
            if name in self.layer_weights:
                out[name] = x
        return out

    def _dist(self, a, b):
        if self.criterion == 'l1':
            return F.l1_loss(a, b)
        if self.criterion == 'l2':
            return F.mse_loss(a, b)
        return torch.linalg.norm(a - b)

    @staticmethod
    def _gram(x):
        n, c, h, w = x.shape
        f = x.reshape(n, c, h * w)
        return f @ f.transpose(1, 2) / (c * h * w)

    def forward(self, pred, target):
        pf, tf = self._feats(pred), self._feats(target.detach())
        percep = style = None
        if self.perceptual_weight > 0:
            percep = self.perceptual_weight * sum(self._dist(pf[k], tf[k]) * w for k, w in self.layer_weights.items())
        if self.style_weight > 0:
            style = self.style_weight * sum(self._dist(self._gram(pf[k]), self._gram(tf[k])) * w
                                            for k, w in self.layer_weights.items())
        return percep, style
