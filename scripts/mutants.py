"""Deliberate breakages the test suite must catch (``make mutants``); prints which were caught and which survived.

    python scripts/mutants.py                 # every mutant, on a copy of the working tree
    python scripts/mutants.py --rev HEAD      # on a copy of a commit instead (e.g. while others edit the tree)
    python scripts/mutants.py --only amp_autocast_off strips_no_overlap
    python scripts/mutants.py --list

The mutants are listed in scripts/mutants.yml. Each replaces one exact piece of code (it must occur exactly once,
else the mutant is reported ``stale``: the code moved and the list needs updating; tests/scripts/test_mutants.py
checks it on every test run) in a temporary copy of the repository, never in the tree itself, and runs only the tests
that must catch it. The copy is checked first: those tests must pass unmutated (``--no_baseline``
skips that). Exit status 0 when every mutant was caught, 1 otherwise, 2 for a bad argument. Not part of
``make test``: about 5-10 minutes on a 2-core machine.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import yaml

from basicsr.utils.errors import UserError, run_main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to the repository
    old: str  # exact text, present once
    new: str
    tests: tuple  # pytest arguments (files, node ids, -k expressions) that must fail


MUTANTS_FILE = os.path.join(ROOT, 'scripts', 'mutants.yml')  # the list, one entry per mutant (see its header)


def load_mutants(path=MUTANTS_FILE):
    """The mutants listed in ``path``; one line naming the file and the entry when an entry is malformed."""
    with open(path, encoding='utf-8') as f:
        entries = yaml.safe_load(f)
    mutants = []
    for i, entry in enumerate(entries or ()):
        keys = {'name', 'path', 'old', 'new', 'tests'}
        if not isinstance(entry, dict) or set(entry) != keys or not all(
                isinstance(entry[k], str) for k in keys - {'tests'}) or not isinstance(entry['tests'], list):
            raise UserError(f'{path}: entry {i + 1} must have exactly the keys {sorted(keys)} (strings, tests a '
                            f'list), got {entry!r}')
        mutants.append(Mutant(entry['name'], entry['path'], entry['old'], entry['new'], tuple(entry['tests'])))
    return tuple(mutants)


def copy_repository(dest, rev=None):
    """The files of the working tree (tracked and untracked, not ignored) or of commit ``rev`` into ``dest``."""
    if rev:
        archive = subprocess.run(['git', 'archive', rev], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(['tar', '-x', '-C', dest], input=archive, check=True)
        return
    listed = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split('\0')
    for rel in filter(None, listed):
        src = os.path.join(ROOT, rel)
        if os.path.isfile(src):  # a tracked file deleted in the tree is left out, as in the tree
            os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel))


def run_tests(copy, tests, timeout):
    """``(returncode, seconds, tail of the output)`` of pytest on ``tests`` in ``copy`` (its own package first)."""
    env = dict(os.environ, PYTHONPATH=copy, OMP_NUM_THREADS='1', PYTHONDONTWRITEBYTECODE='1')
    env.pop('STEREO_SR_TRACEBACK', None)
    start = time.time()
    try:
        proc = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-x', '-p', 'no:cacheprovider', *tests],
                              cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
        code, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired:
        code, out = None, f'timed out after {timeout} s'
    return code, time.time() - start, out.strip().splitlines()[-1] if out.strip() else ''


def apply(copy, mutant):
    """Mutate the copy; returns the original text, or None when ``mutant.old`` is not there exactly once."""
    path = os.path.join(copy, mutant.path)
    if not os.path.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        text = f.read()
    if text.count(mutant.old) != 1:
        return None
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text.replace(mutant.old, mutant.new))
    return text


def restore(copy, mutant, text):
    with open(os.path.join(copy, mutant.path), 'w', encoding='utf-8') as f:
        f.write(text)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--only', nargs='+', metavar='NAME', help='run these mutants only')
    parser.add_argument('--rev', help='copy this commit (git archive) instead of the working tree')
    parser.add_argument('--list', action='store_true', help='list the mutants and the tests that must catch each')
    parser.add_argument('--no_baseline', action='store_true', help='skip checking that the tests pass unmutated')
    parser.add_argument('--timeout', type=int, default=300, help='seconds per pytest run (default 300)')
    args = parser.parse_args(argv)
    names = {m.name for m in load_mutants()}
    unknown = sorted(set(args.only or ()) - names)
    if unknown:
        parser.error(f"--only: unknown mutant(s) {', '.join(unknown)}; expected some of {', '.join(sorted(names))}")
    return args


def main(argv=None):
    args = parse_args(argv)
    mutants = [m for m in load_mutants() if not args.only or m.name in args.only]
    if args.list:
        for m in mutants:
            print(f'{m.name:32s} {m.path}  ->  pytest {" ".join(m.tests)}')
        return 0
    start = time.time()
    with tempfile.TemporaryDirectory(prefix='mutants-') as copy:
        copy_repository(copy, args.rev)
        print(f'copy of {"commit " + args.rev if args.rev else "the working tree"} in {copy}', flush=True)
        if not args.no_baseline:
            failing = []
            for tests in dict.fromkeys(m.tests for m in mutants):
                code, seconds, tail = run_tests(copy, tests, args.timeout)
                print(f'baseline  pytest {" ".join(tests)}: {tail} ({seconds:.0f} s)', flush=True)
                if code != 0:
                    failing.append(' '.join(tests))
            if failing:
                print(f'mutants: the unmutated copy fails {"; ".join(failing)}: fix that first', file=sys.stderr)
                return 1
        rows = []
        for m in mutants:
            original = apply(copy, m)
            if original is None:
                rows.append((m, 'STALE', 0.0, f'{m.path}: the text to replace is not there exactly once'))
            else:
                try:
                    code, seconds, tail = run_tests(copy, m.tests, args.timeout)
                finally:
                    restore(copy, m, original)
                status = 'caught' if code == 1 else 'SURVIVED' if code == 0 else f'error ({code})'
                rows.append((m, status, seconds, tail))
            print(f'{m.name:32s} {rows[-1][1]:9s} {rows[-1][2]:5.0f} s  {rows[-1][3]}', flush=True)
    print(f'\n{"mutant":32s} {"result":9s} {"time":>7s}  tests that must catch it')
    for m, status, seconds, _ in rows:
        print(f'{m.name:32s} {status:9s} {seconds:5.0f} s  {" ".join(m.tests)}')
    survived = [m.name for m, status, _, _ in rows if status != 'caught']
    print(f'{len(rows) - len(survived)} of {len(rows)} caught in {time.time() - start:.0f} s'
          + (f'; not caught: {", ".join(survived)}' if survived else ''))
    return 1 if survived else 0


if __name__ == '__main__':
    sys.exit(run_main('mutants.py', main))
