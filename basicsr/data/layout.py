"""The one place that knows the on-disk layout of stereo SR data (NAFSSR's, inherited from iPASSR).

Training patches: ``patches_x4/000001/{hr0,hr1,lr0,lr1}.png`` (0 = left view, 1 = right view).
Test and validation sets: ``test/<Set>/hr/<pair>/{hr0,hr1}.png`` and ``test/<Set>/lr_x4/<pair>/{lr0,lr1}.png``;
realistically degraded LR views beside them in ``test/<Set>/lr_x4_<tag>/<pair>/{lr0,lr1}.png``.
A dataset reads pair folders below a ``dataroot_gt`` (HR files) and a ``dataroot_lq`` (LR files); for patches
both roots are the same folder. In an LMDB the key of a file is ``<pair>/<stem>`` (``000001/lr0``).
"""
import os

HR_VIEWS = ('hr0', 'hr1')
LR_VIEWS = ('lr0', 'lr1')
IMG_EXT = '.png'
TMP_PREFIX = '.tmp-'  # half-written folders; never counted as data
LMDB_META = 'meta_info.txt'


def patch_dir_name(number):
    """Patch folders are numbered from 1 with six digits, as in iPASSR's MATLAB script."""
    return f'{number:06d}'


def patches_dir(root, scale):
    return os.path.join(root, f'patches_x{scale}')


def hr_dir(set_root):
    return os.path.join(set_root, 'hr')


def lr_dir(set_root, scale, tag=None):
    """``lr_x4`` (MATLAB bicubic), or ``lr_x4_<tag>`` for a fixed realistic degradation (``lr_x4_realistic_x4``)."""
    return os.path.join(set_root, f'lr_x{scale}' + (f'_{tag}' if tag else ''))


def view_file(folder, stem):
    return os.path.join(folder, stem + IMG_EXT)


def lmdb_key(pair, stem):
    return f'{pair}/{stem}'


def list_pair_folders(root):
    """Sorted names of the pair folders below ``root`` (hidden and temporary folders excluded)."""
    with os.scandir(root) as it:
        return sorted(e.name for e in it if e.is_dir() and not e.name.startswith('.'))
