"""scripts/reproduce_tables.py on the zoo's own SCGLANet and SwinFSR rows: the cards and the settings of their test
option files as they are (RGB views, SCGLANet's seeded hashing, SwinFSR's release dict read with ``state_dict``,
the track 3 model's realistic LR folder), only the networks shrunk to random tiny ones so the CPU runs them, on a
tiny test set named KITTI2015 (2 random pairs, HR 16x96, bicubic LR and another LR as the realistic one).

The expected figures are computed here without the script; the published figures are the zoo's own."""
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from basicsr import zoo
from basicsr.metrics import calculate_psnr, calculate_psnr_left, calculate_skimage_ssim, calculate_skimage_ssim_left
from basicsr.models.archs import define_network
from basicsr.utils.img_util import img2tensor, imread, imwrite, tensor2img
from basicsr.utils.matlab_functions import imresize
from basicsr.utils.options import yaml_load
from helpers import ROOT, load_script

script = load_script('scripts/reproduce_tables.py')

TINY = {  # the option files' networks, shrunk (as tests/archs/test_scglanet.py and test_swinfsr.py shrink them)
    'SCGLANet': dict(width=8, num_blks=[1, 0, 0, 0, 1], chunk_size=4, train_size=[1, 6, 8, 16]),
    'SwinFSR': dict(img_size=[6, 10], embed_dim=8, depths=[1, 2], num_heads=[2, 2], window_size_h=3,
                    window_size_w=5),
}
ROWS = {'SCGLANet-L_x4': 'lr_x4', 'SCGLANet-L_Track3_x4': 'lr_x4_realistic_x4', 'SwinFSR-L_x4': 'lr_x4'}
# (SCGLAGAN-L_x4, track 2, is SCGLANet-L_x4's row with another weight file: the same option settings and LR folder)


@pytest.fixture(scope='module')
def test_root(tmp_path_factory):
    """``<root>/KITTI2015/{hr,lr_x4,lr_x4_realistic_x4}/{pair_a,pair_b}/``: random HR views of 16x96, their
    bicubic LR, and a noisier LR standing for the fixed realistic one."""
    root = tmp_path_factory.mktemp('zoo_sets')
    rng = np.random.default_rng(5)
    for pair in ('pair_a', 'pair_b'):
        for view in '01':
            hr = rng.integers(0, 256, (16, 96, 3), dtype=np.uint8)
            lr = imresize(hr, 1 / 4)
            imwrite(hr, os.path.join(root, 'KITTI2015', 'hr', pair, f'hr{view}.png'))
            imwrite(lr, os.path.join(root, 'KITTI2015', 'lr_x4', pair, f'lr{view}.png'))
            noisy = np.clip(lr.astype(int) + rng.integers(-40, 41, lr.shape), 0, 255).astype(np.uint8)
            imwrite(noisy, os.path.join(root, 'KITTI2015', 'lr_x4_realistic_x4', pair, f'lr{view}.png'))
    return str(root)


@pytest.fixture
def zoo_rows(tmp_path, monkeypatch):
    """The three cards with their option files copied and their networks shrunk; random weights saved as the
    releases save them (SCGLANet: {'params'}; SwinFSR's train.py: {'epoch', 'state_dict', ...}). Returns
    ``{name: (parsed option dict, state dict)}`` and the weights folder."""
    weights_dir = tmp_path / 'weights'
    weights_dir.mkdir()
    nets, cards = {}, {}
    for seed, name in enumerate(ROWS):
        card = zoo.MODELS[name]
        opt = yaml_load(Path(ROOT, card.option))
        opt['network_g'].update(TINY[card.family])
        option = tmp_path / 'options' / card.family / f'{name}.yml'
        option.parent.mkdir(parents=True, exist_ok=True)
        option.write_text(json.dumps(opt))  # JSON is YAML
        torch.manual_seed(seed)
        state = define_network(dict(opt['network_g'])).state_dict()
        saved = {'epoch': 5, 'state_dict': state, 'optimizer_state_dict': {'state': {}, 'param_groups': []}} \
            if card.family == 'SwinFSR' else {'params': state}
        torch.save(saved, weights_dir / card.weights.file)
        nets[name] = (opt, state)
        cards[name] = dataclasses.replace(card, option=str(option))
    monkeypatch.setattr(zoo, 'MODELS', cards)
    return nets, weights_dir


