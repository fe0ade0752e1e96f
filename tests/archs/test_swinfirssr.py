"""SwinFIRSSR: the released implementation's outputs and gradients for the same weights, its test-time padding,
the released sizes, its option keys and checkpoint format (``params_ema``), and its blocks inside NAFSSR."""
from pathlib import Path

import pytest
import torch
import yaml

from basicsr import zoo
from basicsr.models.archs import define_network
from basicsr.models.archs.nafssr_arch import NAFSSR
from basicsr.models.archs.scam import explicit_row_attention
from basicsr.models.archs.arch_util import build_named
from basicsr.models.archs.swinfirssr_arch import (SFB, SwinFIRSSR, SwinFIRSCAM, SwinHAB, mirror_pad,
                                                  shifted_window_groups)
from basicsr.utils.checkpoint import CheckpointError, load_network

FIXTURE = Path(__file__).parent / 'data' / 'release_swinfirssr_tiny.pt'
RELEASED = zoo.MODELS['SwinFIRSSR_x4'].kwargs  # the released size, its card in basicsr/zoo.py

# Parameter counts of the released sizes, counted by instantiating the release's own swinfirssr_arch.py
# (Zdafeng/SwinFIR at d08db641) with the network_g of its options/test/SwinFIRSSR/SwinFIRSSR_SSRx{2,4}.yml; they are
# the counts issue 13 quotes for the released checkpoints.
RELEASED_COUNTS = {2: 23_943_095, 4: 24_090_807}

# network_g of the release's options/test/SwinFIRSSR/SwinFIRSSR_SSRx4.yml, as written there
RELEASE_NETWORK_G = """
network_g:
  type: SwinFIRSSR
  upscale: 4
  in_chans: 3
  img_size: 64
  window_size: 16
  compress_ratio: 3
  squeeze_factor: 30
  conv_scale: 0.01
  overlap_ratio: 0.5
  img_range: 1.
  depths: [6, 6, 6, 6, 6, 6]
  embed_dim: 180
  num_heads: [6, 6, 6, 6, 6, 6]
  mlp_ratio: 2
  upsampler: 'pixelshuffle'
  resi_connection: 'SFB'
"""


@pytest.fixture(scope='module')
def fixture():
    return torch.load(FIXTURE, weights_only=True)


def release_weights(entry):
    """The fixture's state dict: parameters stored as int8 codes and a power-of-two exponent (exact), index
    buffers as int16."""
    state = {k: code.float() * 2.0 ** -entry['param_exponents'][k] for k, code in entry['param_codes'].items()}
    state.update({k: v.long() for k, v in entry['buffers'].items()})
    return state


def release_model(entry, **overrides):
    net = SwinFIRSSR(**{**entry['config'], **overrides})
    net.load_state_dict(release_weights(entry))  # strict: the release's names and shapes
    return net


@pytest.mark.parametrize('key', ['A', 'B'])
def test_outputs_equal_the_release(fixture, key):
    """Eval mode pads as the release's test code does (SwinFIRSSRModel.test), so whole images give its results."""
    net = release_model(fixture[key]).eval()
    with torch.no_grad():
        for lq, sr in zip(fixture[key]['inputs'], fixture[key]['outputs']):
            out = net(lq)
            assert out.shape == sr.shape
            # float32 rounding only (fused attention, other orders); the release is within 1.8e-7 of its float64
            # outputs here, and the outputs are O(0.5)
            torch.testing.assert_close(out, sr, rtol=0, atol=1e-5)


def test_training_forward_and_gradients_equal_the_release(fixture):
    entry = fixture['A']
    net = release_model(entry).train()
    x = entry['train_input'].clone().requires_grad_()
    out = net(x)
    torch.testing.assert_close(out, entry['train_output'], rtol=0, atol=1e-5)
    out.square().mean().backward()
    grads = {'input': (x.grad, entry['train_input_grad'])}
    grads.update({n: (p.grad, entry['train_param_grads'][n]) for n, p in net.named_parameters()
                  if n in entry['train_param_grads']})
    assert len(grads) > 100  # every body parameter: attention tables, qkv, CAB, OCAB, SFB, SCAM, norms
    for name, (ours, theirs) in grads.items():
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5 * theirs.abs().max().item(), msg=name)


