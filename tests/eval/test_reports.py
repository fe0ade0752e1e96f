"""basicsr.reports: the papers' tables and the result files, with two datasets at two scales."""
import csv
import json

import pytest

from basicsr.evaluation import EvalResult
from basicsr.reports import (format_report, result_keys, table_columns, with_left_variants, write_results)
from basicsr.utils.options import OptionError


def _result(psnr, psnr_left, pairs, seconds, per_pair=None):
    result = EvalResult(psnr=psnr, psnr_left=psnr_left)
    result.num_pairs, result.seconds = pairs, seconds
    result.per_pair = per_pair or {f'p{i}': {'psnr': psnr} for i in range(pairs)}
    return result


# Values chosen by hand so that every mean below is exact in decimal: (30 + 34) / 2 = 32, (26 + 27) / 2 = 26.5.
ENTRIES = [('KITTI2012', 2, _result(30.0, 29.0, 2, 1.0)), ('Middlebury', 2, _result(34.0, 33.0, 1, 0.5)),
           ('KITTI2012', 4, _result(26.0, 25.0, 2, 2.0)), ('Middlebury', 4, _result(27.0, 26.5, 1, 0.25))]
METRICS = with_left_variants({'psnr': {'type': 'calculate_psnr'}})


def test_left_variant_and_columns():
    assert METRICS == {'psnr': {'type': 'calculate_psnr'}, 'psnr_left': {'type': 'calculate_psnr_left'}}
    assert table_columns(METRICS) == [('Left', 'PSNR', 'psnr_left'), ('(Left+Right)/2', 'PSNR', 'psnr')]


def test_one_table_per_scale_with_its_average():
    text = format_report('run', ENTRIES, table_columns(METRICS), world=1, device_type='cpu')
    x2, x4 = text.split('\n\n')
    assert x2.startswith('run  x2  (1 process, cpu)') and x4.startswith('run  x4  (1 process, cpu)')
    rows = {line.split()[0]: line.split()[1:] for line in x2.splitlines()[3:] if not line.startswith('-')}
    assert rows['KITTI2012'] == ['29.0000', '30.0000', '2', '2.00']  # Left, (L+R)/2, pairs, pairs/s = 2 / 1.0 s
    assert rows['Average'] == ['31.0000', '32.0000', '3']  # (29 + 33) / 2, (30 + 34) / 2
    rows4 = {line.split()[0]: line.split()[1:] for line in x4.splitlines()[3:] if not line.startswith('-')}
    assert rows4['Average'] == ['25.7500', '26.5000', '3'] and rows4['Middlebury'][-1] == '4.00'
    assert text.endswith('6 stereo pairs (12 images) in 3.8 s: 3.20 images/s')  # 12 / (1 + 0.5 + 2 + 0.25)


def test_result_files_keep_both_scales(tmp_path):
    write_results(tmp_path, ENTRIES)
    summary = json.loads((tmp_path / 'metrics.json').read_text())
    assert list(summary) == ['KITTI2012_x2', 'Middlebury_x2', 'KITTI2012_x4', 'Middlebury_x4']
    assert summary['KITTI2012_x4'] == {'psnr': 26.0, 'psnr_left': 25.0}
    per_pair = json.loads((tmp_path / 'metrics_per_pair.json').read_text())
    assert per_pair['Middlebury_x2'] == {'p0': {'psnr': 34.0}}
    with open(tmp_path / 'metrics.csv', newline='') as f:
        rows = list(csv.reader(f))
    assert rows[0] == ['dataset', 'scale', 'pairs', 'psnr', 'psnr_left', 'seconds', 'pairs_per_s']
    assert [r[:5] for r in rows[1:]] == [
        ['KITTI2012', '2', '2', '30.0', '29.0'], ['Middlebury', '2', '1', '34.0', '33.0'],
        ['Average', '2', '3', '32.0', '31.0'],
        ['KITTI2012', '4', '2', '26.0', '25.0'], ['Middlebury', '4', '1', '27.0', '26.5'],
        ['Average', '4', '3', '26.5', '25.75']]


def test_names_are_plain_when_unique_and_a_clash_is_refused(tmp_path):
    assert result_keys(ENTRIES[:2]) == ['KITTI2012', 'Middlebury']
    write_results(tmp_path, ENTRIES[:2])
    assert list(json.loads((tmp_path / 'metrics.json').read_text())) == ['KITTI2012', 'Middlebury']
    with pytest.raises(OptionError, match='two test datasets share a name and a scale'):
        result_keys([ENTRIES[0], ENTRIES[0]])
