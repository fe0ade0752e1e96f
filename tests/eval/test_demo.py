"""demo.py, the local web demo: the app's function in-process (the same pixels as scripts/inference_stereo.py, the
side-by-side split, one line for each bad upload, the zoo models offered), its command-line refusals, and the served
page in a real headless chromium (upload the two views of the Motorcycle sample, run, check the images, download
both views, a bad upload's message, the PSNR against uploaded HR views as test.py's)."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from basicsr import demo_app
from basicsr.utils.checkpoint import save_atomic
from basicsr.utils.errors import UserError
from basicsr.utils.img_util import imfrombytes, imread, imwrite
from basicsr.utils.matlab_functions import imresize
from helpers import load_script, reaped, run, tiny_model_files

REPO = Path(__file__).resolve().parents[2]
NETWORK = {'type': 'NAFSSR', 'up_scale': 2, 'width': 16, 'num_blks': 2}
TINY_BUDGET_GB = 0.001  # below the smallest strip: strips of 8 LR rows, so a 48-row pair takes 6 strips


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """A tiny random NAFSSR x2 (checkpoint + option file) and a 64x48 crop of both views of the Motorcycle pair
    (skimage.data.stereo_motorcycle, RGB -> BGR), plus bad uploads."""
    from skimage.data import stereo_motorcycle

    root = tmp_path_factory.mktemp('demo')
    _, weights, opt = tiny_model_files(root, NETWORK, 'tiny_x2.pth')
    left, right, _ = stereo_motorcycle()
    crop = (slice(200, 248), slice(300, 364))
    views = {'moto_L.png': left[crop][..., ::-1], 'moto_R.png': right[crop][..., ::-1],
             'wide_R.png': right[200:248, 300:366, ::-1], 'grey_R.png': right[crop][..., 0],
             'moto_SBS.png': np.concatenate([left[crop], right[crop]], axis=1)[..., ::-1],
             'odd_SBS.png': left[200:248, 300:367, ::-1]}
    for name, img in views.items():
        imwrite(np.ascontiguousarray(img), root / name)
    (root / 'notes.txt').write_text('not an image\n')
    (root / 'empty_R.png').write_bytes(b'')
    return {'root': root, 'weights': weights, 'opt': opt, **{name: root / name for name in views},
            'notes.txt': root / 'notes.txt', 'empty_R.png': root / 'empty_R.png'}


@pytest.fixture(scope='module')
def catalog(files):
    catalog = demo_app.Catalog([], 'cpu')
    catalog.add_loaded(*demo_app.command_line_entry(str(files['weights']), str(files['opt'])))
    return catalog


def _run(catalog, tmp_path, left=None, right=None, sbs=None, **kwargs):
    label = catalog.labels()[0]
    kwargs.setdefault('max_memory_gb', TINY_BUDGET_GB)
    return demo_app.run_pair(catalog, label, left and str(left), right and str(right), sbs and str(sbs),
                             str(tmp_path), **kwargs)


@pytest.fixture(scope='module')
def held_out(sample_root, files, tmp_path_factory):
    """The built-in sample's held-out pair at x2 (LR 370x90, HR 740x180) as a person would upload it, and
    test.py's ``metrics.json`` figures for it with the tiny x2 model and the demo's metrics."""
    root = Path(sample_root) / 'test' / 'Motorcycle'
    work = tmp_path_factory.mktemp('held_out')
    paths = {}
    for kind, folder, prefix in (('lr', 'lr_x2', 'lr'), ('hr', 'hr', 'hr')):
        (work / kind).mkdir()
        for i, view in enumerate('LR'):
            path = work / kind / f'motorcycle_bottom_{view}.png'
            path.write_bytes((root / folder / 'motorcycle_bottom' / f'{prefix}{i}.png').read_bytes())
            paths[f'{kind}_{view}'] = path
    opt = {'name': 'held_out', 'model_type': 'ImageRestorationModel', 'scale': 2, 'num_gpu': 0,
           'datasets': {'test0': {'name': 'Motorcycle', 'type': 'PairedStereoImageDataset', 'scale': 2,
                                  'dataroot_gt': str(root / 'hr'), 'dataroot_lq': str(root / 'lr_x2')}},
           'network_g': NETWORK, 'path': {'pretrain_network_g': str(files['weights'])},
           'val': {'save_img': False, 'metrics': {  # the released NAFSSR option files' metrics, with their Left
               'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False},
               'ssim': {'type': 'calculate_skimage_ssim', 'crop_border': 0, 'test_y_channel': False},
               'psnr_left': {'type': 'calculate_psnr_left'}, 'ssim_left': {'type': 'calculate_skimage_ssim_left'}}}}
    (work / 'held_out.yml').write_text(yaml.safe_dump(opt))
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(REPO))
    env.pop('STEREO_SR_TRACEBACK', None)
    proc = run([sys.executable, str(REPO / 'test.py'), '-opt', str(work / 'held_out.yml')], 120, cwd=str(work),
               env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    figures = json.loads((work / 'results' / 'held_out' / 'metrics.json').read_text())['Motorcycle']
    assert set(figures) == set(demo_app.DEMO_METRICS)
    return paths, figures


def test_the_demo_scores_an_uploaded_hr_pair_as_test_py(held_out, catalog, tmp_path):
    paths, figures = held_out
    hr = (str(paths['hr_L']), str(paths['hr_R']), None)
    result = _run(catalog, tmp_path, paths['lr_L'], paths['lr_R'], max_memory_gb=demo_app.DEFAULT_MEMORY_GB,
                  hr_paths=hr)
    assert 'strips of 90 LR rows' in result.status  # one strip: the whole pair, as test.py runs it
    assert [view.shape for view in result.sr] == [(180, 740, 3)] * 2
    assert result.scores['pair'] == figures  # the same numbers, not merely close
    for key in ('psnr', 'ssim'):  # (Left+Right)/2 is the mean of the per-view figures the page shows
        assert result.scores['pair'][key] == pytest.approx(
            (result.scores['left'][key] + result.scores['right'][key]) / 2, rel=1e-12)
    text = demo_app.format_scores(result.scores)
    assert f'(Left+Right)/2 {figures["psnr"]:.4f}, Left (64 columns cropped) {figures["psnr_left"]:.4f}' in text
    sbs = tmp_path / 'hr_SBS.png'  # the HR views side by side are read as the two HR views
    imwrite(np.concatenate([imread(paths['hr_L']), imread(paths['hr_R'])], axis=1), sbs)
    for a, b in zip(demo_app.read_hr_pair(sbs_path=str(sbs)), (imread(paths['hr_L']), imread(paths['hr_R']))):
        np.testing.assert_array_equal(a, b)
    assert demo_app.read_hr_pair() is None


@pytest.mark.parametrize('hr, message', [
    (('moto_L.png', 'moto_R.png', None), 'HR upload: the HR views are 64x48 but x2 of the 64x48 LR views is 128x96 '
                                         "(width x height); upload the HR views of this pair at the model's scale, "
                                         'or none'),
    (('moto_L.png', None, None), 'HR upload: only the left view was uploaded; upload the right view too'),
    (('moto_L.png', 'notes.txt', None), 'HR upload: right view (notes.txt): cannot decode'),
], ids=['wrong size', 'one view', 'not an image'])
def test_a_bad_hr_upload_is_one_line(files, catalog, tmp_path, hr, message):
    with pytest.raises(UserError) as exc:
        _run(catalog, tmp_path, files['moto_L.png'], files['moto_R.png'],
             hr_paths=tuple(name and str(files[name]) for name in hr))
    assert str(exc.value).startswith(message) and '\n' not in str(exc.value)
    assert os.listdir(tmp_path) == []  # refused before the model ran or anything was written


def test_the_demo_gives_the_pixels_of_inference_stereo(files, catalog, tmp_path, capsys):
    script = load_script('scripts/inference_stereo.py')
    script.run(['--left', str(files['moto_L.png']), '--right', str(files['moto_R.png']), '--output',
                str(tmp_path / 'script'), '-opt', str(files['opt']), '--max_memory_gb', str(TINY_BUDGET_GB)])
    steps = []
    result = _run(catalog, tmp_path, files['moto_L.png'], files['moto_R.png'],
                  progress=lambda done, total: steps.append((done, total)))
    assert steps == [(8 * i, 48) for i in range(1, 7)]  # one progress step per strip of 8 LR rows
    assert 'strips of 8 LR rows + 16 overlap' in result.status and '64x48 -> 128x96 (x2)' in result.status
    assert [os.path.basename(f) for f in result.files] == ['moto_L.png', 'moto_R.png']
    left, right = imread(files['moto_L.png']), imread(files['moto_R.png'])
    for view, lr, sr, path in zip('LR', (left, right), result.sr, result.files):
        expected = imread(tmp_path / 'script' / f'moto_{view}.png')
        assert expected.shape == (96, 128, 3)
        np.testing.assert_array_equal(sr, expected)
        np.testing.assert_array_equal(imread(path), expected)  # the download is the same lossless PNG
        assert np.abs(sr.astype(int) - imresize(lr, 2).astype(int)).mean() > 1  # the network did something
    np.testing.assert_array_equal(result.bicubic[0], imresize(left, 2))


def test_a_side_by_side_image_is_split_in_halves(files, catalog, tmp_path):
    pair = _run(catalog, tmp_path, files['moto_L.png'], files['moto_R.png'])
    sbs = _run(catalog, tmp_path, sbs=files['moto_SBS.png'])
    assert pair.scores is None and sbs.scores is None  # no HR upload, no figures
    assert sbs.name == 'moto' and [os.path.basename(f) for f in sbs.files] == ['moto_L.png', 'moto_R.png']
    for a, b in zip(pair.sr, sbs.sr):
        np.testing.assert_array_equal(a, b)
    left, right = demo_app.split_side_by_side(imread(files['moto_SBS.png']))
    np.testing.assert_array_equal(left, imread(files['moto_L.png']))
    np.testing.assert_array_equal(right, imread(files['moto_R.png']))


def test_portrait_uploads_are_read_upright_as_inference_stereo_reads_them(files, catalog, tmp_path):
    """A phone held in portrait stores its photos turned, with an EXIF orientation tag (6: "turn 90 degrees
    clockwise to display"). The demo's uploads, two views or one side-by-side image, come out upright (as Pillow
    shows them): the result of the upright views."""
    from PIL import Image, ImageOps

    exif = Image.Exif()
    exif[0x0112] = 6
    uploads = tmp_path / 'uploads'
    uploads.mkdir()
    for name in ('moto_L', 'moto_R', 'moto_SBS'):
        turned = np.rot90(imread(files[f'{name}.png'])[..., ::-1])  # RGB, stored turned counter-clockwise
        Image.fromarray(np.ascontiguousarray(turned)).save(uploads / f'{name}.jpg', quality=92, exif=exif)
    upright = {}
    for name in ('moto_L', 'moto_R', 'moto_SBS'):
        with Image.open(uploads / f'{name}.jpg') as img:
            upright[name] = np.ascontiguousarray(np.asarray(ImageOps.exif_transpose(img).convert('RGB'))[..., ::-1])
    assert upright['moto_L'].shape == (48, 64, 3)
    left, right, _ = demo_app.read_pair(str(uploads / 'moto_L.jpg'), str(uploads / 'moto_R.jpg'))
    np.testing.assert_array_equal(left, upright['moto_L'])
    np.testing.assert_array_equal(right, upright['moto_R'])
    left, right, _ = demo_app.read_pair(sbs_path=str(uploads / 'moto_SBS.jpg'))
    np.testing.assert_array_equal(np.concatenate([left, right], axis=1), upright['moto_SBS'])
    for name in ('moto_L', 'moto_R'):
        imwrite(upright[name], tmp_path / 'upright' / f'{name}.png')
    one_strip = {'max_memory_gb': demo_app.DEFAULT_MEMORY_GB}
    got = _run(catalog, tmp_path, uploads / 'moto_L.jpg', uploads / 'moto_R.jpg', **one_strip)
    expected = _run(catalog, tmp_path, tmp_path / 'upright' / 'moto_L.png', tmp_path / 'upright' / 'moto_R.png',
                    **one_strip)
    for a, b in zip(got.sr, expected.sr):
        np.testing.assert_array_equal(a, b)


def test_the_anaglyph_is_red_from_the_left_and_cyan_from_the_right():
    left = np.full((2, 3, 3), (10, 20, 30), np.uint8)  # BGR
    right = np.full((2, 3, 3), (40, 50, 60), np.uint8)
    assert demo_app.anaglyph(left, right)[0, 0].tolist() == [40, 50, 30]


@pytest.mark.parametrize('upload, message', [
    ({}, 'upload a left and a right view, or one side-by-side image'),
    ({'left': 'moto_L.png'}, 'only the left view was uploaded; upload the right view too (or one side-by-side image)'),
    ({'right': 'moto_R.png'}, 'only the right view was uploaded; upload the left view too'),
    ({'left': 'moto_L.png', 'right': 'wide_R.png'},
     'the right view (wide_R.png) is 66x48 but the left view (moto_L.png) is 64x48 (width x height); the two views '
     'of a rectified pair must have the same size'),
    ({'left': 'moto_L.png', 'right': 'notes.txt'},
     'right view (notes.txt): cannot decode, expected a PNG/JPEG image (not an image or corrupt)'),
    ({'left': 'moto_L.png', 'right': 'empty_R.png'}, 'right view (empty_R.png): empty file, expected an image'),
    ({'left': 'moto_L.png', 'right': 'grey_R.png'},
     'right view (grey_R.png): grey-scale image, expected a 3-channel colour image'),
    ({'sbs': 'odd_SBS.png'}, 'side-by-side image (odd_SBS.png): 67x48 has an odd width'),
    ({'left': 'moto_L.png', 'sbs': 'moto_SBS.png'}, 'upload either a left and a right view or one side-by-side '
                                                    'image, not both'),
], ids=['nothing', 'left only', 'right only', 'sizes differ', 'not an image', 'empty file', 'grey', 'odd sbs',
        'both kinds'])
def test_a_bad_upload_is_one_line(files, catalog, tmp_path, upload, message):
    with pytest.raises(UserError) as exc:
        _run(catalog, tmp_path, **{key: files[name] for key, name in upload.items()})
    assert str(exc.value).startswith(message) and '\n' not in str(exc.value)
    assert os.listdir(tmp_path) == []  # refused before anything was written


def test_zoo_models_whose_weights_are_present_are_offered(files, tmp_path):
    from basicsr.models.archs.arch_util import build_named

    save_atomic({'params': build_named('NAFSSR-T', 4).state_dict()}, tmp_path / 'NAFSSR-T_4x.pth')
    entries = demo_app.zoo_entries(str(tmp_path))
    assert [(e.label, e.scale) for e in entries] == [('NAFSSR-T_x4', 4)]
    assert entries[0].opt_path == str(REPO / 'options/test/NAFSSR/NAFSSR-T_x4.yml')
    catalog = demo_app.Catalog(entries, 'cpu')
    assert catalog.scales() == [4] and catalog.labels(2) == []
    net, scale, color_order = catalog.get('NAFSSR-T_x4')  # its option file's network, with the file's weights
    assert (type(net).__name__, scale, color_order) == ('NAFSSR', 4, 'bgr')
    torch.testing.assert_close(net.state_dict(), torch.load(tmp_path / 'NAFSSR-T_4x.pth')['params'])


@pytest.mark.parametrize('argv, message', [
    (['--pretrained_dir', '{tmp}'], 'no model to offer: no released weights in {tmp}'),
    (['-opt', '{opt}'], '-opt/--arch need --weights'),
    (['--weights', '{weights}'], '--weights needs -opt <option file> or --arch <named size> with --scale'),
    (['--arch', 'NAFSSR-T', '--scale', '2', '--weights', '{weights}'], '--weights: {weights}: 67 tensors do not fit'),
    (['--weights', '{weights}', '-opt', '{opt}', '--port', '0'], '--port must be between 1 and 65535, got 0'),
], ids=['no model', 'opt without weights', 'weights alone', 'weights of another size', 'port'])
def test_command_line_refusals_are_one_line_before_serving(files, tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.setenv('GRADIO_ANALYTICS_ENABLED', 'False')  # restored afterwards (serve sets it)
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    values = {'tmp': tmp_path, 'opt': files['opt'], 'weights': files['weights']}
    assert demo_app.main([a.format(**values) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f'demo.py: error: {message.format(**values)}') and err.count('\n') == 1, err


def test_a_port_in_use_is_one_line_before_the_model_is_loaded(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('GRADIO_ANALYTICS_ENABLED', 'False')
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    with socket.create_server(('127.0.0.1', 0)) as busy:
        port = busy.getsockname()[1]
        assert demo_app.main(['--port', str(port), '--weights', str(tmp_path / 'missing.pth'), '--arch', 'NAFSSR-T',
                              '--scale', '4']) == 2
    assert capsys.readouterr().err == (f'demo.py: error: --host 127.0.0.1 --port {port}: cannot serve there (Address '
                                       'already in use); choose another --port (or --host)\n')


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _wait_for_page(proc, url, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f'demo.py exited with {proc.returncode}: {proc.stderr.read()}')
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f'demo.py did not serve {url} within {timeout} s')


def _upload(driver, elem_id, path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.CSS_SELECTOR, f'#{elem_id} input[type=file]').send_keys(str(path))
    WebDriverWait(driver, 20).until(  # uploaded: the file is listed with its link
        lambda d: d.find_elements(By.CSS_SELECTOR, f'#{elem_id} a[data-testid=download-link]'))


def _image_sizes(driver, selector):
    """``[[width, height]]`` of the images ``selector`` finds, once there are some and all have loaded."""
    from selenium.webdriver.support.ui import WebDriverWait

    script = ('const images = [...document.querySelectorAll(arguments[0])];'
              'return images.length && images.every(i => i.complete && i.naturalWidth) ?'
              ' images.map(i => [i.naturalWidth, i.naturalHeight]) : null;')
    return WebDriverWait(driver, 20).until(lambda d: d.execute_script(script, selector))


def _click_run_and_read_status(driver, previous=''):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.CSS_SELECTOR, '#run').click()
    status = driver.find_element(By.CSS_SELECTOR, '#status textarea')
    WebDriverWait(driver, 30).until(lambda d: status.get_attribute('value') not in ('', previous))
    return status.get_attribute('value')


def test_the_served_page_in_a_real_browser(files, catalog, held_out, tmp_path):
    """demo.py in its own process on a free port; chromium uploads the built-in sample's held-out pair with its HR
    views, runs the tiny model and reads back what a person sees and downloads, and test.py's PSNR."""
    from browser import chromium
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from basicsr.models.archs.arch_util import build_named

    save_atomic({'params': build_named('NAFSSR-T', 4).state_dict()}, tmp_path / 'pretrained' / 'NAFSSR-T_4x.pth')
    port = _free_port()
    base = f'http://127.0.0.1:{port}'
    env = {**os.environ, 'GRADIO_TEMP_DIR': str(tmp_path / 'gradio')}
    proc = subprocess.Popen([sys.executable, str(REPO / 'demo.py'), '-opt', str(files['opt']), '--weights',
                             str(files['weights']), '--pretrained_dir', str(tmp_path / 'pretrained'), '--port',
                             str(port), '--device', 'cpu'], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    with reaped(proc), chromium() as browser:
        _wait_for_page(proc, base + '/')
        driver = browser.open(base + '/')
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, '#run'))
        assert driver.find_element(By.CSS_SELECTOR, '#model input').get_attribute('value') == 'tiny_x2.pth (x2)'
        paths, figures = held_out
        for elem_id, key in (('left_view', 'lr_L'), ('right_view', 'lr_R'), ('hr_left_view', 'hr_L'),
                             ('hr_right_view', 'hr_R')):
            _upload(driver, elem_id, paths[key])
        status = _click_run_and_read_status(driver)
        assert status.startswith('tiny_x2.pth (x2): 370x90 -> 740x180 (x2)'), status
        scores = driver.find_element(By.CSS_SELECTOR, '#metrics textarea').get_attribute('value')
        assert ('PSNR (dB): left ' in scores and f'(Left+Right)/2 {figures["psnr"]:.4f}, Left (64 columns cropped) '
                f'{figures["psnr_left"]:.4f}' in scores), scores  # test.py's figures, as metrics.txt prints them
        assert _image_sizes(driver, '#slider_left img') == [[740, 180], [740, 180]]  # bicubic | output
        links = driver.find_elements(By.CSS_SELECTOR, '#downloads a[data-testid=download-link]')
        assert [a.get_attribute('download') for a in links] == ['motorcycle_bottom_L.png', 'motorcycle_bottom_R.png']
        expected = _run(catalog, tmp_path, paths['lr_L'], paths['lr_R'], max_memory_gb=demo_app.DEFAULT_MEMORY_GB)
        for link, sr in zip(links, expected.sr):  # the downloads are the model's output, pixel for pixel
            with urllib.request.urlopen(link.get_attribute('href'), timeout=10) as response:
                np.testing.assert_array_equal(imfrombytes(response.read()), sr)
        driver.find_element(By.XPATH, "//button[@role='tab' and normalize-space()='Anaglyph']").click()
        assert _image_sizes(driver, '#anaglyph img') == [[740, 180]]
        assert browser.console_errors() == []
        assert all(url.startswith((base + '/', 'data:', 'blob:')) for url in browser.requested_urls()), \
            browser.requested_urls()

        driver = browser.open(base + '/')  # a fresh page: the x4 models, then one view and a text file
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, '#run'))
        assert [label.text for label in driver.find_elements(By.CSS_SELECTOR, '#scale label')] == ['x2', 'x4']
        driver.find_element(By.XPATH, "//*[@id='scale']//label[normalize-space()='x4']").click()
        model = driver.find_element(By.CSS_SELECTOR, '#model input')
        WebDriverWait(driver, 10).until(lambda d: model.get_attribute('value') == 'NAFSSR-T_x4')
        _upload(driver, 'left_view', files['moto_L.png'])
        status = _click_run_and_read_status(driver)
        assert status == 'only the left view was uploaded; upload the right view too (or one side-by-side image)'
        _upload(driver, 'right_view', files['notes.txt'])
        status = _click_run_and_read_status(driver, status)
        assert status == 'right view (notes.txt): cannot decode, expected a PNG/JPEG image (not an image or corrupt)'
        assert driver.find_elements(By.CSS_SELECTOR, '#slider_left img') == []
        assert 'Traceback' not in driver.page_source
        assert browser.console_errors() == []
