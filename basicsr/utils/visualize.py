"""Pictures of results: side-by-side comparisons with zoomed crops, PSNR per dataset, PSNR over iterations.

Pure functions of arrays and dicts, drawn with matplotlib's Agg backend (no display needed); images are uint8 HWC
BGR as everywhere in the project. ``scripts/plot_results.py`` is the command line.
"""
import re

import cv2
import numpy as np

from basicsr.utils.errors import UserError


class VisualizeError(UserError, ValueError):
    """Inputs that cannot be drawn (sizes that differ, no values of the metric asked for)."""


def _pyplot():
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt


def pick_crop(img, size):
    """Top-left (y, x) of the ``size`` x ``size`` window with the most detail (gradient energy) in ``img``."""
    h, w = img.shape[:2]
    size = min(size, h, w)
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    energy = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    integral = cv2.integral(energy)  # (h+1, w+1)
    sums = (integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size] + integral[:-size, :-size])
    y, x = np.unravel_index(np.argmax(sums), sums.shape)
    return int(y), int(x), size


def side_by_side(panels, path, crop=None, zoom_title='zoom', dpi=100):
    """Save a comparison figure: top row the full images, bottom row the same crop of each, enlarged.

    ``panels``: ``[(title, uint8 HWC BGR image)]`` of equal size (e.g. bicubic | ours | HR);
    ``crop``: ``(y, x, size)``, default: the most detailed window of the last panel, a quarter of its short side;
    ``dpi``: pixels per inch of the PNG (each panel is 4 inches wide).
    """
    shapes = {img.shape for _, img in panels}
    if len(shapes) != 1:
        raise VisualizeError(f'side_by_side: panels differ in size: {sorted(shapes)}')
    h, w = panels[0][1].shape[:2]
    if crop is None:
        crop = pick_crop(panels[-1][1], max(8, min(h, w) // 4))
    y, x, size = crop
    if y < 0 or x < 0 or y + size > h or x + size > w:
        raise VisualizeError(f'side_by_side: crop {crop} (y, x, size) does not fit a {w}x{h} image')
    plt = _pyplot()
    n = len(panels)
    col_w = 4.0
    fig, axes = plt.subplots(2, n, figsize=(col_w * n, col_w * h / w + col_w + 0.8), squeeze=False,
                             gridspec_kw={'height_ratios': [h / w, 1.0]})
    for i, (title, img) in enumerate(panels):
        rgb = np.ascontiguousarray(img[..., ::-1])
        top, bottom = axes[0][i], axes[1][i]
        top.imshow(rgb, interpolation='nearest')
        top.add_patch(plt.Rectangle((x - 0.5, y - 0.5), size, size, fill=False, edgecolor='red', linewidth=1.5))
        top.set_title(title, fontsize=10)
        bottom.imshow(rgb[y:y + size, x:x + size], interpolation='nearest')
        bottom.set_title(f'{title.split(" (")[0]} ({zoom_title})', fontsize=9)
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return crop


def plot_metric_bars(runs, metric, path, title=None):
    """Bar chart of ``metric`` per dataset; ``runs``: ``{label: {dataset: {metric: value}}}`` (metrics.json)."""
    datasets = list(dict.fromkeys(d for run in runs.values() for d in run))
    if not datasets:
        raise VisualizeError('plot_metric_bars: no datasets to plot')
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(datasets) * max(1, len(runs)) ** 0.5), 4.0))
    width = 0.8 / max(1, len(runs))
    xs = np.arange(len(datasets))
    found = False
    for i, (label, run) in enumerate(runs.items()):
        values = [run.get(d, {}).get(metric, np.nan) for d in datasets]
        found |= any(np.isfinite(v) for v in values)
        bars = ax.bar(xs + (i - (len(runs) - 1) / 2) * width, values, width, label=label)
        ax.bar_label(bars, fmt='%.2f', fontsize=8, padding=2)
    if not found:
        plt.close(fig)
        raise VisualizeError(f'plot_metric_bars: no values of metric {metric!r} '
                         f'(metrics present: {sorted({m for r in runs.values() for d in r.values() for m in d})})')
    ax.set_xticks(xs, datasets)
    ax.set_ylabel(metric)
    finite = [run.get(d, {}).get(metric) for run in runs.values() for d in datasets]
    finite = [v for v in finite if v is not None and np.isfinite(v)]
    lo, hi = min(finite), max(finite)
    pad = max(0.05 * (hi - lo), 0.02 * abs(hi) if hi else 0.1)
    ax.set_ylim(lo - 4 * pad if lo - 4 * pad > 0 or lo < 0 else 0, hi + 2 * pad)
    ax.set_title(title or f'{metric} per dataset')
    if len(runs) > 1:
        ax.legend(fontsize=8)
    ax.grid(axis='y', alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


_OURS = re.compile(r'validation (.+?) @ iter (\d+): (.*)$')  # train.py: "validation Set @ iter 8: psnr: 25.1, ..."
_OURS_METRIC = re.compile(r'([A-Za-z_]\w*): ([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|inf|nan)')
_ITER = re.compile(r'iter:\s*([\d,]+)')
_VALIDATION = re.compile(r'Validation\s+(?:on\s+)?([^\s,:\]]+)')
_METRIC = re.compile(r'#\s*([A-Za-z_][\w]*)\s*:\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|inf|nan)')


def parse_training_log(text):
    """Validation values of a training log: ``{dataset: {metric: [(iter, value), ...]}}``.

    Reads this project's lines ("validation <dataset> @ iter <n>: psnr: 25.1234, ssim: 0.8 (new best)") and
    BasicSR's: "... [iter:  1,000, ...] ..." lines for the current iteration, "Validation <dataset>" for the
    dataset, and "# psnr: 25.1234" entries on that line or the following ones (tabs, "Best:" suffixes and other
    text are ignored). BasicSR values before the first iteration line are skipped; without a "Validation" header
    they are filed under dataset 'val'. The iteration is the last one logged before the values.
    """
    curves = {}
    iteration, dataset = None, None
    for line in text.splitlines():
        ours = _OURS.search(line)
        if ours:
            name, it = ours.group(1), int(ours.group(2))
            for metric, value in _OURS_METRIC.findall(ours.group(3)):
                series = curves.setdefault(name, {}).setdefault(metric, [])
                if series and series[-1][0] == it:  # a resumed run repeats an iteration: keep the newest
                    series[-1] = (it, float(value))
                else:
                    series.append((it, float(value)))
            continue
        m = _ITER.search(line)
        if m:
            iteration, dataset = int(m.group(1).replace(',', '')), None
        v = _VALIDATION.search(line)
        if v:
            dataset = v.group(1)
        if iteration is None:
            continue
        for name, value in _METRIC.findall(line):
            series = curves.setdefault(dataset or 'val', {}).setdefault(name, [])
            if series and series[-1][0] == iteration:
                series[-1] = (iteration, float(value))
            else:
                series.append((iteration, float(value)))
    return curves


def plot_curves(curves, metric, path, title=None):
    """Line plot of ``metric`` over iterations, one line per dataset; ``curves`` from ``parse_training_log``."""
    series = {d: m[metric] for d, m in curves.items() if m.get(metric)}
    if not series:
        raise VisualizeError(f'plot_curves: no {metric!r} values in the log (found: '
                         f'{sorted({name for m in curves.values() for name in m}) or "none"})')
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for dataset, points in series.items():
        its, values = zip(*points)
        ax.plot(its, values, marker='o' if len(points) < 30 else None, markersize=3, label=dataset)
    ax.set_xlabel('iteration')
    ax.set_ylabel(metric)
    ax.set_title(title or f'validation {metric}')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
