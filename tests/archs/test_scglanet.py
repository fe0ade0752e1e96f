"""SCGLANet: the released implementation's outputs and gradients for the same weights and the same random hashing,
the released size, its option keys and checkpoint names, and its blocks (SCATM, SCGLA) inside NAFSSR."""
from pathlib import Path

import pytest
import torch
import yaml

from basicsr.models.archs import define_network
from basicsr.models.archs.nafssr_arch import NAFSSR
from basicsr.models.archs.scam import SCAM
from basicsr import zoo
from basicsr.models.archs.arch_util import build_named
from basicsr.models.archs.scglanet_arch import SCATM, SCGLA, SCGLANet
from basicsr.utils.checkpoint import CheckpointError, load_network

FIXTURE = Path(__file__).parent / 'data' / 'release_scglanet_tiny.pt'

# Counted by instantiating the release's own SCGLANet (fzuzyb/SCGLANet at 3ad03227, basicsr/archs/scglanet_arch.py)
# with the network_g of its option files at x2 and x4 (names and shapes equal ours); the community list gives 25.29M.
RELEASED_COUNTS = {2: 25_275_532, 4: 25_317_040}

# network_g of the release's options/train/StereoSR/train_SCGLANet_L_x4_Track1.yml, as written there
RELEASE_NETWORK_G = """
network_g:
  type: SCGLANet
  up_scale: 4
  width: 128
  num_blks: [16,16,32,32,32]
  drop_path_rate: 0.1
  train_size: [1, 6, 30, 90]
  drop_out_rate: 0.
  temperature: 2.0
"""


@pytest.fixture(scope='module')
def fixture():
    return torch.load(FIXTURE, weights_only=True)


def _unflatten(flat, fixture):
    sizes = [torch.Size(s).numel() for s in fixture['param_shapes']]
    return {name: t.view(shape) for name, t, shape in
            zip(fixture['param_names'], flat.split(sizes), fixture['param_shapes'])}


@pytest.mark.parametrize('channels_last', [True, False])
@pytest.mark.parametrize('fast_imp', [False, True])
def test_outputs_equal_the_release(fixture, fast_imp, channels_last):
    net = SCGLANet(**fixture['config'], fast_imp=fast_imp, channels_last=channels_last).eval()
    net.load_state_dict(_unflatten(fixture['params'], fixture))  # strict: the release's names and shapes
    cases = list(zip(fixture['forward_seeds'], fixture['inputs'], fixture['outputs']))
    if fast_imp:  # fast outputs only where TLSC pools locally
        cases = [(seed, lq, sr) for (seed, lq, _), sr in zip(cases[1:], fixture['outputs_fast'])]
    with torch.no_grad():
        for seed, lq, sr in cases:
            torch.manual_seed(seed)  # the same rotations, drawn in the same order, give the same buckets
            out = net(lq)
            assert out.shape == sr.shape
            # float32 rounding only: the release is within 2.5e-5 of its float64 outputs here (max |sr| ~ 22)
            torch.testing.assert_close(out, sr, rtol=0, atol=1e-5 * sr.abs().max().item())


def test_training_outputs_and_gradients_equal_the_release(fixture):
    net = SCGLANet(**fixture['config'], channels_last=False)
    net.load_state_dict(_unflatten(fixture['params'], fixture))
    net.double().train()  # the fixture's training forward is in float64 (well-conditioned; float32 is not)
    x = fixture['train_input'].double().requires_grad_()
    torch.manual_seed(fixture['train_seed'])  # rotations drawn in float32 and cast, as the release's were
    out = net(x)
    out.square().mean().backward()
    expected = _unflatten(fixture['train_param_grads'], fixture)

    def close(actual, wanted):
        torch.testing.assert_close(actual, wanted, rtol=0, atol=1e-9 * wanted.abs().max().item())
    close(out, fixture['train_output'])
    close(x.grad, fixture['train_input_grad'])
    grads = dict(net.named_parameters())
    assert set(grads) == set(expected)
    for name, grad in expected.items():
        close(grads[name].grad, grad)


