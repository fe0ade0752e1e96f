"""EHFSSR and EHFSSR-S: the released implementation's outputs and gradients for the same weights (fixture made with
the release), the released parameter counts, release-format checkpoints, any input size, and the blocks in NAFSSR."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import basicsr.models.archs.ehfssr_arch as ehfssr_arch
from basicsr.models.archs import define_network
from basicsr.models.archs.arch_util import NAMED_SIZES, build_named
from basicsr.models.archs.ehfssr_arch import EHFSSR, EHFBlock, EHFCrossAttention, EHFSSR_S, reflect_pad_to_multiple
from basicsr.utils.checkpoint import CheckpointError, load_network

FIXTURE = Path(__file__).parent / 'data' / 'release_ehfssr_tiny.pt'

# Parameter counts of the released sizes, counted by instantiating the release's own EHFSSR_arch.py and
# EHFSSR_S_arch.py (jianwensong/EHFSSR at commit 66d96aa4) with the network_g keys of its option files; the two
# EHFSSR-S counts also equal the tensors in its released EHFSSR_S_x2.pth / EHFSSR_S_x4.pth.
RELEASED_COUNTS = {
    ('EHFSSR', 2): 1_187_349, ('EHFSSR', 4): 1_208_121,
    ('EHFSSR-S', 2): 627_925, ('EHFSSR-S', 4): 643_513,
}


@pytest.fixture(scope='module')
def fixture():
    return torch.load(FIXTURE, weights_only=True)


def release_model(entry, name):
    net = define_network({'type': name, **entry['config']})
    net.load_state_dict(entry['state_dict'])  # strict: the release's names and shapes
    return net


@pytest.mark.parametrize('index', [0, 1])
@pytest.mark.parametrize('name', ['EHFSSR', 'EHFSSR_S'])
def test_outputs_equal_the_release(fixture, name, index):
    entry = fixture[name]
    net = release_model(entry, name).eval()
    with torch.no_grad():
        out = net(entry['inputs'][index])
    expected = entry['outputs'][index]
    assert out.shape == expected.shape
    # float32 rounding only (fused attention, other summation orders: the release and ours differ by < 3e-6 here
    # and on the released weights); a real difference is orders of magnitude larger
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize('name', ['EHFSSR', 'EHFSSR_S'])
def test_input_gradients_equal_the_release(fixture, name):
    entry = fixture[name]
    net = release_model(entry, name).train()
    for x, expected in zip(entry['inputs'], entry['input_grads']):
        x = x.clone().requires_grad_()
        net(x).square().mean().backward()
        torch.testing.assert_close(x.grad, expected, rtol=0, atol=1e-5 * expected.abs().max().item())


def test_fixture_covers_padding_shifts_and_the_disparity_band(fixture):
    sizes = {name: [tuple(x.shape[-2:]) for x in entry['inputs']] for name, entry in fixture.items()}
    assert sizes == {'EHFSSR': [(16, 32), (9, 100)], 'EHFSSR_S': [(16, 16), (9, 13)]}  # whole windows, padded
    assert max(w for s in sizes.values() for _, w in s) > ehfssr_arch.MAX_DISPARITY + 1  # the band cuts the scores
    for name, entry in fixture.items():
        net = release_model(entry, name)
        layers = net.body[0].body
        assert layers[0].interaction is not None and layers[0].selfatn is None
        assert [layers[i].selfatn.shift for i in (1, 2)] == [False, True]  # one window layer of each kind
        assert type(layers[3].selfatn).__name__ == 'GlobalChannelAttention'


@pytest.mark.parametrize('variant,scale', sorted(RELEASED_COUNTS))
def test_parameter_counts_of_the_released_sizes(variant, scale):
    with torch.device('meta'):  # no memory, no initialisation: counting only
        net = build_named(variant, scale)
    assert sum(p.numel() for p in net.parameters()) == RELEASED_COUNTS[(variant, scale)]


def test_variant_table_matches_the_release_option_files():
    assert NAMED_SIZES['EHFSSR-S'] == (EHFSSR_S, dict(dim=48, groups=5, num=6))  # options/test/EHFSSR/EHFSSR_S_*.yml
    assert NAMED_SIZES['EHFSSR'] == (EHFSSR, dict(dim=64, groups=5, num=6))
    with torch.device('meta'):
        assert build_named('EHFSSR_S', 2).up_scale == 2
    with pytest.raises(ValueError, match='EHFSSR-S, EHFSSR'):
        build_named('EHFSSR-L', 4)


def test_release_format_file_of_another_size_is_refused_in_one_line(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / 'EHFSSR_S_tiny_x4.pth'
    torch.save({'params': EHFSSR_S(up_scale=4, dim=8, groups=1, num=2).state_dict()}, path)
    net = EHFSSR_S(up_scale=4, dim=8, groups=1, num=2)
    load_network(net, str(path), param_key='params')  # the same size loads strictly
    for other, first in ((EHFSSR_S(up_scale=4, dim=12, groups=1, num=2), r'init\.weight \(8, 3, 3, 3\) '
                          r'\(network: \(12, 3, 3, 3\)\)'),
                         (EHFSSR_S(up_scale=2, dim=8, groups=1, num=2), r'up\.0\.weight \(48, 8, 3, 3\) '
                          r'\(network: \(12, 8, 3, 3\)\)')):
        with pytest.raises(CheckpointError, match=first) as err:
            load_network(other, str(path), param_key='params')
        assert '\n' not in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize('name', ['EHFSSR', 'EHFSSR_S'])
def test_any_input_size(name):
    """The release fails when a side is 8 pixels or less (its reflect padding to 16 would exceed the side); here
    every size works, and the output has the input's size times the scale."""
    net = define_network({'type': name, 'up_scale': 2, 'dim': 8, 'groups': 1, 'num': 4}).eval()
    with torch.no_grad():
        for h, w in ((1, 1), (3, 8), (8, 17), (16, 16), (5, 40)):
            out = net(torch.rand(1, 6, h, w))
            assert out.shape == (1, 6, 2 * h, 2 * w) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match=r'expects \(N, 6, h, w\)'):
        net(torch.rand(1, 3, 8, 8))


