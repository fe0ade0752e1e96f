"""Run a stereo SR network over a dataset and score it: the one loop behind test.py, the validation during
training and scripts/inference_stereo.py.

- ``evaluate`` scores a network on a dataloader of stereo pairs (``lq``/``gt`` 6-channel tensors), optionally saves
  the SR views as lossless PNGs, and under a process group shards the pairs over the processes and gathers the
  per-pair scores, so that the means are the same (bit for bit) as on one process.
- ``forward_stereo`` is one inference call: ``torch.inference_mode``, optional autocast, optional self-ensemble.
- ``infer_in_strips`` super-resolves a pair of any size in full-width horizontal strips with overlap (epipolar
  rows stay whole for the cross-view attention), so memory is bounded by the strip, not by the image.
- ``load_network`` loads a checkpoint's weights into a network, refusing anything but tensors.
"""
import csv
import itertools
import json
import math
import os
import time

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Subset

from basicsr.metrics import calculate_metric, check_metric_opt
from basicsr.utils.checkpoint import CheckpointError, load_state_dict
from basicsr.utils.dist_util import get_dist_info
from basicsr.utils.img_util import imwrite, tensor2img


class EvalResult(dict):
    """``metric name -> mean over the dataset`` (a plain dict to its users), with attributes:

    - ``per_pair``: ``{pair name: {metric name: value}}`` in dataset order;
    - ``num_pairs``; ``seconds``: wall time of the slowest process; ``forward_seconds``: time in the network,
      summed over pairs; ``pairs_per_s``: ``num_pairs / seconds``.
    """

    per_pair = None
    num_pairs = 0
    seconds = 0.0
    forward_seconds = 0.0

    @property
    def pairs_per_s(self):
        return self.num_pairs / self.seconds if self.seconds > 0 else float('nan')


