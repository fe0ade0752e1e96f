"""datasets:train:prefetch_mode: the CUDA prefetcher hands out the loader's batches in the same order as the CPU
one, across epochs and across a mid-epoch resume (although it holds one batch ahead); without a GPU it falls back
with one warning; an unknown mode is refused before anything is written."""
import os
import sys

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from basicsr.data.data_sampler import EnlargedSampler
from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher, build_prefetcher
from basicsr.utils.options import OptionError
from train_helpers import ROOT, base_options, write_options

sys.path.insert(0, ROOT)
import train as train_script  # noqa: E402

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU (scripts/gpu_checks.sh runs it)')
BATCH = 2


class Numbered(Dataset):
    """Sample i of the sampler's (index, seed) plan: its index and a value drawn from its seed, as the stereo
    datasets draw their augmentations."""

    def __len__(self):
        return 10

    def __getitem__(self, item):
        index, seed = item
        value = torch.rand(3, generator=torch.Generator().manual_seed(seed % 2**31))
        return {'lq': torch.full((2, 2), float(index)), 'gt': value, 'name': f'{index}'}


def _loader():
    sampler = EnlargedSampler(Numbered(), 1, 0, ratio=1, seed=3)
    return DataLoader(Numbered(), batch_size=BATCH, sampler=sampler, drop_last=True), sampler


def _epochs(prefetcher, sampler, epochs, start=(0, 0)):
    """Every batch handed out, as (epoch, lq, gt, names), from ``start`` (epoch, batches done) on."""
    seen = []
    for epoch in range(start[0], epochs):
        sampler.set_epoch(epoch)
        sampler.set_start(start[1] * BATCH if epoch == start[0] else 0)
        prefetcher.reset()
        while (batch := prefetcher.next()) is not None:
            seen.append((epoch, batch['lq'].cpu(), batch['gt'].cpu(), batch['name']))
    return seen


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x[0] == y[0] and torch.equal(x[1], y[1]) and torch.equal(x[2], y[2]) and x[3] == y[3]


@pytest.mark.parametrize('device', ['cpu', pytest.param('cuda', marks=CUDA)])
def test_same_batches_across_epochs_and_a_mid_epoch_resume(device):
    loader, sampler = _loader()
    reference = _epochs(CPUPrefetcher(loader), sampler, 2)
    assert len(reference) == 2 * 10 // BATCH
    prefetcher = CUDAPrefetcher(loader, device)
    _same(_epochs(prefetcher, sampler, 2), reference)

    # interrupted after 3 batches of epoch 1, while the 4th is already loaded ahead: the state says 3 are done
    sampler.set_epoch(1)
    sampler.set_start(0)
    prefetcher.reset()
    handed = [prefetcher.next() for _ in range(3)]
    assert all(b['lq'].device.type == torch.device(device).type for b in handed)
    resumed = CUDAPrefetcher(loader, device)
    _same(_epochs(resumed, sampler, 2, start=(1, 3)), reference[5 + 3:])


def test_cuda_mode_without_a_gpu_falls_back_with_one_warning(caplog):
    loader, _ = _loader()
    with caplog.at_level('WARNING', logger='basicsr'):
        prefetcher = build_prefetcher(loader, 'cuda', torch.device('cpu'))
    assert type(prefetcher) is CPUPrefetcher
    assert [r.getMessage() for r in caplog.records] == [
        'datasets:train:prefetch_mode: cuda needs a GPU and this run is on the CPU: batches are loaded without the '
        'CUDA prefetcher']
    with pytest.raises(OptionError, match=r"datasets:train:prefetch_mode: expected cuda, cpu or nothing \(~\), got "
                                          r"'gpu'"):
        build_prefetcher(loader, 'gpu', torch.device('cpu'))


def test_unknown_mode_is_refused_before_anything_is_written(tiny_data, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('STEREO_SR_TRACEBACK', raising=False)
    opt = base_options(tiny_data, 'badprefetch')
    opt['datasets']['train']['prefetch_mode'] = 'gpu'
    monkeypatch.setattr(sys, 'argv', ['train.py', '-opt', write_options(tmp_path, opt)])
    with pytest.raises(SystemExit) as exc:
        train_script.main()
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["train.py: error: datasets:train:prefetch_mode: expected cuda, cpu or nothing (~), got 'gpu'"]
    assert not os.path.exists(tmp_path / 'experiments' / 'badprefetch')


@CUDA
def test_cuda_batches_are_pinned_copies_that_do_not_synchronise():
    loader, sampler = _loader()
    prefetcher = CUDAPrefetcher(loader, 'cuda')
    sampler.set_epoch(0)
    prefetcher.reset()
    first = prefetcher.next()  # the first batch of an epoch is loaded when asked for
    torch.cuda.set_sync_debug_mode('error')
    try:
        batches = [prefetcher.next() for _ in range(3)]
    finally:
        torch.cuda.set_sync_debug_mode('default')
    assert all(b['lq'].is_cuda and b['gt'].is_cuda for b in [first, *batches])
    assert prefetcher.stream is not None and prefetcher._ahead['lq'].is_cuda
