"""Every loss and schedule against values computed by hand (plain Python arithmetic)."""
import math

import pytest
import torch
import torch.nn.functional as F

from basicsr.losses.losses import CharbonnierLoss, L1Loss, MSELoss, PerceptualLoss, PSNRLoss
from basicsr.utils.lr_scheduler import warmup_lrs
from basicsr.utils.registry import LOSS_REGISTRY, OPTIMIZER_REGISTRY, SCHEDULER_REGISTRY, UnknownTypeError

PRED = torch.tensor([0.0, 0.5, 1.0, 0.25]).view(1, 1, 2, 2)
TARGET = torch.tensor([0.5, 0.5, 0.0, 1.0]).view(1, 1, 2, 2)
# differences: -0.5, 0, 1, -0.75


def test_pixel_losses_match_hand_values():
    assert L1Loss()(PRED, TARGET).item() == pytest.approx((0.5 + 0 + 1 + 0.75) / 4)
    assert L1Loss(loss_weight=2.0, reduction='sum')(PRED, TARGET).item() == pytest.approx(2 * 2.25)
    assert MSELoss()(PRED, TARGET).item() == pytest.approx((0.25 + 0 + 1 + 0.5625) / 4)
    eps = 1e-3
    expected = sum(math.sqrt(d * d + eps) for d in (-0.5, 0, 1, -0.75)) / 4
    assert CharbonnierLoss(eps=eps)(PRED, TARGET).item() == pytest.approx(expected, rel=1e-6)
    assert L1Loss(reduction='none')(PRED, TARGET).shape == PRED.shape


def test_psnr_loss_is_negative_psnr_per_image_mean():
    pred = torch.stack([PRED[0], torch.zeros(1, 2, 2)])
    target = torch.stack([TARGET[0], torch.full((1, 2, 2), 0.1)])
    mse = [(0.25 + 0 + 1 + 0.5625) / 4, 0.01]
    expected = sum(10 / math.log(10) * math.log(m + 1e-8) for m in mse) / 2
    assert PSNRLoss()(pred, target).item() == pytest.approx(expected, rel=1e-6)
    assert PSNRLoss()(pred, target).item() == pytest.approx(-sum(10 * math.log10(1 / m) for m in mse) / 2, rel=1e-4)


def test_losses_are_registered_and_reject_bad_reduction():
    for name in ('L1Loss', 'MSELoss', 'PSNRLoss', 'CharbonnierLoss', 'PerceptualLoss'):
        assert name in LOSS_REGISTRY
    with pytest.raises(ValueError, match='reduction'):
        L1Loss(reduction='avg')


def test_perceptual_loss_needs_a_local_weights_file(tmp_path):
    with pytest.raises(ValueError, match='vgg_weights_path'):
        PerceptualLoss()
    from basicsr.utils.checkpoint import CheckpointError
    with pytest.raises(CheckpointError, match='not found'):
        PerceptualLoss(vgg_weights_path=str(tmp_path / 'missing.pth'))


def test_perceptual_loss_with_local_weights(tmp_path):
    from torchvision.models import vgg19

    torch.manual_seed(0)
    path = tmp_path / 'vgg19.pth'
    torch.save(vgg19(weights=None).state_dict(), path)
    loss = PerceptualLoss(layer_weights={'conv1_2': 1.0, 'relu2_1': 0.5}, vgg_weights_path=str(path),
                          perceptual_weight=2.0, style_weight=3.0)
    x = torch.rand(1, 6, 16, 16)
    percep, style = loss(x, x)
    assert percep.item() == 0 and style.item() == 0
    y = torch.rand(1, 6, 16, 16)
    percep, style = loss(x, y)

    # by hand from the saved weights: VGG19 layers 0 (conv1_1), 2 (conv1_2), 5 (conv2_1), each view of the 6-channel
    # BGR input on its own, flipped to RGB and normalised with the ImageNet mean and std
    sd = torch.load(path, weights_only=True)
    conv = {i: (sd[f'features.{i}.weight'], sd[f'features.{i}.bias']) for i in (0, 2, 5)}
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def features(img):
        views = torch.cat([img[:, :3], img[:, 3:]]).flip(1)
        h = (views - mean) / std
        conv1_2 = F.conv2d(torch.relu(F.conv2d(h, *conv[0], padding=1)), *conv[2], padding=1)
        relu2_1 = torch.relu(F.conv2d(F.max_pool2d(torch.relu(conv1_2), 2), *conv[5], padding=1))
        return {'conv1_2': conv1_2, 'relu2_1': relu2_1}

    def gram(f):
        flat = f.flatten(2)
        return flat @ flat.transpose(1, 2) / flat[0].numel()

    fx, fy = features(x), features(y)
    weights = {'conv1_2': 1.0, 'relu2_1': 0.5}
    expected_percep = 2.0 * sum(w * (fx[k] - fy[k]).abs().mean() for k, w in weights.items())
    expected_style = 3.0 * sum(w * (gram(fx[k]) - gram(fy[k])).abs().mean() for k, w in weights.items())
    assert percep.item() == pytest.approx(expected_percep.item(), rel=1e-5) and percep.item() > 0
    assert style.item() == pytest.approx(expected_style.item(), rel=1e-5) and style.item() > 0