def unwrap(net):
    """The bare module inside DistributedDataParallel / DataParallel (their forward may synchronise)."""
    while isinstance(net, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
        net = net.module
    return net


def _swap_hflip(x):
    """Mirror a stereo tensor: flip both views horizontally and swap them (a mirrored left view is a right view)."""
    return torch.cat([x[:, 3:].flip(-1), x[:, :3].flip(-1)], dim=1)


def _vflip(x):
    return x.flip(-2)


# The self-ensemble of stereo SR: each transform is its own inverse; no rotations (rows must stay epipolar lines).
SELF_ENSEMBLE = (
    lambda x: x,
    _vflip,
    _swap_hflip,
    lambda x: _vflip(_swap_hflip(x)),
)


def forward_stereo(net, lq, self_ensemble=False, amp_dtype=None):
    """``net(lq)`` for a (N, 6, h, w) batch in inference mode; float32 output, averaged over the 4 stereo
    transforms when ``self_ensemble``; under ``torch.autocast(dtype=amp_dtype)`` when ``amp_dtype`` is given."""
    if isinstance(amp_dtype, str):
        amp_dtype = {'bf16': torch.bfloat16, 'bfloat16': torch.bfloat16, 'fp16': torch.float16,
                     'float16': torch.float16}[amp_dtype]
    transforms = SELF_ENSEMBLE if self_ensemble else SELF_ENSEMBLE[:1]
    with torch.inference_mode(), torch.autocast(lq.device.type, dtype=amp_dtype or torch.float32,
                                                enabled=amp_dtype is not None):
        out = None
        for t in transforms:
            y = t(net(t(lq))).float()
            out = y if out is None else out.add_(y)
    return out / len(transforms)


def infer_in_strips(net, lq, scale, strip_rows=64, overlap=24, self_ensemble=False, amp_dtype=None,
                    progress=None):
    """Super-resolve one stereo pair ``lq`` (1, 6, h, w) strip by strip; return uint8 (s*h, s*w, 6) HWC.

    Each strip holds ``strip_rows`` output rows (LR) plus up to ``overlap`` LR rows of context above and below,
    cut away after the network. Rows are never split, so every row still attends to its whole epipolar line.
    ``progress``: optional callable taking the number of LR rows done.
    """
    if lq.dim() != 4 or lq.shape[0] != 1 or lq.shape[1] != 6:
        raise ValueError(f'infer_in_strips expects one stereo pair (1, 6, h, w), got {tuple(lq.shape)}')
    if strip_rows < 1 or overlap < 0:
        raise ValueError(f'strip_rows must be >= 1 and overlap >= 0, got {strip_rows} and {overlap}')
    h, w = lq.shape[-2:]
    out = np.empty((h * scale, w * scale, 6), np.uint8)
    for top in range(0, h, strip_rows):
        bottom = min(h, top + strip_rows)
        lo, hi = max(0, top - overlap), min(h, bottom + overlap)
        sr = forward_stereo(net, lq[..., lo:hi, :], self_ensemble, amp_dtype)
        if sr.shape[-2:] != ((hi - lo) * scale, w * scale):
            raise ValueError(f'the network output {tuple(sr.shape[-2:])} for a {hi - lo}x{w} input is not x{scale}')
        out[top * scale:bottom * scale] = tensor2img(sr[..., (top - lo) * scale:(bottom - lo) * scale, :])
        if progress is not None:
            progress(bottom - top)
    return out


def load_network(net, path, param_key='params', strict=True):
    """Load the weights of checkpoint ``path`` (release format ``{'params': state_dict}``) into ``net``.

    Loading never runs code (only tensors and plain containers are accepted); every mismatch is one
    ``CheckpointError`` line naming the file.
    """
    state = load_state_dict(path, param_key=param_key)
    own = unwrap(net).state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f'{k} {tuple(state[k].shape)} (network: {tuple(own[k].shape)})' for k in own
             if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if wrong:
        raise CheckpointError(f'{path}: {len(wrong)} tensors do not fit the network, e.g. {wrong[0]}')
    if strict and (missing or unexpected):
        what = []
        if missing:
            what.append(f'{len(missing)} missing (e.g. {missing[0]})')
        if unexpected:
            what.append(f'{len(unexpected)} unexpected (e.g. {unexpected[0]})')
        raise CheckpointError(f"{path}: does not fit the network: {', '.join(what)} parameters "
                              f'(set path:strict_load_g false to load the common ones)')
    unwrap(net).load_state_dict(state, strict=False)
    return net


def _shard_loader(dataloader, rank, world):
    """This process's share of an (unsharded) evaluation loader: pairs rank, rank + world, ... in order."""
    indices = list(range(rank, len(dataloader.dataset), world))
    loader = DataLoader(Subset(dataloader.dataset, indices), batch_size=1, shuffle=False,
                        num_workers=dataloader.num_workers, collate_fn=dataloader.collate_fn,
                        pin_memory=dataloader.pin_memory)
    return loader, indices


def _views_to_files(img, color_order):
    """6-channel uint8 HWC in ``color_order`` -> (left, right) in OpenCV's BGR for imwrite."""
    left, right = img[..., :3], img[..., 3:]
    if color_order == 'rgb':
        left, right = left[..., ::-1], right[..., ::-1]
    return left, right


def _names(data, n):
    names = data.get('name')
    if names is None:
        return [None] * n
    return [names] if isinstance(names, str) else list(names)


def evaluate(net, dataloader, metrics_opt, *, device, self_ensemble=False, save_dir=None, color_order='bgr',
             amp_dtype=None, desc='', show_progress=True):
    """Super-resolve every pair of ``dataloader`` with ``net`` and score it; return an ``EvalResult``.

    Args:
        net: the network (DDP/DataParallel wrappers are unwrapped); put in eval mode for the call and restored.
        dataloader: the full evaluation loader (batches with ``lq``, ``gt`` (optional), ``name``). Under a process
            group each process evaluates pairs ``rank::world_size`` of its dataset; every process gets the result.
        metrics_opt: ``val:metrics`` mapping ``name -> {'type': <registered metric>, **kwargs}`` (may be empty).
        device: where the network runs; batches are moved there.
        self_ensemble: average the 4 stereo transforms (identity, vflip, hflip + view swap, both).
        save_dir: if given, save ``<pair>_L.png`` and ``<pair>_R.png`` (lossless, real colours) there.
        color_order: channel order of the tensors (``bgr`` as the release's datasets, or ``rgb``).
        amp_dtype: ``torch.bfloat16``/``torch.float16`` (or 'bf16'/'fp16') to run under autocast; None: fp32.
        desc, show_progress: the progress bar (rank 0 only).

    Returns:
        ``EvalResult``: ``metric name -> mean over all pairs`` (float64 mean of the per-pair values in dataset
        order, identical for any number of processes), with ``per_pair``, ``num_pairs``, ``seconds``,
        ``forward_seconds``, ``pairs_per_s``.
    """
    metrics_opt = dict(metrics_opt or {})
    for name, opt in metrics_opt.items():
        check_metric_opt(opt, f'val:metrics:{name}')
    rank, world = get_dist_info()
    if world > 1:
        loader, indices = _shard_loader(dataloader, rank, world)
    else:
        loader, indices = dataloader, None
    bare = unwrap(net)
    was_training = bare.training
    bare.eval()
    records = []
    forward_seconds = 0.0
    use_cuda = torch.device(device).type == 'cuda'
    progress = None
    if show_progress and rank == 0:
        from tqdm import tqdm
        progress = tqdm(total=len(dataloader.dataset), desc=desc or 'eval', unit='pair', dynamic_ncols=True)
    start = time.perf_counter()
    try:
        position = 0
        for data in loader:
            lq = data['lq'].to(device, non_blocking=True)
            t0 = time.perf_counter()
            sr = forward_stereo(bare, lq, self_ensemble, amp_dtype)
            if use_cuda:
                torch.cuda.synchronize(device)
            forward_seconds += time.perf_counter() - t0
            gt = data.get('gt')
            for i, name in enumerate(_names(data, lq.shape[0])):
                index = indices[position] if indices is not None else position
                position += 1
                name = name if name is not None else f'{index:06d}'
                sr_img = tensor2img(sr[i])
                if save_dir is not None:
                    left, right = _views_to_files(sr_img, color_order)
                    imwrite(left, f'{save_dir}/{name}_L.png')
                    imwrite(right, f'{save_dir}/{name}_R.png')
                scores = {}
                if gt is not None and metrics_opt:
                    gt_img = tensor2img(gt[i])
                    if gt_img.shape != sr_img.shape:
                        raise ValueError(f'{name}: the network output {sr_img.shape[:2]} and the ground truth '
                                         f'{gt_img.shape[:2]} differ in size (is the scale right?)')
                    item = {'img': sr_img, 'img2': gt_img, 'color_order': color_order}
                    for metric, opt in metrics_opt.items():
                        scores[metric] = calculate_metric(item, opt, key_path=f'val:metrics:{metric}')
                records.append((index, name, scores))
            if progress is not None:  # rank 0 sees its own share; the others run alongside (never past the total)
                progress.update(min(lq.shape[0] * world, progress.total - progress.n))
    finally:
        if progress is not None:
            progress.close()
        if was_training:
            bare.train()
    seconds = time.perf_counter() - start

    if world > 1:
        gathered = [None] * world
        dist.all_gather_object(gathered, (records, seconds, forward_seconds))
        records = [r for part in gathered for r in part[0]]
        seconds = max(part[1] for part in gathered)
        forward_seconds = sum(part[2] for part in gathered)
    records.sort(key=lambda r: r[0])

    result = EvalResult()
    for metric in metrics_opt:
        values = [r[2][metric] for r in records if metric in r[2]]
        if values:
            result[metric] = float(np.mean(np.asarray(values, np.float64)))
    result.per_pair = {name: scores for _, name, scores in records}
    result.num_pairs = len(records)
    result.seconds = seconds
    result.forward_seconds = forward_seconds
    return result



# ---------------------------------------------------------------- test reports (test.py)

DEFAULT_METRICS = {'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False},
                   'ssim': {'type': 'calculate_skimage_ssim'}}


def with_left_variants(metrics_opt):
    """``metrics_opt`` plus, for every metric ``m`` of type ``T`` with a registered ``T_left``, a metric
    ``m_left`` (same options) unless one of that type is listed already: the "Left" column of the tables."""
    from basicsr.utils.registry import METRIC_REGISTRY

    metrics = {name: dict(opt) for name, opt in (metrics_opt or DEFAULT_METRICS).items()}
    listed = {opt.get('type') for opt in metrics.values() if isinstance(opt, dict)}
    for name, opt in list(metrics.items()):
        left_type = f"{opt.get('type')}_left"
        if not str(opt.get('type')).endswith('_left') and left_type in METRIC_REGISTRY and left_type not in listed:
            metrics[f'{name}_left'] = {**opt, 'type': left_type}
            listed.add(left_type)
    return metrics


def _label(name, metric_type):
    for key, label in (('psnr', 'PSNR'), ('ssim', 'SSIM'), ('stereo_consistency', 'LR-consist')):
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
        avg = {c[2]: float(np.mean([r[3][c[2]] for r in rows])) for c in columns if all(c[2] in r[3] for r in rows)}
        out.append('-' * len(header2))
        out.append(f"{'Average':<{width}}" + ' '.join(fmt(avg.get(c[2])) for c in columns)
                   + f' {sum(r[1] for r in rows):>7}')
    return '\n'.join(out)


def write_results(results_root, entries):
    """Write ``metrics.json`` (dataset -> metric -> value), ``metrics_per_pair.json`` (dataset -> pair -> metric
    -> value) and ``metrics.csv`` (one row per dataset plus one average row per scale, with timings) into
    ``results_root``. ``entries``: ``[(dataset name, scale, EvalResult)]``."""
    os.makedirs(results_root, exist_ok=True)
    summary = {name: dict(result) for name, _, result in entries}
    per_pair = {name: result.per_pair for name, _, result in entries}
    for filename, content in (('metrics.json', summary), ('metrics_per_pair.json', per_pair)):
        with open(os.path.join(results_root, filename), 'w', encoding='utf-8') as f:
            json.dump(content, f, indent=2)
    metric_names = list(dict.fromkeys(m for _, _, result in entries for m in result))
    with open(os.path.join(results_root, 'metrics.csv'), 'w', newline='', encoding='utf-8') as f:
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
