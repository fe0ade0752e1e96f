"""Stereo photos in scripts/inference_stereo.py (basicsr/utils/stereo_photo.py): side-by-side images (full or half
width, parallel or cross-eyed), MPO files, folders of either, and the views / side-by-side / anaglyph outputs.

The photos are made here from the built-in Motorcycle pair (scikit-image's Middlebury views, tiny crops). A lossless
SBS image gives bit for bit the two-file result; a JPEG SBS or an MPO gives the two-file result of the views that
Pillow decodes from it."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from basicsr.utils import stereo_photo
from basicsr.utils.img_util import ImageReadError, imread, imwrite
from helpers import load_script, tiny_model_files

REPO = Path(__file__).resolve().parents[2]
NETWORK = {'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 2}
script = load_script('scripts/inference_stereo.py')


@pytest.fixture(scope='module')
def views():
    """(left, right) RGB crops of the Motorcycle pair, 24x40 each (the same rows: a rectified pair)."""
    from skimage import data

    left, right, _ = data.stereo_motorcycle()
    return np.ascontiguousarray(left[200:224, 300:340]), np.ascontiguousarray(right[200:224, 300:340])


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    """A tiny random NAFSSR x2 (weights as safetensors) and its option file."""
    root = tmp_path_factory.mktemp('photo_model')
    _, _, opt = tiny_model_files(root, NETWORK, 'tiny_x2.safetensors')
    return str(opt)


def _run(model, out, *inputs):
    written = script.run([*inputs, '--output', str(out), '-opt', model])
    return [imread(p) for p in written]


def _two_file(model, tmp_path, left_rgb, right_rgb, tag='ref'):
    """The result of the two-file path for RGB views (written as PNG files)."""
    folder = tmp_path / tag
    folder.mkdir()
    for view, rgb in (('L', left_rgb), ('R', right_rgb)):
        Image.fromarray(np.ascontiguousarray(rgb)).save(folder / f'p_{view}.png')
    return _run(model, folder / 'out', '--left', str(folder / 'p_L.png'), '--right', str(folder / 'p_R.png'))


@pytest.mark.parametrize('order', ['LR', 'RL'])
def test_png_side_by_side_is_bit_identical_to_the_two_files(model, views, tmp_path, order):
    left, right = views
    sbs = tmp_path / 'photo.png'
    Image.fromarray(np.concatenate([left, right] if order == 'LR' else [right, left], axis=1)).save(sbs)
    got = _run(model, tmp_path / 'out', '--sbs', str(sbs), '--sbs_order', order)
    expected = _two_file(model, tmp_path, left, right)
    assert len(got) == 2 and got[0].shape == (48, 80, 3)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))
    assert sorted(os.listdir(tmp_path / 'out')) == ['photo_L.png', 'photo_R.png']


def test_jpeg_side_by_side_and_mpo_equal_the_two_files_of_their_decoded_views(model, views, tmp_path):
    left, right = views
    sbs, mpo = tmp_path / 'photo.jpg', tmp_path / 'camera.mpo'
    Image.fromarray(np.concatenate([left, right], axis=1)).save(sbs, quality=90)
    Image.fromarray(left).save(mpo, 'MPO', save_all=True, append_images=[Image.fromarray(right)])
    decoded = np.asarray(Image.open(sbs).convert('RGB'))
    expected = _two_file(model, tmp_path, decoded[:, :40], decoded[:, 40:], 'sbs_ref')
    assert all(np.array_equal(a, b) for a, b in zip(_run(model, tmp_path / 'o1', '--sbs', str(sbs)), expected))
    with Image.open(mpo) as img:
        frames = [np.asarray(img.convert('RGB'))]
        img.seek(1)
        frames.append(np.asarray(img.convert('RGB')))
    assert not np.array_equal(frames[0], frames[1])
    expected = _two_file(model, tmp_path, *frames, 'mpo_ref')
    assert all(np.array_equal(a, b) for a, b in zip(_run(model, tmp_path / 'o2', '--mpo', str(mpo)), expected))


def test_half_width_views_are_stretched_back_after_super_resolution(model, views, tmp_path):
    import cv2

    left, right = views
    squeezed = [cv2.resize(v, (20, 24), interpolation=cv2.INTER_AREA) for v in (left, right)]
    sbs = tmp_path / 'half.png'
    Image.fromarray(np.concatenate(squeezed, axis=1)).save(sbs)
    got = _run(model, tmp_path / 'out', '--sbs', str(sbs), '--sbs_width', 'half')
    expected = [cv2.resize(v, (80, 48), interpolation=cv2.INTER_CUBIC)
                for v in _two_file(model, tmp_path, *squeezed)]
    assert got[0].shape == (48, 80, 3)  # x2 of the scene's 24x40, not of the squeezed 24x20
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))


def test_sbs_and_anaglyph_outputs(model, views, tmp_path):
    left, right = views
    Image.fromarray(np.concatenate([left, right], axis=1)).save(tmp_path / 'p.png')
    sr_left, sr_right = _run(model, tmp_path / 'views', '--sbs', str(tmp_path / 'p.png'))
    sbs, = _run(model, tmp_path / 'sbs', '--sbs', str(tmp_path / 'p.png'), '--output_format', 'sbs')
    assert np.array_equal(sbs, np.concatenate([sr_left, sr_right], axis=1))
    Image.fromarray(np.concatenate([right, left], axis=1)).save(tmp_path / 'cross.png')
    cross, = _run(model, tmp_path / 'cross', '--sbs', str(tmp_path / 'cross.png'), '--output_format', 'sbs',
                  '--sbs_order', 'RL')  # a cross-eyed photo comes out cross-eyed
    assert np.array_equal(cross, np.concatenate([sr_right, sr_left], axis=1))
    anaglyph, = _run(model, tmp_path / 'ana', '--sbs', str(tmp_path / 'p.png'), '--output_format', 'anaglyph')
    assert os.listdir(tmp_path / 'ana') == ['p_anaglyph.png']
    assert np.array_equal(anaglyph[..., 2], sr_left[..., 2])  # BGR: red from the left view
    assert np.array_equal(anaglyph[..., :2], sr_right[..., :2])  # green and blue from the right


def test_exif_orientation_is_applied_before_the_views_are_split(model, views, tmp_path):
    left, right = views
    upright = np.concatenate([left[:23], right[:23]], axis=1)  # 80x23: stored turned, it is 23 pixels wide
    Image.fromarray(upright).save(tmp_path / 'upright.png')
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": stored turned counter-clockwise
    Image.fromarray(np.ascontiguousarray(np.rot90(upright))).save(tmp_path / 'turned.png', exif=exif)
    assert stereo_photo.probe(tmp_path / 'turned.png', 'sbs') == (40, 23)
    got = _run(model, tmp_path / 'o1', '--sbs', str(tmp_path / 'turned.png'))
    expected = _run(model, tmp_path / 'o2', '--sbs', str(tmp_path / 'upright.png'))
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))
    Image.fromarray(np.ascontiguousarray(np.rot90(left))).save(
        tmp_path / 'turned.mpo', 'MPO', save_all=True, append_images=[Image.fromarray(np.rot90(right).copy())],
        exif=exif)
    assert [v.shape for v in stereo_photo.read_mpo(tmp_path / 'turned.mpo')] == [(24, 40, 3), (24, 40, 3)]


@pytest.mark.parametrize('orientation', [6, 8])
def test_a_portrait_jpeg_pair_comes_out_as_its_upright_pair_through_the_sbs_path(model, views, tmp_path,
                                                                                  orientation):
    """A phone held in portrait stores each view turned, with an EXIF orientation tag. The two-file path (and a
    folder of pairs) gives the result of the upright views: those Pillow shows, put side by side in a PNG and read
    through --sbs."""
    exif = Image.Exif()
    exif[0x0112] = orientation  # 6: "turn 90 degrees clockwise to display", 8: counter-clockwise
    turn = 1 if orientation == 6 else -1
    folder = tmp_path / 'phone'
    folder.mkdir()
    upright = []
    for tag, view in zip('LR', views):
        path = folder / f'portrait_{tag}.jpg'
        Image.fromarray(np.ascontiguousarray(np.rot90(view, turn))).save(path, quality=92, exif=exif)
        with Image.open(path) as img:
            upright.append(np.asarray(ImageOps.exif_transpose(img).convert('RGB')))
    assert upright[0].shape == (24, 40, 3)
    Image.fromarray(np.concatenate(upright, axis=1)).save(tmp_path / 'upright_sbs.png')
    expected = _run(model, tmp_path / 'sbs', '--sbs', str(tmp_path / 'upright_sbs.png'))
    got = _run(model, tmp_path / 'two', '--left', str(folder / 'portrait_L.jpg'), '--right',
               str(folder / 'portrait_R.jpg'))
    assert [a.shape for a in got] == [(48, 80, 3)] * 2
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))
    in_folder = _run(model, tmp_path / 'folder', '--input_dir', str(folder))
    assert all(np.array_equal(a, b) for a, b in zip(in_folder, expected))


def test_a_16_bit_side_by_side_png_is_read_as_two_16_bit_view_files(model, views, tmp_path, capsys):
    """The SBS path reads its image as the two-file path reads a view: 16 bits rounded to 8, with the same note."""
    import cv2

    deep = [np.ascontiguousarray(v[..., ::-1]).astype(np.uint16) * 257 + 128 for v in views]
    for tag, view in zip('LR', deep):
        cv2.imwrite(str(tmp_path / f'deep_{tag}.png'), view)
    cv2.imwrite(str(tmp_path / 'deep_sbs.png'), np.concatenate(deep, axis=1))
    expected = _run(model, tmp_path / 'two', '--left', str(tmp_path / 'deep_L.png'), '--right',
                    str(tmp_path / 'deep_R.png'))
    assert capsys.readouterr().err.count('16-bit image converted to 8 bits per channel') == 2
    got = _run(model, tmp_path / 'sbs', '--sbs', str(tmp_path / 'deep_sbs.png'))
    assert f'note: {tmp_path / "deep_sbs.png"}: 16-bit image converted to 8 bits' in capsys.readouterr().err
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))


def _one_image_mpo(path, views):
    """A real MPO file whose MP index says it holds one image (as a camera writing one frame would)."""
    Image.fromarray(views[0]).save(path, 'MPO', save_all=True, append_images=[Image.fromarray(views[1])])
    data = path.read_bytes()
    mpf = data.index(b'MPF\x00')
    order = 'big' if data[mpf + 4:mpf + 6] == b'MM' else 'little'
    entry = data.index((0xB001).to_bytes(2, order), mpf)  # NumberOfImages: tag, type, count, value
    path.write_bytes(data[:entry + 8] + (1).to_bytes(4, order) + data[entry + 12:])


def test_bad_photos_are_one_line_naming_the_file_before_any_work(views, tmp_path):
    """The model flags name a checkpoint that does not exist: an error about it would mean that work had begun."""
    left, right = views
    no_model = ['--arch', 'NAFSSR-T', '--scale', '2', '--weights', str(tmp_path / 'no_such_weights.pth')]
    odd = tmp_path / 'odd.png'
    Image.fromarray(np.concatenate([left, right[:, 1:]], axis=1)).save(odd)
    one = tmp_path / 'one.mpo'
    _one_image_mpo(one, views)
    plain = tmp_path / 'plain.jpg'
    Image.fromarray(left).save(plain)
    unequal = tmp_path / 'unequal.mpo'
    Image.fromarray(left).save(unequal, 'MPO', save_all=True, append_images=[Image.fromarray(right[:, :38])])
    cases = [
        (['--sbs', str(odd)], f'{odd}: side-by-side image of odd width 79; expected two views of the same width next '
                              'to each other (an even width)'),
        (['--mpo', str(one)], f'{one}: an MPO file with one image, expected two (the left and right views)'),
        (['--mpo', str(plain)], f'{plain}: not an MPO file (a JPEG with one image); expected the two-image MPO of a '
                                'stereo camera (a side-by-side image goes with --sbs)'),
        (['--mpo', str(odd)], f'{odd}: not an MPO file (a PNG image); expected the two-image MPO of a stereo camera '
                              '(a side-by-side image goes with --sbs)'),
        (['--mpo', str(unequal)], f'{unequal}: its second image (right view) is 38x24 but its first (left view) '
                                  '40x24 (width x height); the two views of a stereo pair must have the same size'),
    ]
    for argv, message in cases:
        with pytest.raises(ImageReadError) as err:
            script.run([*argv, '--output', str(tmp_path / 'out'), *no_model])
        assert str(err.value) == message
    folder = tmp_path / 'camera'  # a good file first, then a bad one: refused before the first is computed
    folder.mkdir()
    Image.fromarray(left).save(folder / 'a.mpo', 'MPO', save_all=True, append_images=[Image.fromarray(right)])
    _one_image_mpo(folder / 'b.mpo', views)
    with pytest.raises(ImageReadError, match=f'^{folder / "b.mpo"}: an MPO file with one image'):
        script.run(['--mpo', str(folder), '--output', str(tmp_path / 'out'), *no_model])
    assert not (tmp_path / 'out').exists()


def test_a_jpeg_given_as_mpo_exits_2_with_one_line(views, tmp_path):
    plain = tmp_path / 'plain.jpg'
    Image.fromarray(views[0]).save(plain)
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(REPO))
    env.pop('STEREO_SR_TRACEBACK', None)
    result = subprocess.run([sys.executable, str(REPO / 'scripts' / 'inference_stereo.py'), '--mpo', str(plain),
                             '--output', str(tmp_path / 'out'), '--arch', 'NAFSSR-T', '--scale', '2', '--weights',
                             str(tmp_path / 'none.pth')], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [f'inference_stereo.py: error: {plain}: not an MPO file (a JPEG '
                                                  'with one image); expected the two-image MPO of a stereo camera '
                                                  '(a side-by-side image goes with --sbs)']
    assert not (tmp_path / 'out').exists()


def test_sbs_width_without_sbs_and_two_inputs_are_usage_errors(views, tmp_path, capsys):
    imwrite(views[0], tmp_path / 'x.png')
    for argv in (['--mpo', str(tmp_path / 'x.png'), '--sbs_width', 'half'],
                 ['--mpo', str(tmp_path / 'x.png'), '--sbs', str(tmp_path / 'x.png')]):
        with pytest.raises(SystemExit) as err:
            script.parse_args([*argv, '--output', str(tmp_path / 'out')])
        assert err.value.code == 2
    err = capsys.readouterr().err
    assert '--sbs_width describes an --sbs input' in err and 'give one input: --left and --right, --input_dir' in err


def test_name_is_for_one_photo(views, tmp_path):
    folder = tmp_path / 'photos'
    folder.mkdir()
    for stem in 'ab':
        Image.fromarray(np.concatenate(views, axis=1)).save(folder / f'{stem}.png')
    with pytest.raises(script.InputError, match=f'^--name names the result of one photo, but the --sbs folder '
                                                f'{folder} holds 2$'):
        script.run(['--sbs', str(folder), '--name', 'x', '--output', str(tmp_path / 'out'), '--arch', 'NAFSSR-T',
                    '--scale', '2', '--weights', str(tmp_path / 'none.pth')])
    assert not (tmp_path / 'out').exists()