def _lrs(opt, steps, base=1.0):
    param = torch.nn.Parameter(torch.zeros(1))
    optim = torch.optim.SGD([param], lr=base)
    sched = SCHEDULER_REGISTRY.build(opt, 'train:scheduler', optimizer=optim)
    out = [optim.param_groups[0]['lr']]
    for _ in range(steps):
        optim.step()
        sched.step()
        out.append(optim.param_groups[0]['lr'])
    return out


def test_true_cosine_annealing_matches_formula():
    lrs = _lrs({'type': 'TrueCosineAnnealingLR', 'T_max': 10, 'eta_min': 0.1}, 10)
    for t, lr in enumerate(lrs):
        assert lr == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * t / 10)) / 2, abs=1e-9)


def test_cosine_annealing_restart_matches_formula():
    lrs = _lrs({'type': 'CosineAnnealingRestartLR', 'periods': [4, 6], 'restart_weights': [1, 0.5],
                'eta_min': 0.0}, 10)
    expected = [(1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]
    expected += [0.5 * (1 + math.cos(math.pi * (t - 4) / 6)) / 2 for t in range(5, 11)]
    assert lrs == pytest.approx(expected, abs=1e-9)


def test_multistep_matches_formula():
    lrs = _lrs({'type': 'MultiStepLR', 'milestones': [2, 5], 'gamma': 0.5}, 6)
    assert lrs == pytest.approx([1, 1, 0.5, 0.5, 0.5, 0.25, 0.25])


def test_linear_warmup_and_unknown_scheduler():
    assert warmup_lrs([2.0], 1, 4) == [0.5]
    assert warmup_lrs([2.0], 3, 4) == [1.5]
    assert warmup_lrs([2.0], 4, 4) is None and warmup_lrs([2.0], 1, -1) is None
    with pytest.raises(UnknownTypeError, match='train:scheduler:type: unknown scheduler type') as excinfo:
        _lrs({'type': 'CosineAnnealingRestart'}, 1)
    assert 'Did you mean CosineAnnealingRestartLR' in str(excinfo.value)
    with pytest.raises(TypeError, match='train:scheduler.T_maxx'):
        _lrs({'type': 'TrueCosineAnnealingLR', 'T_maxx': 3}, 1)


def test_cvhssr_compose_loss_matches_hand_values():
    """CVHSSR's loss: MSE + 0.01 * Charbonnier distance of the 2-D FFTs. For a 2 x 2 difference [[p, q], [r, s]]
    the FFT is real: p+q+r+s, p-q+r-s, p+q-r-s, p-q-r+s, here -0.25, 1.25, -0.75, -2.25 (imaginary parts 0)."""
    from basicsr.losses.losses import ComposeLoss, FrequencyCharbonnierLoss

    eps = 1e-12
    freq = sum(math.sqrt(v * v + eps) + math.sqrt(eps) for v in (-0.25, 1.25, -0.75, -2.25)) / 4
    assert FrequencyCharbonnierLoss()(PRED, TARGET).item() == pytest.approx(freq, rel=1e-6)
    mse = (0.25 + 0 + 1 + 0.5625) / 4
    assert ComposeLoss()(PRED, TARGET).item() == pytest.approx(mse + 0.01 * freq, rel=1e-6)
    assert 'ComposeLoss' in LOSS_REGISTRY  # the release's option files name it so


def test_optimizers_and_schedulers_build_like_networks():
    """One build path: an unknown optimizer or scheduler names its key path and the closest registered names, an
    unknown keyword its closest keyword, a bad value its key path, as for ``network_g`` (test_define_network)."""
    import basicsr.models.optimizers  # noqa: F401  (registers the optimizers)

    params = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(UnknownTypeError) as excinfo:
        OPTIMIZER_REGISTRY.build({'type': 'AdamV', 'lr': 1e-3}, 'train:optim_g', params=params)
    assert str(excinfo.value).startswith("train:optim_g:type: unknown optimizer type 'AdamV'. Did you mean Adam")
    with pytest.raises(TypeError, match=r'train:optim_g:betta \(did you mean betas\?\)'):
        OPTIMIZER_REGISTRY.build({'type': 'AdamW', 'betta': [0.9, 0.9]}, 'train:optim_g', params=params)
    with pytest.raises(ValueError, match='^train:optim_g: building AdamW failed: Invalid learning rate'):
        OPTIMIZER_REGISTRY.build({'type': 'AdamW', 'lr': -1.0}, 'train:optim_g', params=params)
    optimizer = OPTIMIZER_REGISTRY.build({'type': 'AdamW', 'lr': 1e-3}, 'train:optim_g', params=params)
    with pytest.raises(UnknownTypeError) as excinfo:
        SCHEDULER_REGISTRY.build({'type': 'MultiStep'}, 'train:scheduler', optimizer=optimizer)
    assert 'Did you mean MultiStepLR' in str(excinfo.value)
    with pytest.raises(TypeError, match=r'missing option train:scheduler:milestones for MultiStepLR'):
        SCHEDULER_REGISTRY.build({'type': 'MultiStepLR'}, 'train:scheduler', optimizer=optimizer)
    scheduler = SCHEDULER_REGISTRY.build({'type': 'CosineAnnealingLR', 'T_max': 4}, 'train:scheduler',
                                         optimizer=optimizer)
    assert isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR) and scheduler.T_max == 4
