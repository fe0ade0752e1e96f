"""scripts/track_demo.py: the two-minute realistic and perceptual demos of docs/tracks.md, here shrunk to a few
iterations of a tiny network in a temporary work folder (the real runs' figures are in docs/tracks.md)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from basicsr.utils.options import yaml_load
from helpers import load_script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'scripts' / 'track_demo.py'
REALISTIC = ROOT / 'options' / 'train' / 'NAFSSR' / 'sample_realistic_x4.yml'
PERCEPTUAL = ROOT / 'options' / 'train' / 'NAFSSR' / 'sample_perceptual_x4.yml'
TINY_G = ['network_g:width=4', 'network_g:num_blks=1']
TINY_REALISTIC = ['train:total_iter=4', 'train:scheduler:T_max=4', 'train:warmup_iter=-1', 'val:val_freq=4', *TINY_G]


def test_the_perceptual_run_fine_tunes_the_realistic_network_on_the_same_data():
    realistic, perceptual = yaml_load(REALISTIC), yaml_load(PERCEPTUAL)
    assert perceptual['network_g'] == realistic['network_g']
    assert perceptual['path']['pretrain_network_g'] == \
        f"experiments/{realistic['name']}/models/net_g_{realistic['train']['total_iter']}.pth"
    for key in ('type', 'dataroot_gt', 'degradation'):
        assert perceptual['datasets']['train'][key] == realistic['datasets']['train'][key], key
    assert perceptual['datasets']['val'] == realistic['datasets']['val']
    # the training degradation is the file that makes the fixed test LR
    assert realistic['datasets']['train']['degradation'] == 'options/degradations/realistic_x4.yml'
    assert realistic['datasets']['val']['dataroot_lq'].endswith('lr_x4_realistic_x4')
    train = perceptual['datasets']['train']
    assert train['gt_size_h'] % 8 == 0 and train['gt_size_w'] % 8 == 0  # UNetDiscriminatorSN
    assert 'perceptual_opt' not in perceptual['train']  # no VGG19 weights offline
    assert perceptual['train']['gan_opt'] == {'type': 'GANLoss', 'gan_type': 'vanilla', 'loss_weight': 0.1}


def test_compare_needs_one_label_per_sr_folder(tmp_path):
    plot_results = load_script('scripts/plot_results.py')
    assert plot_results.main(['compare', '--sr_dir', str(tmp_path), str(tmp_path), '--label', 'only one',
                              '--lq_dir', str(tmp_path), '--gt_dir', str(tmp_path), '--scale', '4',
                              '--output', str(tmp_path / 'fig')]) == 2  # USER_ERROR_EXIT


@pytest.fixture(scope='module')
def perceptual_run(tmp_path_factory):
    """``track_demo.py perceptual`` (which runs ``realistic`` first) with 4 + 2 iterations of a width-4 NAFSSR."""
    work = tmp_path_factory.mktemp('track_demo')
    os.symlink(ROOT / 'options', work / 'options')  # the option files name options/degradations/realistic_x4.yml
    cmd = [sys.executable, str(SCRIPT), 'perceptual', '--workdir', str(work),
           '--realistic_force_yml', *TINY_REALISTIC,
           '--force_yml', 'train:total_iter=2', 'val:val_freq=2', 'network_d:num_feat=4', *TINY_G]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=280)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return work, out.stdout


def test_realistic_step_trains_on_the_fly_and_tests_on_the_fixed_realistic_lr(perceptual_run):
    work, stdout = perceptual_run
    lr = work / 'datasets' / 'sample' / 'test' / 'Motorcycle' / 'lr_x4_realistic_x4'
    assert (lr / 'motorcycle_bottom' / 'lr0.png').is_file() and (lr / '.sources.json').is_file()
    assert (work / 'experiments' / 'sample_NAFSSR_x4_realistic' / 'models' / 'net_g_4.pth').is_file()
    line = next(s for s in stdout.splitlines() if s.startswith('track_demo realistic: '))
    ours, bicubic = _two_psnrs(line)
    assert bicubic == 25.18  # bicubic of the seed-0 realistic LR, whatever the training (docs/tracks.md)
    assert ours == float(next(s for s in stdout.splitlines() if s.startswith('NAFSSR (L1) ')).split()[2])
    assert '(realistic x4, seed 0)' in line


def _two_psnrs(line):
    """``track_demo realistic: NAFSSR 24.74 dB vs bicubic 25.18 dB on ...`` -> (24.74, 25.18)."""
    words = line.split()
    return float(words[words.index('NAFSSR') + 1]), float(words[words.index('bicubic') + 1])


def test_perceptual_step_scores_psnr_ssim_and_stereo_consistency_and_draws_five_panels(perceptual_run):
    work, stdout = perceptual_run
    assert (work / 'experiments' / 'sample_NAFSSR_x4_perceptual' / 'models' / 'net_d_2.pth').is_file()
    lines = stdout.splitlines()
    rows = {name: next(s for s in reversed(lines) if s.startswith(name)) for name in  # the last table
            ('bicubic ', 'NAFSSR (L1) ', 'NAFSSR (L1+GAN) ', 'HR (floor) ')}
    hr_cells = rows['HR (floor) '].split()[2:]
    assert hr_cells == ['-', '-', '3.90']  # the floor: HR against itself (docs/tracks.md)
    cells = {name: rows[name][len(name):].split() for name in ('bicubic ', 'NAFSSR (L1) ', 'NAFSSR (L1+GAN) ')}
    assert cells['bicubic '] == ['25.18', '0.6631', '10.00']  # independent of the training (docs/tracks.md)
    realistic = next(s for s in lines if s.startswith('track_demo realistic: '))
    assert float(cells['NAFSSR (L1) '][0]) == _two_psnrs(realistic)[0]  # the realistic network, the same LR
    gan, l1 = cells['NAFSSR (L1+GAN) '], cells['NAFSSR (L1) ']
    assert f'track_demo perceptual: NAFSSR+GAN {gan[0]} dB, consistency {gan[2]} vs NAFSSR {l1[0]} dB, {l1[2]} ' \
           '(bicubic 25.18 dB, 10.00; HR 3.90) on motorcycle_bottom' in stdout
    from basicsr.utils.img_util import imread
    picture = work / 'results' / 'track_demo' / 'motorcycle_bottom_L_tracks.png'
    single = work / 'results' / 'track_demo' / 'motorcycle_bottom_L_realistic.png'
    assert picture.is_file() and single.is_file()
    # bicubic | LR | fidelity | perceptual | HR is wider than bicubic | LR | fidelity | HR by one panel
    assert np.isclose(imread(picture).shape[1] / imread(single).shape[1], 5 / 4, atol=0.02)


def test_draw_zero_of_the_degradation_is_the_fixed_test_lr(perceptual_run, monkeypatch):
    """The mean over draws starts with seed 0, the draw prepare_test_sets.py wrote: its bicubic PSNR is the one of
    the fixed test pair."""
    work, stdout = perceptual_run
    monkeypatch.chdir(work)
    demo = load_script('scripts/track_demo.py')
    from basicsr.utils.options import parse

    opt = parse(str(REALISTIC), is_train=True, force_yml=TINY_REALISTIC, root_path=str(work))
    weights = os.path.join(opt['path']['models'], 'net_g_4.pth')
    ours, bicubic, wins = demo.score_draws(opt, weights, 1)
    line = next(s for s in stdout.splitlines() if s.startswith('track_demo realistic: '))
    assert (f'{ours:.2f}', f'{bicubic:.2f}') == tuple(f'{v:.2f}' for v in _two_psnrs(line))
    assert wins == int(ours > bicubic)