def _expected(root, opt, state, lr_folder):
    """The four figures of a network on KITTI2015 without the script: RGB tensors, the option file's seed."""
    net = define_network(dict(opt['network_g']))
    net.load_state_dict(state)
    net.eval()
    torch.manual_seed(opt['manual_seed'])  # SCGLANet draws its hashing rotations at every forward
    torch.empty((), dtype=torch.int64).random_()  # after the base seed a DataLoader's iterator draws first
    scores = []
    for pair in sorted(os.listdir(os.path.join(root, 'KITTI2015', 'hr'))):
        lq = np.concatenate([imread(os.path.join(root, 'KITTI2015', lr_folder, pair, f'lr{v}.png'))[:, :, ::-1]
                             for v in '01'], -1)
        gt = np.concatenate([imread(os.path.join(root, 'KITTI2015', 'hr', pair, f'hr{v}.png'))[:, :, ::-1]
                             for v in '01'], -1)
        with torch.no_grad():
            sr = tensor2img(net(img2tensor(lq)[None]))
        scores.append([f(sr, gt) for f in (calculate_psnr, calculate_skimage_ssim, calculate_psnr_left,
                                           calculate_skimage_ssim_left)])
    return dict(zip(script.FIGURES, np.mean(scores, axis=0)))


def test_scglanet_and_swinfsr_rows_measure_their_networks_on_their_lr(zoo_rows, test_root, tmp_path, capsys):
    nets, weights_dir = zoo_rows
    output = tmp_path / 'out' / 'reproduce.json'
    status = script.main(['--root', test_root, '--weights_dir', str(weights_dir), '--sets', 'KITTI2015',
                          '--models', *ROWS, '--output', str(output)])
    out = capsys.readouterr().out
    assert status == 1  # random weights are far below the published figures
    rows = {row['model']: row for row in json.loads(output.read_text())['rows']}
    assert sorted(rows) == sorted(ROWS)
    for name, lr_folder in ROWS.items():
        assert rows[name]['measured'] == pytest.approx(_expected(test_root, *nets[name], lr_folder), abs=1e-9), name
    assert {name: (row['lr'], row['pairs']) for name, row in rows.items()} == {n: (f, 2) for n, f in ROWS.items()}
    # the zoo's published KITTI2015 figures (SwinFSR's without SSIM); none for the track 3 model
    assert rows['SCGLANet-L_x4']['published']['psnr'] == 27.01 and rows['SCGLANet-L_x4']['status'].startswith('MISS')
    assert rows['SwinFSR-L_x4']['published']['psnr'] == 27.00 and rows['SwinFSR-L_x4']['published']['ssim'] is None
    assert rows['SwinFSR-L_x4']['status'] == 'MISS psnr'  # its only published KITTI2015 figure
    assert rows['SCGLANet-L_Track3_x4']['status'] == 'no published figure'
    assert 'SCGLANet-L_Track3_x4 KITTI2015: LR from lr_x4_realistic_x4 (as its option file reads)' in out.splitlines()


def test_a_missing_realistic_lr_folder_is_a_note_naming_it(zoo_rows, test_root, tmp_path, capsys):
    nets, weights_dir = zoo_rows
    root = tmp_path / 'root'
    (root / 'KITTI2015').mkdir(parents=True)
    for folder in ('hr', 'lr_x4'):
        os.symlink(os.path.join(test_root, 'KITTI2015', folder), root / 'KITTI2015' / folder)
    output = tmp_path / 'reproduce.json'
    script.main(['--root', str(root), '--weights_dir', str(weights_dir), '--sets', 'KITTI2015', '--models',
                 'SCGLANet-L_x4', 'SCGLANet-L_Track3_x4', '--output', str(output)])
    missing = os.path.join(str(root), 'KITTI2015', 'lr_x4_realistic_x4')
    assert f'note: KITTI2015 lr_x4_realistic_x4: skipped, {missing} missing (docs/data.md says how to prepare it)' \
        in capsys.readouterr().out.splitlines()
    assert [row['model'] for row in json.loads(output.read_text())['rows']] == ['SCGLANet-L_x4']
