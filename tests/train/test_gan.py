"""StereoSRGANModel: adversarial losses, discriminators, a real GAN run with net_d files, and a bitwise resume."""
import math
import os

import pytest
import torch

from basicsr.losses.gan_loss import GANLoss
from basicsr.models.archs import define_network
from basicsr.models.archs.discriminator_arch import UNetDiscriminatorSN, VGGStyleDiscriminator
from helpers import reaped
from test_resume import _kill_after_state
from train_helpers import base_options, run_train, start_train, write_options

PRED = torch.tensor([[2.0, -1.0], [0.5, 0.0]])


def _softplus(x):
    return math.log1p(math.exp(x))


@pytest.mark.parametrize('gan_type, real_d, fake_d, g', [
    # hand computations on PRED = [2, -1, 0.5, 0]: BCE with logits = softplus(-x) for label 1, softplus(x) for 0
    ('vanilla', sum(_softplus(-x) for x in (2, -1, .5, 0)) / 4, sum(_softplus(x) for x in (2, -1, .5, 0)) / 4,
     sum(_softplus(-x) for x in (2, -1, .5, 0)) / 4),
    ('lsgan', ((2 - 1) ** 2 + (-1 - 1) ** 2 + (.5 - 1) ** 2 + 1) / 4, (4 + 1 + .25 + 0) / 4,
     ((2 - 1) ** 2 + (-1 - 1) ** 2 + (.5 - 1) ** 2 + 1) / 4),
    ('hinge', (0 + 2 + .5 + 1) / 4, (3 + 0 + 1.5 + 1) / 4, -(2 - 1 + .5 + 0) / 4),
    ('wgan_softplus', sum(_softplus(-x) for x in (2, -1, .5, 0)) / 4, sum(_softplus(x) for x in (2, -1, .5, 0)) / 4,
     sum(_softplus(-x) for x in (2, -1, .5, 0)) / 4),
])
def test_gan_losses_by_hand(gan_type, real_d, fake_d, g):
    loss = GANLoss(gan_type, loss_weight=0.1)
    assert loss(PRED, True, is_disc=True).item() == pytest.approx(real_d, rel=1e-6)
    assert loss(PRED, False, is_disc=True).item() == pytest.approx(fake_d, rel=1e-6)
    assert loss(PRED, True, is_disc=False).item() == pytest.approx(0.1 * g, rel=1e-6)  # only G's loss is weighted


def test_discriminator_shapes_and_sizes():
    torch.manual_seed(0)
    vgg = VGGStyleDiscriminator(num_in_ch=3, num_feat=4, input_size=[32, 96])
    assert vgg(torch.rand(2, 3, 32, 96)).shape == (2, 1)
    with pytest.raises(ValueError, match=r'built for input_size \[32, 96\], got an input of \[32, 64\]'):
        vgg(torch.rand(1, 3, 32, 64))
    with pytest.raises(ValueError, match='network_d:input_size: expected an int or \\[h, w\\], each a positive '
                                         'multiple of 32, got 120'):
        define_network({'type': 'VGGStyleDiscriminator', 'input_size': 120}, key_path='network_d')
    unet = UNetDiscriminatorSN(num_in_ch=6, num_feat=4)
    assert unet(torch.rand(1, 6, 16, 40)).shape == (1, 1, 16, 40)
    names = set(unet.state_dict())  # Real-ESRGAN's names (old-style spectral norm), so its D weights load
    assert {'conv1.weight_orig', 'conv1.weight_u', 'conv1.weight_v', 'conv9.weight'} <= names


def gan_options(data, name, total_iter=8, **train):
    opt = base_options(data, name, total_iter=total_iter)
    opt['model_type'] = 'StereoSRGANModel'
    opt['network_d'] = {'type': 'UNetDiscriminatorSN', 'num_in_ch': 3, 'num_feat': 4}
    opt['train'].update({
        'optim_d': {'type': 'AdamW', 'lr': 1e-3, 'weight_decay': 0.0, 'betas': [0.9, 0.99]},
        'gan_opt': {'type': 'GANLoss', 'gan_type': 'vanilla', 'loss_weight': 0.1},
        'net_d_iters': 1, 'net_d_init_iters': 2, **train})
    return opt