def test_reflect_padding_is_torch_reflect_where_that_works_and_repeats_it_beyond():
    x = torch.rand(1, 2, 9, 5)
    torch.testing.assert_close(reflect_pad_to_multiple(x, 16)[..., :, :5], F.pad(x, (0, 0, 0, 7), mode='reflect'))
    padded = reflect_pad_to_multiple(x, 16)
    assert padded.shape == (1, 2, 16, 16)
    once = F.pad(x, (0, 4, 0, 0), mode='reflect')  # 5 -> 9 columns, then again from the new end: 9 -> 16
    torch.testing.assert_close(padded[:, :, :9], F.pad(once, (0, 7, 0, 0), mode='reflect'))
    assert reflect_pad_to_multiple(torch.ones(1, 1, 1, 1), 4).shape == (1, 1, 4, 4)


def test_cross_attention_in_row_chunks_equals_all_rows_at_once(monkeypatch):
    torch.manual_seed(0)
    cross = EHFCrossAttention(8).eval()
    for p in cross.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x_l, x_r = torch.rand(1, 8, 7, 20), torch.rand(1, 8, 7, 20)
    with torch.no_grad():
        whole = cross(x_l, x_r)
        monkeypatch.setattr(ehfssr_arch, 'ROW_CHUNK_ELEMENTS', 2 * 20 * 20 * 3)  # 3 rows at a time
        chunked = cross(x_l, x_r)
    for a, b in zip(whole, chunked):
        torch.testing.assert_close(a, b)


def test_disparity_band_of_the_cross_attention():
    """Left column i scores right columns i - 96 .. i (the release's mask); the others get score 0 (not -inf)."""
    band = ehfssr_arch.epipolar_band(100, 96, 'cpu')
    assert band[50, 50] and band[50, 0] and not band[50, 51] and band[99, 3] and not band[99, 2]


@pytest.mark.parametrize('attention', ['window', 'light_window', 'global', 'none'])
def test_blocks_in_the_nafssr_skeleton(attention):
    torch.manual_seed(0)
    net = define_network({'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 2, 'intra_block': 'EHFBlock',
                          'intra_kwargs': {'attention': attention, 'shift': True},
                          'cross_block': 'EHFCrossAttention'}).train()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.2)
    out = net(torch.rand(2, 6, 10, 21))
    assert out.shape == (2, 6, 20, 42)
    out.square().mean().backward()
    assert [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()] == []


def test_block_options_are_checked():
    with pytest.raises(Exception, match='attention: expected one of window, light_window, global, none'):
        define_network({'type': 'NAFSSR', 'width': 8, 'num_blks': 1, 'intra_block': 'EHFBlock',
                        'intra_kwargs': {'attention': 'swin'}})
    with pytest.raises(Exception, match='light_window attention splits the channels in 4'):
        define_network({'type': 'NAFSSR', 'width': 6, 'num_blks': 1, 'intra_block': 'EHFBlock',
                        'intra_kwargs': {'attention': 'light_window'}})


@pytest.mark.parametrize('attention', ['window', 'light_window'])
def test_fused_and_explicit_window_attention_agree(attention):
    """Evaluation uses torch's fused attention; training and MAC counting (scam.explicit_row_attention, which
    scripts/model_complexity.py enters so that ptflops sees the products) use the explicit one: same outputs."""
    from basicsr.models.archs.scam import explicit_row_attention

    torch.manual_seed(0)
    block = EHFBlock(8, attention=attention, shift=True).eval()
    for p in block.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x = torch.rand(2, 8, 19, 35)
    with torch.no_grad():
        fused = block(x)
        with explicit_row_attention():
            explicit = block(x)
    torch.testing.assert_close(fused, explicit, rtol=0, atol=1e-5)
