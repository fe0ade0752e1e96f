"""EnlargedSampler determinism and resume, the data loader, and the CPU prefetcher."""
import numpy as np
import pytest
import torch

from basicsr.data import build_dataloader, build_dataset, layout
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.data.prefetch_dataloader import CPUPrefetcher


class Sized:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def test_permutation_is_a_function_of_seed_and_epoch():
    s = EnlargedSampler(Sized(10), num_replicas=1, rank=0, seed=7)
    first = list(s)
    assert sorted(i for i, _ in first) == list(range(10))
    assert list(s) == first
    s.set_epoch(1)
    assert list(s) != first
    assert list(EnlargedSampler(Sized(10), 1, 0, seed=8)) != first
    assert len({seed for _, seed in first}) == 10


def test_enlarged_epoch_and_ranks():
    s = EnlargedSampler(Sized(10), num_replicas=3, rank=0, ratio=2)
    assert len(s) == 7 and s.total_size == 21  # 10 x 2 = 20 rounded up to a multiple of 3 ranks (BasicSR's rule)
    ranks = [list(EnlargedSampler(Sized(10), 3, r, ratio=2)) for r in range(3)]
    assert all(len(r) == 7 for r in ranks)
    counts = np.bincount([i for r in ranks for i, _ in r], minlength=10)
    assert counts.sum() == 21 and counts.min() >= 2


def test_ranks_interleave_the_single_process_epoch():
    # Same total size (12 divides by 1, 2, 3): rank r of k sees positions r, r+k, ... of the 1-process epoch,
    # with the same sample seeds, so augmentation does not depend on the number of processes.
    whole = list(EnlargedSampler(Sized(12), 1, 0, seed=3))
    for k in (2, 3):
        for r in range(k):
            assert list(EnlargedSampler(Sized(12), k, r, seed=3)) == whole[r::k]


def test_set_start_skips_once():
    s = EnlargedSampler(Sized(9), 1, 0, seed=1)
    s.set_epoch(4)
    whole = list(s)
    s.set_start(5)
    assert len(s) == 9
    assert list(s) == whole[5:]
    assert list(s) == whole  # the skip applies to one iteration only
    with pytest.raises(ValueError):
        s.set_start(10)


def _train_opt(sample_root, **kw):
    opt = {'type': 'PairedStereoImageDataset', 'phase': 'train', 'scale': 4, 'name': 'sample',
           'dataroot_gt': layout.patches_dir(sample_root, 4), 'dataroot_lq': layout.patches_dir(sample_root, 4),
           'gt_size_h': 48, 'gt_size_w': 96, 'use_hflip': True, 'use_vflip': True, 'flip_RGB': True,
           'batch_size_per_gpu': 3, 'num_worker_per_gpu': 0}
    opt.update(kw)
    return opt


def _batches(loader, n):
    out = []
    for i, batch in enumerate(loader):
        if i == n:
            break
        out.append(batch)
    return out


def test_batches_do_not_depend_on_workers_or_resume(sample_root):
    opt = _train_opt(sample_root)
    ds = build_dataset(opt)
    sampler = EnlargedSampler(ds, 1, 0, seed=5)
    ref = _batches(build_dataloader(ds, opt, num_gpu=0, dist=False, sampler=sampler, seed=5), 4)
    assert ref[0]['lq'].shape == (3, 6, 12, 24) and ref[0]['gt'].shape == (3, 6, 48, 96)
    opt2 = _train_opt(sample_root, num_worker_per_gpu=2)
    two = _batches(build_dataloader(ds, opt2, num_gpu=0, dist=False, sampler=sampler, seed=5), 4)
    assert len(ref) == len(two) == 4
    for a, b in zip(ref, two):
        assert torch.equal(a['gt'], b['gt']) and a['name'] == b['name']
    sampler.set_start(6)  # resume after two batches of 3
    resumed = _batches(build_dataloader(ds, opt, num_gpu=0, dist=False, sampler=sampler, seed=5), 2)
    assert len(resumed) == len(ref[2:]) == 2
    for a, b in zip(ref[2:], resumed):
        assert torch.equal(a['lq'], b['lq']) and a['name'] == b['name']


def test_eval_loader_is_in_order_with_batch_one(sample_root):
    opt = {'type': 'PairedStereoImageDataset', 'phase': 'val', 'scale': 2,
           'dataroot_gt': f'{sample_root}/test/Motorcycle/hr', 'dataroot_lq': f'{sample_root}/test/Motorcycle/lr_x2'}
    loader = build_dataloader(build_dataset(opt, 'datasets:val'), opt, num_gpu=0, dist=False)
    prefetcher = CPUPrefetcher(loader)
    batch = prefetcher.next()
    assert batch['lq'].shape == (1, 6, 90, 370) and batch['name'] == ['motorcycle_bottom']
    assert prefetcher.next() is None
    prefetcher.reset()
    assert prefetcher.next() is not None


def test_loader_option_errors(sample_root):
    opt = _train_opt(sample_root, batch_size_per_gpu=0)
    ds = build_dataset(opt)
    with pytest.raises(ValueError, match='datasets:train:batch_size_per_gpu: expected a positive integer'):
        build_dataloader(ds, opt, num_gpu=0, dist=False)
