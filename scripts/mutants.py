"""Deliberate breakages the test suite must catch (``make mutants``); prints which were caught and which survived.

    python scripts/mutants.py                 # every mutant, on a copy of the working tree
    python scripts/mutants.py --rev HEAD      # on a copy of a commit instead (e.g. while others edit the tree)
    python scripts/mutants.py --only amp_autocast_off strips_no_overlap
    python scripts/mutants.py --list

Each mutant replaces one exact piece of code (it must occur exactly once, else the mutant is reported ``stale``:
the code moved and the list needs updating) in a temporary copy of the repository, never in the tree itself, and
runs only the tests that must catch it. The copy is checked first: those tests must pass unmutated (``--no_baseline``
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

from basicsr.utils.errors import run_main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to the repository
    old: str  # exact text, present once
    new: str
    tests: tuple  # pytest arguments (files, node ids, -k expressions) that must fail


MUTANTS = (
    # training: mixed precision, the release's recipe, resume, the lock, Ctrl-C
    Mutant('amp_autocast_off', 'basicsr/models/image_restoration_model.py',
           "enabled=self.use_amp):\n            preds = self.run_wrapped('net_train', lq)",
           "enabled=False):\n            preds = self.run_wrapped('net_train', lq)",
           ('tests/train/test_amp_training.py',)),
    Mutant('amp_no_unscale_before_clip', 'basicsr/models/image_restoration_model.py',
           '        if scaler is not None:\n            scaler.unscale_(optimizer)\n', '',
           ('tests/train/test_amp_training.py',)),
    Mutant('resume_scaler_not_restored', 'basicsr/models/base_model.py',
           "            self.scaler.load_state_dict(state['scaler'])", '            pass',
           ('tests/train/test_amp_training.py',)),
    Mutant('resume_scheduler_not_restored', 'basicsr/models/base_model.py',
           '            scheduler.load_state_dict(saved_sched)', '            pass',
           ('tests/train/test_resume.py', '-k', 'sigint')),
    Mutant('sigint_not_handled', 'train.py',
           'for sig in (signal.SIGTERM, signal.SIGINT):', 'for sig in (signal.SIGTERM,):',
           ('tests/train/test_resume.py', '-k', 'sigint')),
    Mutant('lock_never_refuses', 'basicsr/utils/experiment.py',
           'if owner is not None and not self._stale(owner):', 'if False:',
           ('tests/train/test_experiment_ownership.py', '-k', 'lock_in_process')),
    Mutant('release_grad_clip_0.1', 'basicsr/models/image_restoration_model.py',
           'RELEASE_GRAD_CLIP_NORM = 0.01', 'RELEASE_GRAD_CLIP_NORM = 0.1',
           ('tests/options/test_nafssr_recipes.py',)),
    Mutant('perceptual_inplace_relu', 'basicsr/losses/losses.py',
           '                layer.inplace = False', '                layer.inplace = True',
           ('tests/train/test_losses_schedulers.py', '-k', 'perceptual')),
    # data preparation
    Mutant('prep_middlebury_last', 'scripts/data_preparation/prepare_flickr1024.py',
           "train = middlebury + find_pairs(os.path.join(flickr, 'Train'))",
           "train = find_pairs(os.path.join(flickr, 'Train')) + middlebury",
           ('tests/data/test_prepare_scripts.py', '-k', 'middlebury_first')),
    Mutant('prep_halving_by_decimation', 'basicsr/data/preparation.py',
           'left, right = imresize(left, 0.5), imresize(right, 0.5)',
           'left, right = left[::2, ::2].copy(), right[::2, ::2].copy()',
           ('tests/data/test_prepare_scripts.py', '-k', 'middlebury_first')),
    Mutant('prep_kitti_any_frame', 'scripts/data_preparation/prepare_test_sets.py',
           "if f.endswith(f'_{frame}.png')", "if f.endswith('.png')",
           ('tests/data/test_prepare_scripts.py', '-k', 'kitti')),
    Mutant('prep_patch_margin_3', 'basicsr/data/preparation.py',
           'LAST_MARGIN = 4', 'LAST_MARGIN = 3',
           ('tests/data/test_preparation.py', '-k', 'origins or count_uses')),
    Mutant('prep_validation_into_test', 'scripts/data_preparation/prepare_flickr1024.py',
           "find_pairs(os.path.join(flickr, 'Validation'))", "find_pairs(os.path.join(flickr, 'Test'))",
           ('tests/data/test_prepare_scripts.py', '-k', 'from_folders')),
    # metrics and the tables' tolerance
    Mutant('metric_left_crop_63', 'basicsr/metrics/psnr_ssim.py', 'LEFT_CROP = 64', 'LEFT_CROP = 63',
           ('tests/metrics/test_psnr_ssim.py',)),
    Mutant('metric_psnr_peak_256', 'basicsr/metrics/psnr_ssim.py',
           'return float(10.0 * np.log10(data_range ** 2 / mse))',
           'return float(10.0 * np.log10((data_range + 1) ** 2 / mse))',
           ('tests/metrics/test_psnr_ssim.py',)),
    Mutant('tables_psnr_tolerance_0.015', 'scripts/reproduce_tables.py',
           "TOLERANCE = {'psnr': 0.01,", "TOLERANCE = {'psnr': 0.015,",
           ('tests/scripts/test_tolerance_boundaries.py', '-k', 'reproduce')),
    Mutant('tables_ssim_tolerance_0.0015', 'scripts/reproduce_tables.py',
           "'ssim': 0.001,", "'ssim': 0.0015,",
           ('tests/scripts/test_tolerance_boundaries.py', '-k', 'reproduce')),
    # strips
    Mutant('strips_no_overlap', 'basicsr/evaluation.py',
           'lo, hi = max(0, top - overlap), min(h, bottom + overlap)', 'lo, hi = top, bottom',
           ('tests/eval/test_strips.py', '-k', 'nafssr_strips')),
    Mutant('strips_smallest_auto_strip', 'basicsr/inference.py',
           'if rows < MIN_AUTO_ROWS:', 'if rows <= MIN_AUTO_ROWS:',
           ('tests/scripts/test_tolerance_boundaries.py', '-k', 'auto_strip')),
)


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
    names = {m.name for m in MUTANTS}
    unknown = sorted(set(args.only or ()) - names)
    if unknown:
        parser.error(f"--only: unknown mutant(s) {', '.join(unknown)}; expected some of {', '.join(sorted(names))}")
    return args


def main(argv=None):
    args = parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or m.name in args.only]
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
