"""Training-loader throughput, PNG folders vs LMDB, 1 and 2 workers: ``python scripts/benchmark_data.py``.

Uses the built-in sample (built first if missing) or ``--patches DIR`` (a ``patches_x4``-style folder; its LMDB is
made next to it in a temporary folder). Prints samples/s of the x4 training loader (NAFSSR's augmentations,
batch 4) after one warm-up batch.
"""
import argparse
import os
import sys
import tempfile
import time

from basicsr.data import build_dataloader, build_dataset
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.data.lmdb_util import make_lmdb_from_folder
from basicsr.data.sample import make_sample
from basicsr.toolbox import REPO
from basicsr.utils.errors import run_main


def throughput(opt, num_workers, num_batches):
    opt = dict(opt, num_worker_per_gpu=num_workers)
    dataset = build_dataset(opt)
    sampler = EnlargedSampler(dataset, 1, 0, ratio=100, seed=0)
    loader = build_dataloader(dataset, opt, num_gpu=0, dist=False, sampler=sampler, seed=0)
    it = iter(loader)
    next(it)  # warm-up: worker start-up and first reads
    start = time.perf_counter()
    for _ in range(num_batches):
        next(it)
    elapsed = time.perf_counter() - start
    del it
    return num_batches * opt['batch_size_per_gpu'] / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--patches', help='patch folder (default: the sample\'s patches_x4)')
    parser.add_argument('--scale', type=int, default=4)
    parser.add_argument('--batches', type=int, default=60, help='timed batches per configuration')
    args = parser.parse_args()
    patches = args.patches
    if patches is None:
        sample = os.path.join(REPO, 'datasets', 'sample')
        patches = os.path.join(sample, f'patches_x{args.scale}')
        if not os.path.isdir(patches):
            make_sample(sample)
    s = args.scale
    base = {'type': 'PairedStereoImageDataset', 'phase': 'train', 'scale': s, 'name': 'bench',
            'gt_size_h': 30 * s, 'gt_size_w': 90 * s, 'use_hflip': True, 'use_vflip': True, 'flip_RGB': True,
            'batch_size_per_gpu': 4}
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, 'patches.lmdb')
        make_lmdb_from_folder(patches, db, show_progress=False)
        backends = {'disk (PNG)': dict(base, dataroot_gt=patches, dataroot_lq=patches),
                    'lmdb': dict(base, dataroot_gt=db, dataroot_lq=db, io_backend={'type': 'lmdb'})}
        print(f'x{s} training loader on {patches}, batch 4, {args.batches} batches, {os.cpu_count()} CPU cores')
        print(f'{"backend":<12} {"workers":>7} {"samples/s":>10}')
        for name, opt in backends.items():
            for workers in (1, 2):
                print(f'{name:<12} {workers:>7} {throughput(opt, workers, args.batches):>10.0f}')
    return 0


if __name__ == '__main__':
    sys.exit(run_main('benchmark_data.py', main))
