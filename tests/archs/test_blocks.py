"""Pluggable intra-view and cross-view blocks, selected by name in YAML."""
import torch
import torch.nn.functional as F
import yaml

from basicsr.models.archs import define_network
from basicsr.models.archs.multidir_block import MultiDirBlock
from basicsr.models.archs.multiscale_scam import MultiScaleSCAM
from basicsr.models.archs.nafnet_arch import NAFBlock
from basicsr.models.archs.scam import SCAM

YAML = """
network_g:
  type: NAFSSR
  up_scale: 2
  width: 8
  num_blks: 2
  intra_block: MultiDirBlock
  intra_kwargs:
    kernel_size: 5
  cross_block: MultiScaleSCAM
  cross_kwargs: {pool: 3}
"""


def randomise(module, std=0.3):
    for p in module.parameters():
        torch.nn.init.normal_(p, std=std)
    return module


def test_blocks_selected_in_yaml():
    net = define_network(yaml.safe_load(YAML)['network_g'])
    for layer in net.body:
        assert isinstance(layer.module.blk, MultiDirBlock) and layer.module.blk.conv2_row.kernel_size == (1, 5)
        assert isinstance(layer.module.fusion, MultiScaleSCAM) and layer.module.fusion.pool == 3
    names = net.state_dict().keys()
    assert 'body.0.module.blk.conv2_col.weight' in names and 'body.1.module.fusion.coarse.l_proj1.bias' in names


def test_multidir_block_is_nafblock_plus_row_and_column_depthwise_convs():
    torch.manual_seed(0)
    blk = randomise(MultiDirBlock(4, kernel_size=5)).eval()
    ref = NAFBlock(4).eval()
    ref.load_state_dict(blk.state_dict(), strict=False)
    x = torch.rand(2, 8, 9, 11)
    with torch.no_grad():
        expected = (ref.conv2(x) + F.conv2d(x, blk.conv2_row.weight, padding=(0, 2), groups=8)
                    + F.conv2d(x, blk.conv2_col.weight, padding=(2, 0), groups=8))
        torch.testing.assert_close(blk.spatial(x), expected)


def test_fresh_multidir_block_equals_the_nafblock_it_extends():
    torch.manual_seed(0)
    ref = randomise(NAFBlock(4)).eval()
    blk = MultiDirBlock(4).eval()
    missing, unexpected = blk.load_state_dict(ref.state_dict(), strict=False)
    assert sorted(missing) == ['conv2_col.weight', 'conv2_row.weight'] and unexpected == []
    x = torch.rand(1, 4, 6, 10)
    with torch.no_grad():
        torch.testing.assert_close(blk(x), ref(x))


def test_multiscale_scam_adds_a_coarse_row_attention():
    torch.manual_seed(0)
    ms = randomise(MultiScaleSCAM(4, pool=2)).eval()
    fine, coarse = SCAM(4).eval(), ms.coarse
    fine.load_state_dict({k: v for k, v in ms.state_dict().items() if not k.startswith('coarse.')})
    x_l, x_r = torch.rand(1, 4, 6, 10), torch.rand(1, 4, 6, 10)
    with torch.no_grad():
        out_l, out_r = ms(x_l, x_r)
        f_l, f_r = fine(x_l, x_r)
        c_l, c_r = coarse(F.avg_pool2d(x_l, 2), F.avg_pool2d(x_r, 2))
        c_l, c_r = c_l - F.avg_pool2d(x_l, 2), c_r - F.avg_pool2d(x_r, 2)
        up = torch.repeat_interleave
        torch.testing.assert_close(out_l, f_l + up(up(c_l, 2, dim=-2), 2, dim=-1))
        torch.testing.assert_close(out_r, f_r + up(up(c_r, 2, dim=-2), 2, dim=-1))


def test_multiscale_scam_handles_odd_sizes_and_starts_as_identity():
    ms = MultiScaleSCAM(4).eval()
    x_l, x_r = torch.rand(1, 4, 5, 9), torch.rand(1, 4, 5, 9)
    with torch.no_grad():
        out_l, out_r = ms(x_l, x_r)
    assert torch.equal(out_l, x_l) and torch.equal(out_r, x_r)


def test_scam_attends_along_rows_only():
    torch.manual_seed(0)
    scam = randomise(SCAM(4)).eval()
    x_l, x_r = torch.rand(1, 4, 3, 8), torch.rand(1, 4, 3, 8)
    with torch.no_grad():
        out_l, _ = scam(x_l, x_r)
        x_r2 = x_r.clone()
        x_r2[:, :, 2] += 1.0  # change another row of the right view
        out_l2, _ = scam(x_l, x_r2)
    assert torch.equal(out_l[:, :, :2], out_l2[:, :, :2]) and not torch.equal(out_l[:, :, 2], out_l2[:, :, 2])
