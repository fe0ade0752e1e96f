"""Training iPASSR as its release does: ``model_type: IPASSRModel``.

On top of ``ImageRestorationModel`` (SR loss ``train:pixel_opt``, optimizer, EMA, validation...) the training forward
also asks the network for its parallax attention maps and validity masks (``net(lq, return_attention=True)``), and
the stereo losses of ``train:photometric_opt``, ``train:cycle_opt``, ``train:smoothness_opt`` and
``train:consistency_opt`` (``losses/parallax_loss.py``; each optional) are added to the SR loss and logged as
``l_photo``, ``l_cycle``, ``l_smooth`` and ``l_cons``. Everything else (validation, checkpoints, resume) is the
parent's: at evaluation the network returns the SR pair only.
"""
import inspect

import torch

from basicsr.losses.parallax_loss import lr_residual
from basicsr.models.image_restoration_model import ImageRestorationModel
from basicsr.utils.dist_util import unwrap
from basicsr.utils.options import OptionError
from basicsr.utils.registry import LOSS_REGISTRY, MODEL_REGISTRY

# option key -> logged name
STEREO_LOSSES = {'photometric_opt': 'l_photo', 'cycle_opt': 'l_cycle', 'smoothness_opt': 'l_smooth',
                 'consistency_opt': 'l_cons'}


@MODEL_REGISTRY.register()
class IPASSRModel(ImageRestorationModel):
    """A stereo SR network trained with the SR loss plus losses on its parallax attention (iPASSR)."""

    OPTION_KEYS = tuple(f'train:{key}' for key in STEREO_LOSSES)

    def _init_training(self, train_opt):
        if 'return_attention' not in inspect.signature(unwrap(self.net_g).forward).parameters:
            raise OptionError(f"model_type: IPASSRModel needs a network whose forward takes return_attention (e.g. "
                              f"iPASSR); network_g:type is {self.opt['network_g']['type']}")
        self.cri_stereo = build_stereo_losses(train_opt, self.device)
        super()._init_training(train_opt)

    def forward_g(self, lq):
        """As the parent's, keeping the attention maps, masks and the input for ``restoration_losses``."""
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            sr, maps, masks = self.run_wrapped('net_train', lq, True)
        self._attention = (tuple(m.float() for m in maps), tuple(v.float() for v in masks), lq.float())
        self.output = sr.float()
        return [self.output]

    def restoration_losses(self, preds, gt):
        losses, total = super().restoration_losses(preds, gt)
        maps, masks, lq = self._attention
        self._attention = None  # the graph goes with the step
        for name, value in stereo_losses(self.cri_stereo, preds[-1], gt, maps, masks, lq, self.scale).items():
            losses[name] = value
            total = total + value
        return losses, total


def build_stereo_losses(train_opt, device):
    """``{logged name: loss}`` of the stereo losses ``train_opt`` sets (``photometric_opt``, ...). Also used by
    ``scripts/benchmark.py`` to train the released network the same way."""
    return {name: LOSS_REGISTRY.build(train_opt[key], f'train:{key}').to(device)
            for key, name in STEREO_LOSSES.items() if train_opt.get(key)}


def stereo_losses(criteria, sr, gt, maps, masks, lq, scale):
    """``{logged name: value}`` of iPASSR's stereo losses ``criteria`` (``{'l_photo': loss, ...}``) for one batch:
    the SR pair ``sr``, the HR pair ``gt``, the attention ``maps`` and validity ``masks`` of the network and its
    LR input ``lq``. Also used by ``scripts/benchmark.py`` to train the released network the same way."""
    residual = lr_residual(lq, gt, scale) if {'l_photo', 'l_cycle'} & set(criteria) else None
    values = {}
    for name, loss in criteria.items():
        if name == 'l_smooth':
            values[name] = loss(maps)
        elif name == 'l_cons':
            values[name] = loss(sr, gt, maps, masks, scale)
        else:
            values[name] = loss(residual, maps, masks)
    return values
