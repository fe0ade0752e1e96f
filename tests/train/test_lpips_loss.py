"""LPIPSLoss (``train:lpips_opt``) and SCGLANet's track 2 recipe, options/train/SCGLANet/SCGLAGAN-L_x4.yml.

The loss is the LPIPS metric's network (the ``lpips`` package's) used with gradients; its value is checked against
``lpips.LPIPS`` called by hand on each image of each view, summed as SCGLANet's release sums them (its loss adds
the per-image distances of the batch, once for the left views and once for the right). The VGG16 backbone is random
(seeded) and written here in torchvision's state-dict format under a name that is not torchvision's, so it is used
unverified (a log line) and nothing is downloaded.
"""
import os

import lpips
import pytest
import torch
import torchvision

from basicsr.losses.lpips_loss import LPIPSLoss
from basicsr.metrics.perceptual import lpips_model
from basicsr.models import build_model
from basicsr.models.archs import define_network
from basicsr.utils.options import parse
from basicsr.utils.registry import LOSS_REGISTRY, OptionValueError
from train_helpers import ROOT, base_options, run_train, write_options

RECIPE = os.path.join(ROOT, 'options', 'train', 'SCGLANet', 'SCGLAGAN-L_x4.yml')
LPIPS_DEPRECATION = 'ignore:.*deprecated since 0.13:UserWarning'  # lpips 0.1.4 calls vgg16(pretrained=...)


@pytest.fixture(scope='module')
def vgg_file(tmp_path_factory):
    """A random VGG16's ``features`` in torchvision's key format (LPIPS reads nothing else; torchvision's own
    builder of VGG16's layers, without the 100M-parameter classifier)."""
    torch.manual_seed(0)
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs['D'])
    path = tmp_path_factory.mktemp('weights') / 'vgg16_random.pth'
    torch.save({f'features.{k}': v for k, v in features.state_dict().items()}, path)
    return path


@pytest.fixture
def batch():
    """Two 16x16 stereo pairs (N=2, 6 channels, [0, 1]; VGG16's fifth stage needs 16 rows and columns): the
    prediction a noisy copy of the target."""
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 6, 16, 16, generator=g)
    pred = (target + 0.2 * torch.randn(2, 6, 16, 16, generator=g)).clamp(0, 1)
    return pred, target


def package_lpips_by_hand(pred, target, weights_path):
    """Sum over images and views of ``lpips.LPIPS(net='vgg')`` with the backbone of ``weights_path``: one RGB image
    at a time, rescaled to [-1, 1] as ``lpips`` expects."""
    model = lpips.LPIPS(net='vgg', pnet_rand=True, verbose=False).eval()
    state = torch.load(weights_path, weights_only=True)
    for piece in model.net.children():  # lpips' slices keep torchvision's layer indices
        for index, layer in piece.named_children():
            layer.load_state_dict({name: state[f'features.{index}.{name}'] for name, _ in layer.named_parameters()})
    total = 0.0
    with torch.no_grad():
        for n in range(pred.shape[0]):
            for view in (slice(0, 3), slice(3, 6)):
                a, b = (x[n:n + 1, view] * 2 - 1 for x in (pred, target))
                total += model(a, b).item()
    return total


@pytest.mark.filterwarnings(LPIPS_DEPRECATION)
def test_loss_is_lpips_summed_over_batch_and_views(batch, vgg_file):
    pred, target = batch
    loss = LPIPSLoss(net='vgg', weights_path=str(vgg_file), reduction='sum', input_bgr=False)
    expected = package_lpips_by_hand(pred, target, vgg_file)
    assert expected > 1e-2  # a real distance (measured 0.046 with this random backbone and noise)
    # float32 networks; the loss runs the four views as one batch of 4: 1e-5 allows another summation order
    assert loss(pred, target).item() == pytest.approx(expected, rel=1e-5)
    mean = LPIPSLoss(net='vgg', weights_path=str(vgg_file), loss_weight=2.0, input_bgr=False)
    assert mean(pred, target).item() == pytest.approx(2.0 * expected / 4, rel=1e-5)  # 2 pairs x 2 views
    # BGR tensors (our default order) are flipped to RGB: the same distance as the RGB tensors above
    bgr = LPIPSLoss(net='vgg', weights_path=str(vgg_file), reduction='sum', input_bgr=True)
    flip = [2, 1, 0, 5, 4, 3]
    assert bgr(pred[:, flip], target[:, flip]).item() == pytest.approx(expected, rel=1e-5)
    assert loss(target, target).item() == 0.0


