"""train.py's steady-state iteration as it runs on a GPU (the CUDA prefetcher feeding the step; mixup, drop-path,
EMA, batch augmentations; fp32, bf16 and fp16 with gradient scaling) makes no synchronising call: on CUDA under ``torch.cuda.set_sync_debug_mode('error')``, on
the CPU (the same code, the prefetcher's copies plain) with the host-read counter of host_sync_counter.py. The CUDA
rows are skipped without a GPU; scripts/gpu_checks.sh runs them."""
import pytest
import torch

from basicsr.data import build_dataloader, build_dataset
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.data.prefetch_dataloader import build_prefetcher
from basicsr.models import build_model
from basicsr.utils.options import parse
from host_sync_counter import StepCounter
from train_helpers import base_options, write_options

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU (scripts/gpu_checks.sh runs it)')
PRIMING, STEADY = 12, 10  # drop-path leaves some blocks without optimizer state for the first iterations


def _run(data, tmp_path, device, amp, monkeypatch):
    opt = base_options(data, f'steady_{device}_{amp}', total_iter=PRIMING + STEADY)
    opt['num_gpu'] = 1 if device == 'cuda' else 0
    opt['datasets']['train'].update(prefetch_mode='cuda', dataset_enlarge_ratio=8, pin_memory=device == 'cuda')
    opt['train']['batch_augment'] = {'mixup': {'prob': 0.3}, 'cutmix': {'prob': 0.3}, 'cutmixup': {'prob': 0.3}}
    if amp:
        opt['train'].update(use_amp=True, amp_dtype=amp)
    opt = parse(write_options(tmp_path, opt), is_train=True, root_path=str(tmp_path))
    train_opt = opt['datasets']['train']
    dataset = build_dataset(train_opt, key_path='datasets:train')
    sampler = EnlargedSampler(dataset, 1, 0, ratio=8, seed=7)
    loader = build_dataloader(dataset, train_opt, opt['num_gpu'], False, sampler=sampler, seed=7)
    model = build_model(opt)
    assert model.device.type == device
    prefetcher = build_prefetcher(loader, 'cuda', model.device)
    sampler.set_epoch(0)
    prefetcher.reset()
    counter = StepCounter(PRIMING + 1, PRIMING + STEADY)
    if device == 'cpu':
        counter.install(monkeypatch)

    def iteration(it):
        model.update_learning_rate(it)
        model.feed_data(prefetcher.next())
        model.optimize_parameters(it)

    for it in range(1, PRIMING + 1):
        iteration(it)
    if device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode('error')  # any synchronising CUDA call raises
    try:
        for it in range(PRIMING + 1, PRIMING + STEADY + 1):
            iteration(it)
    finally:
        counter.close()
        if device == 'cuda':
            torch.cuda.set_sync_debug_mode('default')
    assert counter.device_waits(PRIMING + 1, PRIMING + STEADY) == {
        it: [] for it in range(PRIMING + 1, PRIMING + STEADY + 1)}
    assert model.nan_guard.report() == 0 and model.nan_steps == 0
    assert all(torch.isfinite(torch.tensor(v)) for v in model.reduced_losses().values())
    return model


@pytest.mark.parametrize('amp', [None, 'bf16'])
def test_steady_state_on_the_cpu(tiny_data, tmp_path, amp, monkeypatch):
    _run(tiny_data, tmp_path, 'cpu', amp, monkeypatch)


@CUDA
@pytest.mark.parametrize('amp', [None, 'bf16', 'fp16'])
def test_steady_state_on_cuda_makes_no_synchronising_call(tiny_data, tmp_path, amp, monkeypatch):
    model = _run(tiny_data, tmp_path, 'cuda', amp, monkeypatch)
    state = model.optimizer.state[next(model.net_g.parameters())]
    assert state['step'].is_cuda  # capturable AdamW: the step count rolls back on the GPU
    assert (model.scaler is not None) == (amp == 'fp16')
