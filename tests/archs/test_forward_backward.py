"""Every network runs forward and backward at tiny sizes, with the output shapes of its contract."""
import pytest
import torch

from basicsr.models.archs import define_network

UNET = {'width': 4, 'enc_blk_nums': [1, 1], 'middle_blk_num': 1, 'dec_blk_nums': [1, 1]}
CASES = [
    ({'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 2}, (2, 6, 9, 14), (2, 6, 18, 28)),
    ({'type': 'NAFSSR', 'up_scale': 4, 'width': 8, 'num_blks': 2, 'drop_path_rate': 0.5, 'drop_out_rate': 0.1,
      'fusion_from': 1, 'fusion_to': 1}, (1, 6, 6, 10), (1, 6, 24, 40)),
    ({'type': 'NAFSSR', 'up_scale': 3, 'width': 8, 'num_blks': 2, 'fast_imp': True,
      'train_size': [1, 6, 4, 6]}, (1, 6, 10, 15), (1, 6, 30, 45)),
    ({'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 2, 'intra_block': 'MultiDirBlock',
      'intra_kwargs': {'kernel_size': 5}, 'cross_block': 'MultiScaleSCAM'}, (1, 6, 7, 11), (1, 6, 14, 22)),
    ({'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 1, 'intra_block': 'BaselineBlock'},
     (1, 6, 5, 8), (1, 6, 10, 16)),
    ({'type': 'NAFNet', **UNET}, (2, 3, 13, 10), (2, 3, 13, 10)),
    ({'type': 'NAFNetLocal', **UNET, 'train_size': [1, 3, 8, 8]}, (1, 3, 21, 17), (1, 3, 21, 17)),
    ({'type': 'NAFNetLocal', **UNET, 'train_size': [1, 3, 8, 8], 'fast_imp': True}, (1, 3, 24, 20),
     (1, 3, 24, 20)),
    ({'type': 'Baseline', **UNET}, (1, 3, 12, 9), (1, 3, 12, 9)),
    ({'type': 'BaselineLocal', **UNET, 'train_size': [1, 3, 8, 8]}, (1, 3, 20, 20), (1, 3, 20, 20)),
]


@pytest.mark.parametrize('cfg,in_shape,out_shape', CASES, ids=[f"{c[0]['type']}-{i}" for i, c in enumerate(CASES)])
def test_forward_backward(cfg, in_shape, out_shape):
    torch.manual_seed(0)
    net = define_network(cfg).train()
    for p in net.parameters():  # non-zero beta/gamma so that every branch carries gradient
        torch.nn.init.normal_(p, std=0.2)
    out = net(torch.rand(in_shape))
    assert out.shape == out_shape
    out.square().mean().backward()
    no_grad = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    if cfg.get('drop_path_rate', 0) == 0:
        assert no_grad == []
    net.eval()
    with torch.no_grad():
        assert torch.isfinite(net(torch.rand(in_shape))).all()


def test_nafssr_rejects_a_single_view():
    net = define_network({'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 1})
    with pytest.raises(ValueError, match=r'expects \(N, 6, h, w\)'):
        net(torch.rand(1, 3, 8, 8))


def test_fresh_nafssr_is_the_identity_plus_bilinear_skip_plus_up_conv():
    # beta/gamma start at zero, so every block passes its input through unchanged
    torch.manual_seed(0)
    net = define_network({'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 3}).eval()
    x = torch.rand(1, 6, 5, 7)
    with torch.no_grad():
        up = torch.nn.functional.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)
        expected = torch.cat([net.up(net.intro(v)) for v in x.chunk(2, dim=1)], dim=1) + up
        torch.testing.assert_close(net(x), expected)


def test_gradients_come_back_in_the_layout_of_their_weights():
    """Channels-last NAFSSR keeps its conv weights channels-last, so every gradient has its parameter's strides
    (what DDP's gradient buckets require; otherwise each step copies them and warns)."""
    for channels_last in (True, False):
        net = define_network({'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 2,
                              'train_size': [1, 6, 4, 12], 'channels_last': channels_last}).train()
        net(torch.rand(2, 6, 4, 12)).sum().backward()
        if channels_last:
            assert [n for n, p in net.named_parameters() if p.grad.stride() != p.stride()] == []
        assert all(p.grad is not None for p in net.parameters())
