"""NAFSSR parameter names, shapes and counts equal the released checkpoints'; release-format files load."""
import re

import pytest
import torch

from basicsr.models.archs import define_network
from basicsr.models.archs.arch_util import NAMED_SIZES, build_named
from basicsr.utils.checkpoint import load_state_dict, save_atomic

# Parameter counts of the released NAFSSR sizes: the NAFSSR paper's Table 1 rounds the x4 ones (0.46M, 1.56M, 6.80M,
# 23.83M); these exact values were counted with the release's own NAFSSR_arch.py (megvii-research/NAFNet, 29 Nov 2026).
RELEASED_COUNTS = {
    ('T', 4): 460_656, ('S', 4): 1_559_344, ('B', 4): 6_796_464, ('L', 4): 23_832_112,
    ('T', 2): 445_068, ('S', 2): 1_538_572, ('B', 2): 6_765_324, ('L', 2): 23_790_604,
}


@pytest.mark.parametrize('variant,scale', sorted(RELEASED_COUNTS))
def test_parameter_counts_of_the_released_sizes(variant, scale):
    with torch.device('meta'):  # no memory, no initialisation: counting only
        net = build_named(f'NAFSSR-{variant}', scale)
    assert sum(p.numel() for p in net.parameters()) == RELEASED_COUNTS[(variant, scale)]


def test_variant_table_and_names():
    # paper Table 1, release options (the zoo's card)
    assert NAMED_SIZES['NAFSSR-S'][1] == dict(width=64, num_blks=32, drop_path_rate=0.1, train_size=[1, 6, 30, 90],
                                              drop_out_rate=0.0)
    with torch.device('meta'):
        net = build_named('NAFSSR-B', 2, num_blks=3)
    assert len(net.body) == 3 and net.body[0].drop_rate == 0.2 and net.up_scale == 2  # B: drop-path 0.2 (release)
    with pytest.raises(ValueError, match='NAFSSR-T, NAFSSR-S, NAFSSR-B, NAFSSR-L'):
        build_named('NAFSSR-XL', 4)


def test_state_dict_names_and_shapes_of_nafssr_t_x4():
    net = define_network({'type': 'NAFSSR', 'up_scale': 4, 'width': 48, 'num_blks': 16})
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    # the release's NAFBlock expands to 2c = 96 channels (DW_Expand = FFN_Expand = 2) and gates back to c = 48;
    # up.0 makes 3 * 4 ** 2 = 48 channels for the x4 PixelShuffle
    assert shapes['intro.weight'] == (48, 3, 3, 3) and shapes['up.0.weight'] == (48, 48, 3, 3)
    blk = {'conv1.weight': (96, 48, 1, 1), 'conv2.weight': (96, 1, 3, 3), 'conv3.weight': (48, 48, 1, 1),
           'sca.1.weight': (48, 48, 1, 1), 'conv4.weight': (96, 48, 1, 1), 'conv5.weight': (48, 48, 1, 1),
           'norm1.weight': (48,), 'norm2.bias': (48,), 'beta': (1, 48, 1, 1), 'gamma': (1, 48, 1, 1)}
    fusion = {'norm_l.weight': (48,), 'norm_r.bias': (48,), 'l_proj1.weight': (48, 48, 1, 1),
              'r_proj1.bias': (48,), 'l_proj2.weight': (48, 48, 1, 1), 'r_proj2.weight': (48, 48, 1, 1),
              'beta': (1, 48, 1, 1), 'gamma': (1, 48, 1, 1)}
    for i in range(16):
        for name, shape in blk.items():
            assert shapes[f'body.{i}.module.blk.{name}'] == shape
        for name, shape in fusion.items():
            assert shapes[f'body.{i}.module.fusion.{name}'] == shape
    pattern = re.compile(r'^(intro|up\.0)\.(weight|bias)$|^body\.\d+\.module\.(blk\.(conv[1-5]|sca\.1|norm[12])'
                         r'\.(weight|bias)|blk\.(beta|gamma)|fusion\.((norm_[lr]|[lr]_proj[12])\.(weight|bias)'
                         r'|beta|gamma))$')
    assert [k for k in shapes if not pattern.match(k)] == []
    # intro and up.0 (weight, bias); per block: 8 NAFBlock layers (weight, bias) + beta, gamma and 6 SCAM layers
    # (weight, bias) + beta, gamma
    assert len(shapes) == 4 + 16 * (2 * 8 + 2 + 2 * 6 + 2)


def test_fusion_range_selects_blocks_with_scam():
    net = define_network({'type': 'NAFSSR', 'width': 8, 'num_blks': 4, 'fusion_from': 1, 'fusion_to': 2})
    assert [layer.module.fusion is not None for layer in net.body] == [False, True, True, False]


def test_release_format_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    cfg = {'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 2}
    src = define_network(cfg).eval()
    for p in src.parameters():
        torch.nn.init.normal_(p, std=0.2)
    path = tmp_path / 'NAFSSR-tiny_2x.pth'
    torch.save({'params': src.state_dict()}, path)  # the release's own format, written by plain torch.save

    dst = define_network(cfg).eval()
    dst.load_state_dict(torch.load(path, weights_only=True)['params'])  # the line users run, unchanged
    x = torch.rand(1, 6, 6, 9)
    with torch.no_grad():
        assert torch.equal(src(x), dst(x))

    save_atomic({'params': src.state_dict()}, tmp_path / 'ours.pth')  # and the project's reader/writer
    again = define_network(cfg).eval()
    again.load_state_dict(load_state_dict(tmp_path / 'ours.pth'))
    with torch.no_grad():
        assert torch.equal(src(x), again(x))


def test_a_missing_param_key_says_which_weights_were_loaded(tmp_path, capsys):
    from basicsr.utils.checkpoint import load_state_dict, save_atomic

    path = tmp_path / 'net.pth'
    save_atomic({'params': {'w': torch.ones(2)}}, path)
    assert torch.equal(load_state_dict(path, 'params_ema')['w'], torch.ones(2))
    assert capsys.readouterr().err.strip() == f"{path}: no 'params_ema' in the checkpoint; loaded 'params'"
    load_state_dict(path, 'params')
    assert capsys.readouterr().err == ''
