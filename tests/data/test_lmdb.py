"""LMDB packing: the same samples as the PNG folders, byte for byte; the command-line script; errors."""
import os
import subprocess
import sys

import pytest
import torch

from basicsr.data import layout
from basicsr.data.stereo_dataset import PairedStereoImageDataset, StereoDataError
from basicsr.data.lmdb_util import make_lmdb_from_folder

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_lmdb_patches_equal_disk_patches(tiny_stereo_root, tmp_path):
    src = layout.patches_dir(tiny_stereo_root, 4)
    db = str(tmp_path / 'patches_x4.lmdb')
    assert make_lmdb_from_folder(src, db, show_progress=False) == 6 * 4  # 6 patches of tiny_stereo_root x 4 images
    with open(os.path.join(db, layout.LMDB_META)) as f:
        meta = f.read().splitlines()
    assert meta[:2] == ['000001/hr0 (24,72,3) png', '000001/hr1 (24,72,3) png']
    assert meta[2] == '000001/lr0 (6,18,3) png'
    kw = dict(scale=4, phase='train', gt_size_h=16, gt_size_w=48, use_hflip=True, use_vflip=True, flip_RGB=True)
    disk = PairedStereoImageDataset(src, src, **kw)
    lmdb_ds = PairedStereoImageDataset(db, db, io_backend={'type': 'lmdb'}, **kw)
    assert lmdb_ds.pairs == disk.pairs
    for i in range(len(disk)):
        a, b = disk[(i, 100 + i)], lmdb_ds[(i, 100 + i)]
        assert torch.equal(a['lq'], b['lq']) and torch.equal(a['gt'], b['gt']) and a['name'] == b['name']


def test_create_lmdb_script_packs_a_test_set(tiny_stereo_root, tmp_path):
    set_root = os.path.join(tiny_stereo_root, 'test', 'Tiny')
    out = tmp_path / 'dbs'
    res = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'create_lmdb.py'), set_root,
                          '--out-dir', str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(out)) == ['hr.lmdb', 'lr_x2.lmdb', 'lr_x4.lmdb']
    disk = PairedStereoImageDataset(os.path.join(set_root, 'hr'), os.path.join(set_root, 'lr_x2'), scale=2)
    packed = PairedStereoImageDataset(str(out / 'hr.lmdb'), str(out / 'lr_x2.lmdb'), scale=2,
                                      io_backend={'type': 'lmdb'})
    for i in range(len(disk)):
        assert torch.equal(disk[i]['gt'], packed[i]['gt']) and torch.equal(disk[i]['lq'], packed[i]['lq'])
    again = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'create_lmdb.py'), set_root,
                            '--out-dir', str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert again.returncode != 0 and 'already exists' in again.stderr
    assert again.stderr.count('\n') == 1


def test_lmdb_errors(tiny_stereo_root, tmp_path):
    with pytest.raises(StereoDataError, match=r'not an LMDB made by scripts/create_lmdb\.py'):
        PairedStereoImageDataset(tiny_stereo_root, tiny_stereo_root, scale=4, io_backend={'type': 'lmdb'})
    src = tmp_path / 'src'
    for stem in ('hr0', 'hr1', 'lr0'):  # the right LR view is missing
        os.makedirs(src / '000001', exist_ok=True)
        with open(layout.view_file(os.path.join(layout.patches_dir(tiny_stereo_root, 2), '000001'), stem),
                  'rb') as f_in, open(src / '000001' / f'{stem}.png', 'wb') as f_out:
            f_out.write(f_in.read())
    db = str(tmp_path / 'bad.lmdb')
    make_lmdb_from_folder(str(src), db, show_progress=False)
    ds = PairedStereoImageDataset(db, db, scale=2, io_backend={'type': 'lmdb'})
    with pytest.raises(StereoDataError, match=r'bad\.lmdb:000001/lr1: key not found; expected the right view'):
        ds[0]
    with pytest.raises(StereoDataError, match=r'io_backend: unknown option'):
        PairedStereoImageDataset(db, db, scale=2, io_backend={'type': 'lmdb', 'db_paths': [db]})