def test_fixture_covers_padding_the_bucket_cap_and_both_poolings(fixture):
    config = fixture['config']
    assert config['train_size'] == [1, 6, 8, 16] and config['chunk_size'] == 4  # TLSC windows 12 x 24
    tokens = [2 * lq.shape[-2] * lq.shape[-1] for lq in fixture['inputs']]
    assert [t % 4 for t in tokens] == [2, 2, 2]  # every input pads its last chunk
    assert SCGLA(8, chunk_size=4).hash_buckets(max(tokens)) == 128 < max(tokens) // 4  # the cap is reached
    # the learnt score, the temperature and the hashing really matter (the fixture could not miss them)
    net = SCGLANet(**{**config, 'temperature': 1.0}).eval()
    net.load_state_dict(_unflatten(fixture['params'], fixture))
    lq, sr = fixture['inputs'][2], fixture['outputs'][2]
    with torch.no_grad():
        torch.manual_seed(fixture['forward_seeds'][2])
        assert (net(lq) - sr).abs().max() > 1e-2
        net = SCGLANet(**config).eval()
        net.load_state_dict(_unflatten(fixture['params'], fixture))
        torch.manual_seed(0)  # other rotations: other buckets
        assert (net(lq) - sr).abs().max() > 1e-2
        torch.manual_seed(fixture['forward_seeds'][2])
        assert (net(lq) - sr).abs().max() < 1e-3


@pytest.mark.parametrize('scale', sorted(RELEASED_COUNTS))
def test_parameter_counts_of_the_released_size(scale):
    with torch.device('meta'):
        net = build_named('SCGLANet-L', scale)
    assert sum(p.numel() for p in net.parameters()) == RELEASED_COUNTS[scale]


def test_the_release_network_g_mapping_builds_unchanged():
    with torch.device('meta'):
        net = define_network(release := yaml.safe_load(RELEASE_NETWORK_G)['network_g'])
    assert isinstance(net, SCGLANet) and net.up_scale == 4 and net.num_blks == (16, 16, 32, 32, 32)
    assert {k: v for k, v in release.items() if k not in ('type', 'up_scale')} == zoo.MODELS['SCGLANet-L_x4'].kwargs
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    # the release's names: SCATM keeps SCAM's; SCGLA between the groups, its fc mapping 128 channels to 144 slots
    assert shapes['body5.31.module.fusion.l_proj1.weight'] == (128, 128, 1, 1)
    assert shapes['body1.15.module.blk.sca.1.weight'] == (128, 128, 1, 1)
    assert shapes['SCGLA4.0.conv_match.weight'] == (32, 128, 3, 3)
    assert shapes['SCGLA1.0.fc.0.weight'] == (144, 128) and shapes['SCGLA1.0.fc.2.weight'] == (144, 144)
    assert 'SCGLA5.0.conv_match.weight' not in shapes and net.body2[0].module.fusion.temperature == 2.0


def test_a_checkpoint_of_another_scale_is_one_line_naming_the_first_mismatch(tmp_path):
    config = dict(width=8, num_blks=[1, 0, 0, 0, 1], chunk_size=4, train_size=[1, 6, 8, 16])
    path = tmp_path / 'scglanet_x4_Track1.pth'
    torch.save({'params': SCGLANet(up_scale=4, **config).state_dict()}, path)
    load_network(SCGLANet(up_scale=4, **config), path)
    with pytest.raises(CheckpointError) as excinfo:
        load_network(SCGLANet(up_scale=2, **config), path)
    assert '\n' not in str(excinfo.value) and 'up.0.weight (48, 8, 3, 3) (network: (12, 8, 3, 3))' in str(excinfo.value)


def test_scatm_and_scgla_are_cross_blocks_of_the_nafssr_skeleton():
    torch.manual_seed(0)
    net = define_network({'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 2, 'cross_block': 'SCATM',
                          'cross_kwargs': {'temperature': 1.0}})
    plain = define_network({'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 2})
    assert isinstance(net.body[0].module.fusion, SCATM) and isinstance(plain.body[0].module.fusion, SCAM)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    plain.load_state_dict(net.state_dict())  # SCATM has SCAM's names; at temperature 1 it is SCAM
    lq = torch.rand(1, 6, 6, 10)
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(lq), plain.eval()(lq))
    net = define_network({'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 1, 'cross_block': 'SCGLA',
                          'cross_kwargs': {'chunk_size': 4, 'n_hashes': 2}})
    out = net(torch.rand(2, 6, 3, 5))
    out.mean().backward()
    assert out.shape == (2, 6, 6, 10) and net.body[0].module.fusion.conv_match.weight.grad.abs().sum() > 0


def test_scgla_refuses_what_it_cannot_hash():
    with pytest.raises(ValueError, match='multiple of reduction'):
        SCGLA(6)
    with pytest.raises(ValueError, match=r'at least chunk_size \(144\) tokens .* got 60'):
        SCGLA(8)(torch.rand(1, 8, 5, 6), torch.rand(1, 8, 5, 6))
    with pytest.raises(Exception, match='network_g:width: expected a multiple of 4'):
        define_network({'type': 'SCGLANet', 'width': 6})
    with pytest.raises(Exception, match='network_g:num_blks: expected blocks per group, 5 integers'):
        define_network({'type': 'SCGLANet', 'num_blks': 16})
