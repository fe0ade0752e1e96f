"""Measure the zoo's released models on the test sets you have and compare with their published figures.

    python scripts/reproduce_tables.py                                   # everything that is here
    python scripts/reproduce_tables.py --models CVHSSR-T_x4 --sets KITTI2015
    python scripts/reproduce_tables.py --root /data/StereoSR/test --weights_dir /data/weights --self_ensemble

For every model of ``basicsr/zoo.py`` (or ``--models``) the network of its test option file
(``options/test/<family>/<model>.yml``) gets the released weights from ``--weights_dir`` and is run on each
prepared test set ``<root>/<Set>/{hr,lr_x<scale>}`` through the evaluation of test.py
(``basicsr.evaluation.evaluate``), scored with the protocol's metrics: PSNR and scikit-image SSIM,
(Left+Right)/2 and Left (64 columns cropped).
What is missing (an option file, the weights, a test set) is skipped with a note saying what to get.

Prints one row per model x set: measured, published and the difference for each of the four figures, and writes
the same as JSON (``--output``, default ``results/reproduce_tables.json``) once every row is measured, in one
atomic replace: a run that fails or is stopped leaves the file as it was. A run that would drop rows of an
earlier ``--output`` (another ``--models``/``--sets``/``--root``) refuses before measuring unless ``--overwrite``.
Exit status 1 when a released model misses one of its published figures by more than 0.01 dB PSNR or 0.001 SSIM
(in either direction: a figure far above the published one means another test set or protocol, not a better
model); 0 otherwise; 2 for a bad option, bad data or nothing to measure.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import torch

from basicsr import zoo
from basicsr.data import build_dataloader, build_dataset
from basicsr.data.layout import hr_dir, lr_dir
from basicsr.evaluation import evaluate
from basicsr.inference import network_from_options
from basicsr.option_checks import OPTION_CHECKS
from basicsr.reports import with_left_variants
from basicsr.toolbox import zoo_models, zoo_option_file
from basicsr.utils.errors import UserError, run_main
from basicsr.utils.options import OptionError, parse, yaml_load

TOLERANCE = {'psnr': 0.01, 'ssim': 0.001, 'psnr_left': 0.01, 'ssim_left': 0.001}
FIGURES = ('psnr', 'ssim', 'psnr_left', 'ssim_left')  # names of with_left_variants(DEFAULT_METRICS)
HEADINGS = {'psnr': 'PSNR (L+R)/2', 'ssim': 'SSIM (L+R)/2', 'psnr_left': 'PSNR Left', 'ssim_left': 'SSIM Left'}
DEFAULTS = {'root': os.path.join('datasets', 'StereoSR', 'test'),
            'weights_dir': os.path.join('experiments', 'pretrained_models'),
            'output': os.path.join('results', 'reproduce_tables.json')}


class ReproduceError(UserError, ValueError):
    """A bad option of reproduce_tables.py (an unknown set, an --output that would lose rows)."""


def dataset_entry(opt, test_set):
    """The option file's entry for ``test_set``, or its first test entry."""
    entries = [ds for phase, ds in opt['datasets'].items() if phase.startswith('test')] or \
        list(opt['datasets'].values())
    return next((ds for ds in entries if ds.get('name') == test_set), entries[0])


def dataset_options(opt, test_set, gt_root, lq_root, scale):
    """The option file's entry for ``test_set`` (or its first test entry, renamed) with the roots given here."""
    return {**dataset_entry(opt, test_set), 'name': test_set, 'phase': 'test', 'scale': scale,
            'dataroot_gt': gt_root, 'dataroot_lq': lq_root}


def lr_folder(opt, test_set, scale):
    """The LR folder of ``test_set`` the option file reads: ``lr_x<scale>`` (bicubic) or a fixed realistic
    ``lr_x<scale>_<tag>`` (SCGLANet's track 3 model: ``lr_x4_realistic_x4``)."""
    bicubic = os.path.basename(lr_dir('', scale))
    lq = dataset_entry(opt, test_set).get('dataroot_lq') if opt.get('datasets') else None
    name = os.path.basename(os.path.normpath(lq)) if isinstance(lq, str) and lq.strip() else bicubic
    return name if name.startswith(bicubic + '_') else bicubic


def compare(measured, published):
    """``({figure: measured - published}, status)``; status ``ok``, ``MISS`` (a difference beyond ``TOLERANCE``)
    or ``no published figure``."""
    diff = {k: measured[k] - getattr(published, k) for k in FIGURES
            if published is not None and getattr(published, k) is not None and k in measured}
    if not diff:
        return diff, 'no published figure'
    missed = [k for k, d in diff.items() if abs(d) > TOLERANCE[k] + 1e-12]
    return diff, (f"MISS {','.join(missed)}" if missed else 'ok')