def test_loss_uses_the_metric_network_and_trains_only_the_generator(batch, vgg_file):
    _, target = batch
    loss = LPIPSLoss(net='vgg', weights_path=str(vgg_file), reduction='sum')
    network = lpips_model('vgg', str(vgg_file))
    assert not any(isinstance(m, lpips.LPIPS) for m in loss.modules())  # no copy of its own: the metric's model
    torch.manual_seed(0)
    net_g = define_network({'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 1})
    lq = torch.nn.functional.interpolate(target, scale_factor=0.5, mode='area')
    target = target.clone().requires_grad_(True)
    loss(net_g(lq), target).backward()
    assert all(p.grad is not None for p in net_g.parameters())
    assert sum(p.grad.abs().sum().item() for p in net_g.parameters()) > 0
    assert target.grad is None  # the target is detached
    assert all(p.grad is None and not p.requires_grad for p in network.parameters())
    assert not network.training  # eval: lpips' linear layers keep their dropout off


def test_a_missing_backbone_is_one_line_naming_the_key(tmp_path):
    missing = tmp_path / 'vgg16.pth'
    with pytest.raises(OptionValueError) as err:
        LOSS_REGISTRY.build({'type': 'LPIPSLoss', 'net': 'vgg', 'weights_path': str(missing)}, 'train:lpips_opt')
    assert str(err.value) == (f'train:lpips_opt:weights_path: no file {missing} (LPIPS net=vgg needs '
                              'the torchvision VGG16 ImageNet state dict vgg16-397923af.pth, from '
                              'https://download.pytorch.org/models/vgg16-397923af.pth)')
    with pytest.raises(OptionValueError, match='^train:lpips_opt:reduction: expected mean or sum, got .none.$'):
        LOSS_REGISTRY.build({'type': 'LPIPSLoss', 'reduction': 'none'}, 'train:lpips_opt')


def test_track2_file_is_the_release_recipe_and_builds(vgg_file, tmp_path):
    """The option file, read by the project's parser and built on the CPU with a tiny generator and discriminator
    (--force_yml overrides in-process), is the release's track 2 recipe."""
    opt = parse(RECIPE, is_train=True, root_path=str(tmp_path))
    assert opt['path']['pretrain_network_g'].endswith('scglanet_x4_Track1.pth')  # from the track 1 weights
    net = opt['network_g']
    assert (net['type'], net['width'], net['num_blks'], net['drop_path_rate']) == ('SCGLANet', 128,
                                                                                   [16, 16, 32, 32, 32], 0.2)
    train_set = opt['datasets']['train']
    assert (train_set['gt_size_h'], train_set['gt_size_w'], train_set['batch_size_per_gpu']) == (96, 304, 3)
    assert train_set['color_order'] == 'rgb' and opt['num_gpu'] == 8

    tiny = ['num_gpu=0', 'network_g:width=8', 'network_g:num_blks=[1,0,0,0,1]', 'network_g:chunk_size=4',
            'network_d:num_feat=4', 'path:pretrain_network_g=~', f'train:lpips_opt:weights_path={vgg_file}']
    model = build_model(parse(RECIPE, is_train=True, force_yml=tiny, root_path=str(tmp_path)))
    for optimizer in (model.optimizer, model.optimizer_d):
        assert type(optimizer) is torch.optim.Adam
        group = optimizer.param_groups[0]
        assert (group['lr'], group['betas'], group['weight_decay']) == (1e-4, (0.9, 0.99), 0)
    assert model.grad_clip_norm is None and model.d_input == 'pair' and model.net_ema is None
    assert (model.net_d_iters, model.net_d_init_iters) == (1, 0)
    assert type(model.net_d).__name__ == 'UNetDiscriminatorSN' and model.net_d.conv0.in_channels == 6
    assert type(model.cri_pix).__name__ == 'L1Loss' and model.cri_pix.loss_weight == 0.1
    assert (model.cri_gan.gan_type, model.cri_gan.loss_weight) == ('vanilla', 0.1)
    lp = model.cri_lpips
    assert (type(lp), lp.net, lp.reduction, lp.loss_weight, lp.input_bgr) == (LPIPSLoss, 'vgg', 'sum', 1.0, False)
    assert model.cri_perceptual is None
    for scheduler in model.schedulers:  # G's and D's: one milestone at the last iteration, a constant rate
        assert isinstance(scheduler, torch.optim.lr_scheduler.MultiStepLR)
        assert dict(scheduler.milestones) == {400000: 1} and scheduler.gamma == 0.5


@pytest.mark.filterwarnings(LPIPS_DEPRECATION)
def test_two_iteration_gan_run_with_lpips_saves_both_networks(tiny_data, vgg_file, tmp_path):
    """A real train.py run of the recipe's losses with a tiny SCGLANet and the random VGG16: l_g_lpips is logged and
    net_g / net_d are saved."""
    opt = base_options(tiny_data, 'scglagan', total_iter=2)
    opt['model_type'] = 'StereoSRGANModel'
    opt['datasets']['train'].update(gt_size_h=16, gt_size_w=48)  # VGG16's fifth stage needs 16 rows
    opt['network_g'] = {'type': 'SCGLANet', 'up_scale': 2, 'width': 8, 'num_blks': [1, 0, 0, 0, 1], 'chunk_size': 4,
                        'drop_path_rate': 0.2, 'train_size': [1, 6, 8, 24]}
    opt['network_d'] = {'type': 'UNetDiscriminatorSN', 'num_in_ch': 6, 'num_feat': 4}
    recipe = parse(RECIPE, is_train=True, root_path=str(tmp_path))['train']
    train = opt['train']
    for key in ('optim_g', 'optim_d', 'pixel_opt', 'gan_opt', 'discriminator_input', 'grad_clip_norm',
                'net_d_iters', 'net_d_init_iters'):
        train[key] = recipe[key]
    train['lpips_opt'] = {**recipe['lpips_opt'], 'weights_path': str(vgg_file)}
    for key in ('mixup', 'ema_decay', 'warmup_iter'):
        train.pop(key)
    result = run_train(write_options(tmp_path, opt), tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    models = tmp_path / 'experiments' / 'scglagan' / 'models'
    assert {f'net_{n}_{i}.pth' for n in 'gd' for i in (1, 2)} <= set(os.listdir(models))
    log = result.stdout + result.stderr
    assert 'l_g_lpips' in log and 'l_g_gan' in log and 'l_d_real' in log
    assert 'vgg16_random.pth is not named as one of torchvision\'s files' in log and 'used unverified' in log


def test_lpips_under_perceptual_opt_is_one_line_before_work(tiny_data, vgg_file, tmp_path):
    """perceptual_opt's losses return (perceptual, style); LPIPSLoss there would fail at the first step, after the
    run's folder is made: refused at the start instead, naming the key that takes it."""
    opt = base_options(tiny_data, 'lpips_percep', total_iter=2)
    opt['train']['perceptual_opt'] = {'type': 'LPIPSLoss', 'weights_path': str(vgg_file)}
    result = run_train(write_options(tmp_path, opt), tmp_path)
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [
        "train.py: error: train:perceptual_opt:type: LPIPSLoss goes under train:lpips_opt (model_type: "
        "StereoSRGANModel), as in SCGLANet's track 2 recipe"]
    assert not (tmp_path / 'experiments' / 'lpips_percep').exists()
