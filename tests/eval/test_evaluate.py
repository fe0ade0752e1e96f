"""basicsr.evaluation.evaluate and forward_stereo on tiny nets and synthetic pairs (no dataset code needed)."""
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from basicsr.evaluation import SELF_ENSEMBLE, evaluate, forward_stereo
from basicsr.utils.checkpoint import load_network
from basicsr.metrics import calculate_psnr, calculate_skimage_ssim
from basicsr.utils.checkpoint import CheckpointError, save_atomic
from basicsr.utils.img_util import imread, tensor2img

SCALE = 2
METRICS = {'psnr': {'type': 'calculate_psnr', 'crop_border': 0}, 'ssim': {'type': 'calculate_skimage_ssim'},
           'psnr_left': {'type': 'calculate_psnr_left'}}


class Pairs(Dataset):
    """Random stereo pairs in the sample dict format (lq/gt 6-channel float tensors, name)."""

    def __init__(self, n=3, h=10, w=40):
        g = torch.Generator().manual_seed(0)
        self.items = []
        for i in range(n):
            gt = torch.rand(6, h * SCALE, w * SCALE, generator=g)
            lq = nn.functional.avg_pool2d(gt[None], SCALE)[0]
            self.items.append({'lq': lq, 'gt': (gt * 255).round() / 255, 'name': f'{i:04d}'})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class Upsampler(nn.Module):
    """Nearest up-sampling plus a per-channel gain: equivariant to flips and to swapping the views."""

    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(0.9))

    def forward(self, x):
        return nn.functional.interpolate(x, scale_factor=SCALE, mode='nearest') * self.gain


class PositionDependent(Upsampler):
    """Not equivariant: adds a ramp over the columns to the left view only."""

    def forward(self, x):
        out = super().forward(x)
        ramp = torch.linspace(0, 0.2, out.shape[-1])
        return torch.cat([out[:, :3] + ramp, out[:, 3:]], dim=1)


def test_evaluate_scores_every_pair_and_means():
    loader = DataLoader(Pairs(), batch_size=1)
    net = Upsampler()
    result = evaluate(net, loader, METRICS, device='cpu', show_progress=False)
    assert list(result.per_pair) == ['0000', '0001', '0002'] and result.num_pairs == 3
    expected = []
    for item in Pairs():
        sr = tensor2img(net(item['lq'][None]).detach()[0])
        gt = tensor2img(item['gt'])
        expected.append((calculate_psnr(sr, gt), calculate_skimage_ssim(sr, gt)))
        assert result.per_pair[item['name']]['psnr'] == calculate_psnr(sr, gt)
    assert result['psnr'] == pytest.approx(np.mean([e[0] for e in expected]), abs=1e-12)
    assert result['ssim'] == pytest.approx(np.mean([e[1] for e in expected]), abs=1e-12)
    assert set(result) == set(METRICS)
    assert result.seconds > 0 and result.pairs_per_s > 0


def test_batches_larger_than_one_give_the_same_scores():
    net = Upsampler()
    one = evaluate(net, DataLoader(Pairs(), batch_size=1), METRICS, device='cpu', show_progress=False)
    two = evaluate(net, DataLoader(Pairs(), batch_size=2), METRICS, device='cpu', show_progress=False)
    assert one.per_pair == two.per_pair and dict(one) == dict(two)


@pytest.mark.parametrize('color_order', ['bgr', 'rgb'])
def test_saved_views_are_lossless_and_in_real_colours(tmp_path, color_order):
    net = Upsampler()
    evaluate(net, DataLoader(Pairs(n=1), batch_size=1), {}, device='cpu', save_dir=str(tmp_path),
             color_order=color_order, show_progress=False)
    sr = tensor2img(net(Pairs(n=1)[0]['lq'][None]).detach()[0])
    left, right = imread(tmp_path / '0000_L.png'), imread(tmp_path / '0000_R.png')  # imread gives BGR
    if color_order == 'rgb':
        left, right = left[..., ::-1], right[..., ::-1]
    assert np.array_equal(left, sr[..., :3]) and np.array_equal(right, sr[..., 3:])


