"""Datasets, samplers and data loaders; ``build_dataset`` / ``build_dataloader`` are the entry points, and
``build_loaders`` the loaders of a training run's options (train.py, scripts/benchmark.py --data)."""
import functools
import random

import numpy as np
import torch

from basicsr.data.data_sampler import EnlargedSampler
from basicsr.data.prefetch_dataloader import check_prefetch_mode
from basicsr.utils.dist_util import get_dist_info
from basicsr.utils.options import OptionError
from basicsr.utils.registry import DATASET_REGISTRY
from basicsr.utils.scan import import_modules

import_modules(__name__, __file__)

# Keys of a datasets entry that configure the loader, not the dataset.
LOADER_KEYS = ('batch_size_per_gpu', 'num_worker_per_gpu', 'use_shuffle', 'dataset_enlarge_ratio', 'prefetch_mode',
               'pin_memory', 'persistent_workers', 'num_prefetch_queue')


def build_dataset(dataset_opt, key_path='datasets:train'):
    """Build the registered dataset ``dataset_opt['type']`` from a ``datasets:<phase>`` entry of the options."""
    cfg = {k: v for k, v in dataset_opt.items() if k not in LOADER_KEYS}
    return DATASET_REGISTRY.build(cfg, key_path, key_path=key_path)


def worker_init_fn(worker_id, num_workers, rank, seed):
    """Seed python/numpy/torch in each loader worker differently per rank and worker (for anything not driven
    by the sampler's per-sample seeds)."""
    worker_seed = num_workers * rank + worker_id + seed
    np.random.seed(worker_seed % 2**32)
    random.seed(worker_seed)
    torch.manual_seed(worker_seed)


def _positive_int(dataset_opt, key, key_path, default=None):
    value = dataset_opt.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < (1 if key.startswith('batch') else 0):
        raise ValueError(f'{key_path}:{key}: expected a {"positive" if key.startswith("batch") else "non-negative"} '
                         f'integer, got {value!r}')
    return value


def build_dataloader(dataset, dataset_opt, num_gpu, dist, sampler=None, seed=None):
    """A ``torch.utils.data.DataLoader`` with BasicSR's semantics.

    Train phase: ``batch_size_per_gpu`` and ``num_worker_per_gpu`` per process (times ``num_gpu`` on one process
    driving several GPUs), the given sampler (else ``use_shuffle``), whole batches only. Other phases: batch 1,
    in order, loaded in the main process (or by ``num_worker_per_gpu`` workers when given), optional sampler to
    shard evaluation over ranks.
    """
    phase = dataset_opt.get('phase', 'train')
    key_path = f'datasets:{phase}'
    rank, _ = get_dist_info()
    if phase == 'train':
        multiplier = 1 if dist else max(1, num_gpu)
        batch_size = _positive_int(dataset_opt, 'batch_size_per_gpu', key_path) * multiplier
        num_workers = _positive_int(dataset_opt, 'num_worker_per_gpu', key_path, 0) * multiplier
        args = dict(batch_size=batch_size, num_workers=num_workers, sampler=sampler, drop_last=True,
                    shuffle=bool(dataset_opt.get('use_shuffle', True)) if sampler is None else False)
    else:
        num_workers = _positive_int(dataset_opt, 'num_worker_per_gpu', key_path, 0)
        args = dict(batch_size=1, shuffle=False, num_workers=num_workers, sampler=sampler)
    if seed is not None and num_workers > 0:
        args['worker_init_fn'] = functools.partial(worker_init_fn, num_workers=num_workers, rank=rank, seed=seed)
    args['pin_memory'] = bool(dataset_opt.get('pin_memory', False))
    args['persistent_workers'] = bool(dataset_opt.get('persistent_workers', False)) and num_workers > 0
    return torch.utils.data.DataLoader(dataset, **args)


def build_loaders(opt, seed, rank, world_size, num_gpu):
    """``(train loader, its EnlargedSampler, [(val loader, its options)])`` of a training run's options: the
    ``datasets:train`` entry (pinned batches for ``prefetch_mode: cuda`` on a GPU) and every ``datasets:val*``."""
    train_opt = opt['datasets']['train']
    if check_prefetch_mode(train_opt.get('prefetch_mode')) == 'cuda' and num_gpu:
        train_opt = dict(train_opt, pin_memory=train_opt.get('pin_memory', True))  # the loader pins each batch
    train_set = build_dataset(train_opt, key_path='datasets:train')
    sampler = EnlargedSampler(train_set, world_size, rank, ratio=train_opt.get('dataset_enlarge_ratio', 1),
                              seed=seed)
    batch = train_opt['batch_size_per_gpu']
    if len(sampler) < batch:
        raise OptionError(f"datasets:train:batch_size_per_gpu: {batch} is larger than the {len(sampler)} training "
                          f"samples per process in {train_opt.get('dataroot_gt')}")
    loader = build_dataloader(train_set, train_opt, num_gpu, world_size > 1, sampler=sampler, seed=seed)
    val_loaders = []
    for phase, ds_opt in opt['datasets'].items():
        if phase.startswith('val'):
            val_set = build_dataset(ds_opt, key_path=f'datasets:{phase}')
            val_loaders.append((build_dataloader(val_set, ds_opt, num_gpu, world_size > 1, sampler=None, seed=seed),
                                ds_opt))
    return loader, sampler, val_loaders
