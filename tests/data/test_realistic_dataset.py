"""RealisticStereoDataset: LR views degraded on the fly from HR-only folders, seeded per sample (workers, resume),
option errors before any work, the option files, and a tiny train.py run that resumes bitwise."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from basicsr.data import build_dataloader, build_dataset, layout
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.data.degradations import DegradationOptionError, degrade_pair, pair_generator, parse_degradation
from basicsr.utils.img_util import imread, imwrite

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'train'))
from train_helpers import base_options, run_train, write_options  # noqa: E402
SMALL = {'blur_kernel_size': 7, 'blur_kernel_size2': 7}  # small kernels for tiny images; all stages still run


def make_hr_only_patches(root, count=6, hr_hw=(48, 96), seed=0):
    """Pair folders holding only hr0.png, hr1.png: smooth random scenes, the right view shifted by 2 pixels."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = hr_hw
    for k in range(1, count + 1):
        scene = cv2.GaussianBlur(rng.integers(0, 256, (h, w + 2, 3), dtype=np.uint8), (5, 5), 2)
        folder = os.path.join(root, layout.patch_dir_name(k))
        imwrite(scene[:, 2:], layout.view_file(folder, 'hr0'))
        imwrite(scene[:, :w], layout.view_file(folder, 'hr1'))
    return str(root)


@pytest.fixture(scope='module')
def hr_only(tmp_path_factory):
    return make_hr_only_patches(tmp_path_factory.mktemp('hr_only') / 'patches_x4')


def train_options(root, **kw):
    opt = {'type': 'RealisticStereoDataset', 'dataroot_gt': root, 'scale': 4, 'phase': 'train', 'gt_size_h': 32,
           'gt_size_w': 64, 'use_hflip': True, 'use_vflip': True, 'flip_RGB': True, 'degradation': dict(SMALL)}
    opt.update(kw)
    return opt


def _u8(t):
    return (t.numpy() * 255).round().astype(np.uint8)


def test_hr_only_patches_give_lr_of_exactly_hr_over_scale(hr_only):
    ds = build_dataset(train_options(hr_only), 'datasets:train')
    assert len(ds) == 6 and not os.path.exists(os.path.join(hr_only, '000001', 'lr0.png'))
    for seed in range(5):
        sample = ds[(seed % 6, seed)]
        assert sample['gt'].shape == (6, 32, 64) and sample['lq'].shape == (6, 8, 16)
        assert sample['lq'].dtype == torch.float32 and sample['name'] == f'00000{seed % 6 + 1}'


def test_gt_is_a_crop_of_the_hr_views_under_the_stereo_flips(hr_only):
    ds = build_dataset(train_options(hr_only, flip_RGB=False), 'datasets:train')
    hr0, hr1 = (imread(os.path.join(hr_only, '000002', f'hr{v}.png')) for v in (0, 1))
    found = set()
    for seed in range(24):
        gt = _u8(ds[(1, seed)]['gt']).transpose(1, 2, 0)
        left, right = gt[:, :, :3], gt[:, :, 3:]
        for name, (a, b) in {'plain': (hr0, hr1), 'hflip': (hr1[:, ::-1], hr0[:, ::-1]),
                             'vflip': (hr0[::-1], hr1[::-1]), 'both': (hr1[::-1, ::-1], hr0[::-1, ::-1])}.items():
            hits = [(t, l) for t in range(a.shape[0] - 31) for l in range(a.shape[1] - 63)
                    if np.array_equal(a[t:t + 32, l:l + 64], left)]
            if hits:
                t, l = hits[0]
                np.testing.assert_array_equal(b[t:t + 32, l:l + 64], right)  # the right view from the same place
                found.add(name)
                break
        else:
            raise AssertionError(f'seed {seed}: gt is no crop of the (flipped) pair')
    assert found == {'plain', 'hflip', 'vflip', 'both'}


