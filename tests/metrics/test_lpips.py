"""LPIPS against the ``lpips`` package itself, the stereo conventions, and where the backbone weights come from.

The AlexNet backbone is random (seeded) and written here in torchvision's state-dict format, so nothing is
downloaded; the LPIPS linear layers are the calibrated ones that ship inside the ``lpips`` package.
"""
import hashlib

import lpips
import numpy as np
import pytest
import torch
import torchvision

from basicsr.metrics import calculate_metric, metric_better
from basicsr.metrics import perceptual
from basicsr.metrics.perceptual import (PerceptualWeightsError, calculate_lpips, calculate_lpips_left, lpips_model,
                                        lpips_weights_file)
from basicsr.option_checks import OPTION_CHECKS
from basicsr.reports import table_columns, with_left_variants
from basicsr.utils import checkpoint
from basicsr.utils.errors import UserError
from basicsr.utils.options import OptionError, check_types

ALEX_FILE = 'alexnet-owt-7be5be79.pth'  # torchvision's name for its ImageNet AlexNet weights


@pytest.fixture(scope='module')
def alex_weights(tmp_path_factory):
    """A random AlexNet in torchvision's key format (``features.<i>.weight``); the classifier part of torchvision's
    file is left out: LPIPS reads only ``features``. Not torchvision's file, so not under its name."""
    torch.manual_seed(0)
    state = torchvision.models.alexnet(weights=None).state_dict()
    path = tmp_path_factory.mktemp('weights') / 'alexnet_random.pth'
    torch.save({k: v for k, v in state.items() if k.startswith('features.')}, path)
    return path


@pytest.fixture
def pair():
    """Random 32x96 stereo images, uint8 HWC, the SR one a noisy copy of the HR one (channel order: RGB)."""
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (32, 96, 6), dtype=np.uint8)
    sr = np.clip(hr.astype(int) + rng.integers(-40, 41, hr.shape), 0, 255).astype(np.uint8)
    return sr, hr


def package_lpips(sr_rgb, hr_rgb, weights_path):
    """LPIPS of one RGB view by the ``lpips`` package alone: its own model, torchvision's layer ``features.<i>``
    loaded into the layer of the same index in lpips' slices, its own ``im2tensor`` scaling to [-1, 1]."""
    model = lpips.LPIPS(net='alex', pnet_rand=True, verbose=False)
    state = torch.load(weights_path)
    for piece in model.net.children():
        for index, layer in piece.named_children():
            layer.load_state_dict({name: state[f'features.{index}.{name}'] for name, _ in layer.named_parameters()})
    with torch.no_grad():
        return model(lpips.im2tensor(sr_rgb), lpips.im2tensor(hr_rgb)).item()


@pytest.mark.filterwarnings('ignore:.*deprecated since 0.13:UserWarning')  # lpips 0.1.4 calls alexnet(pretrained=)
def test_equals_the_lpips_package(pair, alex_weights):
    sr, hr = (img[..., :3] for img in pair)
    ours = calculate_lpips(sr, hr, color_order='rgb', weights_path=alex_weights)
    expected = package_lpips(sr, hr, alex_weights)
    assert expected > 1e-3  # a real distance, not a degenerate zero (measured 0.0083 with this random backbone)
    assert ours == pytest.approx(expected, abs=1e-6)  # the same float32 network on the same input


def test_identical_images_score_zero(pair, alex_weights):
    _, hr = pair
    assert calculate_lpips(hr, hr, weights_path=alex_weights) == 0.0  # equal features; the linear layers have no bias


def test_stereo_score_is_mean_of_views(pair, alex_weights):
    sr, hr = pair
    left = calculate_lpips(sr[..., :3], hr[..., :3], weights_path=alex_weights)
    right = calculate_lpips(sr[..., 3:], hr[..., 3:], weights_path=alex_weights)
    assert left != pytest.approx(right, abs=1e-4)
    # both views go through the network as one batch of 2; 1e-6 allows another float32 summation order
    assert calculate_lpips(sr, hr, weights_path=alex_weights) == pytest.approx((left + right) / 2, abs=1e-6)


def test_bgr_images_are_flipped_to_rgb(pair, alex_weights):
    sr, hr = (img[..., :3] for img in pair)
    rgb = calculate_lpips(sr, hr, color_order='rgb', weights_path=alex_weights)
    assert calculate_lpips(sr[..., ::-1], hr[..., ::-1], color_order='bgr', weights_path=alex_weights) == rgb
    # the channel order matters to the network: reading RGB as BGR gives another value
    assert calculate_lpips(sr, hr, color_order='bgr', weights_path=alex_weights) != pytest.approx(rgb, abs=1e-4)
    # evaluate() passes the dataset's color_order through calculate_metric
    data = {'img': sr[..., ::-1], 'img2': hr[..., ::-1], 'color_order': 'bgr'}
    assert calculate_metric(data, {'type': 'calculate_lpips', 'weights_path': str(alex_weights)}) == rgb


