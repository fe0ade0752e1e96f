"""SwinFSR: the released implementation's outputs and gradients for the same weights (both of its SCAM kinds), its
buffers and the quirks they encode, the released size, its checkpoint format, and its blocks inside NAFSSR."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from basicsr.models.archs import define_network
from basicsr.models.archs.arch_util import NAMED_SIZES, build_named
from basicsr.models.archs.scam import SCAM
from basicsr.models.archs.swinfsr_arch import (FFB, SwinFSR, SwinFSRSCAM, reflect_pad, relative_index,
                                               shifted_window_mask)
from basicsr.utils.checkpoint import CheckpointError, load_network

DATA = Path(__file__).parent / 'data'
FIXTURE = DATA / 'release_swinfsr_tiny.pt'


def _generator():
    spec = importlib.util.spec_from_file_location('make_release_swinfsr_tiny', DATA / 'make_release_swinfsr_tiny.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _generator()

# Counted by instantiating the release's own SwinIR (GoKerrChen/SwinFSR, swin_cam_ffc.py) with the arguments of its
# train.py / inference.py (x4); the community list gives 26.75M.
RELEASED_COUNT_X4 = 26_754_672


@pytest.fixture(scope='module')
def fixture():
    return torch.load(FIXTURE, weights_only=True)


def _network(fixture, scam='centred'):
    """Our SwinFSR of the fixture's configuration with the fixture's weights, loaded strictly with its buffers."""
    config = fixture['config']
    plain = scam == 'plain'
    net = SwinFSR(**{**config, 'upscale': fixture['plain_scale'] if plain else config['upscale']}, scam=scam)
    names = fixture['plain_param_names' if plain else 'param_names']
    shapes = fixture['plain_param_shapes' if plain else 'param_shapes']
    state = GENERATOR.fixture_weights(list(zip(names, shapes)), fixture['seed'] + plain, torch)
    if not plain:
        assert GENERATOR.checksum(state.values(), torch) == pytest.approx(fixture['param_sum'], rel=1e-12)
    net.load_state_dict({**state, **fixture['buffers']})  # strict: the release's parameter and buffer names
    return net


def test_outputs_equal_the_release(fixture):
    net = _network(fixture).eval()
    with torch.no_grad():
        for lq, sr in zip(fixture['inputs'], fixture['outputs']):
            out = net(lq)
            assert out.shape == sr.shape
            # float32 rounding only: the release is within 3.2e-6 of its float64 outputs here
            torch.testing.assert_close(out, sr, rtol=0, atol=1e-5 * sr.abs().max().item())


def test_plain_scam_outputs_equal_the_release(fixture):
    net = _network(fixture, 'plain').eval()
    assert type(net.layers[0].fusion) is SCAM
    with torch.no_grad():
        for lq, sr in zip(fixture['inputs'][1:], fixture['outputs_plain']):
            torch.testing.assert_close(net(lq), sr, rtol=0, atol=1e-5 * sr.abs().max().item())


def test_training_outputs_and_gradients_equal_the_release(fixture):
    net = _network(fixture).double().train()
    x = fixture['train_input'].double().requires_grad_()
    torch.manual_seed(fixture['train_seed'])  # the channel dropout before conv_last draws as the release's
    out = net(x)
    l, r = out.chunk(2, dim=1)
    (l.square().mean() + r.square().mean()).backward()

    def close(actual, wanted):
        torch.testing.assert_close(actual, wanted, rtol=0, atol=1e-9 * wanted.abs().max().item())
    close(out, fixture['train_output'])
    close(x.grad, fixture['train_input_grad'])
    params = dict(net.named_parameters())
    assert sorted(n for n, p in params.items() if p.grad is None) == sorted(fixture['no_grad_names'])
    with_grad = [(n, params[n].grad) for n in fixture['param_names'] if params[n].grad is not None]
    close(GENERATOR.compact_grads(*zip(*with_grad), torch), fixture['train_param_grads'])


def test_the_release_quirks_are_in_the_fixture(fixture):
    """The fixture's windows (3 x 5) make each quirk of the release matter; undoing one changes the outputs."""
    assert relative_index(3, 5).max() == 4 * 7 + 8 < (2 * 3 - 1) * (2 * 5 - 1) - 1  # row offsets times wh+ww-1
    assert torch.equal(relative_index(3, 5), fixture['buffers'][
        'layers.0.blk.residual_group.blocks.0.attn.relative_position_index'])
    assert torch.equal(shifted_window_mask(6, 10, 3, 5, 1, 2),
                       fixture['buffers']['layers.1.blk.residual_group.blocks.1.attn_mask'])
    net = _network(fixture).eval()
    lq, sr = fixture['inputs'][2], fixture['outputs'][2]
    block = net.layers[0].blk.residual_group.blocks[1]
    with torch.no_grad():
        block.shift = (1, 2)  # rolled by the column shift (2) instead of the release's row shift (1)
        roll = torch.roll
        try:
            torch.roll = lambda x, shifts, dims: roll(x, (shifts[0], shifts[1] * 2), dims)
            assert (net(lq) - sr).abs().max() > 1e-3
        finally:
            torch.roll = roll
        assert (net(lq) - sr).abs().max() < 1e-4
        centred = net.layers[0].fusion
        net.layers[0].fusion = SCAM(8)
        net.layers[0].fusion.load_state_dict(centred.state_dict(), strict=False)
        assert (net(lq) - sr).abs().max() > 1e-3


