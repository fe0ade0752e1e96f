"""scripts/model_complexity.py says whether a network fits the NTIRE 2024 stereo SR budget: at most 1M parameters
and 400 GMACs for one 320x180 LR stereo pair (both views), as the challenge report states."""
import subprocess
import sys
from pathlib import Path

import pytest

from basicsr.models.archs import define_network
from helpers import load_script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'scripts' / 'model_complexity.py'
BUDGET = 'NTIRE 2024 budget (1M params, 400 GMACs at 180x320): '


def run_script(tmp_path, network_yaml, *extra):
    opt = tmp_path / 'net.yml'
    opt.write_text('name: tiny\nscale: 4\nnetwork_g:\n' + network_yaml)
    out = subprocess.run([sys.executable, str(SCRIPT), '-opt', str(opt), *extra], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_a_tiny_nafssr_fits(tmp_path):
    lines = run_script(tmp_path, '  type: NAFSSR\n  up_scale: 4\n  width: 4\n  num_blks: 1\n', '--size', '6x10')
    script = load_script('scripts/model_complexity.py')
    net = define_network({'type': 'NAFSSR', 'up_scale': 4, 'width': 4, 'num_blks': 1}).eval()
    params = sum(p.numel() for p in net.parameters())
    pair_macs = script.count_macs(net, 6, (180, 320))  # the 6-channel input is the whole pair: no doubling
    assert lines[-1] == f'{BUDGET}fits ({params / 1e6:.2f}M params, {pair_macs / 1e9:.2f} GMACs per pair)'


def test_a_tiny_network_with_too_many_parameters_exceeds(tmp_path):
    """A NAFNet whose weights sit at the bottom of six down-samplings (one block at 512 channels on a 3x5 map):
    over 1M parameters for a fraction of a GMAC, so it runs in a blink at 180x320."""
    cfg = {'type': 'NAFNet', 'width': 8, 'enc_blk_nums': [0] * 6, 'middle_blk_num': 1, 'dec_blk_nums': [0] * 6}
    lines = run_script(tmp_path, '  type: NAFNet\n  width: 8\n  enc_blk_nums: [0, 0, 0, 0, 0, 0]\n'
                       '  middle_blk_num: 1\n  dec_blk_nums: [0, 0, 0, 0, 0, 0]\n', '--size', '6x10')
    params = sum(p.numel() for p in define_network(cfg).parameters())
    assert params > 1_000_000
    assert lines[-1] == f'{BUDGET}exceeds: {params / 1e6:.2f}M params > 1M'


@pytest.mark.parametrize('params, macs, verdict', [
    (1_000_000, 400 * 10**9, 'fits'),  # the limits themselves are allowed ("at most")
    (1_000_001, 10**9, 'exceeds: 1.00M params > 1M'),
    (460_656, 400 * 10**9 + 1, 'exceeds: 400.00 GMACs > 400'),
    (23_832_112, 2.5e12, 'exceeds: 23.83M params > 1M, 2500.00 GMACs > 400'),
])
def test_verdict_at_the_limits(params, macs, verdict):
    assert load_script('scripts/model_complexity.py').budget_verdict(params, macs) == verdict


def test_a_single_view_network_is_counted_once_per_view(tmp_path):
    """NAFNet takes one 3-channel view: the pair costs two forward passes."""
    lines = run_script(tmp_path, '  type: NAFNet\n  width: 4\n', '--size', '180x320')
    row = next(line for line in lines if line.strip().startswith('180 x 320'))
    one_view = int(row.split()[3].replace(',', ''))
    assert lines[-1].endswith(f'{2 * one_view / 1e9:.2f} GMACs per pair)')
