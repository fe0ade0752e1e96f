"""The device-side skip of a non-finite step (basicsr/models/step_guard.py) leaves exactly what the host-side skip
leaves: weights, AdamW's moments and step counts, the EMA and its count, bit for bit; what is counted against
train:max_nan_steps; and the gradient scaler's overflow skip, which is not counted."""
import pytest
import torch

from basicsr.models import build_model
from basicsr.models import step_guard
from basicsr.models.step_guard import NonFiniteGuard, Rollback, poisoned
from basicsr.utils.options import parse
from train_helpers import base_options, write_options


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU (scripts/gpu_checks.sh runs it)')


def _model(data, tmp_path, name, host_decides=False, device='cpu'):
    """A tiny NAFSSR model with mixup, drop-path and EMA (every stream a step touches); ``host_decides``: every
    step takes the path that reads the non-finite flag on the host (what every step did before issue 20)."""
    opt = base_options(data, name)
    opt['train']['warmup_iter'] = -1
    if device == 'cuda':
        opt['num_gpu'] = 1
        opt['train']['cudnn_benchmark'] = False  # the same convolution algorithms in both models
    torch.manual_seed(0)
    model = build_model(parse(write_options(tmp_path, opt), is_train=True, root_path=str(tmp_path)))
    if host_decides:
        model._rollback_for = lambda optimizer, ema: None
    return model


def _batches(n):
    g = torch.Generator().manual_seed(1)
    return [{'lq': torch.rand(2, 6, 4, 12, generator=g), 'gt': torch.rand(2, 6, 8, 24, generator=g)}
            for _ in range(n)]


def _train(model, batches, nan_at=(), inf_grad_at=()):
    """Steps 1..len(batches); the loss is NaN at ``nan_at``; a gradient is +inf (the loss finite) at
    ``inf_grad_at``. Returns the taken flags."""
    torch.manual_seed(5)  # drop-path draws from torch's generator, mixup from the model's: the same for every model
    taken, weight = [], next(model.net_g.parameters())
    for it, batch in enumerate(batches, 1):
        model.cri_pix.loss_weight = float('nan') if it in nan_at else 1.0
        hook = weight.register_hook(lambda g: g * float('inf')) if it in inf_grad_at else None
        model.update_learning_rate(it)
        model.feed_data({k: v.to(model.device) for k, v in batch.items()})
        taken.append(bool(model.optimize_parameters(it)))
        if hook is not None:
            hook.remove()
    return taken


def _everything(model):
    """Weights, optimizer state (moments and step counts) and EMA (weights and count) as one flat list."""
    out = [p.detach().clone() for p in model.net_g.parameters()]
    for state in model.optimizer.state.values():
        out += [v.clone() for v in state.values()]
    out += [t.detach().clone() for t in model.net_ema.state_dict().values()]
    return out


