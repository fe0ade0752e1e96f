"""The VGG19 file of the perceptual loss (``train:perceptual_opt:vgg_weights_path``): a file under torchvision's own
name must be torchvision's (its SHA-256 begins with the digits of the name), a file under another name is used with a
log line saying it is unverified, and the file of another network is one line naming what it holds."""
import hashlib

import pytest
import torch
import torchvision

from basicsr.losses.losses import PerceptualLoss
from basicsr.models.archs import define_network
from basicsr.utils.checkpoint import CheckpointError, save_atomic
from train_helpers import base_options, run_train, write_options

VGG19_FILE = 'vgg19-dcbb9e9d.pth'  # torchvision's name: the first 8 hex digits of the file's SHA-256


@pytest.fixture(scope='module')
def vgg_features(tmp_path_factory):
    """A random VGG19's ``features`` in torchvision's key format (the loss reads nothing else)."""
    torch.manual_seed(0)
    with torch.no_grad():
        features = torchvision.models.vgg19(weights=None).features
    path = tmp_path_factory.mktemp('vgg') / 'vgg19_random.pth'
    torch.save({f'features.{k}': v for k, v in features.state_dict().items()}, path)
    return path


def test_another_file_under_torchvision_name_is_refused(vgg_features, tmp_path, caplog):
    official = tmp_path / VGG19_FILE
    official.write_bytes(vgg_features.read_bytes())
    digest = hashlib.sha256(official.read_bytes()).hexdigest()
    with pytest.raises(CheckpointError) as err:
        PerceptualLoss(vgg_weights_path=str(official))
    assert str(err.value) == (
        f"train:perceptual_opt:vgg_weights_path: {official}: not torchvision's {VGG19_FILE}: its SHA-256 starts with "
        f"{digest[:8]}, the official file's with dcbb9e9d (another file under its name, or a damaged download); "
        f'download it again from https://download.pytorch.org/models/{VGG19_FILE}')

    with caplog.at_level('WARNING', logger='basicsr'):
        loss = PerceptualLoss(layer_weights={'conv1_2': 1.0}, vgg_weights_path=str(vgg_features))
    assert f'train:perceptual_opt:vgg_weights_path: {vgg_features} is not named as one of torchvision\'s files' \
        in caplog.text and 'used unverified' in caplog.text
    state = torch.load(vgg_features, weights_only=True)
    assert torch.equal(loss.features[2].weight, state['features.2.weight'])  # conv1_2, from the file


def test_a_network_file_as_vgg_weights_is_one_line_naming_it(tiny_data, tmp_path):
    """A net_g file given as vgg_weights_path, through a real train.py: one line, exit 2, nothing written."""
    net_g = define_network(dict(base_options(tiny_data, 'x')['network_g']))
    save_atomic({'params': net_g.state_dict()}, tmp_path / 'net_g_4.pth')
    opt = base_options(tiny_data, 'percep')
    opt['train']['perceptual_opt'] = {'type': 'PerceptualLoss', 'vgg_weights_path': str(tmp_path / 'net_g_4.pth'),
                                      'perceptual_weight': 1.0}
    result = run_train(write_options(tmp_path, opt), tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [
        f"train.py: error: train:perceptual_opt:vgg_weights_path: {tmp_path / 'net_g_4.pth'}: holds a stereo SR "
        'network (NAFSSR), not torchvision VGG19 weights (no features.0.weight, features.0.bias, features.2.weight, '
        '...)']
    assert not (tmp_path / 'experiments' / 'percep').exists()
