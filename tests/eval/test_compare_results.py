"""scripts/compare_results.py on the results of real test.py runs (two tiny random NAFSSRs on 3 random pairs): the
page opened in headless chromium shows each run's metrics.json with the best of each column in bold (the lowest
for a lower-is-better metric), sorts, and shows the same crop of every model for a pair; bad inputs are one line,
exit 2, nothing written."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from basicsr.models.archs import define_network
from basicsr.utils.checkpoint import save_atomic
from basicsr.utils.errors import run_main
from basicsr.utils.img_util import imread, imwrite
from basicsr.utils.matlab_functions import imresize
from browser import chromium, serve
from helpers import load_script

REPO = Path(__file__).resolve().parents[2]
NETWORK = {'type': 'NAFSSR', 'up_scale': 4, 'width': 8, 'num_blks': 1}
PAIRS = ('p0', 'p1', 'p2')


def _option_file(root, name, data, weights):
    path = root / f'{name}.yml'
    path.write_text(f"""
name: {name}
scale: 4
num_gpu: 0
datasets:
  test0:
    name: Random
    type: PairedStereoImageDataset
    dataroot_gt: {data / 'hr'}
    dataroot_lq: {data / 'lr_x4'}
    io_backend:
      type: disk
network_g: {json.dumps(NETWORK)}
path:
  pretrain_network_g: {weights}
val:
  save_img: true
  metrics:
    psnr:
      type: calculate_psnr
    consistency:
      type: calculate_stereo_consistency
