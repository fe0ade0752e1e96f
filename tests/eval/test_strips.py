"""Strip-wise inference equals whole-image inference (full-width strips keep the epipolar rows whole)."""
import numpy as np
import pytest
import torch
from torch import nn

from basicsr.evaluation import forward_stereo, infer_in_strips
from basicsr.metrics import calculate_psnr
from basicsr.utils.img_util import tensor2img


def tiny_nafssr(scale=2):
    from basicsr.models.archs import define_network

    torch.manual_seed(0)
    net = define_network({'type': 'NAFSSR', 'up_scale': scale, 'width': 16, 'num_blks': 3}, key_path='network_g')
    with torch.no_grad():  # non-zero SCAM gains so that the cross-view attention matters
        for name, p in net.named_parameters():
            if name.endswith(('beta', 'gamma')):
                p.copy_(torch.randn_like(p) * 0.5)
    return net.eval()


def test_local_net_strips_are_exact():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(6, 6 * 4, 3, padding=1), nn.ReLU(), nn.Conv2d(24, 24, 3, padding=1),
                        nn.PixelShuffle(2), nn.Sigmoid())
    lq = torch.rand(1, 6, 37, 23)
    whole = tensor2img(forward_stereo(net, lq))
    strips = infer_in_strips(net, lq, 2, strip_rows=8, overlap=3)
    assert strips.shape == whole.shape and np.array_equal(strips, whole)


@pytest.mark.parametrize('strip_rows, overlap', [(16, 16), (40, 16)])
def test_nafssr_strips_match_whole_image(strip_rows, overlap):
    net = tiny_nafssr()
    g = torch.Generator().manual_seed(3)
    lq = torch.nn.functional.interpolate(torch.rand(1, 6, 30, 40, generator=g), size=(120, 150), mode='bicubic',
                                         align_corners=False).clamp(0, 1)
    whole = tensor2img(forward_stereo(net, lq))
    strips = infer_in_strips(net, lq, 2, strip_rows=strip_rows, overlap=overlap)
    assert strips.shape == whole.shape == (240, 300, 6)
    psnr = calculate_psnr(strips, whole)
    # measured 67 dB (16 rows) and 72 dB (40 rows): only TLSC windows cut by the strip edges differ; without the
    # overlap rows it falls to 25 dB, so 50 dB (RMS error ~0.8 grey level) separates working context from none
    assert psnr >= 50, f'strip output differs from whole-image output: {psnr:.2f} dB'


def test_strip_arguments_are_checked():
    with pytest.raises(ValueError, match='one stereo pair'):
        infer_in_strips(nn.Identity(), torch.rand(2, 6, 4, 4), 1)
    with pytest.raises(ValueError, match='strip_rows'):
        infer_in_strips(nn.Identity(), torch.rand(1, 6, 4, 4), 1, strip_rows=0)


# A small configuration of every named family (arch_util.NAMED_SIZES): strips must work for each at a size that is
# a multiple of none of their windows, not only for NAFSSR.
SMALL = {'NAFSSR-T': dict(width=16, num_blks=2), 'CVHSSR-T': dict(width=12, num_blks=2),
         'EHFSSR': dict(dim=16, groups=1, num=4), 'EHFSSR-S': dict(dim=8, groups=1, num=4),
         'iPASSR': dict(width=16, growth=12, num_rdb=2, dense_layers=3, fusion_growth=12),
         'SwinFIRSSR': dict(img_size=8, window_size=4, squeeze_factor=4, depths=[2, 2], embed_dim=12, num_heads=[2, 3]),
         'SCGLANet-L': dict(width=8, num_blks=[1, 1, 0, 0, 1], chunk_size=16),
         'SwinFSR-L': dict(img_size=(6, 10), window_size_h=3, window_size_w=5, depths=[2, 2], embed_dim=8,
                           num_heads=[2, 2])}
# SCGLANet's global attention hashes with random rotations at every forward: two whole-image runs of this random
# network differ by themselves (32-34 dB, seeds 0-2), strips with overlap are as close (32.3-33.5 dB), without 26-28
# SwinFSR's FFBs take an FFT of the whole (strip of the) image: 47-50 dB with the overlap (seeds 0-2), 36-40 without
MIN_PSNR = {'SCGLANet-L': 30, 'SwinFSR-L': 44}


def test_every_named_family_has_a_small_configuration_here():
    from basicsr.models.archs.arch_util import NAMED_SIZES
    families = {NAMED_SIZES[name][0].__name__ for name in NAMED_SIZES}
    assert families == {NAMED_SIZES[name][0].__name__ for name in SMALL}


@pytest.mark.parametrize('name', sorted(SMALL))
def test_every_family_runs_in_strips(name):
    from basicsr.models.archs.arch_util import build_named
    torch.manual_seed(0)
    net = build_named(name, 2, **SMALL[name]).eval()
    with torch.no_grad():  # gains that are zero at initialisation made random, so every branch matters
        for pname, p in net.named_parameters():
            if pname.endswith(('beta', 'gamma')) or p.abs().sum() == 0:
                p.copy_(torch.randn_like(p) * 0.2)
    g = torch.Generator().manual_seed(3)
    lq = torch.nn.functional.interpolate(torch.rand(1, 6, 20, 25, generator=g), size=(61, 75), mode='bicubic',
                                         align_corners=False).clamp(0, 1)
    whole = tensor2img(forward_stereo(net, lq))
    strips = infer_in_strips(net, lq, 2, strip_rows=24, overlap=16)
    assert strips.shape == whole.shape == (122, 150, 6)
    # measured 55-75 dB with 16 overlap rows (only windows, pooling and iPASSR's per-input BatchNorm cut by a strip
    # edge differ), 30-40 dB without them: 50 dB separates working context from none
    assert calculate_psnr(strips, whole) >= MIN_PSNR.get(name, 50)
