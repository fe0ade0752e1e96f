"""results/<name>/report.html, written by a real test.py run on 3 random pairs with a tiny random NAFSSR, opened in
headless chromium as a person would: the numbers equal metrics.json, headers sort, a click on a pair shows the crops
of the right pixels under a movable box, no console error, no request off the machine. And the report is written
whole or not at all, with the metrics."""
import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

import basicsr.evaluation
from basicsr.models.archs import define_network
from basicsr.utils.checkpoint import save_atomic
from basicsr.utils.errors import run_main
from basicsr.utils.img_util import imread, imwrite
from basicsr.utils.matlab_functions import imresize
import browser as browser_module
from browser import chromium, serve
from helpers import load_script

NETWORK = {'type': 'NAFSSR', 'up_scale': 4, 'width': 8, 'num_blks': 1}
PAIRS = ('p0', 'p1', 'p2')
HR_SIZE = (128, 192)  # rows, columns: room for a 64-pixel crop to move both ways


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """A test set of 3 pairs of random pixels (every crop position shows other pixels), a random-weight tiny NAFSSR
    in the release format, and its option file (psnr, ssim and their Left variants; images saved)."""
    root = tmp_path_factory.mktemp('report_html')
    rng = np.random.default_rng(5)
    for pair in PAIRS:
        for view in '01':
            hr = rng.integers(0, 256, (*HR_SIZE, 3), dtype=np.uint8)
            imwrite(hr, root / 'data' / 'hr' / pair / f'hr{view}.png')
            imwrite(imresize(hr, 1 / 4), root / 'data' / 'lr_x4' / pair / f'lr{view}.png')
    torch.manual_seed(0)
    net = define_network(dict(NETWORK), key_path='network_g')
    save_atomic({'params': net.state_dict()}, root / 'net.pth')
    opt = root / 'report.yml'
    opt.write_text(f"""
name: report
scale: 4
num_gpu: 0
datasets:
  test0:
    name: Random
    type: PairedStereoImageDataset
    dataroot_gt: {root / 'data' / 'hr'}
    dataroot_lq: {root / 'data' / 'lr_x4'}
    io_backend:
      type: disk
network_g: {json.dumps(NETWORK)}
path:
  pretrain_network_g: {root / 'net.pth'}
val:
  save_img: true
  metrics:
    psnr:
      type: calculate_psnr
    ssim:
      type: calculate_skimage_ssim
""")
    return {'root': root, 'opt': opt}