def test_same_seed_same_bytes_other_seed_other_lr(hr_only):
    ds = build_dataset(train_options(hr_only), 'datasets:train')
    a, b, c = ds[(2, 77)], ds[(2, 77)], ds[(2, 78)]
    assert torch.equal(a['lq'], b['lq']) and torch.equal(a['gt'], b['gt'])
    assert not torch.equal(a['lq'], c['lq'])
    fresh = build_dataset(train_options(hr_only), 'datasets:train')  # another process would build its own
    assert torch.equal(fresh[(2, 77)]['lq'], a['lq'])


def test_batches_do_not_depend_on_the_number_of_workers(hr_only):
    opt = train_options(hr_only, batch_size_per_gpu=2, num_worker_per_gpu=0)
    ds = build_dataset(opt, 'datasets:train')

    def batches(workers):
        sampler = EnlargedSampler(ds, 1, 0, ratio=2, seed=3)
        loader = build_dataloader(ds, {**opt, 'num_worker_per_gpu': workers}, 0, False, sampler=sampler, seed=3)
        return [b['lq'] for b in loader]

    serial, parallel = batches(0), batches(2)
    assert len(serial) == len(parallel) == 6 and all(torch.equal(a, b) for a, b in zip(serial, parallel))


def test_whole_images_are_cropped_to_the_patch(tiny_stereo_root):
    hr = os.path.join(tiny_stereo_root, 'test', 'Tiny', 'hr')  # 24x48 pairs
    ds = build_dataset(train_options(hr, gt_size_h=16, gt_size_w=32), 'datasets:train')
    sample = ds[(0, 5)]
    assert sample['gt'].shape == (6, 16, 32) and sample['lq'].shape == (6, 4, 8)


def test_eval_phase_degrades_whole_pairs_seeded_by_name(tiny_stereo_root):
    hr = os.path.join(tiny_stereo_root, 'test', 'Tiny', 'hr')
    ds = build_dataset({'type': 'RealisticStereoDataset', 'dataroot_gt': hr, 'scale': 4, 'phase': 'val',
                        'degradation': SMALL}, 'datasets:val')
    a, b = ds[0], ds[0]
    assert a['gt'].shape == (6, 24, 48) and a['lq'].shape == (6, 6, 12)
    assert torch.equal(a['lq'], b['lq']) and not torch.equal(ds[0]['lq'], ds[(0, 1)]['lq'])
    lr = degrade_pair(*(imread(os.path.join(hr, ds.pairs[0], f'hr{v}.png')) for v in (0, 1)), 4,
                      parse_degradation(SMALL), pair_generator(0, ds.pairs[0]))
    assert torch.equal(a['lq'], ds._to_tensor(*lr))  # the draw prepare_test_sets.py --seed 0 makes for that pair


def test_bad_degradation_option_is_one_line_before_any_work(tmp_path):
    opt = train_options(str(tmp_path / 'does_not_exist'), degradation={'kernel_prob': [0.5, 0.5]})
    with pytest.raises(DegradationOptionError) as info:  # the degradation is checked before the folder is read
        build_dataset(opt, 'datasets:train')
    assert str(info.value) == ('datasets:train:degradation:kernel_prob: expected 6 probabilities (one per entry of '
                               'kernel_list), not 2, got [0.5, 0.5]')


def test_options_of_the_paired_dataset_that_do_not_apply_are_refused(hr_only):
    from basicsr.utils.registry import OptionKeywordError
    with pytest.raises(OptionKeywordError, match='unknown option datasets:train:dataroot_lq'):
        build_dataset(train_options(hr_only, dataroot_lq=hr_only), 'datasets:train')
    with pytest.raises(OptionKeywordError, match='missing option datasets:train:degradation'):
        build_dataset({k: v for k, v in train_options(hr_only).items() if k != 'degradation'}, 'datasets:train')