def test_fixture_covers_shifts_padding_and_the_overlap(fixture):
    a, b = fixture['A'], fixture['B']
    # A shifts every second block (training patch 8 > window 4), B never (patch 8 == window 8: the release's rule)
    assert SwinFIRSSR(**a['config']).shift_size == 2 and SwinFIRSSR(**b['config']).shift_size == 0
    # sizes that are multiples of the window (the release's test still adds a whole window) and sizes that are not
    assert [tuple(x.shape[-2:]) for x in a['inputs']] == [(8, 12), (5, 11), (9, 7)]
    assert [tuple(x.shape[-2:]) for x in b['inputs']] == [(8, 8), (6, 13)]
    # our index buffers are the release's (HAT's overlap index is partly negative: it wraps into the table)
    for entry in (a, b):
        net = SwinFIRSSR(**entry['config'])
        for name, values in entry['buffers'].items():
            assert torch.equal(getattr(net, name), values.long())
    assert a['buffers']['relative_position_index_OCA'].min() < 0
    # the shift, the eval padding rule and the stereo attention all change the outputs: the fixture would see them
    lq, sr = a['inputs'][0], a['outputs'][0]
    unshifted = release_model(a).eval()
    unshifted.shift_size = 0
    state = release_weights(a)
    for name in ('scam_layer.0.beta', 'scam_layer.0.gamma'):
        state[name] = torch.zeros_like(state[name])
    no_stereo = release_model(a).eval()
    no_stereo.load_state_dict(state)
    with torch.no_grad():
        assert (unshifted(lq) - sr).abs().max() > 1e-3
        assert (no_stereo(lq) - sr).abs().max() > 1e-3
        net = release_model(a).train()  # training pads nothing at a multiple of the window
        assert (net(lq) - sr).abs().max() > 1e-3


@pytest.mark.parametrize('scale', sorted(RELEASED_COUNTS))
def test_parameter_counts_of_the_released_sizes(scale):
    with torch.device('meta'):  # no memory, no initialisation: counting only
        net = build_named('SwinFIRSSR', scale)
    assert sum(p.numel() for p in net.parameters()) == RELEASED_COUNTS[scale]


def test_the_release_network_g_mapping_builds_unchanged():
    opt = yaml.safe_load(RELEASE_NETWORK_G)['network_g']
    assert {k: v for k, v in opt.items() if k not in ('type', 'upscale')} == RELEASED
    with torch.device('meta'):
        net = define_network(opt)
    assert isinstance(net, SwinFIRSSR) and net.up_scale == 4 and len(net.layers) == 6 and net.shift_size == 8
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    # the release's names and shapes (its params_ema files hold exactly these, buffers included)
    assert shapes['relative_position_index_SA'] == (256, 256)
    assert shapes['relative_position_index_OCA'] == (256, 576)  # 16 x 16 queries, 24 x 24 keys
    assert shapes['layers.5.residual_group.blocks.5.attn.relative_position_bias_table'] == (961, 6)
    assert shapes['layers.5.residual_group.blocks.5.conv_block.cab.3.attention.1.weight'] == (6, 180, 1, 1)
    assert shapes['layers.5.residual_group.overlap_attn.relative_position_bias_table'] == (1521, 6)
    assert shapes['layers.5.conv.F.fu.conv_layer.weight'] == (180, 180, 1, 1)
    assert shapes['scam_layer.5.l_proj2.weight'] == (180, 180, 1, 1)
    assert shapes['upsample.2.weight'] == (256, 64, 3, 3) and shapes['conv_last.weight'] == (3, 64, 3, 3)
    # HAB 21 tensors, OCAB 13, SFB 12, SCAM 12 per stage: 996, as the release's state dict
    assert len(shapes) == 2 + 2 + 2 + 6 * (6 * 21 + 13 + 12 + 12) + 2 + 2 + 2 + 4 + 2


def test_the_scale_is_up_scale_and_the_release_spelling_is_the_same_network():
    small = dict(img_size=8, window_size=4, embed_dim=8, depths=[1], num_heads=[2], squeeze_factor=4)
    with torch.device('meta'):
        ours, release = SwinFIRSSR(up_scale=4, **small), SwinFIRSSR(upscale=4, **small)
    assert ours.up_scale == release.up_scale == 4
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in release.state_dict().items()}
    with pytest.raises(ValueError, match=r"^upscale: the release's spelling of up_scale: give one of them"):
        SwinFIRSSR(up_scale=4, upscale=4, **small)
    with pytest.raises(ValueError, match=r'^upscale: expected a power of 2 or 3, got 5$'):
        SwinFIRSSR(upscale=5, **small)