def test_left_variant_crops_64_columns_of_the_left_view(pair, alex_weights):
    sr, hr = pair
    expected = calculate_lpips(sr[:, 64:, :3], hr[:, 64:, :3], weights_path=alex_weights)
    assert calculate_lpips_left(sr, hr, weights_path=alex_weights) == expected


def test_lower_is_better_and_the_left_column_of_test_tables():
    assert metric_better({'type': 'calculate_lpips'}) == 'lower'
    assert metric_better({'type': 'calculate_lpips_left'}) == 'lower'
    metrics = with_left_variants({'lpips': {'type': 'calculate_lpips', 'net': 'alex'}})
    assert metrics['lpips_left'] == {'type': 'calculate_lpips_left', 'net': 'alex'}
    assert table_columns(metrics) == [('Left', 'LPIPS', 'lpips_left'), ('(Left+Right)/2', 'LPIPS', 'lpips')]


def test_backbone_found_in_the_torch_hub_cache(pair, alex_weights, tmp_path, monkeypatch):
    """torchvision names its file after the first 8 hex digits of its SHA-256: here a name made the same way for the
    random backbone stands in for the official one (whose 233 MB are not downloaded), and is verified."""
    own_name = f'alexnet-owt-{hashlib.sha256(alex_weights.read_bytes()).hexdigest()[:8]}.pth'
    monkeypatch.setitem(perceptual.BACKBONES, 'alex', ('AlexNet', own_name, f'https://example.org/{own_name}'))
    monkeypatch.setattr(checkpoint, 'TORCHVISION_FILES', (*checkpoint.TORCHVISION_FILES, own_name))
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    cached = tmp_path / 'hub' / 'checkpoints' / own_name
    cached.parent.mkdir(parents=True)
    cached.symlink_to(alex_weights)  # the same file: the model built for it is reused
    sr, hr = pair
    assert lpips_weights_file('alex') == str(cached)
    assert calculate_lpips(sr, hr) == calculate_lpips(sr, hr, weights_path=alex_weights)


