"""StereoSRGANModel's steady-state step reads nothing back from the device and calls no collective of its own, as
the fidelity model's (issue 20, test_sync_free_step.py): the generator's and the discriminator's non-finite skips
are decided on the device, the losses read back only where train.py prints, validates or saves. The CUDA row
(skipped without a GPU; scripts/gpu_checks.sh runs it) checks the same on a GPU under
``torch.cuda.set_sync_debug_mode('error')``."""
import sys

import pytest
import torch

from basicsr.data import build_dataloader, build_dataset
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.data.prefetch_dataloader import build_prefetcher
from basicsr.models import build_model
from basicsr.utils.options import parse
from host_sync_counter import StepCounter, device_waits
from test_gan import gan_options
from test_sync_free_step import FIRST, LAST, TOTAL, counted_torchrun
from train_helpers import ROOT, write_options

sys.path.insert(0, ROOT)
import train as train_script  # noqa: E402

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU (scripts/gpu_checks.sh runs it)')


def _options(tiny_data, name, **train):
    opt = gan_options(tiny_data, name, total_iter=TOTAL, **train)
    opt['datasets']['train']['dataset_enlarge_ratio'] = 8  # >= 24 iterations per epoch: no epoch boundary
    opt['logger'].update(print_freq=50, save_checkpoint_freq=50)
    return opt


@pytest.fixture
def one_thread():
    """One intra-op thread, as the subprocess tests run (tiny ops on a shared machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(data, tmp_path, name, host_decides=False):
    """A tiny GAN (EMA, mixup, drop-path; G from iteration 3); ``host_decides``: every step decided on the host."""
    opt = gan_options(data, name, total_iter=12)
    opt['train']['warmup_iter'] = -1
    torch.manual_seed(0)
    model = build_model(parse(write_options(tmp_path, opt), is_train=True, root_path=str(tmp_path)))
    if host_decides:
        model._rollback_for = lambda optimizer, ema: None
    return model


def _train(model, iterations, d_inf_at, g_inf_at, monkeypatch):
    """Iterations 1..``iterations`` on fixed batches; D's real loss (``d_inf_at``) or G's adversarial loss
    (``g_inf_at``) +inf there, their gradients finite. Returns the taken flags."""
    g = torch.Generator().manual_seed(1)
    batches = [{'lq': torch.rand(2, 6, 4, 12, generator=g), 'gt': torch.rand(2, 6, 8, 24, generator=g)}
               for _ in range(iterations)]
    original, it = model.cri_gan.forward, 0

    def gan_loss(pred, target_is_real, is_disc=False):
        inf = it in (d_inf_at if is_disc else g_inf_at) and target_is_real
        return original(pred, target_is_real, is_disc=is_disc) + (float('inf') if inf else 0.0)

    monkeypatch.setattr(model.cri_gan, 'forward', gan_loss)
    torch.manual_seed(5)
    taken = []
    for it, batch in enumerate(batches, 1):
        model.update_learning_rate(it)
        model.feed_data(batch)
        taken.append(bool(model.optimize_parameters(it)))
    return taken


def _everything(model):
    """G, D, both optimizers' states and the EMA as one flat list."""
    out = [t.detach().clone() for t in [*model.net_g.state_dict().values(), *model.net_d.state_dict().values()]]
    for optimizer in (model.optimizer, model.optimizer_d):
        out += [v.clone() for state in optimizer.state.values() for v in state.values()]
    return out + [t.detach().clone() for t in model.net_ema.state_dict().values()]


def test_gan_device_skip_equals_host_skip(tiny_data, tmp_path, monkeypatch, one_thread):
    """D's loss +inf at 7: D's step skipped, G's stands; G's +inf at 9: both skipped; the same as deciding on the
    host, bit for bit, each iteration counted once (2 skipped, not in a row)."""
    device = _model(tiny_data, tmp_path, 'device')
    host = _model(tiny_data, tmp_path, 'host', host_decides=True)
    expected = [True] * 12
    expected[6] = expected[8] = False
    assert _train(device, 12, (7,), (9,), monkeypatch) == _train(host, 12, (7,), (9,), monkeypatch) == expected
    assert device._rollbacks  # the later steps took the device path
    a, b = _everything(device), _everything(host)
    assert len(a) == len(b) and all(x.dtype == y.dtype and torch.equal(x, y) for x, y in zip(a, b))
    assert int(device.net_ema.n_averaged) == 12 - 2 - 1  # G steps from iteration 3, not at 9
    assert device.optimizer_d.state[next(device.net_d.parameters())]['step'] == 12 - 2
    assert device.nan_guard.counts.tolist() == [0, 2, 7, 9, 0]