def test_a_params_ema_checkpoint_loads_strictly_and_another_size_is_one_line(tmp_path):
    cfg = dict(RELEASED, embed_dim=12, depths=[1, 1], num_heads=[2, 2], window_size=4, img_size=8,
               squeeze_factor=4)
    path = tmp_path / 'SwinFIRSSR_SSRx4.pth'
    source = SwinFIRSSR(up_scale=4, **cfg)
    torch.save({'params': {}, 'params_ema': source.state_dict()}, path)  # the release's BasicSR format
    net = load_network(SwinFIRSSR(up_scale=4, **cfg), path, param_key='params_ema')
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), source.state_dict().values()))
    with pytest.raises(CheckpointError) as excinfo:
        load_network(SwinFIRSSR(up_scale=2, **cfg), path, param_key='params_ema')
    text = str(excinfo.value)
    assert '\n' not in text and str(path) in text
    assert '2 unexpected (e.g. upsample.2.weight)' in text  # a x4 file in a x2 network: one step too many
    with pytest.raises(CheckpointError) as excinfo:
        load_network(SwinFIRSSR(up_scale=4, **{**cfg, 'window_size': 8}), path, param_key='params_ema')
    assert 'relative_position_index_SA (16, 16) (network: (64, 64))' in str(excinfo.value)  # first in network order


def test_any_input_size_and_the_padding_rules():
    torch.manual_seed(0)
    net = SwinFIRSSR(up_scale=2, img_size=8, window_size=4, embed_dim=8, depths=[1], num_heads=[2],
                     squeeze_factor=4, resi_connection='SFB').eval()
    assert net.padding(8, 13) == (4, 3)  # eval: the release's test rule, a whole window more at a multiple
    net.train()
    assert net.padding(8, 13) == (0, 3)  # training: whole windows only
    net.eval()
    with torch.no_grad():
        for h, w in ((1, 1), (2, 17), (13, 3)):  # sizes the release's test cannot pad (padding > size)
            assert net(torch.rand(1, 6, h, w)).shape == (1, 6, 2 * h, 2 * w)
    with pytest.raises(ValueError, match=r'SwinFIRSSR expects \(N, 6, h, w\)'):
        net(torch.rand(1, 3, 8, 8))


def test_mirror_padding_is_the_release_flip_where_that_works_and_repeats_it_beyond():
    x = torch.arange(3.).view(1, 1, 1, 3)
    assert mirror_pad(x, 0, 2).flatten().tolist() == [0, 1, 2, 2, 1]  # cat([x, flip(x)]) then cropped
    assert mirror_pad(x, 0, 7).flatten().tolist() == [0, 1, 2, 2, 1, 0, 0, 1, 2, 2]
    assert mirror_pad(x, 2, 0).flatten().tolist() == [0, 1, 2] * 3


def test_shifted_windows_need_only_four_masks():
    """The release's mask over all windows is zero except in the last row and column of windows."""
    groups = shifted_window_groups(12, 8, 4, 2, 'cpu')
    assert [(g[0], g[1], g[2] is None) for g in groups] == [
        (slice(0, 2), slice(0, 1), True), (slice(0, 2), slice(1, 2), False),
        (slice(2, 3), slice(0, 1), False), (slice(2, 3), slice(1, 2), False)]
    corner = groups[3][2]
    assert corner.shape == (16, 16) and set(corner.unique().tolist()) == {0., -100.}
    assert (corner == 0).sum() == 4 * 4 * 4  # four regions of 2 x 2 tokens
    assert shifted_window_groups(8, 8, 4, 0, 'cpu') == [(slice(None), slice(None), None)]


def test_fused_and_explicit_attention_agree(fixture):
    """Evaluation and training use torch's fused attention; MAC counting (scam.explicit_row_attention) the
    explicit products: same outputs."""
    net = release_model(fixture['A']).eval()
    lq = fixture['A']['inputs'][1]
    with torch.no_grad():
        fused = net(lq)
        with explicit_row_attention():
            explicit = net(lq)
    torch.testing.assert_close(fused, explicit, rtol=0, atol=1e-6)


