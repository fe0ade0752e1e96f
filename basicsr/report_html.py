"""HTML pages of test results: the report of one run (``results/<name>/report.html``) and the page that compares
several runs crop by crop (``scripts/compare_results.py``).

Both pages are rendered with Jinja2 from ``basicsr/report_templates/`` and take every number from the files of a
results folder (``metrics.json``, ``metrics_per_pair.json``), so a page shows exactly what the metrics files say.
What the metrics files do not hold is in ``report.json``, written by ``write_run_report`` beside them: the run's
name, the table's columns (group, label, metric, which way is better), each dataset's scale, pair count and
speed, and where its images are, relative to the results folder:

- ``visualization/<dataset>/<pair>_L.png``, ``_R.png``: the SR views (``val:save_img``);
- ``references/bicubic/<dataset>/...`` and ``references/hr/<dataset>/...``: the bicubic-enlarged LR views and the HR
  views, saved with the report when the SR views are (the crops show bicubic | output | HR).

The pages are single files: their script and style are inline, images are referenced by relative URLs, nothing
is fetched from the network (a Content-Security-Policy in the page forbids it).
"""
import json
import os
import urllib.parse
from dataclasses import dataclass

import jinja2

from basicsr.evaluation import save_reference_views
from basicsr.reports import averages, result_keys
from basicsr.utils.errors import UserError

REPORT_FILE = 'report.html'
REPORT_DATA = 'report.json'
BICUBIC_DIR = 'references/bicubic'
HR_DIR = 'references/hr'
VIEWS = ('L', 'R')
_FORMAT = 1  # version of report.json


class ReportInputError(UserError, ValueError):
    """A folder or file given to the pages is not what they need; the message names it."""


@dataclass(frozen=True)
class Column:
    group: str   # 'Left', '(Left+Right)/2' or ''
    label: str   # 'PSNR', 'SSIM', 'LPIPS', ...
    metric: str  # the key in the metrics files
    better: str  # 'higher' or 'lower'


@dataclass
class DatasetResult:
    key: str
    name: str
    scale: int
    num_pairs: int
    seconds: float
    pairs_per_s: float
    summary: dict                 # metric -> mean (metrics.json)
    pairs: dict                   # pair -> metric -> value (metrics_per_pair.json), in dataset order
    images: dict = None           # 'sr' / 'bicubic' / 'hr' -> folder relative to the run folder, or None


@dataclass
class RunResult:
    folder: str
    name: str
    columns: list
    datasets: list
    table_text: str = ''          # metrics.txt