def test_gan_steady_state_iterations_read_nothing_back(tiny_data, tmp_path, monkeypatch, one_thread):
    """With G updated every other iteration (net_d_iters 2), EMA, mixup and drop-path."""
    monkeypatch.chdir(tmp_path)
    opt = write_options(tmp_path, _options(tiny_data, 'gan_syncfree', net_d_iters=2))
    counter = StepCounter(FIRST, TOTAL)
    counter.install(monkeypatch)
    try:
        assert train_script.run(['-opt', opt]) == 0
    finally:
        counter.close()
    assert counter.device_waits(FIRST, LAST) == {it: [] for it in range(FIRST, LAST + 1)}
    assert counter.device_waits(TOTAL, TOTAL)[TOTAL]  # the last iteration reads the guard back: the counter sees it


def test_gan_two_processes_agree_without_collectives(tiny_data, tmp_path):
    """Under torchrun (2 gloo processes) no collective beyond DDP's gradient all-reduces and no host read in the
    steady-state iterations, even when process 1's generator loss is +inf with finite gradients at iteration 15
    (both processes skip that iteration's G and D steps) and process 0's discriminator loss at 17 (both skip that D
    step): G and D end equal on both, the skips are logged."""
    opt = _options(tiny_data, 'gan_syncfree_ddp')
    opt['network_g']['drop_path_rate'] = 0.0  # see test_sync_free_step.py: DDP's find_unused_parameters reads back
    result, ranks = counted_torchrun(opt, tmp_path, NAN_AT='1:15', NAN_D_AT='0:17')
    assert ranks[0]['weights'] == ranks[1]['weights']
    assert ranks[0]['weights_d'] == ranks[1]['weights_d']
    assert 'iters 15-17: the loss or its gradients were NaN/inf; skipped those 2 steps' in result.stdout + result.stderr


def steady_state(data, tmp_path, device, priming=12, steady=10):
    """The model API as train.py drives it, fed by the CUDA prefetcher (plain copies on the CPU): ``priming``
    iterations, then ``steady`` more, on a GPU with any synchronising CUDA call raising. Returns the model."""
    opt = _options(data, f'gan_steady_{device}', net_d_iters=2)
    opt['num_gpu'] = 1 if device == 'cuda' else 0
    opt['datasets']['train'].update(prefetch_mode='cuda', pin_memory=device == 'cuda')
    opt = parse(write_options(tmp_path, opt), is_train=True, root_path=str(tmp_path))
    dataset = build_dataset(opt['datasets']['train'], key_path='datasets:train')
    sampler = EnlargedSampler(dataset, 1, 0, ratio=8, seed=7)
    loader = build_dataloader(dataset, opt['datasets']['train'], opt['num_gpu'], False, sampler=sampler, seed=7)
    model = build_model(opt)
    assert model.device.type == device
    prefetcher = build_prefetcher(loader, 'cuda', model.device)
    sampler.set_epoch(0)
    prefetcher.reset()
    for it in range(1, priming + steady + 1):
        strict = device == 'cuda' and it > priming
        if strict:
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode('error')  # any synchronising CUDA call raises
        try:
            model.update_learning_rate(it)
            model.feed_data(prefetcher.next())
            model.optimize_parameters(it)
        finally:
            if strict:
                torch.cuda.set_sync_debug_mode('default')
    assert model.nan_guard.report() == 0
    assert all(torch.isfinite(torch.tensor(v)) for v in model.reduced_losses().values())
    return model


@CUDA
def test_gan_steady_state_on_cuda_makes_no_synchronising_call(tiny_data, tmp_path):
    model = steady_state(tiny_data, tmp_path, 'cuda')
    for optimizer, net in ((model.optimizer, model.net_g), (model.optimizer_d, model.net_d)):
        assert optimizer.state[next(net.parameters())]['step'].is_cuda  # capturable: the count rolls back on the GPU