# --------------------------------------------------------------------------------------------- option files
def test_release_style_option_file_parses_and_matches_the_test_set_degradation(sample_root):
    from basicsr.option_checks import OPTION_CHECKS
    from basicsr.utils.options import parse

    opt = parse(os.path.join(ROOT, 'options/train/NAFSSR/NAFSSR-T_x4_realistic.yml'), is_train=True,
                force_yml=[f'datasets:train:dataroot_gt={sample_root}/patches_x4'], root_path=ROOT,
                registries=OPTION_CHECKS)
    train = opt['datasets']['train']
    with open(os.path.join(ROOT, 'options/degradations/realistic_x4.yml'), encoding='utf-8') as f:
        fixed = yaml.safe_load(f)
    assert train['degradation'] == fixed  # trained on the distribution of the fixed test sets
    assert parse_degradation(fixed).stage2 is not None  # second order
    ds = build_dataset(train, 'datasets:train')
    sample = ds[(0, 1)]
    assert sample['gt'].shape == (6, 120, 360) and sample['lq'].shape == (6, 30, 90)  # the release's patch


def test_train_py_reports_a_bad_degradation_in_one_line(tmp_path, sample_root):
    opt_path = os.path.join(ROOT, 'options/train/NAFSSR/NAFSSR-T_x4_realistic.yml')
    cmd = [sys.executable, os.path.join(ROOT, 'train.py'), '-opt', opt_path, '--force_yml', 'num_gpu=0',
           f'datasets:train:dataroot_gt={sample_root}/patches_x4', 'datasets:val=~',
           'datasets:train:degradation:jpeg_range=[0,95]']
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop('STEREO_SR_TRACEBACK', None)
    result = subprocess.run(cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        'train.py: error: datasets:train:degradation:jpeg_range: expected [min, max] with min <= max, both whole '
        'JPEG qualities >= 1 and <= 100, got [0, 95]')
    assert not os.path.isdir(tmp_path / 'experiments' / 'NAFSSR-T_x4_realistic' / 'models')


# ------------------------------------------------------------------------------------------------- train.py
def _tiny_run_options(root, name, workers):
    opt = base_options({'patches': root}, name)
    train = opt['datasets']['train']
    del train['dataroot_lq']
    train.update(type='RealisticStereoDataset', num_worker_per_gpu=workers, degradation=dict(SMALL))
    return opt


