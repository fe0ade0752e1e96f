"""Run a stereo SR network over a dataset and score it: the one loop behind test.py, the validation during
training and scripts/inference_stereo.py.

- ``evaluate`` scores a network on a dataloader of stereo pairs (``lq``/``gt`` 6-channel tensors), optionally saves
  the SR views as lossless PNGs, and under a process group shards the pairs over the processes and gathers the
  per-pair scores, so that the means are the same (bit for bit) as on one process.
- ``forward_stereo`` is one inference call: ``torch.inference_mode``, optional autocast, optional self-ensemble.
- ``infer_in_strips`` super-resolves a pair of any size in full-width horizontal strips with overlap (epipolar
  rows stay whole for the cross-view attention), so memory is bounded by the strip, not by the image.
"""
import time

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Subset

from basicsr.metrics import calculate_metric, check_metric_opt
from basicsr.utils.amp import amp_dtype as to_amp_dtype
from basicsr.utils.dist_util import get_dist_info, unwrap
from basicsr.utils.img_util import imwrite, tensor2img
from basicsr.utils.matlab_functions import imresize


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
    amp_dtype = to_amp_dtype(amp_dtype)
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


def save_reference_views(dataset, scale, bicubic_dir, hr_dir, color_order='bgr'):
    """Save what an SR result is compared with, for every pair of ``dataset`` (as ``evaluate`` names them):
    ``bicubic_dir/<pair>_L.png`` and ``_R.png``, the LR views enlarged ``scale`` times by MATLAB's bicubic (the
    tables' baseline), and the HR views in ``hr_dir`` (pairs without ``gt`` have none). Lossless, real colours."""
    for index in range(len(dataset)):
        data = dataset[index]
        name = data.get('name') or f'{index:06d}'
        lr = _views_to_files(tensor2img(data['lq']), color_order)
        for view, img in zip('LR', lr):
            imwrite(imresize(np.ascontiguousarray(img), scale), f'{bicubic_dir}/{name}_{view}.png')
        if data.get('gt') is not None:
            for view, img in zip('LR', _views_to_files(tensor2img(data['gt']), color_order)):
                imwrite(img, f'{hr_dir}/{name}_{view}.png')


def score_pair(sr_img, gt_img, metrics_opt, color_order='bgr', name='pair'):
    """``{metric name: value}`` of one super-resolved pair ``sr_img`` against its ground truth ``gt_img`` (uint8
    HWC, 6 channels: left then right view), each metric of ``metrics_opt`` (``val:metrics``) as ``evaluate`` scores
    a pair for test.py; ``ValueError`` naming ``name`` when the sizes differ."""
    if gt_img.shape != sr_img.shape:
        raise ValueError(f'{name}: the network output {sr_img.shape[:2]} and the ground truth '
                         f'{gt_img.shape[:2]} differ in size (is the scale right?)')
    item = {'img': sr_img, 'img2': gt_img, 'color_order': color_order}
    return {metric: calculate_metric(item, opt, key_path=f'val:metrics:{metric}')
            for metric, opt in metrics_opt.items()}


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
                    scores = score_pair(sr_img, tensor2img(gt[i]), metrics_opt, color_order, name)
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
