"""A preparation removes only what its own record says it made, and refuses before it writes anything.

Real reruns of ``prepare_test_sets.py`` (child processes) on a tiny raw Middlebury download made here, with a pair
folder of the user's among the prepared ones (issue 18, item 3), and the library's records on their own.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from basicsr.data import layout
from basicsr.data.preparation import (RECORD, PairSource, PreparationError, build_test_set, build_training_patches,
                                      find_pairs, remove_stale_tmp, write_record)
from basicsr.utils.img_util import imwrite
from basicsr.utils.matlab_functions import imresize
from helpers import ROOT

SCRIPT = os.path.join(ROOT, 'scripts', 'data_preparation', 'prepare_test_sets.py')
DEGRADATION = os.path.join(ROOT, 'options', 'degradations', 'realistic_x4.yml')


def _image(shape, seed):
    """A smooth random uint8 BGR image (up-sampled noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (shape[0] // 4 + 2, shape[1] // 4 + 2, 3), dtype=np.uint8)
    return np.ascontiguousarray(imresize(small, 4)[:shape[0], :shape[1]])


def _middlebury_raw(root, scenes=('Adirondack', 'Jadeplant', 'Motorcycle')):
    """Middlebury 2014's layout, ``<scene>/im0.png, im1.png``, with tiny images of odd sizes."""
    for i, scene in enumerate(scenes):
        for view in (0, 1):
            imwrite(_image((66, 101), 10 * i + view), os.path.join(root, scene, f'im{view}.png'))
    return root


def _snapshot(root):
    """Every file below ``root``: its bytes and modification time (a no-op rerun keeps both)."""
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, 'rb') as f:
                files[os.path.relpath(path, root)] = (f.read(), os.stat(path).st_mtime_ns)
    return files


def _prepare(*args):
    """A real run of the script, in a process of its own."""
    result = subprocess.run([sys.executable, SCRIPT, *args, '--workers', '1'], capture_output=True, text=True,
                            timeout=120)
    return result.returncode, result.stdout, result.stderr


def _prepare_here(monkeypatch, capsys, *args):
    """The same run in this process (quicker, for the steps that set up or follow a real rerun)."""
    from helpers import load_script

    monkeypatch.setattr(sys, 'argv', ['prepare_test_sets.py', *args, '--workers', '1'])
    with pytest.raises(SystemExit) as info:
        load_script('scripts/data_preparation/prepare_test_sets.py').main()
    out, err = capsys.readouterr()
    return info.value.code or 0, out, err


def _user_pair(out):
    """The user's own pair, added to the prepared set as the README suggests for iPASSR's folders."""
    for sub, stems, shape in (('hr', layout.HR_VIEWS, (64, 96)), ('lr_x4', layout.LR_VIEWS, (16, 24))):
        for k, stem in enumerate(stems):
            imwrite(_image(shape, 100 + k), layout.view_file(os.path.join(out, sub, 'my_own_pair'), stem))


def test_rerun_with_other_settings_refuses_before_touching_anything_and_replace_keeps_the_users_pair(
        tmp_path, monkeypatch, capsys):
    raw, out = _middlebury_raw(str(tmp_path / 'raw')), str(tmp_path / 'MB')
    first = ['middlebury', '--src', raw, '--out', out, '--degradation', DEGRADATION]
    code, stdout, err = _prepare_here(monkeypatch, capsys, *first, '--count', '3')
    assert code == 0, err
    made = _snapshot(out)
    assert sorted(os.listdir(os.path.join(out, 'lr_x4_realistic_x4'))) == [RECORD, 'Adirondack', 'Jadeplant',
                                                                          'Motorcycle']
    assert json.load(open(os.path.join(out, RECORD)))['scales'] == [2, 4]

    # the same settings again, a real run: nothing is written, not even the records
    code, stdout, err = _prepare(*first, '--count', '3')
    assert code == 0, err
    assert _snapshot(out) == made

    # the user's pair, then other settings in a real run: one line naming the folder, the recorded and the new
    # settings and the flag; nothing changed, the degraded views included
    _user_pair(out)
    before = _snapshot(out)
    code, stdout, err = _prepare(*first, '--count', '1')
    assert code == 2, stdout + err
    assert err.strip() == (f'prepare_test_sets.py: error: {out}: was prepared with other settings (pairs: recorded 3 '
                           '(Adirondack, Jadeplant, Motorcycle), now 1 (Adirondack)); rerun with --replace to remove '
                           f'the 9 folder(s) its record {RECORD} lists and prepare it again (nothing else there is '
                           'touched), or choose another output folder')
    assert 'removed' not in stdout
    assert _snapshot(out) == before

    # the same settings with the user's pair in hr/: the degraded views were made from other HR pairs
    code, stdout, err = _prepare_here(monkeypatch, capsys, *first, '--count', '3')
    assert code == 2 and err.strip() == (
        f'prepare_test_sets.py: error: {out}/lr_x4_realistic_x4: was prepared with other settings (pairs: recorded 3 '
        '(Adirondack, Jadeplant, Motorcycle), now 4 (Adirondack, Jadeplant, Motorcycle, ...)); rerun with --replace '
        f'to remove the 3 folder(s) its record {RECORD} lists and prepare it again (nothing else there is touched), '
        'or choose another output folder')
    assert _snapshot(out) == before

    # --replace: the recorded folders go, the user's pair stays byte-identical (and is degraded like the others)
    code, stdout, err = _prepare_here(monkeypatch, capsys, *first, '--count', '1', '--replace')
    assert code == 0, err
    after = _snapshot(out)
    for sub in ('hr', 'lr_x4'):
        assert sorted(os.listdir(os.path.join(out, sub))) == ['Adirondack', 'my_own_pair']
        for stem in ('hr0.png', 'hr1.png') if sub == 'hr' else ('lr0.png', 'lr1.png'):
            key = os.path.join(sub, 'my_own_pair', stem)
            assert after[key] == before[key]
    assert sorted(os.listdir(os.path.join(out, 'lr_x2'))) == ['Adirondack']
    assert sorted(os.listdir(os.path.join(out, 'lr_x4_realistic_x4'))) == [RECORD, 'Adirondack', 'my_own_pair']
    for key in made:  # what was remade is the same bytes (Adirondack is pair 0 before and after)
        if 'Adirondack' in key:
            assert after[key][0] == made[key][0], key
    removals = [line for line in stdout.splitlines() if 'removed' in line]
    assert len(removals) == 2 and all('my_own_pair' not in line for line in removals), stdout
    assert f'{out}: removed 9 folder(s) that its record lists' in removals[0]
    assert f'{out}/lr_x4_realistic_x4: removed 3 folder(s)' in removals[1]


def test_flickr1024_refuses_a_changed_test_split_before_it_writes_a_patch(tmp_path, monkeypatch, capsys):
    from helpers import load_script

    root = tmp_path / 'datasets'
    for split, name, shape in (('Train', '0001', (150, 400)), ('Validation', '0801', (42, 61)),
                               ('Test', '0901', (45, 66))):
        _write_pair(str(root / 'Flickr1024' / split), name, shape, int(name))

    def prepare(*flags):
        monkeypatch.setattr(sys, 'argv', ['prepare_flickr1024.py', '--root', str(root), '--workers', '1', *flags])
        with pytest.raises(SystemExit) as info:
            load_script('scripts/data_preparation/prepare_flickr1024.py').main()
        return info.value.code or 0, *capsys.readouterr()

    assert prepare()[0] == 0
    out = root / 'StereoSR'
    test_set = out / 'test' / 'Flickr1024'
    imwrite(_image((40, 60), 7), layout.view_file(str(test_set / 'hr' / 'mine'), 'hr0'))  # the user's
    (root / 'Flickr1024' / 'Test' / '0901_L.png').rename(root / 'Flickr1024' / 'Test' / '0902_L.png')
    (root / 'Flickr1024' / 'Test' / '0901_R.png').rename(root / 'Flickr1024' / 'Test' / '0902_R.png')
    victim = out / 'patches_x2' / '000003'  # as if an interrupted run had not written it yet
    for name in os.listdir(victim):
        os.remove(victim / name)
    victim.rmdir()
    before = _snapshot(str(out))
    code, stdout, err = prepare()
    assert code == 2 and err.strip() == (
        f'prepare_flickr1024.py: error: {test_set}: was prepared with other settings (pairs: recorded 1 (0901), now 1 '
        f'(0902)); rerun with --replace to remove the 3 folder(s) its record {RECORD} lists and prepare it again '
        '(nothing else there is touched), or choose another output folder')
    assert _snapshot(str(out)) == before  # the missing patch is not written either
    assert prepare('--replace')[0] == 0
    assert sorted(os.listdir(test_set / 'hr')) == ['0902', 'mine'] and victim.is_dir()
    after = _snapshot(str(out))
    assert all(after[k] == before[k] for k in before if '0901' not in k and 'test/Flickr1024/.sources.json' != k)


# ---------------------------------------------------------------------------------------- the library's records
def _write_pair(folder, name, shape, seed):
    for view in ('L', 'R'):
        imwrite(_image(shape, seed + (view == 'R')), os.path.join(folder, f'{name}_{view}.png'))


@pytest.fixture()
def raw_pairs(tmp_path):
    folder = str(tmp_path / 'raw')
    _write_pair(folder, '0001', (150, 400), 0)
    _write_pair(folder, '0002', (150, 401), 2)
    return find_pairs(folder)


def test_a_folder_under_a_name_it_would_write_is_refused_unless_it_holds_exactly_its_images(raw_pairs, tmp_path):
    root = str(tmp_path / 'set')
    build_test_set(raw_pairs, root, workers=1)
    os.remove(os.path.join(root, RECORD))  # a set made before records existed: adopted, as its images are ours
    build_test_set(raw_pairs, root, workers=1)
    assert os.path.isfile(os.path.join(root, RECORD))
    theirs = str(tmp_path / 'theirs')
    build_test_set(raw_pairs[:1], theirs, workers=1)
    os.remove(os.path.join(theirs, RECORD))
    hr = layout.view_file(os.path.join(theirs, 'hr', '0001'), 'hr0')
    imwrite(np.zeros((148, 400, 3), np.uint8), hr)  # another HR under the same name (iPASSR's, the user's)
    with open(hr, 'rb') as f:
        kept = f.read()
    with pytest.raises(PreparationError, match=rf'{theirs}/hr/0001: already there and not made by this preparation '
                                               rf'\({theirs}/{RECORD} does not list it\)'):
        build_test_set(raw_pairs, theirs, workers=1, replace=True)
    with open(hr, 'rb') as f:
        assert f.read() == kept
    assert not os.path.exists(os.path.join(theirs, 'hr', '0002'))


def test_a_pair_name_that_is_not_a_plain_folder_name_is_refused(raw_pairs, tmp_path):
    src = raw_pairs[0]
    with pytest.raises(PreparationError, match=r"pair name '\.\./outside' cannot be a folder name"):
        build_test_set([PairSource('../outside', src.left, src.right)], str(tmp_path / 'set'), workers=1)
    assert not os.path.exists(tmp_path / 'set') and not os.path.exists(tmp_path / 'outside')


def test_patches_replace_removes_only_the_recorded_patch_folders(raw_pairs, tmp_path, capsys):
    out = str(tmp_path / 'out')
    totals = build_training_patches(raw_pairs, out, scales=(4,), workers=1)
    pdir = layout.patches_dir(out, 4)
    mine = os.path.join(pdir, 'my_patches')
    os.makedirs(mine)
    extra = os.path.join(pdir, layout.patch_dir_name(totals[4] + 1))  # numbered like a patch, not in the record
    os.makedirs(extra)
    with pytest.raises(PreparationError, match=r'patches_x4: was prepared with other settings \(pairs: recorded 2 '
                                               r'\(0001, 0002\), now 1 \(0001\)\); rerun with --replace'):
        build_training_patches(raw_pairs[:1], out, scales=(4,), workers=1)
    assert build_training_patches(raw_pairs[:1], out, scales=(4,), workers=1, replace=True) == {4: 1}
    assert f'removed {totals[4]} folder(s)' in capsys.readouterr().out
    assert layout.list_pair_folders(pdir) == ['000001', layout.patch_dir_name(totals[4] + 1), 'my_patches']


def test_patches_without_a_record_over_existing_patch_folders_are_refused(raw_pairs, tmp_path):
    out = str(tmp_path / 'out')
    os.makedirs(os.path.join(layout.patches_dir(out, 4), '000001'))  # someone else's patches (iPASSR's release)
    with pytest.raises(PreparationError, match='000001: already there and not made by this preparation'):
        build_training_patches(raw_pairs, out, scales=(4,), workers=1)
    assert os.listdir(layout.patches_dir(out, 4)) == ['000001']


def test_only_the_temporary_folders_of_finished_runs_are_cleaned(tmp_path):
    folder = tmp_path / 'hr'
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True)
    for name in (f'{layout.TMP_PREFIX}0001-{dead.stdout.strip()}', f'{layout.TMP_PREFIX}0002-{os.getppid()}',
                 f'{layout.TMP_PREFIX}notes', 'pair'):
        (folder / name).mkdir(parents=True)
    remove_stale_tmp(str(folder))
    assert sorted(os.listdir(folder)) == [f'{layout.TMP_PREFIX}0002-{os.getppid()}', f'{layout.TMP_PREFIX}notes',
                                          'pair']


def test_a_record_that_cannot_be_written_leaves_the_old_one_and_no_temporary_file(tmp_path, monkeypatch):
    write_record(str(tmp_path), {'pairs': ['a']})

    def full_disk(*args, **kwargs):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(json, 'dump', full_disk)
    with pytest.raises(OSError):
        write_record(str(tmp_path), {'pairs': ['b']})
    assert os.listdir(tmp_path) == [RECORD]
    assert json.load(open(tmp_path / RECORD)) == {'pairs': ['a']}