def test_tiny_train_run_on_hr_only_patches_resumes_bitwise(tmp_path):
    data = make_hr_only_patches(tmp_path / 'patches_x2', count=12, hr_hw=(16, 48))
    ref_dir, run_dir = tmp_path / 'ref', tmp_path / 'run'
    ref_dir.mkdir()
    run_dir.mkdir()
    ref = run_train(write_options(ref_dir, _tiny_run_options(data, 'real', workers=0)), ref_dir)
    assert ref.returncode == 0, ref.stdout[-3000:] + ref.stderr[-3000:]
    ref_exp = os.path.join(ref_dir, 'experiments', 'real')
    assert sorted(os.listdir(os.path.join(ref_exp, 'training_states'))) == sorted(f'{i}.state' for i in range(1, 9))

    # the run as if it had stopped after iteration 3 (mid-epoch: 6 iterations per epoch), resumed with 2 workers
    exp = os.path.join(run_dir, 'experiments', 'real')
    shutil.copytree(ref_exp, exp)
    for it in range(4, 9):
        os.remove(os.path.join(exp, 'training_states', f'{it}.state'))
        os.remove(os.path.join(exp, 'models', f'net_g_{it}.pth'))
    result = run_train(write_options(run_dir, _tiny_run_options(data, 'real', workers=2)), run_dir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'resumed from' in result.stdout + result.stderr
    a = torch.load(os.path.join(ref_exp, 'models', 'net_g_8.pth'), weights_only=True)
    b = torch.load(os.path.join(exp, 'models', 'net_g_8.pth'), weights_only=True)
    for group in ('params', 'params_ema'):
        for key in a[group]:
            assert torch.equal(a[group][key], b[group][key]), f'{group}.{key} differs'


# ------------------------------------------------------------------------------------ fixed realistic test sets
def _prepare(monkeypatch, capsys, *args):
    """Run prepare_test_sets.py in this process; returns (exit code, stdout, stderr)."""
    from helpers import load_script

    script = load_script('scripts/data_preparation/prepare_test_sets.py')
    monkeypatch.setattr(sys, 'argv', ['prepare_test_sets.py', *args])
    with pytest.raises(SystemExit) as info:
        script.main()
    out, err = capsys.readouterr()
    return info.value.code or 0, out, err


def _copy_set(sample_root, dest):
    shutil.copytree(os.path.join(sample_root, 'test', 'Motorcycle'), dest)
    return str(dest)


def _digests(folder, pixels=False):
    """SHA-256 of every file of a set's LR folder (``pixels``: of the decoded images, which do not depend on the
    PNG encoder's zlib)."""
    import hashlib

    def content(path):
        return imread(path).tobytes() if pixels else open(path, 'rb').read()
    return {f'{pair}/{name}': hashlib.sha256(content(os.path.join(folder, pair, name))).hexdigest()
            for pair in sorted(os.listdir(folder)) if not pair.startswith('.')
            for name in sorted(os.listdir(os.path.join(folder, pair)))}


REALISTIC_X4 = os.path.join(ROOT, 'options', 'degradations', 'realistic_x4.yml')
# The pixels of seed 0 (see the test below for where they come from).
GOLDEN_SEED0_PIXELS = {
    'motorcycle_bottom/lr0.png': 'a597f058c3f569d03874004ada33aefdb87606f6706675522669d191f735da80',
    'motorcycle_bottom/lr1.png': 'fe22611ae475347cd3a4bfcd8b9f94ec13d4fad902bec5740d2bfa9ba42c4ede',
}


def test_fixed_test_set_same_seed_same_bytes(sample_root, tmp_path, monkeypatch, capsys):
    a, b, c = (_copy_set(sample_root, tmp_path / n) for n in 'abc')
    for folder, seed in ((a, 0), (b, 0), (c, 1)):
        code, out, err = _prepare(monkeypatch, capsys, 'prepared', '--src', folder, '--degradation', REALISTIC_X4,
                                  '--seed', str(seed), '--workers', '1')
        assert code == 0, err
        assert f'{folder}/lr_x4_realistic_x4: 1 pairs (seed {seed})' in out
    first, again, other = (_digests(os.path.join(f, 'lr_x4_realistic_x4')) for f in (a, b, c))
    assert list(first) == ['motorcycle_bottom/lr0.png', 'motorcycle_bottom/lr1.png']
    assert first == again and all(first[k] != other[k] for k in first)
    # The pixels of seed 0, computed on the 2-core x86-64 VM of 29 Nov 2026 (numpy 2.4.6, opencv-python 5.0.0.93, the
    # versions of constraints.txt), again on 7 Dec 2026 when each pair's draw became pair_generator(seed, name)
    # instead of default_rng([seed, position]): another machine must make the same images. A change here means the
    # fixed test sets made so far can no longer be remade: a change of the pipeline, of the seeding, of numpy's
    # Generator streams or of OpenCV's JPEG codec.
    pixels = _digests(os.path.join(a, 'lr_x4_realistic_x4'), pixels=True)
    assert pixels == GOLDEN_SEED0_PIXELS, pixels
    # a test set dataset reads them like the bicubic LR views
    from basicsr.data.stereo_dataset import PairedStereoImageDataset
    ds = PairedStereoImageDataset(os.path.join(a, 'hr'), os.path.join(a, 'lr_x4_realistic_x4'), scale=4)
    assert ds[0]['lq'].shape == (6, 45, 185) and ds[0]['gt'].shape == (6, 180, 740)



def test_fixed_test_set_rerun_resumes_and_refuses_other_settings(sample_root, tmp_path, monkeypatch, capsys):
    folder = _copy_set(sample_root, tmp_path / 'set')
    args = ['prepared', '--src', folder, '--degradation', REALISTIC_X4, '--tag', 'mine', '--workers', '1']
    assert _prepare(monkeypatch, capsys, *args, '--seed', '3')[0] == 0
    out_dir = os.path.join(folder, 'lr_x4_mine')
    before = _digests(out_dir)
    shutil.rmtree(os.path.join(out_dir, 'motorcycle_bottom'))  # as if interrupted
    assert _prepare(monkeypatch, capsys, *args, '--seed', '3')[0] == 0
    assert _digests(out_dir) == before
    code, out, err = _prepare(monkeypatch, capsys, *args, '--seed', '4')
    assert code == 2 and err.strip() == (
        f'prepare_test_sets.py: error: {out_dir}: was prepared with other settings (seed: recorded 3, now 4); rerun '
        'with --replace to remove the 1 folder(s) its record .sources.json lists and prepare it again (nothing else '
        'there is touched), or choose another output folder')
    assert _digests(out_dir) == before


def test_fixed_test_set_bad_degradation_file_is_one_line_before_any_work(sample_root, tmp_path, monkeypatch,
                                                                         capsys):
    folder = _copy_set(sample_root, tmp_path / 'set')
    bad = tmp_path / 'bad.yml'
    bad.write_text('kernel_list: [iso, box]\nkernel_prob: [0.5, 0.5]\n')
    code, _, err = _prepare(monkeypatch, capsys, 'prepared', '--src', folder, '--degradation', str(bad))
    assert code == 2 and err.strip() == (f"prepare_test_sets.py: error: {bad}:kernel_list: unknown kernel 'box'; "
                                         'expected names among iso, aniso, generalized_iso, generalized_aniso, '
                                         'plateau_iso, plateau_aniso, sinc')
    assert not os.path.exists(os.path.join(folder, 'lr_x4_bad'))


def test_a_subset_of_a_fixed_test_set_keeps_its_lr_views(tmp_path, monkeypatch, capsys):
    """Each pair is seeded by its name: a set of one of the three pairs writes that pair's files byte for byte."""
    import cv2

    deg = tmp_path / 'small.yml'
    deg.write_text(yaml.safe_dump(SMALL))
    rng = np.random.default_rng(1)
    whole, subset = tmp_path / 'whole', tmp_path / 'subset'
    for name in ('a', 'b', 'c'):
        for stem in ('hr0', 'hr1'):
            imwrite(cv2.GaussianBlur(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8), (5, 5), 1.5),
                    os.path.join(whole, 'hr', name, f'{stem}.png'))
    shutil.copytree(whole / 'hr' / 'c', subset / 'hr' / 'c')  # the last of three, the first of one
    for folder in (whole, subset):
        code, _, err = _prepare(monkeypatch, capsys, 'prepared', '--src', str(folder), '--degradation', str(deg),
                                '--seed', '5', '--workers', '1')
        assert code == 0, err
    kept = _digests(os.path.join(subset, 'lr_x4_small'))
    assert list(kept) == ['c/lr0.png', 'c/lr1.png']
    assert kept == {k: v for k, v in _digests(os.path.join(whole, 'lr_x4_small')).items() if k.startswith('c/')}


def test_a_set_made_when_pairs_were_seeded_by_position_is_not_finished_with_other_draws(sample_root, tmp_path,
                                                                                          monkeypatch, capsys):
    """A folder whose record predates the seeding by pair name (no ``seeding`` key) would be finished with draws of
    the other kind, a mixed set: refused in one line, nothing touched; --replace makes it again."""
    import json

    folder = _copy_set(sample_root, tmp_path / 'set')
    args = ['prepared', '--src', folder, '--degradation', REALISTIC_X4, '--workers', '1']
    assert _prepare(monkeypatch, capsys, *args)[0] == 0
    out_dir = os.path.join(folder, 'lr_x4_realistic_x4')
    record_path = os.path.join(out_dir, '.sources.json')
    with open(record_path, encoding='utf-8') as f:
        record = json.load(f)
    del record['seeding']
    with open(record_path, 'w', encoding='utf-8') as f:
        json.dump(record, f)
    before = _digests(out_dir)
    code, _, err = _prepare(monkeypatch, capsys, *args)
    assert code == 2 and 'was prepared with other settings (seeding: recorded null, now "by pair name")' in err
    assert _digests(out_dir) == before
    assert _prepare(monkeypatch, capsys, *args, '--replace')[0] == 0
