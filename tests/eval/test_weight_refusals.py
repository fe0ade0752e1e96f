"""Weights of another family or size, given to test.py or scripts/inference_stereo.py: one line naming what the file
holds and the option to change, exit 2, nothing written (a non-strict load never tests an untrained network)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from basicsr.models.archs.arch_util import build_named
from basicsr.utils.checkpoint import CheckpointError, save_atomic
from basicsr.utils.img_util import imread, imwrite
from helpers import load_script

REPO = Path(__file__).resolve().parents[2]
inference = load_script('scripts/inference_stereo.py')


def _env():
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(REPO))
    env.pop('STEREO_SR_TRACEBACK', None)
    return env


def _one_line_exit_2(cmd, cwd):
    result = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    line, = result.stderr.strip().splitlines()
    return line


def test_test_py_refuses_a_non_strict_load_of_another_family(tiny_stereo_root, tmp_path):
    weights = tmp_path / 'iPASSR_x2.pth'
    save_atomic({'params': build_named('iPASSR', 2).state_dict()}, weights)
    test_set = Path(tiny_stereo_root) / 'test' / 'Tiny'
    opt = {'name': 'wrong_family', 'model_type': 'ImageRestorationModel', 'scale': 2, 'num_gpu': 0,
           'datasets': {'test0': {'name': 'Tiny', 'type': 'PairedStereoImageDataset',
                                  'dataroot_gt': str(test_set / 'hr'), 'dataroot_lq': str(test_set / 'lr_x2')}},
           'network_g': {'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 2},
           'path': {'pretrain_network_g': str(weights), 'strict_load_g': False},
           'val': {'save_img': True, 'metrics': {'psnr': {'type': 'calculate_psnr'}}}}
    (tmp_path / 'opt.yml').write_text(yaml.safe_dump(opt))
    line = _one_line_exit_2([sys.executable, str(REPO / 'test.py'), '-opt', str(tmp_path / 'opt.yml')], tmp_path)
    assert line.startswith(f'test.py: error: path:pretrain_network_g: {weights}: holds a stereo SR network '
                           '(iPASSR x2), not NAFSSR (network_g:type): set network_g:type to iPASSR; the zoo tests '
                           "iPASSR x2 with options/test/iPASSR/iPASSR_x2.yml (shares only 0 of the network's 68 "
                           'tensors'), line
    assert not (tmp_path / 'results').exists()


@pytest.fixture
def pair(tmp_path, tiny_stereo_root):
    lr = Path(tiny_stereo_root) / 'test' / 'Tiny' / 'lr_x2' / 'pair_a'
    for view, index in (('L', 0), ('R', 1)):
        imwrite(imread(lr / f'lr{index}.png'), tmp_path / f'p_{view}.png')
    return ['--left', str(tmp_path / 'p_L.png'), '--right', str(tmp_path / 'p_R.png')]


def test_inference_with_another_family_names_the_arch_to_use(pair, tmp_path):
    weights = tmp_path / 'CVHSSR_Tx2.pth'
    save_atomic({'params': build_named('CVHSSR-T', 2).state_dict()}, weights)
    cmd = [sys.executable, str(REPO / 'scripts' / 'inference_stereo.py'), *pair, '--output', str(tmp_path / 'out'),
           '--arch', 'NAFSSR-T', '--scale', '2', '--weights', str(weights)]
    line = _one_line_exit_2(cmd, tmp_path)
    assert line.startswith(f'inference_stereo.py: error: --weights: {weights}: holds a stereo SR network '
                           '(CVHSSR-T x2), not NAFSSR (--arch): use --arch CVHSSR-T --scale 2 ('), line
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('arch, scale, message', [
    ('NAFSSR-T', 2, 'holds NAFSSR-T x4: use --arch NAFSSR-T --scale 4 ('),  # the scale
    ('NAFSSR-S', 4, 'holds NAFSSR-T x4: use --arch NAFSSR-T --scale 4 ('),  # the size
])
def test_inference_with_another_size_or_scale_names_it(pair, tmp_path, arch, scale, message):
    weights = tmp_path / 'NAFSSR-T_4x.pth'
    save_atomic({'params': build_named('NAFSSR-T', 4).state_dict()}, weights)
    with pytest.raises(CheckpointError) as err:
        inference.run([*pair, '--output', str(tmp_path / 'out'), '--arch', arch, '--scale', str(scale),
                       '--weights', str(weights)])
    assert str(err.value).startswith(f'--weights: {weights}: {message}'), str(err.value)
