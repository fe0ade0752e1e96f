"""CVHSSR: the released implementation's outputs for the same weights, the released sizes, its option keys and
checkpoint format, and its blocks (CHIMB, CVIM) inside NAFSSR."""
from pathlib import Path

import pytest
import torch
import yaml

from basicsr.models.archs import define_network
from basicsr.models.archs.arch_util import NAMED_SIZES, build_named
from basicsr.models.archs.cvhssr_arch import CHIMB, CVHSSR, CVIM
from basicsr.models.archs.nafssr_arch import NAFSSR
from basicsr.models.archs.scam import SCAM
from basicsr.utils.checkpoint import CheckpointError, load_network

FIXTURE = Path(__file__).parent / 'data' / 'release_cvhssr_tiny.pt'

# Parameter counts of the released sizes, counted by instantiating the release's own CVHSSR_arch.py
# (AlexZou14/CVHSSR at commit 252cd388265ab90cc29cc6c39727514d9f98be93, 29 Nov 2026); the T ones equal the tensors of
# its ckpt/CVHSSR_Tx4.pth and CVHSSR_Tx2.pth, and all four round to the paper's 0.68M / 0.66M / 2.24M / 2.22M.
RELEASED_COUNTS = {('T', 4): 678_000, ('T', 2): 662_412, ('S', 4): 2_237_232, ('S', 2): 2_216_460}

# network_g of the release's options/test/CVHSSR_Tx4.yml, as written there
RELEASE_NETWORK_G = """
network_g:
  type: CVHSSR
  up_scale: 4
  width: 48
  num_blks: 16
  drop_path_rate: 0
  train_size: [1, 6, 30, 90]
  drop_out_rate: 0.
"""


@pytest.fixture(scope='module')
def fixture():
    return torch.load(FIXTURE, weights_only=True)


@pytest.mark.parametrize('channels_last', [True, False])
@pytest.mark.parametrize('fast_imp', [False, True])
def test_outputs_equal_the_release(fixture, fast_imp, channels_last):
    net = CVHSSR(**fixture['config'], fast_imp=fast_imp, channels_last=channels_last).eval()
    net.load_state_dict(fixture['state_dict'])  # strict: the release's names and shapes
    expected = fixture['outputs_fast' if fast_imp else 'outputs']
    with torch.no_grad():
        for lq, sr in zip(fixture['inputs'], expected):
            out = net(lq)
            assert out.shape == sr.shape
            # float32 rounding only (other summation orders, fused attention); the release itself is within 2.5e-6
            # of its float64 outputs here, and a real difference is orders of magnitude larger
            torch.testing.assert_close(out, sr, rtol=0, atol=1e-5)


def test_fixture_covers_global_and_local_pooling(fixture):
    # TLSC windows are 12 x 24 for train_size 8 x 16: global, local in both dims, local in width only
    assert fixture['config']['train_size'] == [1, 6, 8, 16]
    assert [tuple(x.shape[-2:]) for x in fixture['inputs']] == [(10, 20), (16, 40), (8, 30)]
    params = fixture['state_dict']
    for name in ('blk.beta', 'blk.gamma', 'fusion.beta', 'fusion.gamma'):
        assert params[f'body.0.module.{name}'].abs().min() > 0  # every branch really contributes
    # local pooling really differs from global pooling for the larger inputs (the fixture could not miss it)
    net = CVHSSR(**{**fixture['config'], 'train_size': [1, 6, 64, 64]}).eval()
    net.load_state_dict(params)
    with torch.no_grad():
        assert (net(fixture['inputs'][1]) - fixture['outputs'][1]).abs().max() > 1e-3


@pytest.mark.parametrize('variant,scale', sorted(RELEASED_COUNTS))
def test_parameter_counts_of_the_released_sizes(variant, scale):
    with torch.device('meta'):  # no memory, no initialisation: counting only
        net = build_named(f'CVHSSR-{variant}', scale)
    assert sum(p.numel() for p in net.parameters()) == RELEASED_COUNTS[(variant, scale)]


def test_variant_table():
    # the release's option files: T (48, 16, drop-path 0), S (64, 32, drop-path 0.1)
    tlsc = dict(train_size=[1, 6, 30, 90], drop_out_rate=0.0)
    assert NAMED_SIZES['CVHSSR-T'] == (CVHSSR, dict(width=48, num_blks=16, drop_path_rate=0.0, **tlsc))
    assert NAMED_SIZES['CVHSSR-S'] == (CVHSSR, dict(width=64, num_blks=32, drop_path_rate=0.1, **tlsc))
    with torch.device('meta'):
        net = build_named('CVHSSR-S', 2, num_blks=3)
    assert len(net.body) == 3 and net.body[0].drop_rate == 0.1 and net.up_scale == 2
    with pytest.raises(ValueError, match='CVHSSR-T, CVHSSR-S'):
        build_named('CVHSSR-L', 4)


