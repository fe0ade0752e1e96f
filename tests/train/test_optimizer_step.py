"""What the optimizer really gets at each iteration of a model built from options: the learning rate (cosine,
cosine with restarts, linear warm-up, as the release steps them) and the gradient after clipping."""
import copy
import math

import pytest
import torch

from basicsr.models import build_model
from basicsr.utils.options import parse
from train_helpers import base_options, write_options

BASE_LR, ETA_MIN = 1e-3, 1e-5


def _model(data, tmp_path, name, train_updates, drop=()):
    """A tiny NAFSSR model from options; no mixup, drop-path or EMA, so that one step is a plain function of the
    batch."""
    opt = base_options(data, name)
    opt['network_g']['drop_path_rate'] = 0.0
    opt['train'].update(mixup=False, ema_decay=None, warmup_iter=-1)
    for key in drop:
        opt['train'].pop(key, None)
    opt['train'].update(train_updates)
    torch.manual_seed(0)
    return build_model(parse(write_options(tmp_path, opt), is_train=True, root_path=str(tmp_path)))


def _batch():
    g = torch.Generator().manual_seed(1)
    return {'lq': torch.rand(2, 6, 4, 12, generator=g), 'gt': torch.rand(2, 6, 8, 24, generator=g)}


def _lrs_used(model, iters):
    """The lr of the optimizer's param group at the moment ``optimizer.step()`` runs, for iterations 1..iters, with
    train.py's order of calls (update_learning_rate, then the step)."""
    used = []
    step = model.optimizer.step

    def recording_step(*args, **kwargs):
        used.append(model.optimizer.param_groups[0]['lr'])
        return step(*args, **kwargs)

    model.optimizer.step = recording_step
    batch = _batch()
    for it in range(1, iters + 1):
        model.update_learning_rate(it)
        model.feed_data(batch)
        assert model.optimize_parameters(it)
    return used


def _cosine(t, period, weight=1.0):
    """Cosine annealing (SGDR, as BasicSR and torch): ``eta_min + w (base - eta_min) (1 + cos(pi t / T)) / 2``."""
    return ETA_MIN + weight * (BASE_LR - ETA_MIN) * (1 + math.cos(math.pi * t / period)) / 2


def _restart(t):
    """CosineAnnealingRestartLR with periods [4, 6] and restart weights [1, 0.5] (BasicSR): t in [0, 4] is the first
    period, t in (4, 10] the second, starting at 4 and scaled by 0.5."""
    return _cosine(t, 4) if t <= 4 else _cosine(t - 4, 6, 0.5)


SCHEDULES = {
    'cosine': ({'type': 'TrueCosineAnnealingLR', 'T_max': 9, 'eta_min': ETA_MIN}, lambda t: _cosine(t, 9)),
    'restart': ({'type': 'CosineAnnealingRestartLR', 'periods': [4, 6], 'restart_weights': [1, 0.5],
                 'eta_min': ETA_MIN}, _restart),
}


@pytest.mark.parametrize('warmup', [-1, 4])
@pytest.mark.parametrize('schedule', sorted(SCHEDULES))
def test_lr_used_at_each_iteration_matches_the_hand_formula(tiny_data, tmp_path, schedule, warmup):
    """Iteration i (from 1) uses the schedule at t = i - 1: the release steps the scheduler from the second
    iteration on. With ``train:warmup_iter`` W, iterations i < W use BasicSR's linear warm-up ``base_lr * i / W``
    instead, and iteration W continues on the schedule as if there had been no warm-up."""
    sched_opt, formula = SCHEDULES[schedule]
    model = _model(tiny_data, tmp_path, f'lr_{schedule}', {'optim_g': {'type': 'AdamW', 'lr': BASE_LR,
                                                                        'betas': [0.9, 0.9], 'weight_decay': 0.0},
                                                           'scheduler': sched_opt, 'warmup_iter': warmup})
    used = _lrs_used(model, 10)
    expected = [BASE_LR * i / warmup if i < warmup else formula(i - 1) for i in range(1, 11)]
    assert used == pytest.approx(expected, rel=1e-9)  # a closed form against torch's chained updates: rounding only
    if warmup > 0:
        assert used[0] == pytest.approx(BASE_LR / 4) and used[3] == pytest.approx(formula(3))


# ---------------------------------------------------------------- gradient clipping

SGD = {'optim_g': {'type': 'SGD', 'lr': 1.0}}  # plain SGD, lr 1: the step is exactly minus the applied gradient


def _applied_gradient(model):
    """One step on the fixed batch; returns (the raw gradient of the loss at the initial weights, the gradient the
    optimizer applied, read back from the weights: before - after)."""
    net = model.net_g
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    twin = copy.deepcopy(net)  # the manual step: autograd of the same loss, no clipping
    batch = _batch()
    twin.zero_grad()
    torch.nn.functional.mse_loss(twin(batch['lq']), batch['gt']).backward()
    raw = {k: p.grad.detach().clone() for k, p in twin.named_parameters()}
    model.feed_data(batch)
    assert model.optimize_parameters(1)
    applied = {k: before[k] - p.detach() for k, p in net.named_parameters()}
    return raw, applied


def _norm(grads):
    return torch.sqrt(sum((g.double() ** 2).sum() for g in grads.values())).item()


def _assert_scaled(applied, raw, factor):
    for key in raw:
        torch.testing.assert_close(applied[key], raw[key] * factor, rtol=1e-4, atol=1e-7)


def test_default_clips_the_gradient_norm_at_the_release_value(tiny_data, tmp_path):
    """With no clipping option, the gradient norm is clipped at 0.01 on every step, as the release's
    image_restoration_model.py does (``clip_grad_norm_(..., 0.01)``) although its option files never say so."""
    model = _model(tiny_data, tmp_path, 'clip_default', SGD, drop=('grad_clip_norm', 'use_grad_clip'))
    raw, applied = _applied_gradient(model)
    assert _norm(raw) > 0.05  # well above 0.01, so that clipping shows
    assert _norm(applied) == pytest.approx(0.01, rel=1e-4)  # clip_grad_norm_ scales by 0.01 / (norm + 1e-6)
    _assert_scaled(applied, raw, 0.01 / (_norm(raw) + 1e-6))  # same direction, only shorter


def test_grad_clip_norm_sets_the_norm_and_use_grad_clip_false_turns_clipping_off(tiny_data, tmp_path):
    raw, unclipped = _applied_gradient(_model(tiny_data, tmp_path, 'clip_off', {**SGD, 'use_grad_clip': False}))
    norm = _norm(raw)
    _assert_scaled(unclipped, raw, 1.0)  # the raw gradient, untouched

    _, applied = _applied_gradient(_model(tiny_data, tmp_path, 'clip_third', {**SGD, 'grad_clip_norm': norm / 3}))
    assert _norm(applied) == pytest.approx(norm / 3, rel=1e-4)
    _assert_scaled(applied, raw, (norm / 3) / (norm + 1e-6))

    # a limit above the norm changes nothing
    _, loose = _applied_gradient(_model(tiny_data, tmp_path, 'clip_loose', {**SGD, 'grad_clip_norm': norm * 2}))
    _assert_scaled(loose, raw, 1.0)
    # use_grad_clip: false wins over a grad_clip_norm
    _, off = _applied_gradient(_model(tiny_data, tmp_path, 'clip_both', {**SGD, 'grad_clip_norm': norm / 3,
                                                                          'use_grad_clip': False}))
    _assert_scaled(off, raw, 1.0)
