"""scripts/track_demo.py: the two-minute realistic and perceptual demos of docs/tracks.md, here shrunk to a few
iterations of a tiny network in a temporary work folder (the real runs' figures are in docs/tracks.md)."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from basicsr.utils.errors import run_main
from basicsr.utils.options import yaml_load
from helpers import load_script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'scripts' / 'track_demo.py'
REALISTIC = ROOT / 'options' / 'train' / 'NAFSSR' / 'sample_realistic_x4.yml'
PERCEPTUAL = ROOT / 'options' / 'train' / 'NAFSSR' / 'sample_perceptual_x4.yml'
TINY_G = ['network_g:width=4', 'network_g:num_blks=1']
TINY_REALISTIC = ['train:total_iter=4', 'train:scheduler:T_max=4', 'train:warmup_iter=-1', 'val:val_freq=4', *TINY_G]
TINY_GAN = ['train:total_iter=2', 'val:val_freq=2', 'network_d:num_feat=4', *TINY_G]
STEPS = ['sample_NAFSSR_x4_perceptual', 'sample_NAFSSR_x4_realistic']  # the experiment folders of the demo


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
def perceptual_run(sample_root, tmp_path_factory):
    """``track_demo.py perceptual`` (which runs ``realistic`` first) with 4 + 2 iterations of a width-4 NAFSSR, in a
    work folder outside the repository (the option files' options/degradations/realistic_x4.yml is the
    repository's) holding a copy of the session's built-in sample, which the demo's make_sample.py step finds built
    (the fixed realistic LR is made by the demo)."""
    work = tmp_path_factory.mktemp('track_demo')
    shutil.copytree(sample_root, work / 'datasets' / 'sample')
    cmd = [sys.executable, str(SCRIPT), 'perceptual', '--workdir', str(work),
           '--realistic_force_yml', *TINY_REALISTIC, '--force_yml', *TINY_GAN]
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
    assert bicubic == 24.76  # bicubic of the seed-0 realistic LR, whatever the training (docs/tracks.md)
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
    assert cells['bicubic '] == ['24.76', '0.7110', '7.10']  # independent of the training (docs/tracks.md)
    realistic = next(s for s in lines if s.startswith('track_demo realistic: '))
    assert float(cells['NAFSSR (L1) '][0]) == _two_psnrs(realistic)[0]  # the realistic network, the same LR
    gan, l1 = cells['NAFSSR (L1+GAN) '], cells['NAFSSR (L1) ']
    assert f'track_demo perceptual: NAFSSR+GAN {gan[0]} dB, consistency {gan[2]} vs NAFSSR {l1[0]} dB, {l1[2]} ' \
           '(bicubic 24.76 dB, 7.10; HR 3.90) on motorcycle_bottom' in stdout
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


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_each_step_records_what_it_was_made_from(perceptual_run):
    work, _ = perceptual_run
    experiments = work / 'experiments'
    fidelity = json.loads((experiments / 'sample_NAFSSR_x4_realistic' / 'track_demo.json').read_text())['made_from']
    gan = json.loads((experiments / 'sample_NAFSSR_x4_perceptual' / 'track_demo.json').read_text())['made_from']
    degradation = _sha256(ROOT / 'options' / 'degradations' / 'realistic_x4.yml')
    assert fidelity == {'option_file': _sha256(REALISTIC), 'degradation': degradation, 'force_yml': TINY_REALISTIC,
                        'pretrain_network_g': None}
    assert gan == {'option_file': _sha256(PERCEPTUAL), 'degradation': degradation, 'force_yml': TINY_GAN,
                   'pretrain_network_g': _sha256(experiments / 'sample_NAFSSR_x4_realistic' / 'models' / 'net_g_4.pth')}


@pytest.fixture
def finished_steps(perceptual_run, tmp_path, monkeypatch):
    """A copy of the finished demo's experiments in a work folder of its own, and the script with train.py replaced
    by a recorder of its commands (``demo.commands``)."""
    work, _ = perceptual_run
    shutil.copytree(work / 'experiments', tmp_path / 'experiments')
    monkeypatch.chdir(tmp_path)
    demo = load_script('scripts/track_demo.py')
    demo.commands = []
    monkeypatch.setattr(demo, 'run', lambda script, *args: demo.commands.append(script))
    return demo, tmp_path / 'experiments'


def test_a_changed_fidelity_network_trains_the_gan_again(finished_steps, capsys):
    """The stale-GAN case: after the realistic step made another network, the GAN run fine-tuned from the old one is
    moved aside (kept) and trained again, instead of being found finished and compared with the new network."""
    demo, experiments = finished_steps
    gan = experiments / 'sample_NAFSSR_x4_perceptual'
    fidelity = experiments / 'sample_NAFSSR_x4_realistic' / 'models' / 'net_g_4.pth'
    demo.train(demo.PERCEPTUAL_OPT, TINY_GAN, pretrain=str(fidelity))  # same inputs: train.py resumes or only tests
    assert demo.commands == ['train.py'] and (gan / 'models' / 'net_g_2.pth').is_file()
    assert sorted(p.name for p in experiments.iterdir()) == STEPS
    assert 'note:' not in capsys.readouterr().out

    state = torch.load(fidelity)
    state['params'] = {k: v + 1 for k, v in state['params'].items()}
    torch.save(state, fidelity)  # what a rerun of the realistic step with other options leaves
    demo.train(demo.PERCEPTUAL_OPT, TINY_GAN, pretrain=str(fidelity))
    (archived,) = experiments.glob('sample_NAFSSR_x4_perceptual_archived_*')
    assert (archived / 'models' / 'net_g_2.pth').is_file()
    assert sorted(p.name for p in gan.iterdir()) == ['track_demo.json']  # train.py (not run here) starts afresh
    assert json.loads((gan / 'track_demo.json').read_text())['made_from']['pretrain_network_g'] == _sha256(fidelity)
    assert f'note: {gan} was made from other inputs (pretrain_network_g): moved to {archived}; training it again' in \
        capsys.readouterr().out.splitlines()


def test_changed_options_train_the_step_again_and_a_refusal_puts_the_earlier_run_back(finished_steps, capsys):
    demo, experiments = finished_steps
    realistic = experiments / 'sample_NAFSSR_x4_realistic'
    before = sorted(str(p.relative_to(realistic)) for p in realistic.rglob('*'))

    def refuses(script, *args):
        raise demo.TrackDemoError('train.py failed (exit code 2): train.py: error: a bad option')

    demo.run = refuses
    with pytest.raises(demo.TrackDemoError):
        demo.train(demo.REALISTIC_OPT, TINY_REALISTIC + ['train:warmup_iter=1'])
    assert sorted(p.name for p in experiments.iterdir()) == STEPS
    assert sorted(str(p.relative_to(realistic)) for p in realistic.rglob('*')) == before
    assert json.loads((realistic / 'track_demo.json').read_text())['made_from']['force_yml'] == TINY_REALISTIC
    out = capsys.readouterr().out
    assert 'sample_NAFSSR_x4_realistic was made from other inputs (force_yml): moved to ' in out
    assert 'moved back to' in out


def test_a_failing_step_stops_the_demo_with_its_own_error_line(tmp_path, monkeypatch, capsys):
    """A real step that refuses: track_demo says which step and the step's own line, exit 2 (run_main)."""
    monkeypatch.chdir(tmp_path)
    demo = load_script('scripts/track_demo.py')
    with pytest.raises(demo.TrackDemoError) as err:
        demo.run('train.py', '-opt', 'missing.yml')
    assert str(err.value) == 'train.py failed (exit code 2): train.py: error: missing.yml: option file not found'
    assert demo.step_error('train.py', 1, 'Traceback (most recent call last):\n  File "x"\nValueError: boom\n\n') \
        .args == ('train.py failed (exit code 1): ValueError: boom',)
    assert run_main('track_demo.py', demo.main, ['realistic', '--workdir', str(tmp_path / 'nowhere')]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == \
        f'track_demo.py: error: --workdir {tmp_path / "nowhere"}: not a folder (create it first)'
