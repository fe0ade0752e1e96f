"""StereoSRGANModel chooses the HR each loss compares with as Real-ESRGAN does (``train:l1_gt_usm``,
``train:percep_gt_usm``, ``train:gan_gt_usm``): what the pixel, perceptual and LPIPS losses and the discriminator's
real input see on a hand-built batch whose sharpened and plain HR differ, against a reproduction of Real-ESRGAN's
``RealESRGANModel.optimize_parameters``; the defaults keep the sharpened ``gt`` everywhere (the behaviour before the
options); the batch augmentations treat both HR tensors alike; bad values are refused in one line."""
import itertools
import os

import pytest
import torch
from torch.utils.data import default_collate

from basicsr.data import build_dataset
from basicsr.models import build_model
from basicsr.option_checks import OPTION_CHECKS
from basicsr.utils.options import OptionError, parse, parse_options
from train_helpers import ROOT, base_options, write_options

NAMES = ('l1', 'percep', 'gan')
DEGRADATION = os.path.join(ROOT, 'options', 'degradations', 'realistic_x4.yml')
RECIPE = os.path.join(ROOT, 'options', 'train', 'NAFSSR', 'NAFSSR-T_x4_realistic_gan.yml')


def realesrgan_targets(gt, gt_usm, opt):
    """The HR each loss of xinntao/Real-ESRGAN's ``RealESRGANModel.optimize_parameters``
    (realesrgan/models/realesrgan_model.py) compares with, given its plain ``gt``, its sharpened ``gt_usm`` and its
    options: ``l1`` (``cri_pix``), ``percep`` (``cri_perceptual``), ``gan`` (``net_d``'s real input) take the sharpened
    HR unless ``<name>_gt_usm`` is False. (A missing key is an error there; here it is the sharpened HR.)"""
    return {name: gt if opt.get(f'{name}_gt_usm') is False else gt_usm for name in NAMES}


class Spy(torch.nn.Module):
    """A loss that records its target; ``pair``: returns ``(loss, None)`` as the perceptual loss does."""

    def __init__(self, pair=False):
        super().__init__()
        self.pair, self.seen = pair, []

    def forward(self, pred, target):
        self.seen.append(target.detach().clone())
        value = (pred - target).abs().mean()
        return (value, None) if self.pair else value


def gan_options(data, name, gt_usm=True, mixup=False, **train):
    opt = base_options(data, name)
    opt['model_type'] = 'StereoSRGANModel'
    opt['network_d'] = {'type': 'UNetDiscriminatorSN', 'num_in_ch': 3, 'num_feat': 4}
    opt['datasets']['train'] = {'name': 'tiny', 'type': 'RealisticStereoDataset', 'dataroot_gt': data['patches'],
                                'gt_size_h': 8, 'gt_size_w': 24, 'gt_usm': gt_usm, 'degradation': DEGRADATION,
                                'num_worker_per_gpu': 0, 'batch_size_per_gpu': 2}
    opt['train'].update({'optim_d': {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]},
                         'gan_opt': {'type': 'GANLoss', 'gan_type': 'vanilla', 'loss_weight': 0.1},
                         'net_d_init_iters': 0, 'mixup': mixup, **train})
    return opt


def build(tmp_path, opt):
    return build_model(parse(write_options(tmp_path, opt), is_train=True, root_path=str(tmp_path)))


def hand_batch(plain=True):
    """lq (2, 6, 4, 12), the sharpened HR in [0.5, 1] and the plain HR in [0, 0.5]: no tensor equals another."""
    g = torch.Generator().manual_seed(0)
    batch = {'lq': torch.rand(2, 6, 4, 12, generator=g), 'gt': 0.5 + 0.5 * torch.rand(2, 6, 8, 24, generator=g)}
    if plain:
        batch['gt_plain'] = 0.5 * torch.rand(2, 6, 8, 24, generator=g)
    return batch


def seen_targets(model, batch):
    """One G + D step on ``batch``: ``{l1, percep, lpips, gan: the HR each saw}`` (D's real input as D sees it)."""
    model.cri_pix, model.cri_perceptual, model.cri_lpips = Spy(), Spy(pair=True), Spy()
    d_inputs = []
    model.net_d.register_forward_pre_hook(lambda module, args: d_inputs.append(args[0].detach().clone()))
    model.feed_data(batch)
    model.optimize_parameters(1)
    assert len(d_inputs) == 3  # G's fake, D's real, D's fake
    return {'l1': model.cri_pix.seen[0], 'percep': model.cri_perceptual.seen[0], 'lpips': model.cri_lpips.seen[0],
            'gan': d_inputs[1]}


@pytest.mark.parametrize('choice', [*itertools.product((True, False), repeat=3), (None, None, None)],
                         ids=lambda c: '-'.join({True: 'usm', False: 'plain', None: 'default'}[v] for v in c))
def test_each_loss_sees_the_hr_real_esrgan_gives_it(tiny_data, tmp_path, choice):
    keys = {f'{name}_gt_usm': value for name, value in zip(NAMES, choice) if value is not None}
    model = build(tmp_path, gan_options(tiny_data, 'usm', **keys))
    batch = hand_batch()
    seen = seen_targets(model, batch)
    want = realesrgan_targets(batch['gt_plain'], batch['gt'], keys)  # ours: gt sharpened, gt_plain plain
    assert torch.equal(seen['l1'], want['l1'])
    assert torch.equal(seen['percep'], want['percep'])
    assert torch.equal(seen['lpips'], want['percep'])  # LPIPS is a perceptual loss: it follows percep_gt_usm
    assert torch.equal(seen['gan'], model._d_images(want['gan']))


