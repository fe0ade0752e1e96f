"""Test reports: the papers' tables and the result files of ``test.py``.

- ``with_left_variants`` adds the "Left" metric (left view, 64 leftmost columns cropped) beside each stereo metric;
- ``table_columns`` / ``format_table``: a plain-text table per scale, "Left" columns then "(Left+Right)/2";
- ``write_results``: ``metrics.json``, ``metrics_per_pair.json`` and ``metrics.csv``.

Datasets are identified by name; when one run tests the same name at several scales (``Set`` at x2 and x4), the
result files key them ``<name>_x<scale>`` so that nothing is overwritten.
"""
import csv
import itertools
import json
import math
import os

import numpy as np

from basicsr.utils.atomic import write_atomic
from basicsr.utils.options import OptionError
from basicsr.utils.registry import METRIC_REGISTRY

DEFAULT_METRICS = {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False},
                   'ssim': {'type': 'calculate_skimage_ssim'}}


def with_left_variants(metrics_opt):
    """``metrics_opt`` plus, for every metric ``m`` of type ``T`` with a registered ``T_left``, a metric
    ``m_left`` (same options) unless one of that type is listed already: the "Left" column of the tables."""
    metrics = {name: dict(opt) for name, opt in (metrics_opt or DEFAULT_METRICS).items()}
    listed = {opt.get('type') for opt in metrics.values() if isinstance(opt, dict)}
    for name, opt in list(metrics.items()):
        left_type = f"{opt.get('type')}_left"
        if not str(opt.get('type')).endswith('_left') and left_type in METRIC_REGISTRY and left_type not in listed:
            metrics[f'{name}_left'] = {**opt, 'type': left_type}
            listed.add(left_type)
    return metrics


def _label(name, metric_type):
    for key, label in (('psnr', 'PSNR'), ('ssim', 'SSIM'), ('stereo_consistency', 'LR-consist'), ('lpips', 'LPIPS'),
                       ('ntire2023', 'NTIRE23')):
        if key in str(metric_type):
            return label
    return name


def table_columns(metrics_opt):
    """[(group, label, metric name)]: "Left" columns first, then "(Left+Right)/2", then any other metric."""
    by_type = {opt['type']: name for name, opt in metrics_opt.items()}
    left, stereo, other = [], [], []
    for name, opt in metrics_opt.items():
        metric_type = opt['type']
        if metric_type.endswith('_left'):
            left.append(('Left', _label(name, metric_type), name))
        elif f'{metric_type}_left' in by_type:
            stereo.append(('(Left+Right)/2', _label(name, metric_type), name))
        else:
            other.append(('', _label(name, metric_type), name))
    return left + stereo + other


def averages(results, metrics):
    """``{metric: mean over results}`` for each of ``metrics`` that every result (``metric -> value``) has: the
    "Average" row of the tables (the mean of the dataset means, as the papers')."""
    return {m: float(np.mean([r[m] for r in results])) for m in metrics if results and all(m in r for r in results)}


def format_table(title, rows, columns):
    """A plain-text table like the papers': ``rows`` are ``(dataset, num_pairs, pairs_per_s, {metric: value})``;
    the last line averages every metric over the datasets (the mean of the dataset means)."""
    width = max([len('Average')] + [len(r[0]) for r in rows]) + 2
    header1 = ' ' * width
    for group, members in itertools.groupby(columns, key=lambda c: c[0]):
        span = 11 * len(list(members)) - 1
        header1 += f'{group:^{span}} '
    header2 = f"{'Dataset':<{width}}" + ' '.join(f'{c[1]:>10}' for c in columns) + f" {'pairs':>7}{'pairs/s':>10}"

    def fmt(value):
        if value is None or math.isnan(value):
            return f"{'-':>10}"
        return f'{value:>10.4f}' if math.isfinite(value) else f'{value:>10}'

    out = [title, header1.rstrip(), header2, '-' * len(header2)]
    for name, num, speed, values in rows:
        out.append(f'{name:<{width}}' + ' '.join(fmt(values.get(c[2])) for c in columns) + f' {num:>7}{speed:>10.2f}')
    if rows:
        avg = averages([r[3] for r in rows], [c[2] for c in columns])
        out.append('-' * len(header2))
        out.append(f"{'Average':<{width}}" + ' '.join(fmt(avg.get(c[2])) for c in columns)
                   + f' {sum(r[1] for r in rows):>7}')
    return '\n'.join(out)


