"""test.py seeds torch from the option file's ``manual_seed`` before each test set: a network that draws at test time
(SCGLANet's random hashing rotations) gives the same scores on every run, as the release's own test does."""
import json

import pytest
import torch

from basicsr.models.archs import define_network
from basicsr.utils.checkpoint import save_atomic

NETWORK = {'type': 'NAFSSR', 'up_scale': 4, 'width': 8, 'num_blks': 1, 'cross_block': 'SCGLA',
           'cross_kwargs': {'chunk_size': 4, 'n_hashes': 2}}


def _run_test(tmp_path, sample_root, weights, name, seed):
    import test as test_script

    root = f'{sample_root}/test/Motorcycle'
    opt = {'name': name, 'model_type': 'ImageRestorationModel', 'scale': 4, 'num_gpu': 0,
           'datasets': {'test0': {'name': 'Motorcycle', 'type': 'PairedStereoImageDataset', 'scale': 4,
                                  'dataroot_gt': f'{root}/hr', 'dataroot_lq': f'{root}/lr_x4'}},
           'network_g': NETWORK, 'path': {'pretrain_network_g': str(weights)},
           'val': {'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 0}}}}
    if seed is not None:
        opt['manual_seed'] = seed
    option_file = tmp_path / f'{name}.yml'
    option_file.write_text(json.dumps(opt))  # JSON is YAML
    test_script.run_test(['-opt', str(option_file)])
    return json.loads((tmp_path / 'results' / name / 'metrics.json').read_text())


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    torch.manual_seed(0)
    net = define_network(dict(NETWORK), key_path='network_g')
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 0.05)
    path = tmp_path_factory.mktemp('weights') / 'scgla.pth'
    save_atomic({'params': net.state_dict()}, path)
    return path


def test_manual_seed_makes_a_drawing_network_repeat(tmp_path, sample_root, weights, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = _run_test(tmp_path, sample_root, weights, 'seeded_a', 10)
    torch.manual_seed(12345)  # whatever the process drew before, the set starts from manual_seed
    second = _run_test(tmp_path, sample_root, weights, 'seeded_b', 10)
    assert first == second
    unseeded = [_run_test(tmp_path, sample_root, weights, f'unseeded_{i}', None) for i in range(2)]
    assert unseeded[0] != unseeded[1]  # the network really draws: without the seed two runs differ
