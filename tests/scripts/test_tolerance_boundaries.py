"""Every documented tolerance, threshold and limit, tested just inside and just outside.

- reproduce_tables.py (README, docs/zoo.md): a figure misses beyond 0.01 dB PSNR or 0.001 SSIM, either direction,
  for the (Left+Right)/2 and the Left figures; exactly 0.01 / 0.001 is not beyond.
- strips (docs/evaluation.md): strip output equals whole-image output to >= 50 dB with the overlap rows, and the
  same check is below 50 dB without them (so the threshold separates working context from none); --max_memory_gb
  chooses the strip height down to MIN_AUTO_ROWS (8) LR rows, below which it notes and uses 8; the default 5 GB
  gives strips of 550 LR rows at width 3000 for NAFSSR-T x4.
- the NTIRE 2024 budget of model_complexity.py (docs/tracks.md): at most 1M parameters and 400 GMACs per pair.
- stereo consistency (docs/evaluation.md): a left-right check within max_lr_diff (1 pixel); num_disparities a
  quarter of the width in multiples of 16, from 16 to 256.
"""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from helpers import load_script

PUBLISHED = SimpleNamespace(psnr=26.62, ssim=0.8159, psnr_left=25.90, ssim_left=0.7991)  # NAFSSR-T x4 KITTI2015-like
STEP = {'psnr': 0.01, 'ssim': 0.001, 'psnr_left': 0.01, 'ssim_left': 0.001}


@pytest.fixture(scope='module')
def reproduce():
    return load_script('scripts/reproduce_tables.py')


@pytest.mark.parametrize('figure', sorted(STEP))
@pytest.mark.parametrize('sign', [1, -1])
def test_reproduce_tables_tolerance_on_both_sides(reproduce, figure, sign):
    tol = STEP[figure]
    for offset, status in ((0.9 * tol, 'ok'), (tol, 'ok'), (1.1 * tol, f'MISS {figure}')):
        measured = {k: getattr(PUBLISHED, k) for k in STEP}
        measured[figure] += sign * offset
        diff, got = reproduce.compare(measured, PUBLISHED)
        assert got == status, (figure, sign * offset)
        assert diff[figure] == pytest.approx(sign * offset, abs=1e-9)
        assert all(d == 0 for k, d in diff.items() if k != figure)


def test_reproduce_tables_misses_name_every_figure_beyond(reproduce):
    measured = {'psnr': 26.62 + 0.011, 'ssim': 0.8159 - 0.0011, 'psnr_left': 25.90 + 0.009, 'ssim_left': 0.7991}
    assert reproduce.compare(measured, PUBLISHED)[1] == 'MISS psnr,ssim'


# ---------------------------------------------------------------------------------------------- strips
def _strip_psnr(overlap):
    from basicsr.evaluation import forward_stereo, infer_in_strips
    from basicsr.metrics import calculate_psnr
    from basicsr.models.archs import define_network
    from basicsr.utils.img_util import tensor2img

    torch.manual_seed(0)
    net = define_network({'type': 'NAFSSR', 'up_scale': 2, 'width': 16, 'num_blks': 3}, key_path='network_g')
    with torch.no_grad():  # non-zero SCAM gains so that the cross-view attention matters
        for name, p in net.named_parameters():
            if name.endswith(('beta', 'gamma')):
                p.copy_(torch.randn_like(p) * 0.5)
    net.eval()
    g = torch.Generator().manual_seed(3)
    lq = torch.nn.functional.interpolate(torch.rand(1, 6, 12, 24, generator=g), size=(40, 96), mode='bicubic',
                                         align_corners=False).clamp(0, 1)
    whole = tensor2img(forward_stereo(net, lq))
    return calculate_psnr(infer_in_strips(net, lq, 2, strip_rows=16, overlap=overlap), whole)


def test_strip_threshold_separates_context_from_none():
    assert _strip_psnr(16) >= 50 > _strip_psnr(0)


@pytest.fixture(scope='module')
def inference():
    return load_script('scripts/inference_stereo.py')


def test_auto_strip_rows_at_the_smallest_strip(inference, capsys):
    from basicsr.models.archs.arch_util import build_named

    net = build_named('NAFSSR-T', 4)
    width, overlap = 3000, 16
    per_row = inference.strip_bytes_per_row(net, width, 4)
    smallest = inference.MIN_AUTO_ROWS
    assert smallest == 8
    exact = (smallest + 2 * overlap) * per_row / 2 ** 30  # the budget of exactly 8 rows + context
    assert inference.auto_strip_rows(net, width, 4, overlap, exact * 1.000001) == smallest
    assert capsys.readouterr().err == ''
    assert inference.auto_strip_rows(net, width, 4, overlap, (exact * 2 ** 30 + per_row) / 2 ** 30) == smallest + 1
    assert inference.auto_strip_rows(net, width, 4, overlap, exact * 0.999) == smallest  # below: 8, with a note
    assert 'is below the estimate for the smallest strip' in capsys.readouterr().err
    # docs/evaluation.md: "the default 5 GB budget gives strips of 550 LR rows at width 3000 for NAFSSR-T x4"
    assert inference.auto_strip_rows(net, width, 4, overlap, inference.DEFAULT_MEMORY_GB) == 550


# ---------------------------------------------------------------------------------------------- NTIRE budget
def test_ntire_budget_boundaries():
    complexity = load_script('scripts/model_complexity.py')
    assert complexity.budget_verdict(1_000_000, 400 * 10 ** 9) == 'fits'
    assert complexity.budget_verdict(1_000_001, 400 * 10 ** 9) == 'exceeds: 1.00M params > 1M'
    assert complexity.budget_verdict(1_000_000, 400 * 10 ** 9 + 1) == 'exceeds: 400.00 GMACs > 400'
    assert complexity.budget_verdict(999_999, 399_999_999_999) == 'fits'


# ---------------------------------------------------------------------------------------------- stereo consistency
def test_left_right_check_within_one_pixel():
    from basicsr.metrics.stereo_consistency import consistent_mask

    disp_left = np.full((1, 4), 1.0, np.float32)  # every left pixel x matches x - 1 in the right view
    for back, inside in ((2.0, True), (2.01, False), (0.0, True), (-0.01, False)):
        mask = consistent_mask(disp_left, np.full((1, 4), back, np.float32))
        assert mask.tolist() == [[False, inside, inside, inside]], back  # column 0's match is outside the image


@pytest.mark.parametrize('width,expected', [(21, 16), (64, 16), (65, 32), (129, 48), (960, 240), (961, 256),
                                            (1025, 256), (4096, 256)])
def test_default_disparity_range(width, expected, monkeypatch):
    from basicsr.metrics import stereo_consistency

    seen = {}

    class FakeSGBM:  # records what OpenCV would be asked for
        def compute(self, left, right):
            return np.zeros(left.shape[:2], np.int16)

    def create(**kwargs):
        seen.update(kwargs)
        return FakeSGBM()

    monkeypatch.setattr(stereo_consistency.cv2, 'StereoSGBM_create', create)
    img = np.zeros((4, width, 3), np.uint8)
    stereo_consistency.sgbm_disparity(img, img)
    assert seen['numDisparities'] == expected
