"""basicsr.reports.write_results writes each file atomically: a write that fails half-way (here a per-pair value
that JSON cannot hold) leaves the earlier file whole and no temporary file behind."""
import json
import os

import pytest

from basicsr.evaluation import EvalResult
from basicsr.reports import write_results


def _entries(psnr, per_pair):
    result = EvalResult(psnr=psnr)
    result.num_pairs, result.seconds, result.per_pair = 1, 1.0, per_pair
    return [('KITTI2012', 2, result)]


def test_a_failed_write_keeps_the_earlier_files_whole(tmp_path):
    write_results(tmp_path, _entries(30.0, {'p0': {'psnr': 30.0}}))
    before = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    assert sorted(before) == ['metrics.csv', 'metrics.json', 'metrics_per_pair.json']
    # json.dump has written the opening of metrics_per_pair.json when it meets the value it cannot encode
    with pytest.raises(TypeError):
        write_results(tmp_path, _entries(31.0, {'p0': {'psnr': 31.0, 'bad': object()}}))
    assert sorted(os.listdir(tmp_path)) == sorted(before)  # no temporary file left
    assert (tmp_path / 'metrics_per_pair.json').read_bytes() == before['metrics_per_pair.json']
    assert json.loads((tmp_path / 'metrics_per_pair.json').read_text()) == {'KITTI2012': {'p0': {'psnr': 30.0}}}
    assert (tmp_path / 'metrics.csv').read_bytes() == before['metrics.csv']  # never reached
