"""The fixture generators (tests/archs/data/make_release_*_tiny.py) need --release, a checkout of the authors' code,
which is never part of this repository: without one, or with a folder that is not such a checkout, each prints its
usage and exits 2 (their shared command line: tests/archs/data/fixture_cli.py)."""
import subprocess
import sys
from pathlib import Path

import pytest

GENERATORS = sorted((Path(__file__).resolve().parent / 'data').glob('make_release_*_tiny.py'))


def test_every_fixture_has_its_generator():
    fixtures = sorted(p.name for p in GENERATORS[0].parent.glob('release_*_tiny.pt'))
    assert [f"make_{name[:-len('.pt')]}.py" for name in fixtures] == [p.name for p in GENERATORS]


@pytest.mark.parametrize('script', GENERATORS, ids=[p.stem for p in GENERATORS])
def test_generator_runs_only_against_a_release_checkout(script, tmp_path):
    for args in ([], ['--release', str(tmp_path)]):
        proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and proc.stderr.startswith('usage:'), proc.stderr
    assert 'not a ' in proc.stderr and 'checkout (missing ' in proc.stderr