def plan(models, sets, root, weights_dir):
    """``(jobs, notes)``: jobs ``(model, option file, weights path, [(set, gt root, lq root)])`` for what is
    here; a note for each missing option file, weight file or test set."""
    jobs, notes, missing_sets = [], [], {}
    bicubic = {scale: os.path.basename(lr_dir('', scale)) for scale in {model.scale for model in models}}
    for model in models:
        option_file = zoo_option_file(model)
        if not os.path.isfile(option_file):
            notes.append(f'{model.name}: skipped, its option file {model.option} is not here')
            continue
        weights = os.path.join(weights_dir, model.weights.file)
        if not os.path.isfile(weights):
            notes.append(f'{model.name}: skipped, {weights} missing (python scripts/download_pretrained.py '
                         f'{model.name})')
            continue
        present = []
        opt = yaml_load(Path(option_file))
        for test_set in sets:
            folder = lr_folder(opt, test_set, model.scale)
            gt_root, lq_root = hr_dir(os.path.join(root, test_set)), os.path.join(root, test_set, folder)
            absent = next((p for p in (gt_root, lq_root) if not os.path.isdir(p)), None)
            if absent:
                label = f'x{model.scale}' if folder == bicubic[model.scale] else folder
                missing_sets.setdefault((test_set, label), absent)
            else:
                present.append((test_set, gt_root, lq_root))
        if present:
            jobs.append((model, option_file, weights, present))
    for (test_set, label), absent in missing_sets.items():
        notes.append(f'{test_set} {label}: skipped, {absent} missing (docs/data.md says how to prepare it)')
    return jobs, notes


def measure(model, option_file, weights, sets, device, self_ensemble):
    """Rows ``{model, scale, set, pairs, measured, published, diff, status, per_pair, ...}`` of one model on its
    present test sets."""
    opt = parse(option_file, is_train=False, registries=OPTION_CHECKS)
    net = network_from_options(opt, weights, '--weights_dir').to(device)
    metrics_opt = with_left_variants(None)  # the protocol's figures, whatever the option file lists
    rows = []
    for test_set, gt_root, lq_root in sets:
        ds_opt = dataset_options(opt, test_set, gt_root, lq_root, model.scale)
        loader = build_dataloader(build_dataset(ds_opt, key_path=f'{option_file}: datasets:{test_set}'), ds_opt,
                                  num_gpu=0, dist=False)
        if opt.get('manual_seed') is not None:  # networks that draw at test time (SCGLANet's hashing) repeat
            torch.manual_seed(int(opt['manual_seed']))
        result = evaluate(net, loader, metrics_opt, device=device, self_ensemble=self_ensemble,
                          color_order=ds_opt.get('color_order', 'bgr'), desc=f'{model.name} {test_set}')
        published = zoo.published(model.name, test_set)
        diff, status = compare(result, published)
        rows.append({'model': model.name, 'scale': model.scale, 'set': test_set, 'lr': os.path.basename(lq_root),
                     'pairs': result.num_pairs,
                     'option_file': model.option, 'weights': weights, 'seconds': round(result.seconds, 2),
                     'measured': {k: result[k] for k in FIGURES},
                     'published': {k: getattr(published, k) for k in FIGURES} if published else None,
                     'source': published.source if published else None,
                     'left_source': published.left_source if published else None,
                     'published_notes': list(published.notes) if published else [],
                     'diff': diff, 'status': status, 'per_pair': result.per_pair})
    return rows


def _cell(row, key):
    """``measured  published  difference`` of one figure (PSNR: 4 decimals, published 2; SSIM: 5 and 4)."""
    decimals, published_decimals = (4, 2) if 'psnr' in key else (5, 4)
    published = (row['published'] or {}).get(key)
    text = f"{row['measured'][key]:>9.{decimals}f}"
    if published is None:
        return text + f"{'-':>8}{'':>10}"
    return text + f"{published:>8.{published_decimals}f}{row['diff'][key]:>+10.{decimals}f}"


def format_rows(rows):
    """The comparison table: per figure measured, published and difference, then the result."""
    width = max([len('model')] + [len(r['model']) for r in rows]) + 2
    lead = f"{'model':<{width}}{'set':<11}{'pairs':>5}"
    head1 = ' ' * len(lead) + ''.join(f'  {HEADINGS[k]:^27}' for k in FIGURES)
    head2 = lead + ''.join(f"  {'measured':>9}{'publ.':>8}{'diff':>10}" for _ in FIGURES) + '  result'
    lines = [head1.rstrip(), head2, '-' * len(head2)]
    for row in rows:
        lines.append(f"{row['model']:<{width}}{row['set']:<11}{row['pairs']:>5}"
                     + ''.join(f'  {_cell(row, k)}' for k in FIGURES) + f"  {row['status']}")
    # an LR other than the bicubic one (a fixed realistic set) is named under the table
    lines += [f"{row['model']} {row['set']}: LR from {row['lr']} (as its option file reads)" for row in rows
              if row.get('lr', f"lr_x{row['scale']}") != f"lr_x{row['scale']}"]
    # what the zoo says about a published figure (its source, another protocol) stays beside the comparison
    lines += [f"published {row['model']} {row['set']}: {note}" for row in rows
              for note in row.get('published_notes', ())]
    return '\n'.join(lines)


