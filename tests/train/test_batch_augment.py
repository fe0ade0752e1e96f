"""train:batch_augment: Mixup, CutMix and CutMixup on stereo batches: the same box in both views and in LR/HR, draws
from the model's own generator (restored on resume), one-line option errors."""
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from basicsr.data.batch_augment import BatchAugment, check_batch_augment
from helpers import reaped
from test_resume import _kill_after_state, assert_same_weights
from train_helpers import base_options, run_train, start_train, write_options

SCALE = 2


def _batch(n=4, h=6, w=10):
    torch.manual_seed(0)
    lq = torch.rand(n, 6, h, w)
    return lq, F.interpolate(lq, scale_factor=SCALE, mode='nearest')  # gt aligned with lq pixel for pixel


@pytest.mark.parametrize('kind', ['mixup', 'cutmix', 'cutmixup'])
def test_lr_and_hr_stay_aligned(kind):
    aug = BatchAugment({kind: {'prob': 1.0}}, SCALE, seed=3)
    for _ in range(20):  # boxes of every size and place, both cutmixup modes
        lq, gt = _batch()
        out_lq, out_gt, applied = aug(lq, gt)
        assert applied == kind
        torch.testing.assert_close(out_gt, F.interpolate(out_lq, scale_factor=SCALE, mode='nearest'),
                                   rtol=0, atol=1e-6)  # float32 rounding of the same blend (exact for cutmix)


