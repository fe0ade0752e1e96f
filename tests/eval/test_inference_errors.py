"""scripts/inference_stereo.py refuses a bad --output or numeric flag in one line, before reading a model or image.

The model flags below name a checkpoint that does not exist: an error about it would mean that the work had begun.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from basicsr.utils.img_util import imwrite
from helpers import load_script

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / 'scripts' / 'inference_stereo.py'

script = load_script('scripts/inference_stereo.py')


@pytest.fixture
def pair(tmp_path):
    for view in 'LR':
        imwrite(np.zeros((8, 12, 3), np.uint8), tmp_path / f'p_{view}.png')
    return ['--left', str(tmp_path / 'p_L.png'), '--right', str(tmp_path / 'p_R.png')]


def _args(pair, output, *extra):
    return [*pair, '--output', str(output), '--arch', 'NAFSSR-T', '--scale', '2', '--weights',
            str(Path(output).parent / 'no_such_weights.pth'), *extra]


def _error(argv):
    with pytest.raises(script.InputError) as exc:
        script.run(argv)
    message = str(exc.value)
    assert len(message.splitlines()) == 1, message
    return message


def test_output_that_is_a_file_is_refused_before_any_work(pair, tmp_path):
    taken = tmp_path / 'out.png'
    taken.write_bytes(b'an earlier result')
    assert _error(_args(pair, taken)) == (f'--output {taken}: an existing file; expected a folder (created when '
                                          'missing)')
    assert taken.read_bytes() == b'an earlier result'


def test_output_below_a_file_is_refused(pair, tmp_path):
    taken = tmp_path / 'out.png'
    taken.write_bytes(b'x')
    assert _error(_args(pair, taken / 'sub')) == (f'--output {taken / "sub"}: {taken} is an existing file; expected '
                                                  'a folder (created when missing)')


def test_output_image_that_is_a_folder_is_refused(pair, tmp_path):
    out = tmp_path / 'out'
    (out / 'p_R.png').mkdir(parents=True)
    assert _error(_args(pair, out)) == (f'--output {out}: {out / "p_R.png"} is a folder; expected to write the '
                                        'right view of p there')


def test_earlier_results_are_refused_before_any_work_unless_overwrite(pair, tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'p_R.png').write_bytes(b'an earlier result')
    assert _error(_args(pair, out)) == (f'--output {out}: {out / "p_R.png"} is already there (an earlier result?); '
                                        'give --overwrite to replace it, or choose another --output')
    assert sorted(os.listdir(out)) == ['p_R.png'] and (out / 'p_R.png').read_bytes() == b'an earlier result'
    from basicsr.utils.checkpoint import CheckpointError
    with pytest.raises(CheckpointError, match='no_such_weights.pth'):  # past the output check: the work begins
        script.run(_args(pair, out, '--overwrite'))


def test_two_pairs_writing_the_same_files_are_refused(tmp_path):
    for ext in ('png', 'jpg'):
        for view in 'LR':
            imwrite(np.zeros((8, 12, 3), np.uint8), tmp_path / f'p_{view}.{ext}')
    out = tmp_path / 'out'
    assert _error(['--input_dir', str(tmp_path), '--output', str(out), '--arch', 'NAFSSR-T', '--scale', '2',
                   '--weights', str(tmp_path / 'none.pth')]) == (
        f'--output {out}: two input pairs would both write p_L.png and p_R.png (the same name with other image '
        'extensions); keep one of them')
    assert not out.exists()


@pytest.mark.parametrize('flags, message', [
    (['--strip_rows', '0'], '--strip_rows must be >= 1 (LR rows per strip), got 0'),
    (['--strip_rows', '-4'], '--strip_rows must be >= 1 (LR rows per strip), got -4'),
    (['--overlap', '-1'], '--overlap must be >= 0 (LR context rows above and below each strip), got -1'),
    (['--max_memory_gb', '0'], '--max_memory_gb must be a positive number of GB, got 0.0'),
    (['--max_memory_gb', '-2'], '--max_memory_gb must be a positive number of GB, got -2.0'),
    (['--max_memory_gb', 'nan'], '--max_memory_gb must be a positive number of GB, got nan'),
    (['--max_memory_gb', 'inf'], '--max_memory_gb must be a positive number of GB, got inf'),
    (['--strip_rows', '64', '--max_memory_gb', '2'],
     'give --strip_rows or --max_memory_gb, not both (--max_memory_gb chooses the --strip_rows that fits)'),
])
def test_numeric_flags_are_checked(pair, tmp_path, flags, message):
    assert _error(_args(pair, tmp_path / 'out', *flags)) == message


def test_auto_strip_rows_follow_the_memory_budget(capsys):
    import torch

    net = torch.nn.Sequential(torch.nn.Conv2d(6, 48, 3))
    per_row = 4 * 3000 * (8 * 48 + 4 * 6 * 4 * 4)  # the estimate's bytes per LR row, NAFSSR-T x4 at width 3000
    # 550: the strip height docs/evaluation.md gives for the default 5 GB
    assert script.auto_strip_rows(net, 3000, 4, 16, 5.0) == int(5 * 2 ** 30 / per_row) - 2 * 16 == 550
    assert capsys.readouterr().err == ''
    assert script.auto_strip_rows(net, 3000, 4, 16, 0.1) == 8  # not even 8 rows and the overlap fit
    need = per_row * (8 + 2 * 16) / 2 ** 30
    assert capsys.readouterr().err == (f'note: --max_memory_gb 0.1 is below the estimate for the smallest strip '
                                       f'(8 LR rows + 2 x 16 overlap rows at width 3000: {need:.3g} GB); strips of 8 '
                                       'rows are used\n')


def test_a_budget_too_small_for_one_strip_still_runs(tmp_path, capsys, monkeypatch):
    import torch

    from basicsr.models.archs import define_network
    from basicsr.utils.checkpoint import save_atomic

    torch.manual_seed(0)
    net = define_network({'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 1}, key_path='network_g')
    weights = tmp_path / 'w.pth'
    save_atomic({'params': net.state_dict()}, weights)
    import basicsr.models.archs.arch_util as arch_util

    monkeypatch.setattr(arch_util, 'build_named', lambda name, scale: type(net)(up_scale=2, width=8, num_blks=1))
    for view in 'LR':
        imwrite(np.zeros((20, 12, 3), np.uint8), tmp_path / f'p_{view}.png')
    script.run(['--left', str(tmp_path / 'p_L.png'), '--right', str(tmp_path / 'p_R.png'), '--output',
                str(tmp_path / 'out'), '--arch', 'NAFSSR-T', '--scale', '2', '--weights', str(weights),
                '--max_memory_gb', '1e-6', '--overlap', '2'])
    captured = capsys.readouterr()
    assert 'note: --max_memory_gb 1e-06 is below the estimate for the smallest strip' in captured.err
    assert 'strips of 8 rows + 2 overlap' in captured.out
    assert (tmp_path / 'out' / 'p_R.png').is_file()


def test_bad_output_from_the_command_line_is_one_line(pair, tmp_path):
    taken = tmp_path / 'out.png'
    taken.write_bytes(b'x')
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    env.pop('STEREO_SR_TRACEBACK', None)
    proc = subprocess.run([sys.executable, str(SCRIPT), *_args(pair, taken)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2  # basicsr.utils.errors.USER_ERROR_EXIT
    assert proc.stderr.strip().splitlines() == [
        f'inference_stereo.py: error: --output {taken}: an existing file; expected a folder (created when missing)']