def test_training_mode_is_restored():
    net = Upsampler().train()
    evaluate(net, DataLoader(Pairs(n=1)), {}, device='cpu', show_progress=False)
    assert net.training


def test_self_ensemble_transforms_are_involutions_and_swap_views():
    x = torch.arange(2 * 6 * 3 * 4, dtype=torch.float32).reshape(2, 6, 3, 4)
    for t in SELF_ENSEMBLE:
        assert torch.equal(t(t(x)), x)
    mirrored = SELF_ENSEMBLE[2](x)
    assert torch.equal(mirrored[:, :3], x[:, 3:].flip(-1))   # the new left view is the mirrored right view
    assert torch.equal(mirrored[:, 3:], x[:, :3].flip(-1))
    assert torch.equal(SELF_ENSEMBLE[1](x), x.flip(-2))


def test_self_ensemble_of_equivariant_net_changes_nothing():
    x = torch.rand(1, 6, 8, 12)
    net = Upsampler()
    # flips and nearest up-sampling are exact: only the float32 rounding of the 4-term mean (~1e-7 on [0, 1]) remains
    assert torch.allclose(forward_stereo(net, x, self_ensemble=True), forward_stereo(net, x), atol=1e-7)


def test_self_ensemble_averages_the_four_stereo_transforms():
    x = torch.rand(1, 6, 8, 12)
    net = PositionDependent()
    with torch.no_grad():
        manual = sum(t(net(t(x))) for t in SELF_ENSEMBLE) / 4
        # hand-derived: identity and vflip put the ramp on the left view; the two mirrored passes put it,
        # mirrored, on the right view (their network-left view is the mirrored right view)
        base = net.gain * nn.functional.interpolate(x, scale_factor=SCALE)
        ramp = torch.linspace(0, 0.2, base.shape[-1])
        hand = base.clone()
        hand[:, :3] += ramp / 2
        hand[:, 3:] += ramp.flip(-1) / 2
    out = forward_stereo(net, x, self_ensemble=True)
    assert torch.allclose(out, manual, atol=1e-6) and torch.allclose(out, hand, atol=1e-6)  # float32 rounding only


def test_autocast_bf16_is_opt_in_and_close():
    x = torch.rand(1, 6, 8, 12)
    conv = nn.Conv2d(6, 6, 3, padding=1)
    fp32 = forward_stereo(conv, x)
    bf16 = forward_stereo(conv, x, amp_dtype='bf16')
    assert fp32.dtype == bf16.dtype == torch.float32
    # measured 2.4e-3 to 3.1e-3 apart (seeds 0-4): bf16's 8-bit mantissa on 54-term sums; 5e-2 still catches garbage
    assert not torch.equal(fp32, bf16) and torch.allclose(fp32, bf16, atol=5e-2)


def test_load_network_refuses_mismatched_checkpoints(tmp_path):
    net = nn.Sequential(nn.Conv2d(6, 4, 3))
    good = tmp_path / 'good.pth'
    save_atomic({'params': net.state_dict()}, good)
    other = nn.Sequential(nn.Conv2d(6, 4, 3))
    load_network(other, good)
    assert torch.equal(other[0].weight, net[0].weight)
    with pytest.raises(CheckpointError,
                       match=r'good.pth: 2 tensors do not fit the network, e.g. 0.weight \(4, 6, 3, 3\) \(network:'):
        load_network(nn.Sequential(nn.Conv2d(6, 5, 3)), good)
    with pytest.raises(CheckpointError, match=r'good.pth: does not fit the network: 2 missing'):
        load_network(nn.Sequential(nn.Identity(), nn.Conv2d(6, 4, 3)), good)
    with pytest.raises(CheckpointError, match=r'missing.pth: checkpoint file not found'):
        load_network(net, tmp_path / 'missing.pth')