def test_cutmix_box_is_the_same_in_both_views():
    aug = BatchAugment({'cutmix': {'prob': 1.0, 'alpha': 0.5}}, SCALE, seed=1)
    for _ in range(10):
        lq, gt = _batch()
        out, _, _ = aug(lq, gt)
        changed = (out != lq)
        left, right = changed[:, :3].any(1), changed[:, 3:].any(1)
        assert torch.equal(left, right) and left.any()
        for sample in left:  # one rectangle per sample
            rows, cols = sample.any(1).nonzero().flatten(), sample.any(0).nonzero().flatten()
            if len(rows):
                assert sample[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()


def test_mixup_matches_the_formula_and_probabilities_pick_one():
    lq, gt = _batch()
    aug = BatchAugment({'mixup': {'prob': 1.0, 'alpha': 1.2}}, SCALE, seed=5)
    rng = np.random.default_rng(5)  # the same draws by hand: which augmentation, the permutation, lambda
    assert rng.random() < 1.0
    perm = torch.from_numpy(rng.permutation(4))
    lam = float(rng.beta(1.2, 1.2))
    out_lq, out_gt, _ = aug(lq, gt)
    torch.testing.assert_close(out_lq, lam * lq + (1 - lam) * lq[perm], rtol=0, atol=0)
    kinds = [BatchAugment({'mixup': {'prob': 0.25}, 'cutmix': {'prob': 0.5}}, SCALE, seed=s)(lq, gt)[2]
             for s in range(400)]
    counts = {k: kinds.count(k) for k in (None, 'mixup', 'cutmix')}
    assert 60 < counts['mixup'] < 140 and 160 < counts['cutmix'] < 240  # 100 and 200 expected; > 5 sigma margins


def test_state_round_trip_replays_the_draws():
    a = BatchAugment({'cutmixup': {'prob': 0.9}}, SCALE, seed=7)
    lq, gt = _batch()
    a(lq, gt)
    state = a.state_dict()
    first = a(lq, gt)
    b = BatchAugment({'cutmixup': {'prob': 0.9}}, SCALE, seed=99)
    b.load_state_dict(state)
    second = b(lq, gt)
    assert first[2] == second[2] and torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


@pytest.mark.parametrize('options, message', [
    ({'cutblur': {'prob': 0.5}}, 'train:batch_augment:cutblur: unknown augmentation; expected one of mixup, cutmix, '
                                 'cutmixup'),
    ({'mixup': {'prob': 0.7}, 'cutmix': {'prob': 0.6}}, 'train:batch_augment: the probabilities add up to 1.3'),
    ({'cutmix': {'prob': 1.5}}, r'train:batch_augment:cutmix:prob: expected a probability in \[0, 1\], got 1.5'),
    ({'mixup': {'alpha': -1}}, 'train:batch_augment:mixup:alpha: expected a positive number, got -1'),
])
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        check_batch_augment(options)


def test_nafnet_mixup_is_the_same_mixup_before_the_drawn_augmentation():
    """train:mixup (NAFNet's, every batch, Beta(mixup_beta)) is BatchAugment's mixup on the same generator, before
    the drawn augmentation: the draws by hand are the permutation and lambda of that mixup, then the usual ones."""
    lq, gt = _batch()
    aug = BatchAugment({'mixup': {'prob': 1.0, 'alpha': 0.7}}, SCALE, seed=5, every_batch_mixup=1.2)
    rng = np.random.default_rng(5)
    perm = torch.from_numpy(rng.permutation(4))
    lam = float(rng.beta(1.2, 1.2))
    mixed_lq, mixed_gt = lam * lq + (1 - lam) * lq[perm], lam * gt + (1 - lam) * gt[perm]
    assert rng.random() < 1.0
    perm2 = torch.from_numpy(rng.permutation(4))
    lam2 = float(rng.beta(0.7, 0.7))
    out_lq, out_gt, kind = aug(lq, gt)
    assert kind == 'mixup'
    torch.testing.assert_close(out_lq, lam2 * mixed_lq + (1 - lam2) * mixed_lq[perm2], rtol=0, atol=0)
    torch.testing.assert_close(out_gt, lam2 * mixed_gt + (1 - lam2) * mixed_gt[perm2], rtol=0, atol=0)
    only = BatchAugment({}, SCALE, seed=5, every_batch_mixup=1.2)
    assert only.every_batch_mixup == 1.2 and torch.equal(only(lq, gt)[0], mixed_lq) and only(lq, gt)[2] is None


def test_the_model_mixes_with_the_batch_augment_module(tiny_data, tmp_path):
    """ImageRestorationModel has no mixup of its own: train:mixup is drawn by its BatchAugment (one random stream,
    saved in the training state), so a batch is mixed as BatchAugment mixes it with the model's seed."""
    from basicsr.models import build_model
    from basicsr.utils.options import parse

    opt = base_options(tiny_data, 'mixup')
    opt['train'].update(mixup=True, mixup_beta=0.8)
    model = build_model(parse(write_options(tmp_path, opt), is_train=True, root_path=tmp_path))
    assert model.batch_augment is not None and model.batch_augment.every_batch_mixup == 0.8
    assert not hasattr(model, '_mixup')
    lq, gt = _batch()
    model.feed_data({'lq': lq, 'gt': gt})
    expected = BatchAugment({}, SCALE, [int(opt['manual_seed']), 0, 0xA06], every_batch_mixup=0.8)(lq, gt)
    for got, want in zip(model.augmented_batch(), expected[:2]):
        assert torch.equal(got, want)


def test_killed_run_with_batch_augment_resumes_bitwise(tiny_data, tmp_path):
    opt = base_options(tiny_data, 'aug')
    opt['train']['mixup'] = False
    opt['train']['batch_augment'] = {'mixup': {'prob': 0.3}, 'cutmix': {'prob': 0.3}, 'cutmixup': {'prob': 0.3}}
    path = write_options(tmp_path, opt)
    ref, run = tmp_path / 'ref', tmp_path / 'run'
    ref.mkdir()
    run.mkdir()
    assert run_train(path, ref).returncode == 0
    with reaped(start_train(path, run)) as (proc,):
        _kill_after_state(proc, os.path.join(run, 'experiments', 'aug', 'training_states'), 3)
    result = run_train(path, run)
    assert result.returncode == 0 and 'resumed from' in result.stdout
    assert_same_weights(os.path.join(ref, 'experiments', 'aug'), os.path.join(run, 'experiments', 'aug'), 8)
    bad = dict(opt, train=dict(opt['train'], batch_augment={'cutmix': {'prob': 2}}), name='bad')
    result = run_train(write_options(tmp_path, bad), tmp_path)
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].endswith(
        'train:batch_augment:cutmix:prob: expected a probability in [0, 1], got 2')