def _environment():
    return jinja2.Environment(loader=jinja2.PackageLoader('basicsr', 'report_templates'),
                              autoescape=jinja2.select_autoescape(enabled_extensions=('html', 'j2')),
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


# ---------------------------------------------------------------------------------------------------------------
# writing a run's report (test.py)

def write_run_report(folder, entries, run_name, columns, better, images=None):
    """Write ``report.json`` and ``report.html`` (and the reference views) into ``folder``, which already holds the
    metrics files that ``reports.write_results`` wrote from the same ``entries``.

    Args:
        entries: ``[(dataset name, scale, EvalResult)]`` as for ``write_results``.
        columns: ``reports.table_columns`` of the run's metrics: ``[(group, label, metric)]``.
        better: ``{metric: 'higher' | 'lower'}``.
        images: ``{dataset key: (dataset, color_order, SR folder relative to folder)}`` for the datasets whose SR
            views were saved; their bicubic and HR views are saved under ``references/`` for the crops.
    """
    images = images or {}
    datasets = []
    for key, (name, scale, result) in zip(result_keys(entries), entries):
        found = None
        if key in images:
            dataset, color_order, sr_dir = images[key]
            save_reference_views(dataset, scale, os.path.join(folder, BICUBIC_DIR, key),
                                 os.path.join(folder, HR_DIR, key), color_order)
            found = {'sr': sr_dir, 'bicubic': f'{BICUBIC_DIR}/{key}'}
            if os.path.isdir(os.path.join(folder, HR_DIR, key)):
                found['hr'] = f'{HR_DIR}/{key}'
        datasets.append({'key': key, 'name': name, 'scale': scale, 'pairs': result.num_pairs,
                         'seconds': result.seconds, 'pairs_per_s': result.pairs_per_s, 'images': found})
    data = {'format': _FORMAT, 'name': run_name, 'datasets': datasets,
            'columns': [{'group': g, 'label': label, 'metric': m, 'better': better.get(m, 'higher')}
                        for g, label, m in columns]}
    with open(os.path.join(folder, REPORT_DATA), 'w', encoding='utf-8') as f:
        json.dump(data, f, indent=2)
    run = load_run(folder)
    html = render_report(run)
    with open(os.path.join(folder, REPORT_FILE), 'w', encoding='utf-8') as f:
        f.write(html)


# ---------------------------------------------------------------------------------------------------------------
# reading a results folder

def _read_json(path, what):
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except FileNotFoundError:
        raise ReportInputError(f'{os.path.dirname(path)}: no {os.path.basename(path)}; expected {what}') from None
    except (OSError, ValueError) as err:
        raise ReportInputError(f'{path}: cannot read it as JSON ({err})') from None


def load_run(folder):
    """The results of one test.py run from its folder: ``RunResult``. A folder without the files that test.py
    writes is refused in one line naming what is missing."""
    if not os.path.isdir(folder):
        raise ReportInputError(f'{folder}: not a folder; expected a results folder of test.py (results/<name>)')
    what = 'a results folder written by test.py (results/<name>)'
    summary = _read_json(os.path.join(folder, 'metrics.json'), what)
    per_pair = _read_json(os.path.join(folder, 'metrics_per_pair.json'), what)
    meta = _read_json(os.path.join(folder, REPORT_DATA),
                      'a results folder written by test.py with its HTML report (rerun test.py for this run)')
    if not isinstance(meta, dict) or meta.get('format') != _FORMAT:
        raise ReportInputError(f'{os.path.join(folder, REPORT_DATA)}: expected format {_FORMAT} of test.py\'s report '
                               f'data, got {meta.get("format") if isinstance(meta, dict) else meta!r}')
    keys = [d['key'] for d in meta['datasets']]
    if not (isinstance(summary, dict) and isinstance(per_pair, dict)) or sorted(summary) != sorted(keys) \
            or sorted(per_pair) != sorted(keys):
        raise ReportInputError(f'{folder}: metrics.json, metrics_per_pair.json and {REPORT_DATA} name different '
                               f'datasets ({sorted(summary)}, {sorted(per_pair)}, {sorted(keys)})')
    datasets = [DatasetResult(key=d['key'], name=d['name'], scale=int(d['scale']), num_pairs=int(d['pairs']),
                              seconds=float(d['seconds']), pairs_per_s=float(d['pairs_per_s']),
                              summary=summary[d['key']], pairs=per_pair[d['key']], images=d.get('images'))
                for d in meta['datasets']]
    text = ''
    if os.path.isfile(os.path.join(folder, 'metrics.txt')):
        with open(os.path.join(folder, 'metrics.txt'), encoding='utf-8') as f:
            text = f.read()
    return RunResult(folder=folder, name=str(meta['name']), columns=[Column(**c) for c in meta['columns']],
                     datasets=datasets, table_text=text)


# ---------------------------------------------------------------------------------------------------------------
# what the templates show

def _cell(value):
    """A table cell: the text as metrics.txt prints it, the exact value for sorting and for the tests."""
    if value is None:
        return {'text': '-', 'value': ''}
    value = float(value)
    return {'text': f'{value:.4f}' if value == value else '-', 'value': repr(value)}


def _url(*parts):
    """A relative URL from path parts (each may hold '/' or os.sep), every segment percent-encoded."""
    path = '/'.join(p.replace(os.sep, '/') for p in parts)
    return '/'.join(urllib.parse.quote(segment) for segment in path.split('/'))


def _image_urls(run, dataset, pair, base):
    """``{'sr': [L, R], 'bicubic': [...], 'hr': [...]}`` URLs of a pair's views, relative to ``base``."""
    prefix = os.path.relpath(os.path.abspath(run.folder), os.path.abspath(base))
    return {kind: [_url(*(p for p in (prefix, folder) if p != '.'), f'{pair}_{view}.png') for view in VIEWS]
            for kind, folder in (dataset.images or {}).items()}


def primary_column(columns):
    """The column a pair is judged by in the crops' captions: the first "(Left+Right)/2" one, else the first."""
    return next((c for c in columns if c.group == '(Left+Right)/2'), columns[0] if columns else None)


def _header_groups(columns):
    groups = []
    for column in columns:
        if groups and groups[-1]['name'] == column.group:
            groups[-1]['span'] += 1
        else:
            groups.append({'name': column.group, 'span': 1})
    return groups


def _summary_tables(run):
    """One table per scale, as metrics.txt: a row per dataset, then the average row."""
    tables = []
    for scale in dict.fromkeys(d.scale for d in run.datasets):
        group = [d for d in run.datasets if d.scale == scale]
        avg = averages([d.summary for d in group], [c.metric for c in run.columns])
        tables.append({'scale': scale,
                       'rows': [{'name': d.name, 'key': d.key, 'cells': [_cell(d.summary.get(c.metric))
                                                                          for c in run.columns],
                                 'pairs': d.num_pairs, 'pairs_per_s': f'{d.pairs_per_s:.2f}'} for d in group],
                       'average': [_cell(avg.get(c.metric)) for c in run.columns],
                       'pairs': sum(d.num_pairs for d in group)})
    return tables


def _caption(column, scores):
    value = scores.get(column.metric) if column else None
    return f'{column.label} {value:.4f}' if value is not None else ''


def render_report(run):
    """The HTML text of ``run``'s report; image URLs relative to its folder."""
    primary = primary_column(run.columns)
    datasets = []
    for index, dataset in enumerate(run.datasets):
        pairs, viewer_pairs = [], []
        for pair, scores in dataset.pairs.items():
            urls = _image_urls(run, dataset, pair, run.folder)
            pairs.append({'name': pair, 'cells': [_cell(scores.get(c.metric)) for c in run.columns],
                          'thumbs': urls.get('sr')})
            viewer_pairs.append({'name': pair, 'images': [urls[k] for k in ('bicubic', 'sr', 'hr') if k in urls],
                                 'captions': [''] * ('bicubic' in urls) + [_caption(primary, scores)]
                                 + [''] * ('hr' in urls)})
        sources = [label for kind, label in (('bicubic', 'Bicubic'), ('sr', 'Output'), ('hr', 'HR'))
                   if kind in (dataset.images or {})]
        datasets.append({'index': index, 'key': dataset.key, 'name': dataset.name, 'scale': dataset.scale,
                         'pairs': pairs, 'has_images': bool(dataset.images),
                         'viewer': {'sources': sources, 'pairs': viewer_pairs} if dataset.images else None})
    return _environment().get_template('report.html.j2').render(
        run=run, columns=run.columns, groups=_header_groups(run.columns), tables=_summary_tables(run),
        datasets=datasets)


# ---------------------------------------------------------------------------------------------------------------
# comparing runs (scripts/compare_results.py)

def check_comparable(runs):
    """Refuse, in one line naming the folders, runs that were not tested on the same test sets, scales and pairs."""
    first = runs[0]
    folders = [os.path.realpath(r.folder) for r in runs]
    for i, run in enumerate(runs[1:], 1):
        if folders[i] in folders[:i]:
            raise ReportInputError(f'{run.folder}: given twice; give each results folder once')
        mine, theirs = [d.key for d in run.datasets], [d.key for d in first.datasets]
        if sorted(mine) != sorted(theirs):
            raise ReportInputError(f'{run.folder}: tested on {", ".join(mine)} but {first.folder} on '
                                   f'{", ".join(theirs)}; compare runs on the same test sets')
        reference = {d.key: d for d in first.datasets}
        for dataset in run.datasets:
            other = reference[dataset.key]
            if dataset.scale != other.scale:
                raise ReportInputError(f'{run.folder}: {dataset.key} at x{dataset.scale} but {first.folder} at '
                                       f'x{other.scale}; compare runs of one scale')
            if list(dataset.pairs) != list(other.pairs):
                extra = sorted(set(dataset.pairs) - set(other.pairs))
                lacking = sorted(set(other.pairs) - set(dataset.pairs))
                detail = (f'pairs {", ".join(extra[:3])} not in {first.folder}' if extra else
                          f'lacks pairs {", ".join(lacking[:3])}' if lacking else 'its pairs in another order')
                raise ReportInputError(f'{run.folder}: {dataset.key} has {len(dataset.pairs)} pairs, '
                                       f'{first.folder} {len(other.pairs)}: {detail}; compare runs on the same pairs')


def _labels(runs, labels):
    if labels is not None:
        if len(labels) != len(runs):
            raise ReportInputError(f'--labels: {len(labels)} labels for {len(runs)} results folders (one each)')
        return list(labels)
    for candidates in ([r.name for r in runs], [os.path.basename(os.path.normpath(r.folder)) for r in runs]):
        if len(set(candidates)) == len(candidates):
            return candidates
    return [os.path.normpath(r.folder) for r in runs]


def _best(values, better):
    """Indices of the best of ``values`` (None: missing); ties are all best."""
    present = [v for v in values if v is not None and v == v]
    if not present:
        return set()
    best = max(present) if better == 'higher' else min(present)
    return {i for i, v in enumerate(values) if v == best}


def _union_columns(runs):
    columns = {}
    for run in runs:
        for column in run.columns:
            columns.setdefault(column.metric, column)
    return list(columns.values())


def render_compare(runs, base, labels=None):
    """The HTML text of the page comparing ``runs`` (same test sets and pairs); URLs relative to folder ``base``."""
    check_comparable(runs)
    labels = _labels(runs, labels)
    columns = _union_columns(runs)
    primary = primary_column(columns)
    by_key = [{d.key: d for d in run.datasets} for run in runs]
    head, rows = [], [{'label': label, 'folder': run.folder, 'cells': []} for label, run in zip(labels, runs)]
    for dataset in runs[0].datasets:
        head.append({'name': dataset.name, 'scale': dataset.scale, 'columns': columns})
        for column in columns:
            values = [datasets[dataset.key].summary.get(column.metric) for datasets in by_key]
            best = _best(values, column.better)
            for i, value in enumerate(values):
                rows[i]['cells'].append({**_cell(value), 'best': i in best})
    sections = []
    for index, dataset in enumerate(runs[0].datasets):
        per_run = [datasets[dataset.key] for datasets in by_key]
        missing = [label for label, d in zip(labels, per_run) if not (d.images or {}).get('sr')]
        reference = next((run for run, d in zip(runs, per_run) if (d.images or {}).get('bicubic')), None)
        pairs, viewer_pairs = [], []
        for pair in dataset.pairs:
            scores = [d.pairs[pair] for d in per_run]
            values = [s.get(primary.metric) if primary else None for s in scores]
            best = _best(values, primary.better if primary else 'higher')
            pairs.append({'name': pair, 'cells': [{**_cell(v), 'best': i in best} for i, v in enumerate(values)]})
            if not missing:
                urls = [_image_urls(run, d, pair, base) for run, d in zip(runs, per_run)]
                ref = _image_urls(reference, by_key[runs.index(reference)][dataset.key], pair, base) \
                    if reference else {}
                images = ([ref['bicubic']] if 'bicubic' in ref else []) + [u['sr'] for u in urls] \
                    + ([ref['hr']] if 'hr' in ref else [])
                captions = ([''] if 'bicubic' in ref else []) + [_caption(primary, s) for s in scores] \
                    + ([''] if 'hr' in ref else [])
                viewer_pairs.append({'name': pair, 'images': images, 'captions': captions})
        sources = (['Bicubic'] if reference else []) + labels \
            + (['HR'] if reference and 'hr' in (by_key[runs.index(reference)][dataset.key].images or {}) else [])
        sections.append({'index': index, 'key': dataset.key, 'name': dataset.name, 'scale': dataset.scale,
                         'pairs': pairs, 'missing': missing,
                         'viewer': None if missing else {'sources': sources, 'pairs': viewer_pairs}})
    return _environment().get_template('compare.html.j2').render(
        labels=labels, runs=runs, head=head, rows=rows, primary=primary, sections=sections)


def write_compare(folders, out, labels=None, overwrite=False):
    """Write the page comparing the runs of ``folders`` to ``out``. Every refusal (a folder that is not test.py's
    results, runs on other test sets or pairs, ``out`` already there without ``overwrite``) happens before
    anything is written; the page is written whole (a temporary file moved into place)."""
    if len(folders) < 2:
        raise ReportInputError(f'give at least two results folders to compare, got {len(folders)}')
    if os.path.isdir(out):
        raise ReportInputError(f'--out {out}: is a folder; expected the path of the page to write (compare.html)')
    if os.path.exists(out) and not overwrite:
        raise ReportInputError(f'--out {out}: exists; pass --overwrite to replace it')
    base = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(base):
        raise ReportInputError(f'--out {out}: its folder {base} does not exist')
    runs = [load_run(folder) for folder in folders]
    html = render_compare(runs, base, labels)
    tmp = os.path.join(base, f'.{os.path.basename(out)}.tmp{os.getpid()}')
    try:
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(html)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return out