def test_another_file_under_torchvision_name_is_refused(pair, alex_weights, tmp_path, monkeypatch, caplog):
    """A random AlexNet under torchvision's name, in the hub cache or as weights_path: refused, in one line naming the
    file and the official source. Under another name it is used, and the log says that it is unverified."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    cached = tmp_path / 'hub' / 'checkpoints' / ALEX_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(alex_weights.read_bytes())
    digest = hashlib.sha256(cached.read_bytes()).hexdigest()
    sr, hr = pair
    for kwargs in ({}, {'weights_path': str(cached)}):
        with pytest.raises(PerceptualWeightsError) as err:
            calculate_lpips(sr, hr, **kwargs)
        assert str(err.value) == (
            f"LPIPS net=alex: {cached}: not torchvision's {ALEX_FILE}: its SHA-256 starts with {digest[:8]}, the "
            'official file\'s with 7be5be79 (another file under its name, or a damaged download); download it again '
            'from https://download.pytorch.org/models/alexnet-owt-7be5be79.pth')
    # when the options are read, before anything is written
    opt = {'val': {'metrics': {'lpips': {'type': 'calculate_lpips', 'weights_path': str(cached)}}}}
    with pytest.raises(OptionError, match=rf"^x\.yml: val:metrics:lpips: LPIPS net=alex: {cached}: not torchvision's "):
        check_types(opt, OPTION_CHECKS, src='x.yml')

    renamed = tmp_path / 'alexnet_mine.pth'
    cached.rename(renamed)
    with caplog.at_level('WARNING', logger='basicsr'):
        check_types({'val': {'metrics': {'lpips': {'type': 'calculate_lpips', 'weights_path': str(renamed)}}}},
                    OPTION_CHECKS, src='x.yml')
        calculate_lpips(sr, hr, weights_path=renamed)
    unverified = f'LPIPS net=alex: {renamed} is not named as one of torchvision\'s files'
    assert caplog.text.count(unverified) == 1 and 'used unverified' in caplog.text  # one line per file


def test_model_is_built_once_per_backbone_file(alex_weights):
    model = lpips_model('alex', alex_weights)
    assert lpips_model('alex', str(alex_weights)) is model
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_missing_backbone_is_one_line_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    monkeypatch.delenv(perceptual.ALLOW_DOWNLOAD_ENV, raising=False)
    image = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(PerceptualWeightsError) as err:
        calculate_lpips(image, image)
    message = str(err.value)
    assert isinstance(err.value, UserError) and '\n' not in message
    assert str(tmp_path / 'hub' / 'checkpoints' / ALEX_FILE) in message
    assert 'download.pytorch.org/models/alexnet-owt-7be5be79.pth' in message and 'STEREO_SR_ALLOW_DOWNLOAD=1' in message

    missing = tmp_path / 'nowhere' / 'alex.pth'
    with pytest.raises(PerceptualWeightsError, match=f'val:metrics:lpips: weights_path: no file {missing} '):
        calculate_metric({'img': image, 'img2': image}, {'type': 'calculate_lpips', 'weights_path': str(missing)},
                         key_path='val:metrics:lpips')


def test_missing_backbone_stops_the_run_when_the_options_are_read(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    monkeypatch.delenv(perceptual.ALLOW_DOWNLOAD_ENV, raising=False)
    opt = {'val': {'metrics': {'psnr': {'type': 'calculate_psnr'},
                               'ntire': {'type': 'calculate_ntire2023_perceptual_score', 'net': 'vgg'}}}}
    # what train.py and test.py run on the option file, before any network or dataset is built
    with pytest.raises(OptionError, match=r'^x\.yml: val:metrics:ntire: LPIPS net=vgg needs the torchvision VGG16 '
                                          r'ImageNet weights: no file .*vgg16-397923af\.pth;'):
        check_types(opt, OPTION_CHECKS, src='x.yml')


def test_download_only_when_allowed(tmp_path, monkeypatch, alex_weights):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    calls = []

    def fake_download(url, model_dir, **kwargs):  # stands in for torchvision's download: nothing leaves the machine
        calls.append(url)
        (tmp_path / 'hub' / 'checkpoints').mkdir(parents=True)
        (tmp_path / 'hub' / 'checkpoints' / ALEX_FILE).write_bytes(alex_weights.read_bytes())

    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', fake_download)
    monkeypatch.delenv(perceptual.ALLOW_DOWNLOAD_ENV, raising=False)
    with pytest.raises(PerceptualWeightsError):
        lpips_weights_file('alex')
    assert calls == []
    monkeypatch.setenv(perceptual.ALLOW_DOWNLOAD_ENV, '1')
    assert lpips_weights_file('alex') == str(tmp_path / 'hub' / 'checkpoints' / ALEX_FILE)
    assert calls == ['https://download.pytorch.org/models/alexnet-owt-7be5be79.pth']

    def no_network(url, model_dir, **kwargs):
        raise OSError('[Errno 101] Network is unreachable')

    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', no_network)
    with pytest.raises(PerceptualWeightsError, match=r'LPIPS net=vgg: could not download .*vgg16-397923af\.pth to '
                                                     r'.*\(OSError: \[Errno 101\] Network is unreachable\)'):
        lpips_weights_file('vgg')


def test_too_small_a_view_is_one_line(alex_weights):
    image = np.zeros((16, 64, 3), np.uint8)
    with pytest.raises(ValueError, match='LPIPS net=alex cannot score a 64x16 view'):
        calculate_lpips(image, image, weights_path=alex_weights)


def test_a_file_of_another_network_is_refused(tmp_path):
    wrong = tmp_path / 'not_alexnet.pth'
    torch.save({'features.0.weight': torch.zeros(8, 3, 3, 3)}, wrong)
    with pytest.raises(PerceptualWeightsError, match=f'^LPIPS net=alex: {wrong}: not torchvision AlexNet weights '
                                                     r'\(no features\.0\.bias, features\.3\.weight, '
                                                     r'features\.3\.bias, \.\.\.\)$'):
        lpips_model('alex', wrong)
    vgg16 = tmp_path / 'vgg16_features.pth'
    torch.save({k: v for k, v in torchvision.models.vgg16(weights=None).state_dict().items()
                if k.startswith('features.')}, vgg16)
    with pytest.raises(PerceptualWeightsError, match=f'^LPIPS net=alex: {vgg16}: holds torchvision VGG16 ImageNet '
                                                     'weights, not torchvision AlexNet weights'):
        lpips_model('alex', vgg16)
    image = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(PerceptualWeightsError, match="net: expected one of alex, vgg, squeeze, got 'resnet'"):
        calculate_lpips(image, image, net='resnet', weights_path=wrong)
