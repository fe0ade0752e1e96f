"""Telling what a state dict holds from its names and shapes (``basicsr/models/archs/identify.py``): the family, the
named size and scale, the zoo option file, torchvision's backbones; nothing for a file it does not know."""
import pytest
import torch
import torchvision

from basicsr.models.archs import define_network
from basicsr.models.archs.arch_util import build_named
from basicsr.models.archs.identify import Identity, identify
from basicsr.utils.checkpoint import identify_weights


def _meta_state(build):
    """The state dict of a network built on the meta device: names and shapes are all that identify() reads."""
    with torch.device('meta'):
        return build().state_dict()


@pytest.mark.parametrize('named, scale, option', [
    ('NAFSSR-T', 4, 'options/test/NAFSSR/NAFSSR-T_x4.yml'),
    ('NAFSSR-T', 2, 'options/test/NAFSSR/NAFSSR-T_x2.yml'),  # the same names, other up-sampler shapes
    ('CVHSSR-T', 2, 'options/test/CVHSSR/CVHSSR-T_x2.yml'),
    ('EHFSSR-S', 4, 'options/test/EHFSSR/EHFSSR_S_x4.yml'),
    ('iPASSR', 2, 'options/test/iPASSR/iPASSR_x2.yml'),
    ('NAFSSR-T', 3, None),  # a scale the zoo has no model for
])
def test_named_sizes_and_their_zoo_option_files(named, scale, option):
    found = identify(_meta_state(lambda: build_named(named, scale)))
    family = named.split('-')[0]
    assert found == Identity('stereo SR network', 'EHFSSR_S' if named == 'EHFSSR-S' else family, named, scale,
                             option)
    assert str(found) == f'a stereo SR network ({named} x{scale})'


def test_other_sizes_discriminators_and_backbones():
    tiny = _meta_state(lambda: define_network({'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 2}))
    assert identify(tiny) == Identity('stereo SR network', 'NAFSSR')  # the family, no named size
    unet = _meta_state(lambda: define_network({'type': 'UNetDiscriminatorSN', 'num_in_ch': 3, 'num_feat': 4}))
    assert str(identify(unet)) == 'a discriminator (UNetDiscriminatorSN)'
    restoration = _meta_state(lambda: define_network({'type': 'NAFNet', 'width': 8, 'enc_blk_nums': [1],
                                                      'dec_blk_nums': [1]}))
    assert str(identify(restoration)) == 'a restoration network (NAFNet)'
    vgg19 = _meta_state(lambda: torchvision.models.vgg19(weights=None))
    assert str(identify(vgg19)) == 'torchvision VGG19 ImageNet weights'
    features = {k: v for k, v in _meta_state(lambda: torchvision.models.alexnet(weights=None)).items()
                if k.startswith('features.')}
    assert str(identify(features)) == 'torchvision AlexNet ImageNet weights'  # LPIPS reads only the features


def test_unknown_files_and_the_random_streams():
    assert identify({'0.weight': torch.zeros(4, 6, 3, 3), '0.bias': torch.zeros(4)}) is None
    assert identify({}) is None
    state = torch.random.get_rng_state()
    assert identify_weights(_meta_state(lambda: build_named('CVHSSR-T', 4)), exact=False) == Identity(
        'stereo SR network', 'CVHSSR')  # through the loaders' hook; without the named-size search
    assert torch.equal(torch.random.get_rng_state(), state)  # a pretrain refusal never changes a run's random draws
