"""Mixed precision in the training step of a model built from options: ``train:use_amp`` really runs the
network's forward under autocast (the dtype seen inside the network), and the fp16 path with a ``GradScaler``
(created by the model on CUDA only; here a CPU scaler, ``torch.amp.GradScaler('cpu')``, is put in its place) scales
the loss, unscales before clipping, skips a step whose gradients overflow, and is saved and restored with the
training state."""
import pytest
import torch

from basicsr.models import build_model
from basicsr.utils.options import parse
from train_helpers import base_options, write_options


def _model(data, tmp_path, name, **train_updates):
    """A tiny NAFSSR from options: no mixup, drop-path or EMA, so one step is a plain function of the batch."""
    opt = base_options(data, name)
    opt['network_g']['drop_path_rate'] = 0.0
    opt['train'].update(mixup=False, ema_decay=None, warmup_iter=-1)
    opt['train'].update(train_updates)
    torch.manual_seed(0)
    return build_model(parse(write_options(tmp_path, opt), is_train=True, root_path=str(tmp_path)))


def _batch():
    g = torch.Generator().manual_seed(1)
    return {'lq': torch.rand(2, 6, 4, 12, generator=g), 'gt': torch.rand(2, 6, 8, 24, generator=g)}


def _conv_output_dtypes(model):
    """Run one training step and return the set of dtypes the network's convolutions produced."""
    seen = set()
    hooks = [m.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
             for m in model.net_g.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        model.feed_data(_batch())
        assert model.optimize_parameters(1)
    finally:
        for h in hooks:
            h.remove()
    return seen


def _params(model):
    return {k: v.detach().clone() for k, v in model.net_g.named_parameters()}


def test_bf16_training_forward_runs_under_autocast(tiny_data, tmp_path):
    amp = _model(tiny_data, tmp_path, 'bf16', use_amp=True, amp_dtype='bf16')
    before = _params(amp)
    assert _conv_output_dtypes(amp) == {torch.bfloat16}
    assert amp.output.dtype == torch.float32  # what the losses see
    after = _params(amp)
    assert all(v.dtype == torch.float32 for v in after.values())  # the master weights stay fp32
    assert any(not torch.equal(before[k], after[k]) for k in before)
    fp32 = _model(tiny_data, tmp_path, 'fp32')
    assert _conv_output_dtypes(fp32) == {torch.float32}


def _fp16_models(data, tmp_path, init_scale):
    """Two identical fp16-autocast models with SGD (whose update is proportional to the gradient, unlike Adam's,
    so that clipping a scaled gradient would show); the first gets a CPU GradScaler."""
    updates = dict(use_amp=True, amp_dtype='fp16', grad_clip_norm=0.05,
                   optim_g={'type': 'SGD', 'lr': 0.5, 'momentum': 0.0})
    with pytest.warns(UserWarning, match='fp16 on the CPU runs without gradient scaling'):
        scaled = _model(data, tmp_path, 'fp16_scaled', **updates)
    with pytest.warns(UserWarning):
        plain = _model(data, tmp_path, 'fp16_plain', **updates)
    assert scaled.scaler is None  # the model makes a scaler on CUDA only
    scaled.scaler = torch.amp.GradScaler('cpu', init_scale=init_scale, growth_interval=1)
    return scaled, plain


def test_fp16_grad_scaler_step_equals_the_unscaled_step(tiny_data, tmp_path):
    scaled, plain = _fp16_models(tiny_data, tmp_path, 2.0 ** 8)
    start = _params(scaled)
    assert all(torch.equal(start[k], v) for k, v in _params(plain).items())
    grads = {}
    for model in (scaled, plain):
        model.feed_data(_batch())
        assert model.optimize_parameters(1)
        grads[model] = torch.cat([p.grad.flatten() for p in model.net_g.parameters() if p.grad is not None])
    # unscaled before clipping: the clipped gradient has the norm of the option, not 1/256 of it
    assert grads[scaled].norm().item() == pytest.approx(0.05, rel=1e-3)
    torch.testing.assert_close(grads[scaled], grads[plain], rtol=0, atol=2e-4 * grads[plain].abs().max().item())
    moved = max((v - start[k]).abs().max().item() for k, v in _params(plain).items())
    assert moved > 1e-3
    for k, v in _params(scaled).items():
        torch.testing.assert_close(v, _params(plain)[k], rtol=0, atol=1e-3 * moved)
    assert scaled.scaler.get_scale() == 2.0 ** 9  # a finite step with growth_interval 1 doubles the scale


def test_fp16_overflowing_gradients_skip_the_step_and_the_state_keeps_the_scale(tiny_data, tmp_path):
    scaled, _ = _fp16_models(tiny_data, tmp_path, 2.0 ** 40)  # the fp16 gradients overflow at this scale
    before = _params(scaled)
    scaled.feed_data(_batch())
    scaled.optimize_parameters(1)
    assert all(torch.equal(before[k], v) for k, v in _params(scaled).items())  # the step was skipped
    assert scaled.scaler.get_scale() == 2.0 ** 39  # and the scale backed off
    state = scaled.training_state(epoch=0, current_iter=1, iter_in_epoch=1, seed=7)
    assert state['scaler']['scale'] == 2.0 ** 39
    fresh, _ = _fp16_models(tiny_data, tmp_path, 2.0 ** 8)
    fresh.resume(state)
    assert fresh.scaler.get_scale() == 2.0 ** 39