def rows_dropped(path, keys):
    """``(model, set)`` of the rows of an earlier ``--output`` at ``path`` that are not among ``keys`` (the rows this
    run measures), so that replacing the file would lose them. A file here that is not such a JSON refuses."""
    if not os.path.exists(path):
        return []
    try:
        with open(path, encoding='utf-8') as f:
            rows = json.load(f)['rows']
        earlier = [(row['model'], row['set']) for row in rows]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ReproduceError(f'--output {path}: exists and is not a table written by reproduce_tables.py '
                             f'({type(err).__name__}); pass --overwrite to replace it, or name another --output') \
            from None
    return [key for key in earlier if key not in set(keys)]


def write_json(path, rows, notes, settings):
    """Write the table in one ``os.replace`` (a temporary file beside ``path``, removed if the writing fails)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    content = {'settings': settings, 'tolerance': TOLERANCE, 'rows': rows, 'skipped': notes}
    tmp = os.path.join(folder, f'.{os.path.basename(path)}.tmp{os.getpid()}')
    try:
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(content, f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--models', nargs='+', metavar='MODEL', help='zoo names (default: all), e.g. CVHSSR-T_x4')
    parser.add_argument('--sets', nargs='+', metavar='SET', help=f"test sets (default: {' '.join(zoo.TEST_SETS)})")
    parser.add_argument('--root', default=DEFAULTS['root'], help='folder of the prepared test sets <Set>/hr, lr_x2, '
                                                                 f"lr_x4 (default {DEFAULTS['root']})")
    parser.add_argument('--weights_dir', default=DEFAULTS['weights_dir'],
                        help=f"folder of the released weights (default {DEFAULTS['weights_dir']})")
    parser.add_argument('--self_ensemble', action='store_true', help='average the 4 stereo transforms (off: the '
                                                                     'published figures are without it)')
    parser.add_argument('--output', default=DEFAULTS['output'],
                        help=f"JSON file (default {DEFAULTS['output']}), written when every row is measured")
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an --output that holds rows this run does not measure again (without it '
                             'such a run refuses before measuring)')
    return parser.parse_args(argv)


def run(args):
    models = zoo_models(args.models, '--models')
    unknown = [s for s in args.sets or () if s not in zoo.TEST_SETS]
    if unknown:
        raise ReproduceError(f"--sets: unknown {', '.join(unknown)}; expected some of {', '.join(zoo.TEST_SETS)}")
    if not os.path.isdir(args.root):
        raise OptionError(f'--root {args.root}: not a folder (expected <Set>/hr, <Set>/lr_x4, ...)')
    if os.path.isdir(args.output):
        raise OptionError(f'--output {args.output}: is a folder; expected the path of a JSON file')
    sets = args.sets or list(zoo.TEST_SETS)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')

    jobs, notes = plan(models, sets, args.root, args.weights_dir)
    for note in notes:
        print(f'note: {note}', flush=True)
    if not jobs:
        raise ReproduceError(f'nothing to measure under --root {args.root}: {len(notes)} skipped (see the notes '
                             f'above); {args.output} left as it was')
    dropped = [] if args.overwrite else rows_dropped(
        args.output, [(model.name, test_set) for model, _, _, present in jobs for test_set, _, _ in present])
    if dropped:
        raise ReproduceError(f'--output {args.output}: holds {len(dropped)} measured row(s) this run does not '
                             f'measure again (e.g. {" on ".join(dropped[0])}); pass --overwrite to replace them, or '
                             'name another --output')
    settings = {'root': args.root, 'weights_dir': args.weights_dir, 'self_ensemble': args.self_ensemble,
                'device': device.type, 'torch': torch.__version__}
    rows = []
    for model, option_file, weights, present in jobs:
        rows += measure(model, option_file, weights, present, device, args.self_ensemble)
    write_json(args.output, rows, notes, settings)  # only now: a failed or stopped run leaves the earlier file
    print(format_rows(rows))
    missed = [r for r in rows if r['status'].startswith('MISS')]
    print(f"{len(rows)} rows measured ({'self-ensemble' if args.self_ensemble else 'no self-ensemble'}, "
          f'{device.type}), {len(missed)} beyond the tolerance (PSNR {TOLERANCE["psnr"]} dB, SSIM '
          f'{TOLERANCE["ssim"]}), {len(notes)} skipped; written to {args.output}', flush=True)
    return 1 if missed else 0


def main(argv=None):
    return run_main('reproduce_tables.py', run, parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
