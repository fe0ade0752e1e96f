"""iPASSR's stereo losses (hand values and independent computations) and IPASSRModel, which adds them to the SR
loss in a training step built from options. The release's own values are checked in tests/archs/test_ipassr.py."""
import pytest
import torch
import torch.nn.functional as F

from basicsr.losses.parallax_loss import ConsistencyLoss, CycleLoss, PhotometricLoss, SmoothnessLoss, lr_residual
from basicsr.models import build_model
from basicsr.utils.options import OptionError, parse
from train_helpers import base_options, write_options

N, H, W = 2, 3, 5


def _shift_map(d):
    """(N, H, W, W) attention moving content by ``d`` pixels: output pixel i takes input pixel i - d (0 outside)."""
    return torch.diag(torch.ones(W - abs(d)), -d).expand(N, H, W, W)


def _loop_warp(m, x):
    """Independent row warp: out[n, c, y, i] = sum_j m[n, y, i, j] x[n, c, y, j], with explicit loops."""
    out = torch.zeros(x.shape[0], x.shape[1], x.shape[2], m.shape[2])
    for n in range(x.shape[0]):
        for y in range(x.shape[2]):
            for i in range(m.shape[2]):
                out[n, :, y, i] = (m[n, y, i][None] * x[n, :, y]).sum(-1)
    return out


def test_losses_with_identity_attention_and_full_masks_are_plain_l1():
    g = torch.Generator().manual_seed(0)
    res = torch.rand(N, 6, H, W, generator=g)
    eye = _shift_map(0)
    ones = (torch.ones(N, 1, H, W),) * 2
    diff = (res[:, :3] - res[:, 3:]).abs().mean().item()
    assert PhotometricLoss(loss_weight=1.0)(res, (eye, eye), ones).item() == pytest.approx(2 * diff, rel=1e-6)
    assert PhotometricLoss()(res, (eye, eye), ones).item() == pytest.approx(0.2 * diff, rel=1e-6)  # release weight
    assert CycleLoss(loss_weight=1.0)(res, (eye, eye), ones).item() == 0  # there and back: itself
    assert SmoothnessLoss(loss_weight=1.0)((eye, eye)).item() == 0  # the same map on every row and the diagonal


def test_masks_select_the_pixels_that_count():
    g = torch.Generator().manual_seed(1)
    res = torch.rand(N, 6, H, W, generator=g)
    eye = _shift_map(0)
    mask = torch.zeros(N, 1, H, W)
    mask[..., 2] = 1  # only column 2 of the left view
    zeros = torch.zeros(N, 1, H, W)
    expected = (res[:, :3, :, 2] - res[:, 3:, :, 2]).abs().sum().item() / (N * 3 * H * W)  # mean over all pixels
    assert PhotometricLoss(1.0)(res, (eye, eye), (mask, zeros)).item() == pytest.approx(expected, rel=1e-6)


def test_photometric_and_cycle_against_loops_with_shift_maps():
    g = torch.Generator().manual_seed(2)
    res = torch.rand(N, 6, H, W, generator=g)
    masks = (torch.rand(N, 1, H, W, generator=g), torch.rand(N, 1, H, W, generator=g))
    maps = (_shift_map(1), _shift_map(-2))  # not each other's inverse: the cycle loss is not zero
    left, right = res[:, :3], res[:, 3:]
    photo = (F.l1_loss(left * masks[0], _loop_warp(maps[0], right) * masks[0]) +
             F.l1_loss(right * masks[1], _loop_warp(maps[1], left) * masks[1]))
    cycle = (F.l1_loss(left * masks[0], _loop_warp(maps[0], _loop_warp(maps[1], left)) * masks[0]) +
             F.l1_loss(right * masks[1], _loop_warp(maps[1], _loop_warp(maps[0], right)) * masks[1]))
    torch.testing.assert_close(PhotometricLoss(1.0)(res, maps, masks), photo)
    torch.testing.assert_close(CycleLoss(1.0)(res, maps, masks), cycle)
    assert cycle > 0.05


def test_smoothness_hand_value():
    m = torch.zeros(1, 2, 2, 2)
    m[0, 1, 0, 0] = 1.0  # one entry differs between the two rows, and from its diagonal neighbour m[0, 0, 1, 1]
    zero = torch.zeros_like(m)
    # rows: |m[:, 0] - m[:, 1]| has one 1 among 4 entries -> 0.25; diagonal: m[:, :, :1, :1] vs m[:, :, 1:, 1:]
    # (2 entries: row 0 (0 vs 0), row 1 (1 vs 0)) -> 0.5; per map, summed over the two maps (the second is zero)
    assert SmoothnessLoss(1.0)((m, zero)).item() == pytest.approx(0.75)