def test_parameter_count_and_names_of_the_released_size():
    with torch.device('meta'):
        net = build_named('SwinFSR-L', 4)
    assert sum(p.numel() for p in net.parameters()) == RELEASED_COUNT_X4
    assert NAMED_SIZES['SwinFSR-L'][1]['depths'] == [6] * 12 and NAMED_SIZES['SwinFSR-L'][1]['drop_path_rate'] == 0.2
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    # the release's names: 12 stages of 6 blocks, 6 x 15 windows (bias table 11 x 29), the mask of a 30 x 90 patch
    assert shapes['layers.11.blk.residual_group.blocks.5.attn.relative_position_bias_table'] == (11 * 29, 6)
    assert shapes['layers.0.blk.residual_group.blocks.1.attn_mask'] == (30, 90, 90)
    assert 'layers.0.blk.residual_group.blocks.0.attn_mask' not in shapes
    assert shapes['layers.3.fusion.rb.body.0.weight'] == (180, 45, 3, 3)
    assert shapes['conv_after_body.rightbranch.fu.conv_layer.0.weight'] == (90, 90, 1, 1)
    assert shapes['conv_feature.weight'] == (180, 360, 3, 3) and shapes['layers.0.patch_embed.norm.weight'] == (180,)
    assert shapes['upsample.2.weight'] == (256, 64, 3, 3)


def test_a_checkpoint_saved_as_the_release_trains_loads_with_its_state_dict_key(tmp_path):
    """The release's train.py saves {'epoch', 'state_dict', 'optimizer_state_dict', 'scheduler_state_dict', 'loss'}
    (a LambdaLR with a lambda and a loss tensor of the graph): it loads without unpickling code; another scale is
    one line naming the first mismatch."""
    config = dict(img_size=(6, 10), embed_dim=8, depths=[1, 2], num_heads=[2, 2], window_size_h=3, window_size_w=5)
    net = SwinFSR(up_scale=4, **config)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lambda epoch: 0.1)
    loss = net(torch.rand(1, 6, 6, 10)).abs().mean()
    loss.backward()
    optimizer.step()
    scheduler.step()
    path = tmp_path / '4xSR_epoch5.pth.tar'
    torch.save({'epoch': 5, 'state_dict': net.state_dict(), 'optimizer_state_dict': optimizer.state_dict(),
                'scheduler_state_dict': scheduler.state_dict(), 'loss': loss}, path)
    fresh = load_network(SwinFSR(up_scale=4, **config), path, param_key='state_dict')
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), net.state_dict().values()))
    with pytest.raises(CheckpointError) as excinfo:
        load_network(SwinFSR(up_scale=2, **config), path, param_key='state_dict')
    assert '\n' not in str(excinfo.value) and 'upsample.2.weight' in str(excinfo.value)


def test_ffb_and_the_centred_scam_are_blocks_of_the_nafssr_skeleton():
    torch.manual_seed(0)
    net = define_network({'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 2, 'intra_block': 'FFB',
                          'cross_block': 'SwinFSRSCAM'})
    assert isinstance(net.body[0].module.blk, FFB) and isinstance(net.body[0].module.fusion, SwinFSRSCAM)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    out = net(torch.rand(2, 6, 5, 9))
    out.mean().backward()
    assert out.shape == (2, 6, 10, 18)
    assert net.body[0].module.fusion.rb.body[0].weight.grad.abs().sum() > 0
    assert net.body[1].module.blk.rightbranch.fu.conv_layer[0].weight.grad.abs().sum() > 0


def test_inputs_smaller_than_half_a_window_are_reflected_as_often_as_needed():
    """The release's single reflection fails when the padding reaches the size; ours reflects again (numpy's
    ``reflect``), so any view of at least 2 x 2 runs."""
    x = torch.rand(1, 2, 3, 4)
    for pad_h, pad_w in ((0, 0), (2, 3), (5, 11), (14, 1)):
        expected = np.pad(x.numpy(), ((0, 0), (0, 0), (0, pad_h), (0, pad_w)), mode='reflect')
        assert np.array_equal(reflect_pad(x, pad_h, pad_w).numpy(), expected)
    net = SwinFSR(up_scale=2, img_size=(12, 30), embed_dim=8, depths=[2], num_heads=[2]).eval()
    with torch.no_grad():
        out = net(torch.rand(1, 6, 3, 5))
        assert out.shape == (1, 6, 6, 10) and torch.isfinite(out).all()
        with pytest.raises(ValueError, match=r'at least 2 rows and 2 columns per view, got \(3, 1\)'):
            net(torch.rand(1, 6, 3, 1))