def format_report(run_name, entries, columns, world, device_type):
    """The text ``test.py`` prints and saves: one table per scale (in the order the scales first appear), then
    the total pair count and speed. ``entries``: ``[(dataset name, scale, EvalResult)]``."""
    tables = []
    for scale in dict.fromkeys(s for _, s, _ in entries):
        rows = [(name, r.num_pairs, r.pairs_per_s, r) for name, s, r in entries if s == scale]
        tables.append(format_table(f"{run_name}  x{scale}  ({world} process{'es' if world > 1 else ''}, "
                                   f'{device_type})', rows, columns))
    text = '\n\n'.join(tables)
    pairs = sum(r.num_pairs for _, _, r in entries)
    seconds = sum(r.seconds for _, _, r in entries)
    return text + (f'\n{pairs} stereo pairs ({2 * pairs} images) in {seconds:.1f} s: '
                   f'{2 * pairs / max(seconds, 1e-9):.2f} images/s')


def result_keys(entries):
    """The key of each entry in the result files: its dataset name, or ``<name>_x<scale>`` for all entries when
    a name occurs more than once (one set tested at several scales)."""
    names = [name for name, _, _ in entries]
    if len(set(names)) == len(names):
        return names
    keys = [f'{name}_x{scale}' for name, scale, _ in entries]
    if len(set(keys)) != len(keys):
        raise OptionError(f'two test datasets share a name and a scale: {keys}; give each datasets:<phase>:name '
                         'its own value')
    return keys


def write_results(results_root, entries):
    """Write ``metrics.json`` (dataset -> metric -> value), ``metrics_per_pair.json`` (dataset -> pair -> metric
    -> value) and ``metrics.csv`` (one row per dataset plus one average row per scale, with timings) into
    ``results_root``, each file atomically. ``entries``: ``[(dataset name, scale, EvalResult)]``; see
    ``result_keys`` for the keys."""
    os.makedirs(results_root, exist_ok=True)
    keys = result_keys(entries)
    summary = {key: dict(result) for key, (_, _, result) in zip(keys, entries)}
    per_pair = {key: result.per_pair for key, (_, _, result) in zip(keys, entries)}
    for filename, content in (('metrics.json', summary), ('metrics_per_pair.json', per_pair)):
        write_atomic(os.path.join(results_root, filename), lambda f, content=content: json.dump(content, f, indent=2),
                     mode='w')
    metric_names = list(dict.fromkeys(m for _, _, result in entries for m in result))

    def write_csv(f):
        writer = csv.writer(f)
        writer.writerow(['dataset', 'scale', 'pairs', *metric_names, 'seconds', 'pairs_per_s'])
        for scale in dict.fromkeys(scale for _, scale, _ in entries):
            group = [(name, result) for name, s, result in entries if s == scale]
            for name, result in group:
                writer.writerow([name, scale, result.num_pairs, *(result.get(m, '') for m in metric_names),
                                 f'{result.seconds:.3f}', f'{result.pairs_per_s:.4f}'])
            averages = [np.mean([r[m] for _, r in group]) if all(m in r for _, r in group) else ''
                        for m in metric_names]
            writer.writerow(['Average', scale, sum(r.num_pairs for _, r in group), *averages, '', ''])

    write_atomic(os.path.join(results_root, 'metrics.csv'), write_csv, mode='w', newline='')
