"""scripts/model_complexity.py counts parameters and MACs, SCAM's attention products included."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from basicsr.models.archs import define_network
from basicsr.toolbox import ToolInputError
from helpers import load_script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'scripts' / 'model_complexity.py'


def nafssr_macs(c, blocks, s, h, w, fusion=True):
    """Hand count for NAFSSR with global channel attention: conv MACs (+1 per output for the bias, as ptflops
    counts) and, per SCAM, three (h, w, c) x (w) row products."""
    p = h * w
    per_view = p * c * (3 * 9 + 1) + p * 3 * s * s * (c * 9 + 1)
    blk = p * 2 * c * (c + 1) + p * 2 * c * (9 + 1) + c * (c + 1) + p * c * (c + 1) + p * 2 * c * (c + 1) \
        + p * c * (c + 1)
    scam = 4 * p * c * (c + 1) + 3 * h * w * w * c
    return 2 * per_view + blocks * (2 * blk + (scam if fusion else 0))


@pytest.mark.parametrize('fusion', [True, False])
def test_macs_equal_the_hand_count(fusion):
    script = load_script('scripts/model_complexity.py')
    cfg = {'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 2}
    if not fusion:
        cfg['fusion_from'] = 99
    net = define_network(cfg).eval()
    assert script.count_macs(net, 6, (6, 10)) == nafssr_macs(8, 2, 2, 6, 10, fusion)


def test_cli_prints_params_and_macs_at_train_patch_and_kitti_size(tmp_path):
    opt = tmp_path / 'tiny.yml'
    opt.write_text('name: tiny\nscale: 4\ndatasets:\n  train:\n    type: PairedStereoImageDataset\n'
                   '    gt_size_h: 24\n    gt_size_w: 40\nnetwork_g:\n  type: NAFSSR\n  up_scale: 4\n'
                   '  width: 4\n  num_blks: 1\n')
    out = subprocess.run([sys.executable, str(SCRIPT), '-opt', str(opt)], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    params = sum(p.numel() for p in define_network({'type': 'NAFSSR', 'up_scale': 4, 'width': 4,
                                                     'num_blks': 1}).parameters())
    assert f'params: {params:,}' in out.stdout
    rows = {line.split()[0] + 'x' + line.split()[2]: int(line.split()[3].replace(',', ''))
            for line in out.stdout.splitlines() if line.strip()[:1].isdigit()}
    assert set(rows) == {'6x10', '93x310'}  # 24x40 / 4, and KITTI 375x1242 / 4
    assert rows['6x10'] == nafssr_macs(4, 1, 4, 6, 10)


def test_cli_error_is_one_line(tmp_path):
    opt = tmp_path / 'bad.yml'
    opt.write_text('name: bad\nnetwork_g:\n  type: NAFSR\n')
    out = subprocess.run([sys.executable, str(SCRIPT), '-opt', str(opt), '--size', '8x8'], capture_output=True,
                         text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 2  # USER_ERROR_EXIT
    assert out.stderr.strip().startswith('model_complexity.py: error: network_g:type: unknown arch type') and \
        len(out.stderr.strip().splitlines()) == 1


def test_zoo_name_uses_its_test_option_file(capsys):
    """--model <zoo name> counts the network of the zoo's test option file (here at a small size)."""
    script = load_script('scripts/model_complexity.py')
    script.main(['--model', 'CVHSSR-T_x4', '--size', '8x16'])
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith('CVHSSR from ') and out.splitlines()[0].endswith(
        os.path.join('options', 'test', 'CVHSSR', 'CVHSSR-T_x4.yml'))
    assert 'params: 678,000 (0.68 M)' in out  # the released CVHSSR-T x4 count (test_cvhssr.py)
    # the budget line takes the card's count at 320x180 instead of counting again (seconds to minutes on a CPU)
    assert out.splitlines()[-1].endswith('fits (0.68M params, 104.70 GMACs per pair)')


def test_unknown_zoo_name_is_one_line():
    script = load_script('scripts/model_complexity.py')
    with pytest.raises(ToolInputError, match=r"^--model: unknown model 'CVHSSR-T_x3'; expected a name of the zoo "
                                             r"such as NAFSSR-T_x4 \(closest: CVHSSR-T_x4, CVHSSR-T_x2"):
        script.main(['--model', 'CVHSSR-T_x3'])