def test_the_release_network_g_mapping_builds_unchanged():
    with torch.device('meta'):
        net = define_network(yaml.safe_load(RELEASE_NETWORK_G)['network_g'])
    assert isinstance(net, CVHSSR) and net.up_scale == 4 and len(net.body) == 16
    layer = net.body[0].module
    assert isinstance(layer.blk, CHIMB) and isinstance(layer.fusion, CVIM)
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    # the release's names: CHIMB expands to 2c = 96 and gates back to 48; LKA (sca1) works on the gated 48 channels
    assert shapes['body.15.module.blk.sca1.conv_spatial.weight'] == (48, 1, 7, 7)
    assert shapes['body.15.module.blk.conv5.weight'] == (96, 1, 3, 3)
    assert shapes['body.15.module.fusion.l_proj1.1.weight'] == (48, 1, 3, 3)
    assert shapes['body.15.module.fusion.r_proj3.weight'] == (48, 48, 1, 1)
    assert len(shapes) == 4 + 16 * (2 * 12 + 2 + 2 * 12 + 2)  # 12 layers (weight, bias) + beta, gamma in each


def test_a_checkpoint_of_another_size_is_one_line_naming_the_first_mismatch(tmp_path):
    path = tmp_path / 'CVHSSR_Tx4.pth'
    torch.save({'params': build_named('CVHSSR-T', 4).state_dict()}, path)  # the release's format
    load_network(build_named('CVHSSR-T', 4), path)  # fits
    with pytest.raises(CheckpointError) as excinfo:
        load_network(build_named('CVHSSR-T', 2), path)
    text = str(excinfo.value)
    assert '\n' not in text and str(path) in text
    assert 'up.0.weight (48, 48, 3, 3) (network: (12, 48, 3, 3))' in text  # x4 file into a x2 network
    with pytest.raises(CheckpointError) as excinfo:
        load_network(build_named('CVHSSR-S', 4), path)
    assert 'intro.weight (48, 3, 3, 3) (network: (64, 3, 3, 3))' in str(excinfo.value)  # first in network order


def test_chimb_and_cvim_are_blocks_of_the_nafssr_skeleton():
    net = define_network({'type': 'NAFSSR', 'up_scale': 2, 'width': 6, 'num_blks': 2, 'intra_block': 'CHIMB',
                          'cross_block': 'SCAM'})
    assert isinstance(net.body[1].module.blk, CHIMB) and isinstance(net.body[1].module.fusion, SCAM)
    # CVHSSR is exactly NAFSSR with CHIMB and CVIM: same names, same outputs
    cfg = {'up_scale': 2, 'width': 6, 'num_blks': 2, 'train_size': [1, 6, 4, 8]}
    torch.manual_seed(0)
    cvhssr = CVHSSR(**cfg).eval()
    for p in cvhssr.parameters():
        torch.nn.init.normal_(p, std=0.2)
    nafssr = NAFSSR(**cfg, intra_block='CHIMB', cross_block='CVIM').eval()
    nafssr.load_state_dict(cvhssr.state_dict())
    x = torch.rand(1, 6, 7, 15)
    with torch.no_grad():
        assert torch.equal(cvhssr(x), nafssr(x))


def test_fresh_blocks_are_the_identity():
    # beta and gamma start at zero, as in the release: a fresh block passes its input through unchanged
    x_l, x_r = torch.rand(1, 6, 5, 9), torch.rand(1, 6, 5, 9)
    with torch.no_grad():
        assert torch.equal(CHIMB(6).eval()(x_l), x_l)
        out_l, out_r = CVIM(6).eval()(x_l, x_r)
    assert torch.equal(out_l, x_l) and torch.equal(out_r, x_r)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match=r'^network_g:train_size: expected 6 channels'):
        define_network({'type': 'CVHSSR', 'train_size': [1, 3, 30, 90]})
    with pytest.raises(ValueError, match=r'CVHSSR expects \(N, 6, h, w\)'):
        CVHSSR(width=6, num_blks=1)(torch.rand(1, 3, 8, 8))


OPTION_FILES = sorted((Path(__file__).resolve().parents[2] / 'options').glob('*/CVHSSR/*.yml'))


@pytest.mark.parametrize('path', OPTION_FILES, ids=[f'{p.parent.parent.name}/{p.name}' for p in OPTION_FILES])
def test_option_files_parse_and_build_the_released_sizes(path, tmp_path):
    from basicsr.option_checks import OPTION_CHECKS
    from basicsr.utils.options import parse, unknown_keys

    opt = parse(path, is_train=path.parent.parent.name == 'train', root_path=tmp_path, registries=OPTION_CHECKS)
    assert unknown_keys(opt) == []
    variant, scale = path.stem[len('CVHSSR-'):].split('_x')
    assert opt['scale'] == opt['network_g']['up_scale'] == int(scale)
    with torch.device('meta'):
        net = define_network(opt['network_g'])
    assert sum(p.numel() for p in net.parameters()) == RELEASED_COUNTS[(variant, int(scale))]
    if 'train' in opt:  # the release's recipe
        assert opt['train']['optim_g'] == {'type': 'Lion', 'lr': 1e-4, 'weight_decay': 0., 'betas': [0.9, 0.9]}
        assert opt['train']['pixel_opt']['type'] == 'ComposeLoss'
    else:
        assert opt['path']['pretrain_network_g'].endswith(f'experiments/pretrained_models/CVHSSR_{variant}x{scale}.pth')