def _test_py(setup, workdir, *force_yml):
    """test.py's run_test in this process, in ``workdir``; returns its result or exit code."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        return run_main('test.py', load_script('test.py').run_test,
                        ['-opt', str(setup['opt']), *[a for f in force_yml for a in ('--force_yml', f)]])


@pytest.fixture(scope='module')
def run(setup):
    """The results folder of one complete test.py run."""
    code = _test_py(setup, setup['root'])
    assert not isinstance(code, int), f'test.py exited with {code}'
    return setup['root'] / 'results' / 'report'


@pytest.fixture(scope='module')
def browser():
    with chromium() as b:
        yield b


def test_the_reference_views_are_the_bicubic_and_hr_of_the_test_set(setup, run):
    data = setup['root'] / 'data'
    for pair in PAIRS:
        for view, index in (('L', 0), ('R', 1)):
            lr = imread(data / 'lr_x4' / pair / f'lr{index}.png')
            assert np.array_equal(imread(run / 'references' / 'bicubic' / 'Random' / f'{pair}_{view}.png'),
                                  imresize(lr, 4))
            assert np.array_equal(imread(run / 'references' / 'hr' / 'Random' / f'{pair}_{view}.png'),
                                  imread(data / 'hr' / pair / f'hr{index}.png'))
    assert sorted(p.name for p in run.iterdir()) == ['metrics.csv', 'metrics.json', 'metrics.txt',
                                                     'metrics_per_pair.json', 'references', 'report.html',
                                                     'report.json', 'visualization']


def _table(driver, css):
    """Rows of the table ``css``: [(row header text, [(cell text, data-value), ...])] in page order."""
    rows = []
    for row in driver.find_elements(By.CSS_SELECTOR, f'{css} tbody tr'):
        cells = row.find_elements(By.CSS_SELECTOR, 'td[data-metric]')
        rows.append((row.find_element(By.CSS_SELECTOR, 'th').text,
                     {c.get_attribute('data-metric'): (c.text, c.get_attribute('data-value')) for c in cells}))
    return rows


def test_the_page_shows_the_numbers_of_the_metrics_files_without_errors_or_network(run, browser):
    driver = browser.open((run / 'report.html').as_uri())
    summary = json.loads((run / 'metrics.json').read_text())['Random']
    per_pair = json.loads((run / 'metrics_per_pair.json').read_text())['Random']
    assert sorted(summary) == ['psnr', 'psnr_left', 'ssim', 'ssim_left']
    rows = _table(driver, 'table.summary')
    assert [name for name, _ in rows] == ['Random']
    # what the page says is what metrics.json holds: the exact value, printed to 4 decimals as metrics.txt
    assert rows[0][1] == {m: (f'{v:.4f}', repr(v)) for m, v in summary.items()}
    for m, v in summary.items():
        assert f'{v:.4f}' in (run / 'metrics.txt').read_text()
    average = driver.find_elements(By.CSS_SELECTOR, 'table.summary tfoot td[data-metric]')
    assert {c.get_attribute('data-metric'): float(c.get_attribute('data-value')) for c in average} == summary
    pairs = _table(driver, 'table.pairs')
    assert [name for name, _ in pairs] == list(PAIRS)
    for name, cells in pairs:
        assert cells == {m: (f'{v:.4f}', repr(v)) for m, v in per_pair[name].items()}
    thumbs = [img.get_attribute('src') for img in driver.find_elements(By.CSS_SELECTOR, 'img.thumb')]
    assert thumbs == [(run / 'visualization' / 'Random' / f'{p}_{v}.png').as_uri() for p in PAIRS for v in 'LR']
    WebDriverWait(driver, 10).until(lambda d: d.execute_script(
        "return Array.from(document.querySelectorAll('img.thumb')).every(i => i.complete && i.naturalWidth > 0)"))
    assert browser.console_errors() == []
    assert all(url.startswith((run.as_uri() + '/', 'data:')) for url in browser.requested_urls()), \
        browser.requested_urls()


def _column(driver, css, metric):
    return [float(td.get_attribute('data-value'))
            for td in driver.find_elements(By.CSS_SELECTOR, f'{css} tbody td[data-metric="{metric}"]')]


def test_a_click_on_a_header_sorts_the_pairs(run, browser):
    driver = browser.open((run / 'report.html').as_uri())
    per_pair = json.loads((run / 'metrics_per_pair.json').read_text())['Random']
    header = driver.find_element(By.CSS_SELECTOR, 'table.pairs th[data-metric="psnr"]')
    by_psnr = sorted(PAIRS, key=lambda p: per_pair[p]['psnr'])
    assert by_psnr != list(PAIRS)  # else the test could not tell a sorted table from the original order
    header.click()
    assert [r[0] for r in _table(driver, 'table.pairs')] == by_psnr
    assert _column(driver, 'table.pairs', 'psnr') == sorted(per_pair[p]['psnr'] for p in PAIRS)
    assert header.get_attribute('aria-sort') == 'ascending'
    header.click()
    assert [r[0] for r in _table(driver, 'table.pairs')] == by_psnr[::-1]
    driver.find_element(By.CSS_SELECTOR, 'table.pairs th[data-type="text"]').click()
    assert [r[0] for r in _table(driver, 'table.pairs')] == list(PAIRS)
    assert browser.console_errors() == []


def _crop_pixels(driver, canvas):
    """The crop a canvas shows, read back one pixel per source pixel (the centre of each enlarged block): RGB."""
    size = int(canvas.get_attribute('data-size'))
    values = driver.execute_script("""
        const canvas = arguments[0], size = arguments[1], step = canvas.width / size;
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        const out = [];
        for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
          const i = 4 * (Math.floor((y + 0.5) * step) * canvas.width + Math.floor((x + 0.5) * step));
          out.push(data[i], data[i + 1], data[i + 2]);
        }
        return out;""", canvas, size)
    return np.asarray(values, np.uint8).reshape(size, size, 3)


def _drawn(driver, viewer, sx, sy, size, tolerance=0):
    """Wait until every crop of ``viewer`` shows the same ``size`` square within ``tolerance`` pixels of (sx, sy)
    (a pointer lands on whole CSS pixels: a pixel of the overview may be off); returns its (x, y)."""
    def done(_):
        rects = {(int(c.get_attribute('data-sx') or -1), int(c.get_attribute('data-sy') or -1),
                  int(c.get_attribute('data-size') or -1)) if c.get_attribute('data-drawn') == '1' else None
                 for c in viewer.find_elements(By.CSS_SELECTOR, 'canvas.crop')}
        if len(rects) != 1 or None in rects:
            return False
        x, y, side = rects.pop()
        return (x, y) if side == size and abs(x - sx) <= tolerance and abs(y - sy) <= tolerance else False
    return WebDriverWait(driver, 10).until(done)


def _expected_crop(base, overview, offset):
    """The crop (x, y) that a click at ``offset`` (CSS pixels from the overview's top-left corner) asks for."""
    rect = overview.rect
    w, h = HR_SIZE[1], HR_SIZE[0]
    cx, cy = offset[0] / rect['width'] * w, offset[1] / rect['height'] * h
    return (max(0, min(w - base, round(cx - base / 2))), max(0, min(h - base, round(cy - base / 2))))


def _click_at(driver, element, x, y):
    """A real mouse click at (x, y) CSS pixels from ``element``'s top-left corner (selenium counts from its centre)."""
    rect = element.rect
    ActionChains(driver).move_to_element_with_offset(element, int(x - rect['width'] / 2),
                                                     int(y - rect['height'] / 2)).click().perform()


def test_a_click_on_a_pair_shows_the_crops_of_its_images(run, browser):
    with serve(str(run)) as base:  # over http, the page may read its canvases back (file:// would taint them)
        driver = browser.open(f'{base}/report.html')
        viewer = driver.find_element(By.CSS_SELECTOR, '.viewer')
        assert not viewer.is_displayed()
        driver.find_element(By.CSS_SELECTOR, 'table.pairs tr[data-name="p1"]').click()
        assert viewer.is_displayed() and viewer.find_element(By.CSS_SELECTOR, '.viewer-title').text == 'p1'
        headers = [th.text for th in viewer.find_elements(By.CSS_SELECTOR, 'table.crops thead th')]
        assert headers == ['', 'Bicubic', 'Output', 'HR']
        # the box starts in the middle: a 64-pixel crop of the 128x192 views
        _drawn(driver, viewer, 64, 32, 64)
        files = {0: run / 'references' / 'bicubic', 1: run / 'visualization', 2: run / 'references' / 'hr'}
        for canvas in viewer.find_elements(By.CSS_SELECTOR, 'canvas.crop'):
            view = 'LR'[int(canvas.get_attribute('data-view'))]
            path = files[int(canvas.get_attribute('data-source'))] / 'Random' / f'p1_{view}.png'
            assert canvas.get_attribute('data-src') == path.relative_to(run).as_posix()
            assert np.array_equal(_crop_pixels(driver, canvas), imread(path)[32:96, 64:128, ::-1])
        per_pair = json.loads((run / 'metrics_per_pair.json').read_text())['Random']
        captions = [td.text for td in viewer.find_elements(By.CSS_SELECTOR, 'td.caption')]
        assert captions == ['', f"PSNR {per_pair['p1']['psnr']:.4f}", '']

        # a click on the overview moves the box there; the crops follow, in both views
        overview = viewer.find_element(By.CSS_SELECTOR, '.overview-img')
        x, y = _expected_crop(64, overview, (overview.rect['width'] * 0.1, overview.rect['height'] * 0.9))
        _click_at(driver, overview, overview.rect['width'] * 0.1, overview.rect['height'] * 0.9)
        assert (x, y) == (0, 64)  # clamped to the corner
        _drawn(driver, viewer, x, y, 64)
        right_hr = viewer.find_element(By.CSS_SELECTOR, 'canvas[data-view="1"][data-source="2"]')
        hr = imread(run / 'references' / 'hr' / 'Random' / 'p1_R.png')[..., ::-1]
        assert np.array_equal(_crop_pixels(driver, right_hr), hr[y:y + 64, x:x + 64])
        box = viewer.find_element(By.CSS_SELECTOR, '.crop-box').rect
        assert abs(box['x'] - overview.rect['x']) < 1.5 and abs(box['y'] + box['height'] - overview.rect['y']
                                                                 - overview.rect['height']) < 1.5

        # a drag moves it too, and a smaller crop is read from the same place
        rect = overview.rect
        start = (rect['width'] * 0.5, rect['height'] * 0.5)
        end = (rect['width'] * 0.7, rect['height'] * 0.3)
        ActionChains(driver).move_to_element_with_offset(overview, 0, 0).click_and_hold().move_by_offset(
            int(end[0] - start[0]), int(end[1] - start[1])).release().perform()
        x, y = _expected_crop(64, overview, (int(end[0] - start[0]) + rect['width'] / 2,
                                             int(end[1] - start[1]) + rect['height'] / 2))
        x, y = _drawn(driver, viewer, x, y, 64, tolerance=1)
        Select(viewer.find_element(By.CSS_SELECTOR, 'select.crop-size')).select_by_value('32')
        x, y = x + 16, y + 16  # the same centre
        _drawn(driver, viewer, x, y, 32)
        output = viewer.find_element(By.CSS_SELECTOR, 'canvas[data-view="0"][data-source="1"]')
        sr = imread(run / 'visualization' / 'Random' / 'p1_L.png')[..., ::-1]
        assert np.array_equal(_crop_pixels(driver, output), sr[y:y + 32, x:x + 32])
        assert browser.console_errors() == []
        assert all(url.startswith(base + '/') for url in browser.requested_urls()), browser.requested_urls()


def test_without_saved_images_the_report_has_the_tables_and_says_how_to_get_pictures(setup, tmp_path, browser):
    entries = _test_py(setup, tmp_path, 'val:save_img=false')
    assert not isinstance(entries, int)
    results = tmp_path / 'results' / 'report'
    assert sorted(p.name for p in results.iterdir()) == ['metrics.csv', 'metrics.json', 'metrics.txt',
                                                         'metrics_per_pair.json', 'report.html', 'report.json']
    driver = browser.open((results / 'report.html').as_uri())
    assert 'val:save_img: true' in driver.find_element(By.CSS_SELECTOR, 'section.dataset .note').text
    assert driver.find_elements(By.CSS_SELECTOR, 'img, canvas, .viewer') == []
    per_pair = json.loads((results / 'metrics_per_pair.json').read_text())['Random']
    assert [name for name, _ in _table(driver, 'table.pairs')] == list(per_pair) == list(PAIRS)
    assert browser.console_errors() == []


@pytest.mark.parametrize('fault', ['full disk', 'Ctrl-C'])
def test_a_run_that_fails_while_writing_the_report_leaves_no_report_and_no_metrics(setup, tmp_path, monkeypatch,
                                                                                    fault):
    real_imwrite = basicsr.evaluation.imwrite

    def failing_imwrite(img, path, *args, **kwargs):  # the last reference view cannot be written
        if os.path.basename(path) == 'p2_R.png' and 'references' in Path(path).parts:
            if fault == 'Ctrl-C':
                raise KeyboardInterrupt
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_imwrite(img, path, *args, **kwargs)

    monkeypatch.setattr(basicsr.evaluation, 'imwrite', failing_imwrite)
    code = _test_py(setup, tmp_path)
    assert code == (130 if fault == 'Ctrl-C' else 2)
    results = tmp_path / 'results' / 'report'
    assert sorted(p.name for p in results.iterdir()) == ['visualization']  # the SR views; no metrics, no report


def test_without_the_browser_the_browser_tests_fail_naming_what_to_install(monkeypatch):
    monkeypatch.setattr(browser_module, 'CHROMIUM', '/nonexistent/chromium')
    with pytest.raises(pytest.fail.Exception) as failure:
        with chromium():
            pass
    assert str(failure.value) == ("/nonexistent/chromium not found: the browser tests need Debian's chromium and "
                                  'chromium-driver (apt-get install -y chromium chromium-driver; .ci/run installs '
                                  'them)')