""")
    return path


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """results/A and results/B: two random-weight networks tested on the same 3 pairs; results/Few: A on 2 of them;
    results/Other: A on the same pairs under another test-set name."""
    root = tmp_path_factory.mktemp('compare')
    rng = np.random.default_rng(7)
    for pair in PAIRS:
        for view in '01':
            hr = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
            imwrite(hr, root / 'data' / 'hr' / pair / f'hr{view}.png')
            imwrite(imresize(hr, 1 / 4), root / 'data' / 'lr_x4' / pair / f'lr{view}.png')
    for kind in ('hr', 'lr_x4'):
        for pair in PAIRS[:2]:
            shutil.copytree(root / 'data' / kind / pair, root / 'few' / kind / pair)
    for seed, name in ((0, 'A'), (1, 'B')):
        torch.manual_seed(seed)
        save_atomic({'params': define_network(dict(NETWORK), key_path='network_g').state_dict()}, root / f'{name}.pth')
    test_py = load_script('test.py').run_test
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for name, data, weights, extra in (('A', 'data', 'A', []), ('B', 'data', 'B', []), ('Few', 'few', 'A', []),
                                           ('Other', 'data', 'A', ['--force_yml', 'datasets:test0:name=Other'])):
            opt = _option_file(root, name, root / data, root / f'{weights}.pth')
            assert not isinstance(run_main('test.py', test_py, ['-opt', str(opt), *extra]), int)
    return root


@pytest.fixture(scope='module')
def browser():
    with chromium() as b:
        yield b


def _compare(argv, capsys):
    code = load_script('scripts/compare_results.py').main([str(a) for a in argv])
    return code, capsys.readouterr()


@pytest.fixture(scope='module')
def page(runs):
    """compare.html of A and B, in a folder of its own (its image URLs climb out of it)."""
    out = runs / 'pages' / 'compare.html'
    out.parent.mkdir()
    assert load_script('scripts/compare_results.py').main([str(runs / 'results' / 'A'), str(runs / 'results' / 'B'),
                                                           '--out', str(out)]) == 0
    return out


def test_the_table_has_every_run_s_numbers_and_the_best_in_bold(runs, page, browser):
    driver = browser.open(page.as_uri())
    metrics = {name: json.loads((runs / 'results' / name / 'metrics.json').read_text())['Random'] for name in 'AB'}
    headers = [(th.get_attribute('data-metric'), th.get_attribute('data-better'))
               for th in driver.find_elements(By.CSS_SELECTOR, 'table.compare th[data-metric]')]
    assert headers == [('psnr_left', 'higher'), ('psnr', 'higher'), ('consistency', 'lower')]
    rows = driver.find_elements(By.CSS_SELECTOR, 'table.compare tbody tr')
    assert [row.find_element(By.CSS_SELECTOR, 'th').text for row in rows] == ['A', 'B']
    for column, (metric, better) in enumerate(headers):
        values = {name: metrics[name][metric] for name in 'AB'}
        assert values['A'] != values['B']  # a best to find
        best = (max if better == 'higher' else min)(values, key=values.get)
        for name, row in zip('AB', rows):
            cell = row.find_elements(By.CSS_SELECTOR, 'td')[column]
            assert (cell.text, float(cell.get_attribute('data-value'))) == (f'{values[name]:.4f}', values[name])
            assert bool(cell.find_elements(By.CSS_SELECTOR, 'strong')) == (name == best), (metric, name)
    per_pair = {name: json.loads((runs / 'results' / name / 'metrics_per_pair.json').read_text())['Random']
                for name in 'AB'}
    for row in driver.find_elements(By.CSS_SELECTOR, 'table.pairs tbody tr'):
        pair = row.get_attribute('data-name')
        cells = row.find_elements(By.CSS_SELECTOR, 'td[data-value]')[1:]  # after the number of the row
        assert [float(c.get_attribute('data-value')) for c in cells] == [per_pair[n][pair]['psnr'] for n in 'AB']
    driver.find_element(By.CSS_SELECTOR, 'table.compare th[data-metric="consistency"]').click()
    order = sorted('AB', key=lambda n: metrics[n]['consistency'])
    assert [r.find_element(By.CSS_SELECTOR, 'th').text for r in
            driver.find_elements(By.CSS_SELECTOR, 'table.compare tbody tr')] == order
    assert browser.console_errors() == []


def test_a_pair_shows_the_same_crop_of_every_model(runs, page, browser):
    with serve(str(runs)) as base:
        driver = browser.open(f'{base}/pages/compare.html')
        driver.find_element(By.CSS_SELECTOR, 'table.pairs tr[data-name="p2"]').click()
        viewer = driver.find_element(By.CSS_SELECTOR, '.viewer')
        assert [th.text for th in viewer.find_elements(By.CSS_SELECTOR, 'table.crops thead th')] == \
            ['', 'Bicubic', 'A', 'B', 'HR']
        canvases = viewer.find_elements(By.CSS_SELECTOR, 'canvas.crop')
        WebDriverWait(driver, 10).until(lambda d: all(c.get_attribute('data-drawn') == '1' for c in canvases))
        files = [runs / 'results' / 'A' / 'references' / 'bicubic', runs / 'results' / 'A' / 'visualization',
                 runs / 'results' / 'B' / 'visualization', runs / 'results' / 'A' / 'references' / 'hr']
        assert len(canvases) == 2 * len(files)
        for canvas in canvases:
            x, y, size = (int(canvas.get_attribute(f'data-{k}')) for k in ('sx', 'sy', 'size'))
            assert (x, y, size) == (32, 16, 64)  # the middle of the 96x128 views, the same for every model
            view = 'LR'[int(canvas.get_attribute('data-view'))]
            path = files[int(canvas.get_attribute('data-source'))] / 'Random' / f'p2_{view}.png'
            assert canvas.get_attribute('data-src') == f'../results/{path.relative_to(runs / "results").as_posix()}'
            shown = driver.execute_script("""
                const c = arguments[0], step = c.width / arguments[1], out = [];
                const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                for (let j = 0; j < arguments[1]; j++) for (let i = 0; i < arguments[1]; i++) {
                  const k = 4 * (Math.floor((j + 0.5) * step) * c.width + Math.floor((i + 0.5) * step));
                  out.push(data[k], data[k + 1], data[k + 2]);
                }
                return out;""", canvas, size)
            expected = imread(path)[y:y + size, x:x + size, ::-1]
            assert np.array_equal(np.asarray(shown, np.uint8).reshape(size, size, 3), expected), path
        per_pair = {n: json.loads((runs / 'results' / n / 'metrics_per_pair.json').read_text())['Random']['p2']
                    for n in 'AB'}
        assert [td.text for td in viewer.find_elements(By.CSS_SELECTOR, 'td.caption')] == \
            ['', f"PSNR {per_pair['A']['psnr']:.4f}", f"PSNR {per_pair['B']['psnr']:.4f}", '']
        assert browser.console_errors() == []
        assert all(url.startswith(base + '/') for url in browser.requested_urls()), browser.requested_urls()


def _scaled_copy(runs, tmp_path):
    """results/A as if tested at x2 (its report.json says so)."""
    copy = tmp_path / 'A_x2'
    shutil.copytree(runs / 'results' / 'A', copy)
    data = json.loads((copy / 'report.json').read_text())
    data['datasets'][0]['scale'] = 2
    (copy / 'report.json').write_text(json.dumps(data))
    return copy


@pytest.mark.parametrize('case', ['not results', 'missing', 'other test set', 'fewer pairs', 'other scale', 'twice',
                                  'one run', 'labels'])
def test_bad_input_is_one_line_and_writes_nothing(runs, tmp_path, capsys, case):
    results = runs / 'results'
    argv = {'not results': [results / 'A', runs / 'data'],
            'missing': [results / 'A', tmp_path / 'nowhere'],
            'other test set': [results / 'A', results / 'Other'],
            'fewer pairs': [results / 'A', results / 'Few'],
            'other scale': [results / 'A', _scaled_copy(runs, tmp_path) if case == 'other scale' else None],
            'twice': [results / 'A', results / 'B', runs / 'results' / '..' / 'results' / 'A'],
            'one run': [results / 'A'],
            'labels': [results / 'A', results / 'B', '--labels', 'only-one']}[case]
    out = tmp_path / 'compare.html'
    code, captured = _compare([*argv, '--out', out], capsys)
    expected = {'not results': f"{runs / 'data'}: no metrics.json; expected a results folder written by test.py "
                               '(results/<name>)',
                'missing': f"{tmp_path / 'nowhere'}: not a folder; expected a results folder of test.py "
                           '(results/<name>)',
                'other test set': f"{results / 'Other'}: tested on Other but {results / 'A'} on Random; compare "
                                  'runs on the same test sets',
                'fewer pairs': f"{results / 'Few'}: Random has 2 pairs, {results / 'A'} 3: lacks pairs p2; compare "
                               'runs on the same pairs',
                'other scale': f"{tmp_path / 'A_x2'}: Random at x2 but {results / 'A'} at x4; compare runs of one "
                               'scale',
                'twice': f"{runs / 'results' / '..' / 'results' / 'A'}: given twice; give each results folder once",
                'one run': 'give at least two results folders to compare, got 1',
                'labels': '--labels: 1 labels for 2 results folders (one each)'}[case]
    assert (code, captured.err, captured.out) == (2, f'compare_results.py: error: {expected}\n', '')
    assert list(tmp_path.glob('*.html')) == [] and list(tmp_path.glob('.*')) == []


def test_an_existing_page_is_kept_unless_overwrite(runs, tmp_path, capsys):
    out = tmp_path / 'compare.html'
    out.write_text('an earlier page')
    argv = [runs / 'results' / 'A', runs / 'results' / 'B', '--out', out]
    code, captured = _compare(argv, capsys)
    assert (code, captured.err) == (2, f'compare_results.py: error: --out {out}: exists; pass --overwrite to replace '
                                       'it\n')
    assert out.read_text() == 'an earlier page'
    code, captured = _compare([*argv, '--overwrite'], capsys)
    assert code == 0 and captured.out == f'{out}: 2 runs compared\n'
    assert 'Comparison: A, B' in out.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['compare.html']  # no temporary file left


def test_the_script_run_as_a_user_would(runs, tmp_path):
    """The real script in its own process: one line and exit code 2 for a folder that is not a results folder."""
    proc = subprocess.run([sys.executable, str(REPO / 'scripts' / 'compare_results.py'), str(runs / 'results' / 'A'),
                           str(runs / 'data'), '--out', str(tmp_path / 'c.html')], capture_output=True, text=True,
                          timeout=120, cwd=str(tmp_path))
    assert proc.returncode == 2 and proc.stdout == ''
    assert proc.stderr.splitlines() == [f"compare_results.py: error: {runs / 'data'}: no metrics.json; expected a "
                                        'results folder written by test.py (results/<name>)']
    assert list(tmp_path.iterdir()) == []
