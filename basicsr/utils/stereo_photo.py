"""Stereo photos as cameras and phones save them, and the pictures made from a super-resolved pair.

Read (views are ``uint8`` HWC BGR, upright: the EXIF orientation is applied first):

- a side-by-side (SBS) image: the two views next to each other. ``order`` ``'LR'`` is parallel viewing (the left
  view on the left), ``'RL'`` cross-eyed viewing (the left view on the right). ``width`` ``'full'``: each half is a
  view at its own aspect; ``'half'`` (3D TVs' half-width SBS): each view was squeezed to half its width. Half-width
  views are super-resolved as they are stored (the network sees only real pixels), and the results are then
  stretched back to twice their width with bicubic interpolation (``unsqueeze``), so the outputs have the scene's
  aspect. The image is read by ``img_util.imread``, the reader of two separate view files, so an SBS image and its
  two halves saved as files give the same views.
- an MPO file (CIPA DC-007 Multi-Picture Object, what stereo cameras write): its first image is the left view, its
  second the right; further images are ignored. Its frames are read with Pillow (OpenCV reads only the first), each
  with its own EXIF orientation applied by ``ImageOps.exif_transpose``.

Written: the two views as separate files, side by side (full width, in ``order``), or a red-cyan anaglyph (red
channel from the left view, green and blue from the right; for red-left glasses).

Every refusal is one ``ImageReadError`` line naming the file, and ``probe`` finds them from the file headers, so a
caller checks a whole folder before any compute.
"""
import os

import cv2
import numpy as np

from basicsr.utils.img_util import ImageReadError, imread

SBS_ORDERS = ('LR', 'RL')
SBS_WIDTHS = ('full', 'half')
OUTPUT_FORMATS = ('views', 'sbs', 'anaglyph')
KINDS = ('sbs', 'mpo')
MPO_EXTENSIONS = ('.mpo', '.jpg', '.jpeg')
SBS_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pnm', '.jp2')
_EXIF_ORIENTATION = 0x0112
_TURNED = (5, 6, 7, 8)  # orientations that swap width and height
_COLOUR_MODES = ('RGB', 'RGBA', 'RGBX', 'P', 'PA', 'CMYK', 'YCbCr', 'LAB', 'HSV')


def _open(path):
    """The Pillow image of ``path`` (header only until pixels are asked for); one line when it is no image."""
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except FileNotFoundError:
        raise ImageReadError(f'{path}: no such file', 'unreadable') from None
    except (UnidentifiedImageError, OSError) as err:
        raise ImageReadError(f'{path}: cannot read it as an image ({err})', 'undecodable') from None


def _oriented_size(img):
    """``(width, height)`` of the current frame once its EXIF orientation is applied."""
    width, height = img.size
    return (height, width) if img.getexif().get(_EXIF_ORIENTATION) in _TURNED else (width, height)


def _pixels(img, path):
    """The current frame, EXIF orientation applied, as ``uint8`` HWC BGR (alpha dropped, as ``imread`` does)."""
    from PIL import ImageOps

    if img.mode not in _COLOUR_MODES:
        raise ImageReadError(f'{path}: {img.mode} image (grey-scale or more than 8 bits per channel), expected an '
                             '8-bit colour image (refused: convert it to RGB first)', 'grey')
    try:
        oriented = ImageOps.exif_transpose(img)
        rgb = np.asarray(oriented.convert('RGB'))
    except OSError as err:  # truncated or corrupt image data
        raise ImageReadError(f'{path}: cannot decode the image ({err})', 'truncated') from None
    return np.ascontiguousarray(rgb[..., ::-1])


def _check_mpo(img, path):
    """Refuse anything but an MPO file with two images or more (the first two are the views)."""
    if img.format != 'MPO':
        if img.format == 'JPEG' and 'mp' in img.info:
            raise ImageReadError(f'{path}: an MPO file with one image, expected two (the left and right views)',
                                 'mpo')
        what = 'a JPEG with one image' if img.format == 'JPEG' else f'a {img.format or "non-MPO"} image'
        raise ImageReadError(f'{path}: not an MPO file ({what}); expected the two-image MPO of a stereo camera '
                             '(a side-by-side image goes with --sbs)', 'mpo')
    entries = (getattr(img, 'mpinfo', None) or {}).get(0xB002) or []
    second = str(entries[1].get('Attribute', {}).get('MPType', '')) if len(entries) > 1 else ''
    if 'Thumbnail' in second:  # phones store a preview as the second image: not a view
        raise ImageReadError(f'{path}: its second image is a {second}, not a second view; expected the MPO of a '
                             'stereo camera (two views)', 'mpo')
    sizes = []
    for frame in (0, 1):
        img.seek(frame)
        sizes.append(_oriented_size(img))
    img.seek(0)
    if sizes[0] != sizes[1]:
        (lw, lh), (rw, rh) = sizes
        raise ImageReadError(f'{path}: its second image (right view) is {rw}x{rh} but its first (left view) '
                             f'{lw}x{lh} (width x height); the two views of a stereo pair must have the same size',
                             'size')
    return sizes[0]