def test_consistency_reaches_the_sr_output_only():
    g = torch.Generator().manual_seed(3)
    sr = torch.rand(N, 6, 2 * H, 2 * W, generator=g, requires_grad=True)
    gt = torch.rand(N, 6, 2 * H, 2 * W, generator=g)
    maps = tuple(torch.softmax(torch.randn(N, H, W, W, generator=g), -1).requires_grad_() for _ in range(2))
    masks = (torch.ones(N, 1, H, W),) * 2
    loss = ConsistencyLoss(1.0)(sr, gt, maps, masks, 2)
    err = F.interpolate((gt - sr).abs(), scale_factor=0.5, mode='bicubic', align_corners=False)
    expected = (F.l1_loss(err[:, :3], _loop_warp(maps[0], err[:, 3:])) +
                F.l1_loss(err[:, 3:], _loop_warp(maps[1], err[:, :3])))
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert sr.grad.abs().sum() > 0 and all(m.grad is None for m in maps)  # the maps are detached, as the release


def test_lr_residual_is_what_bicubic_misses():
    g = torch.Generator().manual_seed(4)
    lq = torch.rand(1, 6, 4, 6, generator=g)
    up = F.interpolate(lq, scale_factor=2, mode='bicubic', align_corners=False)
    assert lr_residual(lq, up, 2).abs().max() == 0  # nothing to restore
    gt = up + 0.1
    assert lr_residual(lq, gt, 2).shape == lq.shape
    torch.testing.assert_close(lr_residual(lq, gt, 2), torch.full_like(lq, 0.1))  # bicubic weights sum to 1


def _ipassr_options(tiny_data, name):
    opt = base_options(tiny_data, name)
    opt['model_type'] = 'IPASSRModel'
    opt['network_g'] = {'type': 'iPASSR', 'up_scale': 2, 'width': 8, 'growth': 4, 'dense_layers': 2, 'num_rdb': 2,
                        'fusion_growth': 4}
    opt['datasets']['train']['color_order'] = 'rgb'
    opt['train'].update(mixup=False, ema_decay=None, warmup_iter=-1, use_grad_clip=False,
                        optim_g={'type': 'Adam', 'lr': 2e-4},
                        pixel_opt={'type': 'L1Loss', 'loss_weight': 2.0, 'reduction': 'mean'},
                        photometric_opt={'type': 'PhotometricLoss', 'loss_weight': 0.1},
                        cycle_opt={'type': 'CycleLoss', 'loss_weight': 0.1},
                        smoothness_opt={'type': 'SmoothnessLoss', 'loss_weight': 0.1},
                        consistency_opt={'type': 'ConsistencyLoss', 'loss_weight': 0.1})
    return opt


def test_model_adds_the_stereo_losses_to_the_sr_loss(tiny_data, tmp_path):
    opt = _ipassr_options(tiny_data, 'ipassr_losses')
    torch.manual_seed(0)
    model = build_model(parse(write_options(tmp_path, opt), is_train=True, root_path=str(tmp_path)))
    g = torch.Generator().manual_seed(1)
    model.feed_data({'lq': torch.rand(2, 6, 4, 12, generator=g), 'gt': torch.rand(2, 6, 8, 24, generator=g)})
    net = model.net_g
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        sr, maps, masks = net(model.lq, return_attention=True)  # training mode: the step's own BatchNorm statistics
    net.load_state_dict(before)  # the call above moved the BatchNorm's running averages
    assert model.optimize_parameters(1)
    assert list(model.log_dict) == ['l_pix', 'l_photo', 'l_cycle', 'l_smooth', 'l_cons']
    res = lr_residual(model.lq, model.gt, 2)
    expected = {'l_pix': 2 * F.l1_loss(sr, model.gt), 'l_photo': PhotometricLoss()(res, maps, masks),
                'l_cycle': CycleLoss()(res, maps, masks), 'l_smooth': SmoothnessLoss()(maps),
                'l_cons': ConsistencyLoss()(sr, model.gt, maps, masks, 2)}
    for key, value in expected.items():
        torch.testing.assert_close(model.log_dict[key], value, msg=key)
    assert all(v > 0 for v in expected.values())
    assert any(not torch.equal(before[k], v) for k, v in net.state_dict().items())  # the step moved the weights


def test_model_refuses_a_network_without_attention(tiny_data, tmp_path):
    opt = _ipassr_options(tiny_data, 'ipassr_nafssr')
    opt['network_g'] = base_options(tiny_data, 'x')['network_g']
    with pytest.raises(OptionError, match=r'^model_type: IPASSRModel needs a network whose forward takes '
                                          r'return_attention \(e\.g\. iPASSR\); network_g:type is NAFSSR$'):
        build_model(parse(write_options(tmp_path, opt), is_train=True, root_path=str(tmp_path)))