def test_gan_run_saves_d_beside_g_and_trains_both(tiny_data, tmp_path):
    opt = gan_options(tiny_data, 'gan', total_iter=4)
    result = run_train(write_options(tmp_path, opt), tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    models = tmp_path / 'experiments' / 'gan' / 'models'
    assert {f'net_{n}_{i}.pth' for n in 'gd' for i in range(1, 5)} <= set(os.listdir(models))
    g1, g2, g3 = (torch.load(models / f'net_g_{i}.pth', weights_only=True)['params'] for i in (1, 2, 3))
    assert all(torch.equal(g1[k], g2[k]) for k in g1)  # net_d_init_iters 2: only D trains in iterations 1 and 2
    assert any(not torch.equal(g2[k], g3[k]) for k in g2)  # then G too
    d1, d2 = (torch.load(models / f'net_d_{i}.pth', weights_only=True)['params'] for i in (1, 2))
    assert any(not torch.equal(d1[k], d2[k]) for k in d1 if not k.endswith('_u'))
    for key in ('l_d_real', 'l_d_fake', 'out_d_real', 'l_g_gan', 'l_pix'):
        assert key in result.stdout, key


def test_killed_gan_run_resumes_bitwise(tiny_data, tmp_path):
    ref_dir, run_dir = tmp_path / 'ref', tmp_path / 'run'
    ref_dir.mkdir()
    run_dir.mkdir()
    opt = gan_options(tiny_data, 'gan', discriminator_input='pair')
    opt['network_d']['num_in_ch'] = 6
    path = write_options(tmp_path, opt)
    assert run_train(path, ref_dir).returncode == 0
    with reaped(start_train(path, run_dir)) as (proc,):
        _kill_after_state(proc, os.path.join(run_dir, 'experiments', 'gan', 'training_states'), 3)
    result = run_train(path, run_dir)
    assert result.returncode == 0 and 'resumed from' in result.stdout, result.stderr[-3000:]
    for label in 'gd':
        a, b = (torch.load(d / 'experiments' / 'gan' / 'models' / f'net_{label}_8.pth', weights_only=True)
                for d in (ref_dir, run_dir))
        for group in a:
            for key in a[group]:
                assert torch.equal(a[group][key], b[group][key]), f'net_{label} {group}.{key}'


@pytest.mark.parametrize('change, message', [
    ({'network_d': {'type': 'VGGStyleDiscriminator', 'num_in_ch': 3, 'num_feat': 4, 'input_size': 32}},
     'network_d: does not fit the training patch 8x24 (datasets:train:gt_size_h/w): VGGStyleDiscriminator was built '
     'for input_size [32, 32], got an input of [8, 24]'),
    ({'train': {'discriminator_input': 'pair'}},
     'network_d:num_in_ch: train:discriminator_input pair gives the discriminator 6-channel images, network_d takes 3'),
    ({'train': {'gan_opt': {'type': 'GANLoss', 'gan_type': 'wgan'}}},
     "train:gan_opt: building GANLoss failed: gan_type: expected one of vanilla, lsgan, hinge, wgan_softplus, got "
     "'wgan'"),
])
def test_bad_gan_options_are_one_line_before_work(tiny_data, tmp_path, change, message):
    opt = gan_options(tiny_data, 'bad')
    for section, values in change.items():
        opt[section] = values if section == 'network_d' else {**opt[section], **values}
    result = run_train(write_options(tmp_path, opt), tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f'train.py: error: {message}']
    assert not (tmp_path / 'experiments' / 'bad').exists()


def test_gan_run_into_a_fidelity_run_name_leads_to_a_working_command(tiny_data, tmp_path):
    """A GAN run started under the name of a finished fidelity run finds the fidelity run's training state and
    refuses it (no discriminator in it). The hint names the command that works: another name, fine-tuning from
    that run's last net_g file. Following the hint literally trains the GAN; nothing of the fidelity run changes."""
    fidelity = base_options(tiny_data, 'fid', total_iter=1)
    assert run_train(write_options(tmp_path, fidelity), tmp_path).returncode == 0
    models = tmp_path / 'experiments' / 'fid' / 'models'
    before = {name: (models / name).read_bytes() for name in os.listdir(models)}

    gan = write_options(tmp_path, gan_options(tiny_data, 'fid', total_iter=2))
    refused = run_train(gan, tmp_path)
    assert refused.returncode == 2, refused.stderr[-3000:]
    line, = refused.stderr.strip().splitlines()
    assert 'has no discriminator weights (params_d)' in line and str(models / 'net_g_1.pth') in line, line
    hint = line.split(' --force_yml ', 1)[1].split()  # e.g. ['name=fid_gan', 'path:pretrain_network_g=<file>']
    assert hint[0].startswith('name=') and hint[0] != 'name=fid', line

    followed = run_train(gan, tmp_path, extra=['--force_yml', *hint])
    assert followed.returncode == 0, followed.stderr[-3000:]
    new_name = hint[0].split('=', 1)[1]
    assert {f'net_{n}_2.pth' for n in 'gd'} <= set(os.listdir(tmp_path / 'experiments' / new_name / 'models'))
    assert {name: (models / name).read_bytes() for name in os.listdir(models)} == before


def test_pretrain_network_d_with_a_generator_file_names_the_d_keys(tiny_data, tmp_path):
    from basicsr.models import build_model
    from basicsr.utils.checkpoint import CheckpointError, save_atomic
    from basicsr.utils.options import parse

    net_g = define_network(dict(base_options(tiny_data, 'x')['network_g']))
    save_atomic({'params': net_g.state_dict()}, tmp_path / 'net_g_4.pth')
    opt = gan_options(tiny_data, 'd_from_g')
    opt['path'] = {'pretrain_network_d': str(tmp_path / 'net_g_4.pth')}
    with pytest.raises(CheckpointError) as err:
        build_model(parse(write_options(tmp_path, opt), is_train=True, root_path=str(tmp_path)))
    message = str(err.value)
    assert message.startswith(f"path:pretrain_network_d: {tmp_path / 'net_g_4.pth'}: holds a stereo SR network "
                              '(NAFSSR), not a discriminator (UNetDiscriminatorSN) (network_d:type): '
                              'path:pretrain_network_d takes a discriminator file (net_d_<iter>.pth), this one looks '
                              'like a generator (net_g_<iter>.pth; path:strict_load_d does not change that) ('), message
    assert 'strict_load_g' not in message