def _assert_identical(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and torch.equal(x, y)


@pytest.mark.parametrize('chunk_bytes', [None, 256])  # 256: the restore in many chunks of a few tensors
@pytest.mark.parametrize('where', ['cpu', pytest.param('cuda', marks=CUDA)])
def test_device_skip_equals_host_skip(tiny_data, tmp_path, where, monkeypatch, chunk_bytes):
    monkeypatch.setattr(torch.backends.cudnn, 'deterministic', True)  # CUDA: no atomics in the weight gradients
    if chunk_bytes:
        monkeypatch.setattr(step_guard, 'RESTORE_CHUNK_BYTES', chunk_bytes)
    batches = _batches(12)
    device = _model(tiny_data, tmp_path, 'device', device=where)
    host = _model(tiny_data, tmp_path, 'host', host_decides=True, device=where)
    assert device.device.type == where
    nan_at, inf_at = (7, 8), (10,)
    assert _train(device, batches, nan_at, inf_at) == _train(host, batches, nan_at, inf_at)
    assert device._rollbacks  # the later steps did take the device path
    _assert_identical(_everything(device), _everything(host))
    assert int(device.net_ema.n_averaged) == 12 - 3
    assert device.optimizer.state[next(device.net_g.parameters())]['step'] == 12 - 3
    # counted: 2 in a row at 7-8, then 1 at 10; the report gives the iterations and resets the window
    assert device.nan_guard.counts.tolist() == [0, 3, 7, 10, 0]
    assert device.nan_guard.report() == 0
    assert device.nan_guard.counts.tolist() == [0, 0, 0, 0, 0]


def test_skipped_steps_change_nothing_and_the_limit_iteration_is_kept(tiny_data, tmp_path):
    model = _model(tiny_data, tmp_path, 'limit')
    model.nan_guard.limit = 2
    batches = _batches(8)
    _train(model, batches[:5])
    before = _everything(model)
    assert _train_from(model, batches[5:7], first=6, nan_at=(6, 7)) == [False, False]
    _assert_identical(before, _everything(model))
    assert _train_from(model, batches[7:], first=8, nan_at=()) == [True]
    assert model.nan_guard.counts.tolist() == [0, 2, 6, 7, 7]  # the limit (2 in a row) was reached at iter 7


def _train_from(model, batches, first, nan_at):
    taken = []
    for it, batch in enumerate(batches, first):
        model.cri_pix.loss_weight = float('nan') if it in nan_at else 1.0
        model.update_learning_rate(it)
        model.feed_data(batch)
        out = model.optimize_parameters(it)
        taken.append(bool(out))
        if it in nan_at:
            assert model.log_dict and all(torch.isnan(v) for v in model.log_dict.values())
    return taken


def test_scaler_overflow_is_skipped_but_not_counted(tiny_data, tmp_path):
    """fp16 gradient scaling (CUDA in train.py; torch's CPU GradScaler here): an overflow skips the step and
    backs the scale off, as GradScaler does, without counting against train:max_nan_steps."""
    model = _model(tiny_data, tmp_path, 'scaler')
    model.scaler = torch.amp.GradScaler('cpu', init_scale=2.0 ** 8)
    batches = _batches(6)
    assert _train(model, batches[:4]) == [True] * 4
    before = _everything(model)
    assert _train_from_with_inf(model, batches[4:5], 5) == [False]
    _assert_identical(before, _everything(model))
    assert model.scaler.get_scale() == 2.0 ** 7
    assert model.nan_guard.counts.tolist()[:2] == [0, 0]


def _train_from_with_inf(model, batches, first):
    weight = next(model.net_g.parameters())
    taken = []
    for it, batch in enumerate(batches, first):
        hook = weight.register_hook(lambda g: g * float('inf'))
        model.update_learning_rate(it)
        model.feed_data(batch)
        taken.append(bool(model.optimize_parameters(it)))
        hook.remove()
    return taken


def test_rollback_restores_channels_last_and_scalars_where_flagged():
    weights = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last)
    step, count = torch.tensor(3.0), torch.tensor(7)
    rollback = Rollback([weights, step, count])
    before = [weights.clone(), step.clone(), count.clone()]
    for flag, expect_restored in ((torch.tensor(True), True), (torch.tensor(False), False)):
        rollback.capture()
        weights.mul_(float('nan'))
        step.add_(1)
        count.add_(1)
        changed = [weights.clone(), step.clone(), count.clone()]
        rollback.restore_where(flag)
        expected = before if expect_restored else changed
        for t, e in zip((weights, step, count), expected):
            assert torch.equal(t, e) or (torch.isnan(t).all() and torch.isnan(e).all())
    assert weights.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize('chunk_bytes', [None, 100])
def test_rollback_restores_every_chunk_and_holds_one_copy(monkeypatch, chunk_bytes):
    """The restore gathers the values after the step a chunk of tensors at a time: the rollback holds one snapshot
    plus a scratch of at most RESTORE_CHUNK_BYTES (a larger tensor alone sets it), and every tensor of every chunk is
    put back where flagged, left as stepped else."""
    if chunk_bytes:  # 25 float32 elements: chunks [3], [40], [7, 1], [30], [25]; the largest, 40, sets the scratch
        monkeypatch.setattr(step_guard, 'RESTORE_CHUNK_BYTES', chunk_bytes)
    g = torch.Generator().manual_seed(0)
    singles = [torch.randn(n, generator=g) for n in (3, 40, 7, 1, 30, 25)]
    doubles = [torch.randn(5, generator=g, dtype=torch.float64)]
    rollback = Rollback(singles + doubles)
    assert rollback.nbytes == 4 * 106 + 4 * (40 if chunk_bytes else 106) + 8 * 5 * 2
    before = [t.clone() for t in singles + doubles]
    for flag, expect_restored in ((torch.tensor(True), True), (torch.tensor(False), False)):
        rollback.capture()
        for t in singles + doubles:
            t.mul_(3).add_(1)
        changed = [t.clone() for t in singles + doubles]
        rollback.restore_where(flag)
        for t, e in zip(singles + doubles, before if expect_restored else changed):
            assert torch.equal(t, e)


@pytest.mark.parametrize('bad', [False, True])
def test_poisoned_loss_gives_nan_gradients_only_when_bad(bad):
    w = torch.randn(3, requires_grad=True)
    total = (w * w).sum()
    out = poisoned(total, torch.tensor(bad))
    assert torch.equal(out, total.detach()) if not bad else torch.isnan(out)
    out.backward()
    assert torch.isnan(w.grad).all() if bad else torch.equal(w.grad, 2 * w.detach())


def test_guard_counts_in_a_row_and_reports_once(caplog):
    guard = NonFiniteGuard(3, 'cpu')
    for it, bad in enumerate([True, False, True, True, True, False], 1):
        guard.record(torch.tensor(bad), it)
    with caplog.at_level('WARNING', logger='basicsr'):
        assert guard.report() == 5  # 3 in a row reached at iter 5
    assert 'iters 1-5' in caplog.text and 'skipped those 4 steps' in caplog.text
    caplog.clear()
    guard.record(torch.tensor(False), 7)
    assert guard.report() == 5 and caplog.text == ''