def _check_sbs_width(full_w, path):
    if full_w % 2:
        raise ImageReadError(f'{path}: side-by-side image of odd width {full_w}; expected two views of the same '
                             'width next to each other (an even width)', 'size')


def _check_sbs(img, path, width):
    full_w, h = _oriented_size(img)
    _check_sbs_width(full_w, path)
    return (full_w // 2 if width == 'full' else full_w), h


def probe(path, kind, width='full'):
    """``(width, height)`` of each view of the stereo photo ``path`` (``kind`` ``'sbs'`` or ``'mpo'``) after the EXIF
    orientation, read from the headers only (``width='half'``: the view's width once un-squeezed); one
    ``ImageReadError`` line for a file that cannot be one (an SBS image of odd width, an MPO with one image, a JPEG
    that is not MPO, views of different sizes)."""
    with _open(path) as img:
        return _check_mpo(img, path) if kind == 'mpo' else _check_sbs(img, path, width)


def read_sbs(path, order='LR', width='full', read=imread):
    """``(left, right)`` ``uint8`` HWC BGR views of a side-by-side image (``order``: ``'LR'`` parallel, ``'RL'``
    cross-eyed). With ``width='half'`` the views are returned as stored, squeezed: ``unsqueeze`` their results.
    ``read``: the reader of the image file, ``img_util.imread`` or a caller's wrapper of it (the same for the
    two-file path, e.g. to convert 16-bit images with a note)."""
    both = read(path)
    _check_sbs_width(both.shape[1], path)
    half = both.shape[1] // 2
    first, second = np.ascontiguousarray(both[:, :half]), np.ascontiguousarray(both[:, half:])
    return (first, second) if order == 'LR' else (second, first)


def read_mpo(path):
    """``(left, right)`` ``uint8`` HWC BGR views of an MPO file: its first and second images, each with its own EXIF
    orientation."""
    with _open(path) as img:
        _check_mpo(img, path)
        views = []
        for frame in (0, 1):
            img.seek(frame)
            views.append(_pixels(img, path))
    return tuple(views)


def read_stereo_photo(path, kind, order='LR', width='full', read=imread):
    """``(left, right)`` of a stereo photo of ``kind`` ``'sbs'`` or ``'mpo'`` (see ``read_sbs``, ``read_mpo``)."""
    return read_mpo(path) if kind == 'mpo' else read_sbs(path, order, width, read)


def find_stereo_photos(folder, kind):
    """The stereo photo files of ``kind`` in ``folder``, sorted: ``.mpo``/``.jpg``/``.jpeg`` for MPO files, image
    extensions for SBS images (other files are skipped)."""
    extensions = MPO_EXTENSIONS if kind == 'mpo' else SBS_EXTENSIONS
    return [os.path.join(folder, n) for n in sorted(os.listdir(folder))
            if os.path.splitext(n)[1].lower() in extensions and os.path.isfile(os.path.join(folder, n))]


def unsqueeze(view):
    """A view of a half-width SBS image stretched back to twice its width (bicubic), i.e. to the scene's aspect."""
    height, width = view.shape[:2]
    return cv2.resize(view, (2 * width, height), interpolation=cv2.INTER_CUBIC)


def side_by_side(left, right, order='LR'):
    """The two views next to each other: ``'LR'`` for parallel viewing, ``'RL'`` for cross-eyed viewing."""
    return np.concatenate([left, right] if order == 'LR' else [right, left], axis=1)


def anaglyph(left, right):
    """Red-cyan anaglyph of BGR views: the red channel of the left view, green and blue of the right."""
    out = right.copy()
    out[..., 2] = left[..., 2]
    return out


def output_files(name, output_format):
    """The file names ``output_images`` writes for the pair ``name``."""
    return {'views': [f'{name}_L.png', f'{name}_R.png'], 'sbs': [f'{name}_sbs.png'],
            'anaglyph': [f'{name}_anaglyph.png']}[output_format]


def output_images(name, left, right, output_format, order='LR'):
    """``{file name: BGR image}`` of a super-resolved pair in ``output_format`` (``OUTPUT_FORMATS``)."""
    images = {'views': lambda: [left, right], 'sbs': lambda: [side_by_side(left, right, order)],
              'anaglyph': lambda: [anaglyph(left, right)]}[output_format]()
    return dict(zip(output_files(name, output_format), images))
