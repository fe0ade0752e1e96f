"""LPIPS as a training loss, selected by ``train:lpips_opt`` (``type: LPIPSLoss``).

The network is the one the LPIPS metric uses (``basicsr.metrics.perceptual.lpips_model``: the ``lpips`` package's
calibrated linear layers on a torchvision backbone read from a local file, checked as the metric checks it), kept
frozen and in eval mode (its linear layers' dropout off), one copy per device for the process. SCGLANet's NTIRE
2023 track 2 recipe trains with LPIPS-VGG summed over the batch and over both views (``reduction: sum``).
"""
import torch
from torch import nn

from basicsr.metrics.perceptual import PerceptualWeightsError, lpips_model, lpips_weights_file
from basicsr.utils.registry import LOSS_REGISTRY, OptionValueError

_REDUCTIONS = ('mean', 'sum')


@LOSS_REGISTRY.register()
class LPIPSLoss(nn.Module):
    """``loss_weight`` x LPIPS of each view of ``pred`` against ``target``, reduced over the batch and the views.

    Inputs: (N, 3·V, H, W) tensors in [0, 1] (V = 1 view or 2: left 0:3, right 3:6), in the dataset's channel
    order (``input_bgr``: flip to the RGB order LPIPS expects); they are rescaled to LPIPS' [-1, 1] inside.
    ``reduction``: ``sum`` (over the N·V per-view distances, as SCGLANet's release) or ``mean``. ``net``:
    ``vgg`` (SCGLANet's), ``alex`` or ``squeeze``; ``weights_path``: the torchvision backbone file (default: the
    torch hub cache's copy, as the metric). Gradients reach ``pred`` only: the network is frozen, ``target``
    detached.
    """

    def __init__(self, net='vgg', weights_path=None, loss_weight=1.0, reduction='mean', input_bgr=True):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise OptionValueError('reduction', f'expected mean or sum, got {reduction!r}')
        try:
            self.weights_file = lpips_weights_file(net, weights_path)
            lpips_model(net, self.weights_file)  # built (and its file checked) now, before any work
        except PerceptualWeightsError as err:
            raise OptionValueError('weights_path', str(err).removeprefix('weights_path: ')) from None
        self.net = net
        self.loss_weight = float(loss_weight)
        self.reduction = reduction
        self.input_bgr = bool(input_bgr)

    def _views(self, x):
        n, c, h, w = x.shape
        if c % 3:
            raise ValueError(f'LPIPSLoss needs 3 channels per view, got a tensor of {c} channels')
        x = x.reshape(n, c // 3, 3, h, w).transpose(0, 1).reshape(n * (c // 3), 3, h, w)  # views as a batch
        return x.flip(1) if self.input_bgr else x

    def forward(self, pred, target):
        model = lpips_model(self.net, self.weights_file, pred.device)  # the metric's network: no second copy
        distances = model(self._views(pred), self._views(target.detach()), normalize=True)  # [0, 1] -> [-1, 1]
        reduce = torch.sum if self.reduction == 'sum' else torch.mean
        return self.loss_weight * reduce(distances)
