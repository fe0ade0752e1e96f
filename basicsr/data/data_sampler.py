"""The training sampler: a seeded, resumable permutation of an (optionally enlarged) dataset, split over ranks.

Each yielded item is ``(dataset_index, sample_seed)``. The permutation depends only on ``(seed, epoch)``, and the
sample seed only on ``(seed, epoch, position in the epoch)``; the dataset draws every augmentation from
``numpy.random.default_rng(sample_seed)``. So a run resumed mid-epoch with ``set_start(n)`` sees exactly the
samples, with exactly the augmentations, that the interrupted run would have seen next, whatever the number of
data-loader workers.
"""
import math

import numpy as np
from torch.utils.data import Sampler


class EnlargedSampler(Sampler):
    """BasicSR's enlarged sampler: an epoch visits ``ratio`` x the dataset, shared out over ``num_replicas`` ranks.

    ``len()`` is the number of samples per rank and epoch (the epoch is padded so that every rank gets as many).
    """

    def __init__(self, dataset, num_replicas, rank, ratio=1, seed=0):
        if len(dataset) == 0:
            raise ValueError('EnlargedSampler: the dataset is empty')
        if not 0 <= rank < num_replicas:
            raise ValueError(f'EnlargedSampler: rank {rank} is not in [0, {num_replicas})')
        self.dataset_size = len(dataset)
        self.num_replicas, self.rank, self.seed = num_replicas, rank, int(seed)
        self.num_samples = math.ceil(self.dataset_size * ratio / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def set_start(self, n):
        """Make the next iteration skip the first ``n`` samples of this rank's epoch (resume mid-epoch)."""
        if not 0 <= n <= self.num_samples:
            raise ValueError(f'EnlargedSampler.set_start: {n} is not in [0, {self.num_samples}]')
        self.start = int(n)

    def epoch_plan(self):
        """This rank's whole epoch as two arrays: dataset indices and sample seeds."""
        order = np.random.default_rng([self.seed, self.epoch, 0]).permutation(self.total_size) % self.dataset_size
        seeds = np.random.default_rng([self.seed, self.epoch, 1]).integers(0, 2**63 - 1, size=self.total_size)
        mine = slice(self.rank, self.total_size, self.num_replicas)
        return order[mine], seeds[mine]

    def __iter__(self):
        indices, seeds = self.epoch_plan()
        start, self.start = self.start, 0
        for index, seed in zip(indices[start:].tolist(), seeds[start:].tolist()):
            yield index, seed

    def __len__(self):
        return self.num_samples