def test_bad_options_are_one_line_naming_the_key():
    for opt, message in ((dict(embed_dim=6), 'network_g:embed_dim: expected a multiple of 4'),
                         (dict(img_size=[6, 15]), r'network_g:img_size: \[6, 15\] must exceed the window'),
                         (dict(scam='both'), "network_g:scam: expected 'centred' or 'plain'"),
                         (dict(resi_connection='3conv'), "network_g:resi_connection: expected '1conv'"),
                         (dict(up_scale=4, upscale=4), "network_g:upscale: the release's spelling of up_scale")):
        with pytest.raises(Exception, match=message):
            define_network({'type': 'SwinFSR', **opt})
    with pytest.raises(ValueError, match='multiple of 4'):
        SwinFSRSCAM(6)


OPTION_FILES = sorted((Path(__file__).resolve().parents[2] / 'options').glob('*/SwinFSR/*.yml'))


@pytest.mark.parametrize('path', OPTION_FILES, ids=[f'{p.parent.parent.name}/{p.name}' for p in OPTION_FILES])
def test_option_files_parse_and_build_the_released_size(path, tmp_path):
    from basicsr.option_checks import OPTION_CHECKS
    from basicsr.utils.options import parse

    # (every key being read by some class: tests/options/test_model_keys.py, for every option file)
    opt = parse(path, is_train=path.parent.parent.name == 'train', root_path=tmp_path, registries=OPTION_CHECKS)
    assert opt['scale'] == opt['network_g']['up_scale'] == 4
    with torch.device('meta'):
        net = define_network(opt['network_g'])
    assert sum(p.numel() for p in net.parameters()) == RELEASED_COUNT_X4
    assert all(d.get('color_order') == 'rgb' for d in opt['datasets'].values())  # the release reads with PIL
    if 'train' in opt:  # the release's train.py: Adam 1e-4, L1 of each view summed, batch 1 of 30 x 90 LR crops
        train, data = opt['train'], opt['datasets']['train']
        assert train['optim_g'] == {'type': 'Adam', 'lr': 1e-4, 'weight_decay': 0, 'betas': [0.9, 0.999]}
        assert train['pixel_opt'] == {'type': 'L1Loss', 'loss_weight': 2.0, 'reduction': 'mean'}
        assert (data['gt_size_h'], data['gt_size_w'], data['batch_size_per_gpu']) == (120, 360, 1)
        assert train['total_iter'] == 300 * 800 and train['warmup_iter'] == 15 * 800
    else:
        assert opt['path']['param_key_g'] == 'state_dict'
        assert opt['path']['pretrain_network_g'].endswith('experiments/pretrained_models/SwinFSR-L_x4.pth.tar')


def test_inference_attention_is_the_explicit_products_a_few_windows_at_a_time(monkeypatch):
    """Without autograd the window attention computes the release's explicit products over a few windows at a time
    (faster on the CPU than torch's fused kernel with a mask): bit for bit the products over all windows at once,
    with a per-window bias (shifted windows) and a shared one."""
    from basicsr.models.archs import swinfsr_arch

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 7, 3, 15, 4) for _ in range(3))
    monkeypatch.setattr(swinfsr_arch, 'ATTENTION_CHUNK_ELEMENTS', 2 * 2 * 3 * 15 * 15)  # two windows a chunk
    for bias in (torch.randn(7, 3, 15, 15), torch.randn(3, 15, 15)):
        whole = torch.matmul(torch.softmax(torch.matmul(q * 0.5, k.transpose(-2, -1)) + bias, dim=-1), v)
        with torch.no_grad():
            assert torch.equal(swinfsr_arch.window_attention(q, k, v, bias, 0.5), whole)


def test_bf16_autocast_runs_the_spectral_unit_in_float32():
    """Under bf16 autocast (val:amp_dtype, train:amp_dtype) the Fourier unit's FFT, its conv and torch.complex run in
    float32 (torch.complex refuses bf16); the output stays close to the fp32 one, and fp32 is unchanged."""
    torch.manual_seed(0)
    net = SwinFSR(up_scale=2, img_size=(6, 15), window_size_h=3, window_size_w=5, embed_dim=8, depths=[2],
                  num_heads=[2]).eval()
    x = torch.rand(1, 6, 6, 15)
    with torch.no_grad():
        ref = net(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = net(x)
        assert torch.equal(net(x), ref)
    assert out.shape == ref.shape and torch.isfinite(out).all()
    assert (out.float() - ref).abs().max() < 0.05
