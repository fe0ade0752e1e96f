"""img_util.imread / imfrombytes, the one image reader: the EXIF orientation is applied (a phone's portrait photo
comes out upright, as Pillow's ``ImageOps.exif_transpose`` shows it), and a file without an orientation tag is
decoded exactly as before (OpenCV's IMREAD_UNCHANGED, alpha dropped, 16-bit rounded to 8 bits).

The images are small crops of the built-in Motorcycle pair (scikit-image's Middlebury view), written here."""
import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from basicsr.utils.img_util import ImageReadError, imfrombytes, imread

ORIENTATION = 0x0112


@pytest.fixture(scope='module')
def rgb():
    """A 24x40 RGB crop of the Motorcycle left view (width != height, so a turn shows in the shape)."""
    from skimage import data

    return np.ascontiguousarray(data.stereo_motorcycle()[0][200:224, 300:340])


def _saved(array, fmt, orientation=None, **kwargs):
    exif = Image.Exif()
    if orientation is not None:
        exif[ORIENTATION] = orientation
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt, exif=exif, **kwargs)
    return buf.getvalue()


@pytest.mark.parametrize('fmt', ['JPEG', 'PNG', 'WEBP'])
@pytest.mark.parametrize('orientation', range(1, 9))
def test_the_exif_orientation_is_applied_as_pillow_shows_the_image(rgb, fmt, orientation):
    content = _saved(rgb, fmt, orientation, **({'lossless': True} if fmt == 'WEBP' else {}))
    with Image.open(io.BytesIO(content)) as img:
        assert img.getexif()[ORIENTATION] == orientation
        upright = np.asarray(ImageOps.exif_transpose(img).convert('RGB'))[..., ::-1]
    got = imfrombytes(content, 'phone.jpg')
    assert got.shape == upright.shape == ((40, 24, 3) if orientation > 4 else (24, 40, 3))
    np.testing.assert_array_equal(got, upright)


def _png_chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def test_a_16_bit_png_with_an_orientation_tag_is_turned_and_rounded(rgb, tmp_path):
    """Pillow cannot write 16-bit colour PNGs: OpenCV writes one and an eXIf chunk (orientation 6, "turn 90 degrees
    clockwise to display") goes in before its pixels."""
    deep = rgb[..., ::-1].astype(np.uint16) * 257 + np.arange(24 * 40 * 3, dtype=np.uint16).reshape(rgb.shape) % 200
    png = cv2.imencode('.png', deep)[1].tobytes()
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    idat = png.index(b'IDAT') - 4
    tiff = exif.tobytes().removeprefix(b'Exif\x00\x00')  # an eXIf chunk holds the TIFF structure alone
    (tmp_path / 'deep.png').write_bytes(png[:idat] + _png_chunk(b'eXIf', tiff) + png[idat:])
    with pytest.raises(ImageReadError) as err:
        imread(tmp_path / 'deep.png')
    assert err.value.reason == '16bit'
    got = imread(tmp_path / 'deep.png', allow_16bit=True)
    turned = np.rot90(deep, k=-1)  # clockwise
    np.testing.assert_array_equal(got, np.round(turned / 257.0).astype(np.uint8))


def _kinds(rgb):
    """``{name: PNG bytes}`` without EXIF: what users and our own writers save."""
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    alpha = np.dstack([bgr, np.linspace(0, 255, bgr.shape[1], dtype=np.uint8)[None].repeat(bgr.shape[0], 0)])
    palette = Image.fromarray(rgb).convert('P')
    plain, transparent = io.BytesIO(), io.BytesIO()
    palette.save(plain, 'PNG')
    palette.save(transparent, 'PNG', transparency=3)
    return {'8-bit': cv2.imencode('.png', bgr)[1].tobytes(), 'alpha': cv2.imencode('.png', alpha)[1].tobytes(),
            'palette': plain.getvalue(), 'palette+tRNS': transparent.getvalue(),
            'grey+alpha': _saved(np.asarray(Image.fromarray(rgb).convert('LA')), 'PNG'),
            '16-bit': cv2.imencode('.png', bgr.astype(np.uint16) * 300)[1].tobytes(),
            '16-bit alpha': cv2.imencode('.png', alpha.astype(np.uint16) * 257)[1].tobytes()}


def test_a_png_without_exif_is_decoded_as_opencv_stores_it(rgb):
    """The pixels of every PNG without an orientation tag are those of IMREAD_UNCHANGED (the decoding before EXIF
    was read), alpha dropped and 16 bits rounded: training data, results and references read as they always did."""
    for name, content in _kinds(rgb).items():
        stored = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_UNCHANGED)[..., :3]
        if stored.dtype == np.uint16:
            stored = np.round(stored.astype(np.float64) / 257.0).astype(np.uint8)
        np.testing.assert_array_equal(imfrombytes(content, name, allow_16bit=True), stored, err_msg=name)
