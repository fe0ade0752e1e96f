"""basicsr/toolbox.py and basicsr.inference.network_from_options: what the scripts share, each refusal one line."""
import argparse
import os

import numpy as np
import pytest
import torch

from basicsr import zoo
from basicsr.data.layout import HR_VIEWS
from basicsr.inference import InputError, network_from_options
from basicsr.models.archs import define_network
from basicsr.toolbox import ToolInputError, read_views, size_type, zoo_model, zoo_models, zoo_option_file
from basicsr.utils.img_util import imwrite
from helpers import ROOT


def test_zoo_names_and_their_closest_matches():
    assert zoo_model('CVHSSR-T_x4') is zoo.MODELS['CVHSSR-T_x4']
    assert zoo_option_file(zoo.MODELS['CVHSSR-T_x4']) == os.path.join(ROOT, 'options', 'test', 'CVHSSR',
                                                                       'CVHSSR-T_x4.yml')
    with pytest.raises(ToolInputError) as err:
        zoo_model('CVHSSR-T_x3', '--models')
    assert str(err.value) == ("--models: unknown model 'CVHSSR-T_x3'; expected a name of the zoo such as NAFSSR-T_x4 "
                              '(closest: CVHSSR-T_x4, CVHSSR-T_x2, CVHSSR-S_x4)')
    with pytest.raises(ToolInputError, match=r"'nothing-like-it'; .*\(list: scripts/download_pretrained.py --list\)"):
        zoo_model('nothing-like-it')
    assert zoo_models([]) == list(zoo.MODELS.values())
    assert [m.name for m in zoo_models(['NAFSSR-T_x2', 'CVHSSR-T_x4'])] == ['NAFSSR-T_x2', 'CVHSSR-T_x4']


def test_size_arguments():
    assert size_type('93x310') == (93, 310) == size_type('93X310')
    for bad in ('93', '0x5', 'axb', '-3x4'):
        with pytest.raises(argparse.ArgumentTypeError, match='expected HxW with positive integers'):
            size_type(bad)


def test_views_of_a_pair_folder(tmp_path):
    views = [np.full((4, 6, 3), v, np.uint8) for v in (10, 20)]
    imwrite(views[0], str(tmp_path / 'hr0.png'))
    with pytest.raises(ToolInputError) as err:
        read_views(str(tmp_path), HR_VIEWS, '--pair')
    assert str(err.value) == f'--pair: {tmp_path}/hr1.png not found (expected a pair folder with hr0.png and hr1.png)'
    imwrite(views[1], str(tmp_path / 'hr1.png'))
    assert all(np.array_equal(a, b) for a, b in zip(read_views(str(tmp_path), HR_VIEWS), views))


def test_network_from_options_loads_the_given_file_or_refuses_in_one_line(tmp_path):
    opt = {'opt_path': 'x.yml', 'network_g': {'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 1},
           'path': {}}
    with pytest.raises(InputError) as err:
        network_from_options(opt, None, '--weights')
    assert str(err.value) == "x.yml: path:pretrain_network_g must name the network's weights; give --weights"
    torch.manual_seed(0)
    saved = define_network(opt['network_g']).state_dict()
    torch.save({'params': saved}, tmp_path / 'net.pth')

    def same(net):
        return all(torch.equal(net.state_dict()[k], v) for k, v in saved.items())

    torch.manual_seed(1)
    assert not same(define_network(opt['network_g']))  # another draw: only loading makes them equal
    torch.manual_seed(1)
    assert same(network_from_options(opt, str(tmp_path / 'net.pth')))
    opt['path']['pretrain_network_g'] = str(tmp_path / 'net.pth')  # the option file's own weights
    torch.manual_seed(1)
    assert same(network_from_options(opt))