def test_gradient_checkpointing_gives_the_same_gradients(fixture):
    entry = fixture['A']
    grads = []
    for use_checkpoint in (False, True):
        net = release_model(entry, use_checkpoint=use_checkpoint).train()
        net(entry['train_input']).square().mean().backward()
        grads.append([p.grad for p in net.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


@pytest.mark.parametrize('intra,kwargs', [('SwinHAB', {}), ('SwinHAB', {'shift': True, 'window_size': 4}),
                                          ('SFB', {})])
def test_blocks_in_the_nafssr_skeleton(intra, kwargs):
    net = define_network({'type': 'NAFSSR', 'up_scale': 2, 'width': 12, 'num_blks': 2, 'intra_block': intra,
                          'intra_kwargs': kwargs, 'cross_block': 'SwinFIRSCAM'}).eval()
    assert isinstance(net.body[0].module.blk, {'SwinHAB': SwinHAB, 'SFB': SFB}[intra])
    assert isinstance(net.body[0].module.fusion, SwinFIRSCAM)
    with torch.no_grad():
        assert net(torch.rand(1, 6, 7, 13)).shape == (1, 6, 14, 26)


def test_swinhab_pads_to_whole_windows_and_crops():
    torch.manual_seed(0)
    block = SwinHAB(12, num_heads=3, window_size=4, shift=True).eval()
    x = torch.rand(2, 12, 8, 8)
    x5 = x[..., :5]
    by_hand = torch.cat([x5, x5.flip(3)], dim=3)[..., :8]  # the release's mirror padding to 2 windows of 4
    assert torch.equal(mirror_pad(x5, 0, 3), by_hand)
    assert torch.equal(mirror_pad(x[..., :3], 0, 5), torch.cat([x[..., :3], x[..., :3].flip(3)] * 2, 3)[..., :8])
    with torch.no_grad():
        out = block(x5)
        assert out.shape == (2, 12, 8, 5)  # cropped back
        # the 5 columns are those of the block run on the hand-padded 8 columns (zero padding would differ)
        torch.testing.assert_close(out, block(by_hand)[..., :5], rtol=0, atol=1e-6)
        zero_padded = torch.nn.functional.pad(x5, (0, 3))
        assert (block(zero_padded)[..., :5] - out).abs().max() > 1e-3


def test_swinfirscam_on_views_equals_the_network_token_path():
    """As a cross-view block it is the module of the network: same result on (N, c, H, W) views as on tokens;
    with beta = gamma = 0 (fresh) each view comes back LayerNorm'd (the release's residual is the normalised view)."""
    torch.manual_seed(0)
    scam = SwinFIRSCAM(8)
    x_l, x_r = torch.rand(2, 8, 5, 9), torch.rand(2, 8, 5, 9)
    with torch.no_grad():
        out_l, out_r = scam(x_l, x_r)
        ref = torch.nn.functional.layer_norm(x_l.permute(0, 2, 3, 1), (8,)).permute(0, 3, 1, 2)
        torch.testing.assert_close(out_l, ref)
        torch.nn.init.normal_(scam.beta)
        torch.nn.init.normal_(scam.gamma)
        out_l, out_r = scam(x_l, x_r)
        tokens = scam.tokens(torch.cat([x_l, x_r]).permute(0, 2, 3, 1).contiguous())
    torch.testing.assert_close(torch.cat([out_l, out_r]), tokens.permute(0, 3, 1, 2))
    assert (out_l - ref).abs().max() > 1e-2


def test_bad_options_are_named():
    with pytest.raises(ValueError, match=r'^network_g:upsampler: expected .pixelshuffle'):
        define_network({'type': 'SwinFIRSSR', 'upsampler': 'nearest+conv'})
    with pytest.raises(ValueError, match=r'^network_g:num_heads\[0\]: 7 heads do not divide embed_dim 180'):
        define_network({'type': 'SwinFIRSSR', 'embed_dim': 180, 'num_heads': [7], 'depths': [1]})
    with pytest.raises(ValueError, match=r'^network_g:img_size: .* smaller than window_size'):
        define_network({'type': 'SwinFIRSSR', 'img_size': 8, 'window_size': 16})
    with pytest.raises(ValueError, match=r'^network_g:ape:'):
        define_network({'type': 'SwinFIRSSR', 'ape': True})
    with pytest.raises(ValueError, match='num_heads: expected a positive divisor of the channels'):
        SwinHAB(12, num_heads=5)


OPTION_FILES = sorted((Path(__file__).resolve().parents[2] / 'options').glob('*/SwinFIRSSR/*.yml'))


@pytest.mark.parametrize('path', OPTION_FILES, ids=[f'{p.parent.parent.name}/{p.name}' for p in OPTION_FILES])
def test_option_files_parse_and_build_the_released_sizes(path, tmp_path):
    from basicsr.option_checks import OPTION_CHECKS
    from basicsr.utils.options import parse, unknown_keys

    opt = parse(path, is_train=path.parent.parent.name == 'train', root_path=tmp_path, registries=OPTION_CHECKS)
    assert unknown_keys(opt) == []
    scale = int(path.stem.split('_x')[-1])
    assert opt['scale'] == opt['network_g']['up_scale'] == scale
    with torch.device('meta'):
        net = define_network(opt['network_g'])
    assert sum(p.numel() for p in net.parameters()) == RELEASED_COUNTS[scale]
    if 'train' in opt:  # the release's recipe
        train = opt['train']
        assert train['optim_g'] == {'type': 'Adam', 'lr': 2e-4, 'weight_decay': 0, 'betas': [0.9, 0.99]}
        assert train['ema_decay'] == 0.999 and train['total_iter'] == 800000
        assert train['pixel_opt']['type'] == 'CharbonnierLossColor'
    else:
        assert opt['path']['pretrain_network_g'].endswith(f'experiments/pretrained_models/SwinFIRSSR_SSRx{scale}.pth')
        assert opt['path']['param_key_g'] == 'params_ema'
        assert all(d.get('color_order') == 'rgb' for d in opt['datasets'].values())
