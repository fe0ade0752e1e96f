"""Adversarial losses selected by ``train:gan_opt`` (BasicSR's ``GANLoss`` option names).

``GANLoss(gan_type, real_label_val=1.0, fake_label_val=0.0, loss_weight=1.0)`` is called as
``loss(pred, target_is_real, is_disc)`` on the discriminator's raw outputs (logits):

- ``vanilla``: binary cross-entropy on logits (the original GAN);
- ``lsgan``: mean squared error to the label (Mao et al. 2017);
- ``hinge``: discriminator ``mean(relu(1 - pred))`` for real, ``mean(relu(1 + pred))`` for fake; generator
  ``-mean(pred)`` (Lim & Ye 2017);
- ``wgan_softplus``: ``softplus(-pred)`` for real, ``softplus(pred)`` for fake (the non-saturating logistic loss
  written as in StyleGAN).

``loss_weight`` multiplies the generator's loss only: the discriminator's loss is never weighted (as BasicSR).
"""
import torch
from torch import nn
from torch.nn import functional as F

from basicsr.utils.registry import LOSS_REGISTRY

GAN_TYPES = ('vanilla', 'lsgan', 'hinge', 'wgan_softplus')


@LOSS_REGISTRY.register()
class GANLoss(nn.Module):
    """Adversarial loss of type ``gan_type`` (one of ``GAN_TYPES``)."""

    def __init__(self, gan_type='vanilla', real_label_val=1.0, fake_label_val=0.0, loss_weight=1.0):
        super().__init__()
        if gan_type not in GAN_TYPES:
            raise ValueError(f'gan_type: expected one of {", ".join(GAN_TYPES)}, got {gan_type!r}')
        self.gan_type = gan_type
        self.real_label_val = float(real_label_val)
        self.fake_label_val = float(fake_label_val)
        self.loss_weight = float(loss_weight)

    def _label(self, pred, target_is_real):
        return torch.full_like(pred, self.real_label_val if target_is_real else self.fake_label_val)

    def forward(self, pred, target_is_real, is_disc=False):
        pred = pred.float()
        if self.gan_type == 'vanilla':
            loss = F.binary_cross_entropy_with_logits(pred, self._label(pred, target_is_real))
        elif self.gan_type == 'lsgan':
            loss = F.mse_loss(pred, self._label(pred, target_is_real))
        elif self.gan_type == 'hinge':
            if is_disc:
                loss = F.relu(1 - pred).mean() if target_is_real else F.relu(1 + pred).mean()
            else:
                loss = -pred.mean()
        else:  # wgan_softplus
            loss = F.softplus(-pred).mean() if target_is_real else F.softplus(pred).mean()
        return loss if is_disc else loss * self.loss_weight
