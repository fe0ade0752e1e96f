"""Discriminators for perceptual (GAN) training, selected by ``network_d:type``.

- ``VGGStyleDiscriminator`` (ESRGAN, Wang et al. 2018): five stages of (3x3 conv, 4x4 stride-2 conv) with batch
  norm halve the input five times, then two linear layers give one logit per image. It needs a fixed input size:
  ``input_size`` (an int for a square, or ``[h, w]``), each a multiple of 32; BasicSR's parameter names.
- ``UNetDiscriminatorSN`` (Real-ESRGAN, Wang et al. 2021): a U-Net with spectral normalisation that gives one logit
  per pixel; any input whose height and width are multiples of 8.

Input (N, num_in_ch, H, W) in [0, 1]: one view (``num_in_ch: 3``) or a stereo pair on channels (``num_in_ch: 6``);
``StereoSRGANModel`` chooses by ``train:discriminator_input``.
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import spectral_norm

from basicsr.models.archs.arch_util import ArchOptionError
from basicsr.utils.registry import ARCH_REGISTRY


def _input_hw(input_size):
    size = [input_size, input_size] if isinstance(input_size, int) and not isinstance(input_size, bool) \
        else list(input_size) if isinstance(input_size, (list, tuple)) else None
    if size is None or len(size) != 2 or not all(isinstance(v, int) and v > 0 and v % 32 == 0 for v in size):
        raise ArchOptionError('input_size', f'expected an int or [h, w], each a positive multiple of 32, '
                                            f'got {input_size!r}')
    return tuple(size)


@ARCH_REGISTRY.register()
class VGGStyleDiscriminator(nn.Module):
    """ESRGAN's VGG-style discriminator: (N, num_in_ch, h, w) -> (N, 1) logits, for ``input_size`` (h, w)."""

    def __init__(self, num_in_ch=3, num_feat=64, input_size=128):
        super().__init__()
        self.input_size = _input_hw(input_size)
        widths = [num_feat, num_feat * 2, num_feat * 4, num_feat * 8, num_feat * 8]
        self.conv0_0 = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(num_feat, num_feat, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(num_feat, affine=True)
        for i in range(1, 5):
            setattr(self, f'conv{i}_0', nn.Conv2d(widths[i - 1], widths[i], 3, 1, 1, bias=False))
            setattr(self, f'bn{i}_0', nn.BatchNorm2d(widths[i], affine=True))
            setattr(self, f'conv{i}_1', nn.Conv2d(widths[i], widths[i], 4, 2, 1, bias=False))
            setattr(self, f'bn{i}_1', nn.BatchNorm2d(widths[i], affine=True))
        h, w = self.input_size
        self.linear1 = nn.Linear(widths[-1] * (h // 32) * (w // 32), 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x):
        if tuple(x.shape[-2:]) != self.input_size:
            raise ValueError(f'VGGStyleDiscriminator was built for input_size {list(self.input_size)}, got an input '
                             f'of {list(x.shape[-2:])}')
        feat = self.lrelu(self.conv0_0(x))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))
        for i in range(1, 5):
            feat = self.lrelu(getattr(self, f'bn{i}_0')(getattr(self, f'conv{i}_0')(feat)))
            feat = self.lrelu(getattr(self, f'bn{i}_1')(getattr(self, f'conv{i}_1')(feat)))
        feat = self.lrelu(self.linear1(feat.flatten(1)))
        return self.linear2(feat)


@ARCH_REGISTRY.register()
class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN's U-Net discriminator with spectral norm: (N, num_in_ch, H, W) -> (N, 1, H, W) logits."""

    def __init__(self, num_in_ch=3, num_feat=64, skip_connection=True):
        super().__init__()
        self.skip_connection = skip_connection
        nf = num_feat
        self.conv0 = nn.Conv2d(num_in_ch, nf, 3, 1, 1)
        self.conv1 = spectral_norm(nn.Conv2d(nf, nf * 2, 4, 2, 1, bias=False))  # encoder: /2, /4, /8
        self.conv2 = spectral_norm(nn.Conv2d(nf * 2, nf * 4, 4, 2, 1, bias=False))
        self.conv3 = spectral_norm(nn.Conv2d(nf * 4, nf * 8, 4, 2, 1, bias=False))
        self.conv4 = spectral_norm(nn.Conv2d(nf * 8, nf * 4, 3, 1, 1, bias=False))  # decoder: x2 each
        self.conv5 = spectral_norm(nn.Conv2d(nf * 4, nf * 2, 3, 1, 1, bias=False))
        self.conv6 = spectral_norm(nn.Conv2d(nf * 2, nf, 3, 1, 1, bias=False))
        self.conv7 = spectral_norm(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv8 = spectral_norm(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(nf, 1, 3, 1, 1)

    def forward(self, x):
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(f'UNetDiscriminatorSN needs a height and width that are multiples of 8, got '
                             f'{list(x.shape[-2:])}')

        def act(t):
            return F.leaky_relu(t, negative_slope=0.2)

        def up(t):
            return F.interpolate(t, scale_factor=2, mode='bilinear', align_corners=False)

        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        x4 = act(self.conv4(up(x3)))
        x4 = x4 + x2 if self.skip_connection else x4
        x5 = act(self.conv5(up(x4)))
        x5 = x5 + x1 if self.skip_connection else x5
        x6 = act(self.conv6(up(x5)))
        x6 = x6 + x0 if self.skip_connection else x6
        out = act(self.conv7(x6))
        out = act(self.conv8(out))
        return self.conv9(out)


def discriminator_fits(net_d, shape):
    """None when ``net_d`` accepts an input of ``shape`` (N, C, H, W), else what it said (a dry run without
    gradients in eval mode, so that no running statistic or spectral-norm vector changes)."""
    was_training = net_d.training
    net_d.eval()
    try:
        with torch.no_grad():
            net_d(torch.zeros(shape, device=next(net_d.parameters()).device))
        return None
    except (ValueError, RuntimeError) as err:
        return str(err).splitlines()[0]
    finally:
        net_d.train(was_training)
