"""The NAFSSR T/S/B/L training option files follow the release recipe (MISSION.md, docs/training.md): AdamW at
3e-3, betas (0.9, 0.9), no weight decay, cosine annealing to 1e-7 over the whole run, MSE loss, 4 patches per GPU on
8 GPUs, LR patches of 30x90, T 400k iterations and S/B/L 100k, the sizes of the paper, and the release's
gradient clipping at 0.01. Read through the project's parser and built by its own builders."""
import pytest
import torch

import basicsr.utils.lr_scheduler  # noqa: F401  (registers the schedulers)
from basicsr.utils.options import parse
from basicsr.utils.registry import LOSS_REGISTRY, OPTIMIZER_REGISTRY, SCHEDULER_REGISTRY
from helpers import ROOT

# (width, blocks, drop-path, iterations): MISSION.md's sizes, docs/training.md's iterations
RECIPES = {'T': (48, 16, 0.0, 400_000), 'S': (64, 32, 0.1, 100_000), 'B': (96, 64, 0.2, 100_000),
           'L': (128, 128, 0.3, 100_000)}
CASES = [(size, scale) for size in RECIPES for scale in (2, 4)]


def _options(size, scale, tmp_path):
    return parse(f'{ROOT}/options/train/NAFSSR/NAFSSR-{size}_x{scale}.yml', is_train=True, root_path=str(tmp_path))


@pytest.mark.parametrize('size,scale', CASES)
def test_nafssr_option_file_is_the_release_recipe(size, scale, tmp_path):
    width, blocks, drop_path, iters = RECIPES[size]
    opt = _options(size, scale, tmp_path)
    assert opt['name'] == f'NAFSSR-{size}_x{scale}' and opt['scale'] == scale
    net = opt['network_g']
    assert (net['type'], net['up_scale'], net['width'], net['num_blks']) == ('NAFSSR', scale, width, blocks)
    assert net['drop_path_rate'] == drop_path and net['train_size'] == [1, 6, 30, 90]  # TLSC from 30x90 LR
    train_set = opt['datasets']['train']
    assert opt['num_gpu'] == 8 and train_set['batch_size_per_gpu'] == 4
    assert (train_set['gt_size_h'], train_set['gt_size_w']) == (30 * scale, 90 * scale)
    assert train_set['dataroot_gt'].rstrip('/').endswith(f'patches_x{scale}')
    assert (train_set['use_hflip'], train_set['use_vflip'], train_set['flip_RGB']) == (True, True, True)
    assert not train_set.get('use_rot')

    train = opt['train']
    assert train['total_iter'] == iters and train.get('warmup_iter', -1) <= 0 and not train.get('mixup')
    assert 'grad_clip_norm' not in train and train.get('use_grad_clip', True)  # the release's implicit 0.01
    optim_opt = dict(train['optim_g'])
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = OPTIMIZER_REGISTRY.get(optim_opt.pop('type'))([param], **optim_opt)
    assert type(optimizer) is torch.optim.AdamW
    group = optimizer.param_groups[0]
    assert (group['lr'], group['betas'], group['weight_decay']) == (3e-3, (0.9, 0.9), 0.0)

    scheduler = SCHEDULER_REGISTRY.build(train['scheduler'], 'train:scheduler', optimizer=optimizer)
    assert isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR)  # stepping tested in test_optimizer_step
    assert (scheduler.T_max, scheduler.eta_min) == (iters, 1e-7)  # one cosine over the whole run, down to 1e-7
    for t, expected in ((0, 3e-3), (iters // 2, (3e-3 + 1e-7) / 2), (iters, 1e-7)):
        scheduler.last_epoch = t
        assert scheduler._get_closed_form_lr()[0] == pytest.approx(expected, rel=1e-9)

    loss = LOSS_REGISTRY.build(train['pixel_opt'], 'train:pixel_opt')
    assert type(loss).__name__ == 'MSELoss' and loss.loss_weight == 1.0 and loss.reduction == 'mean'
    pred, target = torch.tensor([[[[0.0, 1.0]]]]), torch.tensor([[[[0.5, 0.0]]]])
    assert loss(pred, target).item() == pytest.approx((0.25 + 1.0) / 2)


def test_nafssr_t_model_built_from_its_file_clips_at_the_release_norm(tmp_path):
    """The model made from NAFSSR-T_x4.yml (on the CPU) steps AdamW 3e-3 over every parameter with the gradient
    norm clipped at 0.01, the quirk of the release."""
    from basicsr.models import build_model

    opt = _options('T', 4, tmp_path)
    opt['num_gpu'] = 0
    model = build_model(opt)
    assert model.grad_clip_norm == 0.01 and model.use_amp is False
    assert sum(p.numel() for g in model.optimizer.param_groups for p in g['params']) == 460_656
    assert type(model.cri_pix).__name__ == 'MSELoss'
