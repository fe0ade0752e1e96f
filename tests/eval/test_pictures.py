"""Pictures: side-by-side comparison PNGs, PSNR per dataset from metrics.json, PSNR over iterations from a log."""
import json

import numpy as np
import pytest

from basicsr.utils import visualize
from basicsr.utils.img_util import imread, imwrite
from helpers import load_script

LOG = """2026-11-25 08:00:00,000 INFO: Start training from epoch: 0, iter: 0
2026-11-25 08:01:00,000 INFO: [quick..][epoch:  0, iter:     500, lr:(3.000e-03,)] [eta: 0:10:00] l_pix: 1.2e-02
2026-11-25 08:02:00,000 INFO: [quick..][epoch:  0, iter:   1,000, lr:(2.900e-03,)] [eta: 0:09:00] l_pix: 1.1e-02
2026-11-25 08:02:10,000 INFO: Validation Motorcycle
\t # psnr: 23.1234\tBest: 23.1234 @ 1000 iter
\t # ssim: 0.7000\tBest: 0.7000 @ 1000 iter

2026-11-25 08:02:12,000 INFO: Validation KITTI2012,\t\t # psnr: 25.5000
2026-11-25 08:04:00,000 INFO: [quick..][epoch:  1, iter:   2,000, lr:(2.500e-03,)] [eta: 0:08:00] l_pix: 9.0e-03
2026-11-25 08:04:10,000 INFO: Validation Motorcycle
\t # psnr: 24.5000\tBest: 24.5000 @ 2000 iter
garbage line # not a metric
"""


def test_parse_training_log():
    curves = visualize.parse_training_log(LOG)
    assert curves['Motorcycle']['psnr'] == [(1000, 23.1234), (2000, 24.5)]
    assert curves['Motorcycle']['ssim'] == [(1000, 0.7)]
    assert curves['KITTI2012']['psnr'] == [(1000, 25.5)]


def test_plot_from_log_and_metrics(tmp_path):
    plot_results = load_script('scripts/plot_results.py')
    log = tmp_path / 'train.log'
    log.write_text(LOG)
    assert plot_results.main(['plot', '--log', str(log), '--output', str(tmp_path / 'curve.png')]) == 0
    assert imread(tmp_path / 'curve.png').shape[2] == 3
    for run, offset in (('A', 0.0), ('B', 0.3)):
        (tmp_path / run).mkdir()
        (tmp_path / run / 'metrics.json').write_text(json.dumps(
            {'KITTI2012': {'psnr': 26.7 + offset, 'ssim': 0.81}, 'Middlebury': {'psnr': 29.2 + offset}}))
    out = tmp_path / 'bars.png'
    assert plot_results.main(['plot', '--metrics', str(tmp_path / 'A' / 'metrics.json'),
                              str(tmp_path / 'B' / 'metrics.json'), '--output', str(out)]) == 0
    assert imread(out).shape[1] > 300
    assert plot_results.main(['plot', '--log', str(log), '--metric', 'lpips', '--output', str(out)]) == 2  # USER_ERROR_EXIT


def test_side_by_side_with_zoomed_crops(tmp_path):
    rng = np.random.default_rng(0)
    hr = np.zeros((60, 90, 3), np.uint8)
    hr[30:50, 50:80] = rng.integers(0, 256, (20, 30, 3))  # the only detailed region
    # the window lies on the detailed region (the Sobel response of its border reaches one pixel outside it)
    assert visualize.pick_crop(hr, 15)[:2] in {(y, x) for y in range(29, 37) for x in range(49, 67)}
    path = tmp_path / 'cmp.png'
    y, x, size = visualize.side_by_side([('Bicubic', hr // 2), ('Ours', hr), ('HR', hr)], str(path))
    assert size == 15 and imread(path).shape[1] >= 3 * 200
    with pytest.raises(ValueError, match='does not fit'):
        visualize.side_by_side([('a', hr)], str(path), crop=(50, 80, 20))


def test_side_by_side_panels_pixels(tmp_path):
    """The figure's pixels: panel i (a flat colour with a square of another colour) is drawn whole in the i-th column
    of the top row, in order, and the bottom row shows only the crop, enlarged, filling a square of its own."""
    colours = [(40, 160, 40), (160, 40, 160), (30, 120, 200)]  # BGR, none of them the red of the crop frame
    squares = [(200, 200, 20), (20, 200, 200), (100, 20, 100)]
    panels = []
    for i, (colour, square) in enumerate(zip(colours, squares)):
        img = np.empty((60, 90, 3), np.uint8)
        img[:] = colour
        img[30:45, 50:65] = square
        panels.append((f'P{i}', img))
    path = tmp_path / 'cmp.png'
    visualize.side_by_side(panels, str(path), crop=(30, 50, 15), dpi=50)  # the crop is exactly the square
    fig = imread(path)
    width = fig.shape[1]
    top_rows = None
    for i, (colour, square) in enumerate(zip(colours, squares)):
        ys, xs = np.nonzero((fig == colour).all(2))
        assert i * width / 3 <= xs.min() and xs.max() < (i + 1) * width / 3  # the i-th column
        # the top panel: the flat colour around the square, 90x60 pixels scaled to the column's width
        scale = (xs.max() - xs.min() + 1) / 90
        assert len(ys) == pytest.approx((90 * 60 - 15 * 15) * scale ** 2, rel=0.05)
        top_rows = ys.max() if top_rows is None else top_rows
        assert ys.max() == top_rows  # the panels are aligned
        sy, sx = np.nonzero((fig == square).all(2))
        top, bottom = sy <= ys.max(), sy > ys.max()
        assert np.sqrt(top.sum()) == pytest.approx(15 * scale, abs=4)  # the square in the full view (edges blend)
        zoom_h = sy[bottom].max() - sy[bottom].min() + 1
        zoom_w = sx[bottom].max() - sx[bottom].min() + 1
        assert zoom_h == pytest.approx(zoom_w, abs=2) and bottom.sum() == zoom_h * zoom_w  # a full square ...
        assert zoom_w == pytest.approx(xs.max() - xs.min() + 1, abs=2)  # ... as wide as the panel: 15 pixels, enlarged
    red = (fig == (0, 0, 255)).all(2)
    assert red[:top_rows + 1].sum() > 0 and red[top_rows + 1:].sum() == 0  # the crop frame is drawn on the top row


def test_compare_command_on_a_test_set_layout(tmp_path):
    from basicsr.utils.matlab_functions import imresize

    plot_results = load_script('scripts/plot_results.py')
    rng = np.random.default_rng(1)
    for view in (0, 1):
        hr = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
        lr = imresize(hr, 1 / 4)
        imwrite(hr, tmp_path / 'hr' / '0001' / f'hr{view}.png')
        imwrite(lr, tmp_path / 'lr_x4' / '0001' / f'lr{view}.png')
        imwrite(hr, tmp_path / 'sr' / f"0001_{'LR'[view]}.png")
    assert plot_results.main(['compare', '--sr_dir', str(tmp_path / 'sr'), '--lq_dir', str(tmp_path / 'lr_x4'),
                              '--gt_dir', str(tmp_path / 'hr'), '--scale', '4', '--output',
                              str(tmp_path / 'fig'), '--view', 'R']) == 0
    assert (tmp_path / 'fig' / '0001_R_compare.png').is_file()
    assert plot_results.main(['compare', '--sr_dir', str(tmp_path / 'sr'), '--lq_dir', str(tmp_path / 'lr_x4'),
                              '--gt_dir', str(tmp_path / 'hr'), '--scale', '2', '--output',
                              str(tmp_path / 'fig')]) == 2  # USER_ERROR_EXIT
