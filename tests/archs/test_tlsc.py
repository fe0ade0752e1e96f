"""TLSC: local average pooling that replaces the channel-attention global pool at test time."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from basicsr.models.archs import define_network
from basicsr.models.archs.tlsc import LocalAvgPool2d, convert_global_pools, tlsc_kernel_size


def reference_local_mean(x, kernel_size):
    """Direct (non-integral-image) reference: the mean of every full window, border replicated back to size."""
    h, w = x.shape[-2:]
    if kernel_size[0] >= h and kernel_size[1] >= w:
        return x.mean(dim=(-2, -1), keepdim=True)
    kh, kw = min(h, kernel_size[0]), min(w, kernel_size[1])
    out = F.avg_pool2d(x, (kh, kw), stride=1)
    ph, pw = h - out.shape[-2], w - out.shape[-1]
    return F.pad(out, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode='replicate')


@pytest.mark.parametrize('size', [(20, 60), (45, 135), (46, 136), (64, 200), (30, 150), (60, 100), (7, 300)])
def test_local_pool_equals_direct_window_mean(size):
    torch.manual_seed(0)
    x = torch.rand(2, 3, *size, dtype=torch.float64)
    out = LocalAvgPool2d((45, 135))(x)
    ref = reference_local_mean(x, (45, 135))
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)  # float64: integral image vs direct sums, rounding only


def test_global_when_window_covers_input_in_both_dims():
    x = torch.rand(1, 4, 45, 135)
    out = LocalAvgPool2d((45, 135))(x)
    assert out.shape == (1, 4, 1, 1)
    torch.testing.assert_close(out, x.mean(dim=(-2, -1), keepdim=True))


def test_window_larger_than_input_in_one_dim_is_clipped_to_it():
    # h=30 < 45 but w=200 > 135: each output averages a full-height, 135-wide window
    x = torch.rand(1, 2, 30, 200, dtype=torch.float64)
    out = LocalAvgPool2d((45, 135))(x)
    assert out.shape == x.shape
    expected_first = x[..., :, :135].mean(dim=(-2, -1))
    expected_last = x[..., :, -135:].mean(dim=(-2, -1))
    torch.testing.assert_close(out[..., 0, 0], expected_first)  # left border replicates the first window
    torch.testing.assert_close(out[..., -1, -1], expected_last)
    assert torch.equal(out[..., 0, :], out[..., -1, :])  # one window row, replicated over the height


def test_half_precision_is_pooled_in_float32():
    x = (torch.rand(1, 2, 64, 200) * 4).to(torch.bfloat16)
    out = LocalAvgPool2d((45, 135))(x)
    assert out.dtype == torch.bfloat16
    # only the final bf16 rounding remains (8 significant bits: 2^-8 ~ 0.4% relative); summing in bf16 would be
    # off by far more on windows of 6,075 values
    torch.testing.assert_close(out.float(), reference_local_mean(x.double(), (45, 135)).float(), rtol=1e-2,
                               atol=1e-2)


def test_kernel_size_rule_of_the_release():
    assert tlsc_kernel_size((30, 90)) == (45, 135)  # the release: base_size = 1.5 x the training patch (LR 30x90)
    assert tlsc_kernel_size((256, 256), (128, 128)) == (192, 192)
    assert tlsc_kernel_size((25, 75)) == (37, 112)  # int(1.5 * 25) = 37


def test_convert_replaces_only_global_pools():
    net = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.AdaptiveAvgPool2d(4)))
    assert convert_global_pools(net, (3, 5)) == 2
    assert isinstance(net[0], LocalAvgPool2d) and isinstance(net[1][0], LocalAvgPool2d)
    assert isinstance(net[1][1], nn.AdaptiveAvgPool2d)


def test_nafssr_pools_use_one_and_a_half_times_train_size():
    net = define_network({'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 2, 'train_size': [1, 6, 20, 40]})
    pools = [m for m in net.modules() if isinstance(m, LocalAvgPool2d)]
    assert len(pools) == 2 and all(p.kernel_size == (30, 60) for p in pools)  # 1.5 x (20, 40)
    assert not any(isinstance(m, nn.AdaptiveAvgPool2d) for m in net.modules())


def test_nafnet_local_windows_follow_the_feature_resolution():
    net = define_network({'type': 'NAFNetLocal', 'width': 4, 'enc_blk_nums': [1, 1], 'middle_blk_num': 1,
                          'dec_blk_nums': [1, 1], 'train_size': [1, 3, 64, 32]})
    # 1.5 x (64, 32) at full resolution, halved at each encoder level as the release scales base_size with the
    # feature size
    assert net.encoders[0][0].sca[0].kernel_size == (96, 48)
    assert net.encoders[1][0].sca[0].kernel_size == (48, 24)
    assert net.middle_blks[0].sca[0].kernel_size == (24, 12)
    assert net.decoders[0][0].sca[0].kernel_size == (48, 24)
    assert net.decoders[1][0].sca[0].kernel_size == (96, 48)


def test_tlsc_output_differs_from_global_pool_only_on_large_inputs():
    torch.manual_seed(0)
    cfg = {'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 1, 'train_size': [1, 6, 8, 16]}
    local, plain = define_network(cfg).eval(), define_network(cfg).eval()
    for p in local.parameters():
        nn.init.normal_(p, std=0.3)
    plain.load_state_dict(local.state_dict())
    for m in plain.modules():
        if isinstance(m, LocalAvgPool2d):
            m.kernel_size = (10 ** 6, 10 ** 6)  # a window that always covers the input: global pooling
    with torch.no_grad():
        small, large = torch.rand(1, 6, 10, 20), torch.rand(1, 6, 20, 40)
        torch.testing.assert_close(local(small), plain(small))
        assert (local(large) - plain(large)).abs().max() > 1e-4  # 100x float32 rounding: a real difference
