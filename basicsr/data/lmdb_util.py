"""Pack folders of stereo pair folders into LMDB (the bytes of each PNG, unchanged) for fast training reads.

An LMDB made here is a folder ``<name>.lmdb/`` with ``data.mdb``, ``lock.mdb`` and ``meta_info.txt``; the key of
``<src>/<pair>/<stem>.png`` is ``<pair>/<stem>`` (``000001/lr0``) and ``meta_info.txt`` has one line per key,
``000001/lr0 (30,90,3) png``, in key order. The folder is built under a temporary name and renamed at the end, so
an interrupted run leaves no half-built LMDB behind.
"""
import os
import shutil
import struct

from tqdm import tqdm

from basicsr.data import layout
from basicsr.data.preparation import PreparationError

_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # PNG colour type -> channels after decoding


def png_shape(content, path):
    """(h, w, c) of PNG bytes from the header; one-line error naming ``path`` for anything else."""
    if content[:8] != b'\x89PNG\r\n\x1a\n' or content[12:16] != b'IHDR':
        raise PreparationError(f'{path}: not a PNG file; expected the PNGs written by the preparation scripts')
    width, height = struct.unpack('>II', content[16:24])
    return height, width, _PNG_CHANNELS.get(content[25], 3)


def list_images(src_root):
    """Sorted ``(key, path)`` of every ``<pair>/<stem>.png`` below ``src_root``."""
    if not os.path.isdir(src_root):
        raise PreparationError(f'{src_root}: no such folder; expected a folder of pair folders (e.g. patches_x4, hr)')
    items = []
    for pair in layout.list_pair_folders(src_root):
        folder = os.path.join(src_root, pair)
        for fname in sorted(os.listdir(folder)):
            if fname.endswith(layout.IMG_EXT) and not fname.startswith('.'):
                items.append((layout.lmdb_key(pair, fname[:-len(layout.IMG_EXT)]), os.path.join(folder, fname)))
    if not items:
        raise PreparationError(f'{src_root}: no <pair>/<view>.png files found; expected a folder of pair folders')
    return items


def make_lmdb_from_folder(src_root, lmdb_path, overwrite=False, commit_every=2000, show_progress=True):
    """Pack every ``<pair>/<stem>.png`` of ``src_root`` into the LMDB folder ``lmdb_path``; returns the key count."""
    import lmdb

    if os.path.exists(lmdb_path):
        if not overwrite:
            raise PreparationError(f'{lmdb_path}: already exists; expected a new path (or pass --overwrite)')
    items = list_images(src_root)
    total_bytes = sum(os.path.getsize(path) for _, path in items)
    tmp = f'{lmdb_path.rstrip(os.sep)}.tmp{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.dirname(os.path.abspath(tmp)), exist_ok=True)
    env = lmdb.open(tmp, map_size=int(total_bytes * 1.5) + (64 << 20), subdir=True, meminit=False,
                    map_async=True)
    meta = []
    txn = env.begin(write=True)
    try:
        for i, (key, path) in enumerate(tqdm(items, desc=os.path.basename(lmdb_path), unit='img',
                                             disable=not show_progress)):
            with open(path, 'rb') as f:
                content = f.read()
            h, w, c = png_shape(content, path)
            txn.put(key.encode('ascii'), content)
            meta.append(f'{key} ({h},{w},{c}) png\n')
            if (i + 1) % commit_every == 0:
                txn.commit()
                txn = env.begin(write=True)
        txn.commit()
    except BaseException:
        txn.abort()
        env.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    env.sync()
    env.close()
    with open(os.path.join(tmp, layout.LMDB_META), 'w', encoding='utf-8') as f:
        f.writelines(meta)
    if os.path.exists(lmdb_path):
        shutil.rmtree(lmdb_path)
    os.rename(tmp, lmdb_path)
    return len(items)