def test_real_esrgan_x4plus_choice_and_the_default_on_plain_batches(tiny_data, tmp_path):
    """x4plus (l1, percep sharpened; D's real input plain); without gt_usm the batch has one HR and no key is set:
    every loss sees it."""
    model = build(tmp_path, gan_options(tiny_data, 'x4plus', l1_gt_usm=True, percep_gt_usm=True, gan_gt_usm=False))
    batch = hand_batch()
    seen = seen_targets(model, batch)
    assert [torch.equal(seen[k], batch['gt']) for k in ('l1', 'percep', 'lpips')] == [True] * 3
    assert torch.equal(seen['gan'], model._d_images(batch['gt_plain']))

    model = build(tmp_path, gan_options(tiny_data, 'plain', gt_usm=False))
    batch = hand_batch(plain=False)
    seen = seen_targets(model, batch)
    assert torch.equal(seen['l1'], batch['gt']) and torch.equal(seen['gan'], model._d_images(batch['gt']))


def test_batch_augmentations_mix_both_hr_alike_with_the_draws_of_before(tiny_data, tmp_path):
    """Mixup and CutMix on the sharpened and the plain HR: one draw for both (the plain HR stays the sharpened one
    minus 0.25 after the mixing, box for box), and the LR and sharpened HR are what the augmentation gave before."""
    opt = gan_options(tiny_data, 'aug', mixup=True, gan_gt_usm=False,
                      batch_augment={'cutmix': {'prob': 1.0, 'alpha': 0.5}})
    model = build(tmp_path, opt)
    batch = hand_batch()
    batch['gt_plain'] = batch['gt'] - 0.25
    model.feed_data(batch)
    state = model.batch_augment.state_dict()
    lq, targets = model.augmented_targets()
    model.batch_augment.load_state_dict(state)
    lq_before, gt_before = model.augmented_batch()
    assert torch.equal(lq, lq_before) and torch.equal(targets['l1'], gt_before)
    assert not torch.equal(targets['l1'], batch['gt'])  # the augmentation did change the batch
    assert torch.allclose(targets['gan'], targets['l1'] - 0.25, atol=1e-6)


@pytest.mark.parametrize('gt_usm, keys, message', [
    (True, {'gan_gt_usm': 'no'}, "train:gan_gt_usm: expected true (the sharpened HR) or false (the plain HR), got "
                                 "'no'"),
    (False, {'l1_gt_usm': True, 'gan_gt_usm': False},
     'train:l1_gt_usm: chooses between the sharpened and the plain HR, but the training set does not sharpen '
     '(datasets:train:gt_usm is not true); set datasets:train:gt_usm: true (type: RealisticStereoDataset) or remove '
     'the key'),
])
def test_bad_choices_are_one_line_naming_the_key(tiny_data, tmp_path, gt_usm, keys, message):
    with pytest.raises(OptionError) as info:
        build(tmp_path, gan_options(tiny_data, 'bad', gt_usm=gt_usm, **keys))
    assert str(info.value) == message


def test_the_keys_belong_to_the_gan_model(tiny_data, tmp_path):
    opt = gan_options(tiny_data, 'fidelity', gan_gt_usm=False)
    opt['model_type'] = 'ImageRestorationModel'
    for key in ('network_d', 'gan_opt', 'optim_d', 'net_d_init_iters'):
        (opt if key == 'network_d' else opt['train']).pop(key)
    with pytest.raises(OptionError, match='train:gan_gt_usm is read by StereoSRGANModel, but model_type is '
                                          'ImageRestorationModel'):
        parse_options(True, ['-opt', write_options(tmp_path, opt)], registries=OPTION_CHECKS)


def test_the_realistic_gan_file_is_real_esrgan_x4plus_and_steps_on_the_sample(sample_root, tmp_path):
    """The option file, with a tiny generator and discriminator and without the VGG file (--force_yml overrides
    in-process): its sharpening dataset on the built-in sample gives both HR, L1 sees the sharpened one and the
    discriminator the plain one, as Real-ESRGAN x4plus."""
    tiny = ['num_gpu=0', f"datasets:train:dataroot_gt={os.path.join(sample_root, 'patches_x4')}",
            f'datasets:train:degradation={DEGRADATION}', 'datasets:train:gt_size_h=32', 'datasets:train:gt_size_w=96',
            'network_g:width=8', 'network_g:num_blks=1', 'network_g:train_size=[1,6,8,24]', 'network_d:num_feat=4',
            'path:pretrain_network_g=~', 'train:perceptual_opt=~']
    opt = parse(RECIPE, is_train=True, force_yml=tiny, root_path=str(tmp_path))
    assert opt['datasets']['train']['gt_usm'] is True and opt['model_type'] == 'StereoSRGANModel'
    model = build_model(opt)
    assert model.gt_usm_targets == {'l1': True, 'percep': True, 'gan': False}
    dataset = build_dataset(opt['datasets']['train'], 'datasets:train')
    batch = default_collate([dataset[(0, 1)], dataset[(1, 2)]])
    seen = seen_targets(model, batch)
    assert torch.equal(seen['l1'], batch['gt']) and torch.equal(seen['gan'], model._d_images(batch['gt_plain']))
