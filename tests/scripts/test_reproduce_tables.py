"""scripts/reproduce_tables.py with a tiny network checkpoint and a tiny test set made here (2 random pairs, HR
16x96 so that the Left figures have columns left after their 64-column crop, LR by MATLAB bicubic), and a
published table replaced by the test.

The expected figures are computed here without the script (imread, the network, basicsr.metrics); the script's
measurements must equal them, and its exit status must follow the tolerance (0.01 dB PSNR, 0.001 SSIM).
"""
import dataclasses
import errno
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from basicsr import zoo
from basicsr.metrics import calculate_psnr, calculate_psnr_left, calculate_skimage_ssim, calculate_skimage_ssim_left
from basicsr.models.archs import complexity
from basicsr.models.archs.nafssr_arch import NAFSSR
from basicsr.utils.img_util import img2tensor, imread, imwrite, tensor2img
from basicsr.utils.matlab_functions import imresize
from basicsr.utils.options import yaml_load
from helpers import ROOT, load_script, run

script = load_script('scripts/reproduce_tables.py')

OPTION = """name: {name}
scale: {scale}
datasets:
  test0:
    name: Tiny
    type: PairedStereoImageDataset
    dataroot_gt: somewhere/hr
    dataroot_lq: somewhere/lr_x{scale}
network_g: {{type: NAFSSR, up_scale: {scale}, width: 8, num_blks: 1}}
path:
  pretrain_network_g: experiments/pretrained_models/{file}
"""


def _tiny_net(scale):
    torch.manual_seed(scale)
    return NAFSSR(up_scale=scale, width=8, num_blks=1).eval()


@pytest.fixture(scope='module')
def test_root(tmp_path_factory):
    """``<root>/Tiny/{hr,lr_x2,lr_x4}/{pair_a,pair_b}/``: random HR views of 16x96 and their bicubic LR."""
    root = tmp_path_factory.mktemp('tiny_sets')
    rng = np.random.default_rng(11)
    for pair in ('pair_a', 'pair_b'):
        for view in '01':
            hr = rng.integers(0, 256, (16, 96, 3), dtype=np.uint8)
            imwrite(hr, os.path.join(root, 'Tiny', 'hr', pair, f'hr{view}.png'))
            for scale in (2, 4):
                imwrite(imresize(hr, 1 / scale), os.path.join(root, 'Tiny', f'lr_x{scale}', pair, f'lr{view}.png'))
    return str(root)


def _model(name, scale, file, option):
    return zoo.ZooModel(name, 'TINY', scale, None, zoo.Weights(file=file), 'nobody/tiny', str(option))


@pytest.fixture
def setup(tmp_path, test_root, monkeypatch):
    """Options for TINY-T_x4 (weights here) and TINY-T_x2 (weights absent); a zoo model whose option file is not
    here; the test sets Tiny (present) and Absent."""
    options, weights = tmp_path / 'options', tmp_path / 'weights'
    (options / 'TINY').mkdir(parents=True)
    weights.mkdir()
    for scale in (2, 4):
        (options / 'TINY' / f'TINY-T_x{scale}.yml').write_text(
            OPTION.format(name=f'TINY-T_x{scale}', scale=scale, file=f'tiny_x{scale}.pth'))
    torch.save({'params': _tiny_net(4).state_dict()}, weights / 'tiny_x4.pth')
    monkeypatch.setattr(zoo, 'MODELS', {m.name: m for m in (
        _model('TINY-T_x4', 4, 'tiny_x4.pth', options / 'TINY' / 'TINY-T_x4.yml'),
        _model('TINY-T_x2', 2, 'tiny_x2.pth', options / 'TINY' / 'TINY-T_x2.yml'),
        _model('OTHER_x4', 4, 'other_x4.pth', options / 'TINY' / 'OTHER_x4.yml'))})
    monkeypatch.setattr(zoo, 'TEST_SETS', ('Tiny', 'Absent'))
    monkeypatch.setattr(zoo, 'PUBLISHED', {})
    root = test_root
    argv = ['--root', root, '--weights_dir', str(weights), '--output', str(tmp_path / 'out' / 'reproduce.json')]
    return argv, root, tmp_path / 'out' / 'reproduce.json'


def _expected(root):
    """The four figures of the x4 tiny network on the Tiny set, computed without the script."""
    net, scores = _tiny_net(4), []
    for pair in sorted(os.listdir(os.path.join(root, 'Tiny', 'hr'))):
        lq = np.concatenate([imread(os.path.join(root, 'Tiny', 'lr_x4', pair, f'lr{v}.png')) for v in '01'], -1)
        gt = np.concatenate([imread(os.path.join(root, 'Tiny', 'hr', pair, f'hr{v}.png')) for v in '01'], -1)
        with torch.no_grad():
            sr = tensor2img(net(img2tensor(lq)[None]))
        scores.append([f(sr, gt) for f in (calculate_psnr, calculate_skimage_ssim, calculate_psnr_left,
                                           calculate_skimage_ssim_left)])
    return dict(zip(script.FIGURES, np.mean(scores, axis=0)))


def _publish(monkeypatch, **figures):
    monkeypatch.setitem(zoo.PUBLISHED, ('TINY-T_x4', 'Tiny'), zoo.Published(**figures, source='S'))


def test_within_tolerance_exits_0_and_measures_what_the_network_gives(setup, monkeypatch, capsys):
    argv, root, output = setup
    expected = _expected(root)
    # published figures rounded as papers print them: at most 0.005 dB / 0.00005 away
    _publish(monkeypatch, psnr=round(expected['psnr'], 2), ssim=round(expected['ssim'], 4),
             psnr_left=round(expected['psnr_left'], 2), ssim_left=round(expected['ssim_left'], 4))
    assert script.main(argv) == 0
    out = capsys.readouterr().out
    report = json.loads(output.read_text())
    (row,) = report['rows']
    assert (row['model'], row['set'], row['pairs'], row['status']) == ('TINY-T_x4', 'Tiny', 2, 'ok')
    assert row['measured'] == pytest.approx(expected, abs=1e-9)
    assert row['diff']['psnr'] == pytest.approx(expected['psnr'] - round(expected['psnr'], 2))
    line = next(line for line in out.splitlines() if line.startswith('TINY-T_x4'))
    assert line.split()[:5] == ['TINY-T_x4', 'Tiny', '2', f"{expected['psnr']:.4f}", f"{expected['psnr']:.2f}"]
    assert line.endswith('  ok')


@pytest.mark.parametrize('figure, offset', [('psnr', 0.02), ('psnr_left', -0.02), ('ssim', 0.002)])
def test_beyond_tolerance_exits_1(setup, monkeypatch, capsys, figure, offset):
    argv, root, output = setup
    expected = _expected(root)
    _publish(monkeypatch, **{**expected, figure: expected[figure] + offset})
    assert script.main(argv) == 1
    (row,) = json.loads(output.read_text())['rows']
    assert row['status'] == f'MISS {figure}'
    assert row['diff'][figure] == pytest.approx(-offset)
    assert f'MISS {figure}' in capsys.readouterr().out


def test_what_is_missing_is_skipped_with_a_note(setup, capsys):
    argv, root, output = setup
    assert script.main(argv) == 0  # nothing published for TINY: measured, nothing to miss
    out = capsys.readouterr().out
    weights_dir, options = argv[3], zoo.MODELS['OTHER_x4'].option
    notes = [line for line in out.splitlines() if line.startswith('note: ')]
    assert notes == [
        f'note: TINY-T_x2: skipped, {weights_dir}/tiny_x2.pth missing (python scripts/download_pretrained.py '
        'TINY-T_x2)',
        f'note: OTHER_x4: skipped, its option file {options} is not here',
        f'note: Absent x4: skipped, {root}/Absent/hr missing (docs/data.md says how to prepare it)']
    report = json.loads(output.read_text())
    assert [r['status'] for r in report['rows']] == ['no published figure']
    assert report['skipped'] == [n[len('note: '):] for n in notes]


def test_the_zoo_picture_places_published_and_measured_figures(setup, monkeypatch, tmp_path, capsys):
    """plot_results.py zoo: PSNR against MACs from the zoo's table and the JSON written by reproduce_tables.py (the
    MAC counter itself is tested in tests/archs/test_model_complexity.py; here it records what it is asked)."""
    argv, root, output = setup
    _publish(monkeypatch, psnr=30.0)
    script.main(argv)
    capsys.readouterr()  # reproduce_tables.py's own table
    asked = []
    monkeypatch.setattr(complexity, 'count_macs', lambda net, shape: asked.append((type(net), shape)) or 7_000_000)
    plot = load_script('scripts/plot_results.py')
    picture = tmp_path / 'zoo.png'
    assert plot.main(['zoo', '--set', 'Tiny', '--scale', '4', '--size', '8x24', '--measured', str(output),
                      '--output', str(picture)]) == 0
    assert imread(str(picture)).shape[2] == 3
    assert asked == [(NAFSSR, (6, 8, 24))]  # TINY-T_x2: no figure at x4; OTHER_x4: nothing published or measured
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith('TINY-T_x4'))
    params = sum(p.numel() for p in _tiny_net(4).parameters())
    assert line.split() == ['TINY-T_x4', f'{params:,d}', 'params', '0.01', 'GMACs', 'published', '30.00',
                            'measured', f"{_expected(root)['psnr']:.4f}"]


def test_the_zoo_picture_takes_the_card_s_count_at_the_card_s_size(setup, monkeypatch, tmp_path, capsys):
    """At the default 320x180 the card's GMACs are plotted (counting SwinFSR-L or SCGLANet-L again takes minutes on a
    CPU); a card without a count, or another --size, is counted."""
    _publish(monkeypatch, psnr=30.0)
    card = dataclasses.replace(zoo.MODELS['TINY-T_x4'], macs_g=12.5)
    monkeypatch.setitem(zoo.MODELS, 'TINY-T_x4', card)
    asked = []
    monkeypatch.setattr(complexity, 'count_macs', lambda net, shape: asked.append(shape) or 7_000_000)
    plot = load_script('scripts/plot_results.py')
    assert plot.main(['zoo', '--set', 'Tiny', '--scale', '4', '--output', str(tmp_path / 'zoo.png')]) == 0
    assert asked == [] and '12.50 GMACs' in capsys.readouterr().out
    assert plot.main(['zoo', '--set', 'Tiny', '--scale', '4', '--size', '8x24', '--output', str(tmp_path / 'z.png')]) == 0
    assert asked == [(6, 8, 24)]


def test_unknown_model_or_set_is_one_line(setup, capsys):
    argv, _, _ = setup
    assert script.main(argv + ['--sets', 'KITTI2015']) == 2
    assert capsys.readouterr().err.strip() == ('reproduce_tables.py: error: --sets: unknown KITTI2015; expected some '
                                               'of Tiny, Absent')
    assert script.main(argv + ['--models', 'TINY-T_x3']) == 2
    assert capsys.readouterr().err.strip() == ("reproduce_tables.py: error: --models: unknown model 'TINY-T_x3'; "
                                               'expected a name of the zoo such as NAFSSR-T_x4 (closest: TINY-T_x4, '
                                               'TINY-T_x2)')


def test_the_zoo_and_the_option_files_agree():
    """Each zoo model's option file (where it exists; NAFSSR's always) loads the zoo's weight file at the zoo's
    scale, so download_pretrained.py saves what test.py loads; and every test option file of a zoo family is some
    zoo model's."""
    options = {}
    for model in zoo.MODELS.values():
        path = os.path.join(ROOT, model.option)
        assert os.path.isfile(path) or model.family != 'NAFSSR', model.option
        if os.path.isfile(path):
            opt = yaml_load(Path(path))
            assert os.path.basename(opt['path']['pretrain_network_g']) == model.weights.file, model.option
            assert opt['scale'] == opt['network_g'].get('up_scale', model.scale) == model.scale, model.option
        options.setdefault(model.family, set()).add(os.path.basename(model.option))
    for family, names in options.items():
        folder = os.path.join(ROOT, 'options', 'test', family)
        found = {n for n in os.listdir(folder) if n.endswith('.yml')} if os.path.isdir(folder) else set()
        assert found <= names, f'options/test/{family}: {sorted(found - names)} are not in basicsr/zoo.py'


def test_notes_of_a_published_figure_are_printed_with_the_row(setup, monkeypatch, capsys):
    """A published figure measured under another protocol (SwinFIRSSR's border crop) says so under the table."""
    argv, root, output = setup
    expected = _expected(root)
    monkeypatch.setitem(zoo.PUBLISHED, ('TINY-T_x4', 'Tiny'), zoo.Published(
        psnr=expected['psnr'], source='S', notes=('with a 4-pixel border crop',)))
    assert script.main(argv) == 0
    assert 'published TINY-T_x4 Tiny: with a 4-pixel border crop' in capsys.readouterr().out.splitlines()
    (row,) = json.loads(output.read_text())['rows']
    assert row['published_notes'] == ['with a 4-pixel border crop']


def _tables_here(folder):
    """Every file in ``folder`` (the table and any temporary file left beside it)."""
    return sorted(os.listdir(folder))


def test_a_failing_run_leaves_the_earlier_table_as_it_was(tmp_path, test_root):
    """A real run of the zoo's NAFSSR-T_x4 (random weights under the release's file name) writes its table; a real
    rerun after an HR view went missing fails with one line (exit 2) and the table is byte-identical."""
    root, weights, output = tmp_path / 'test', tmp_path / 'weights', tmp_path / 'out' / 'table.json'
    for folder in ('hr', 'lr_x4'):
        for pair in ('pair_a', 'pair_b'):
            (root / 'KITTI2012' / folder / pair).mkdir(parents=True)
            for name in os.listdir(os.path.join(test_root, 'Tiny', folder, pair)):
                (root / 'KITTI2012' / folder / pair / name).write_bytes(
                    Path(test_root, 'Tiny', folder, pair, name).read_bytes())
    weights.mkdir()
    torch.manual_seed(0)
    torch.save({'params': NAFSSR(up_scale=4, width=48, num_blks=16).state_dict()}, weights / 'NAFSSR-T_4x.pth')
    argv = ['--models', 'NAFSSR-T_x4', '--sets', 'KITTI2012', '--root', str(root), '--weights_dir', str(weights),
            '--output', str(output)]
    assert script.main(argv) == 1  # random weights miss the published figures
    good = output.read_bytes()
    assert [(r['model'], r['set'], r['pairs']) for r in json.loads(good)['rows']] == [('NAFSSR-T_x4', 'KITTI2012', 2)]

    missing = root / 'KITTI2012' / 'hr' / 'pair_b' / 'hr1.png'
    missing.unlink()
    done = run([sys.executable, os.path.join(ROOT, 'scripts', 'reproduce_tables.py'), *argv], timeout=120,
               cwd=str(tmp_path))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (f'reproduce_tables.py: error: {missing}: missing; expected the '
                                                     'right view of pair pair_b')
    assert output.read_bytes() == good
    assert _tables_here(output.parent) == ['table.json']


def test_an_empty_root_measures_nothing_exits_2_and_keeps_the_table(setup, tmp_path, capsys):
    argv, _, output = setup
    assert script.main(argv) == 0
    good = output.read_bytes()
    capsys.readouterr()
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert script.main(argv + ['--root', str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f'reproduce_tables.py: error: nothing to measure under --root {empty}: 4 skipped (see the notes '
                   f'above); {output} left as it was')
    assert output.read_bytes() == good
    assert _tables_here(output.parent) == ['reproduce.json']


def test_a_run_that_would_drop_rows_refuses_before_measuring_unless_overwrite(setup, monkeypatch, capsys):
    argv, root, output = setup
    torch.save({'params': _tiny_net(2).state_dict()}, Path(argv[3]) / 'tiny_x2.pth')
    assert script.main(argv) == 0
    assert [r['model'] for r in json.loads(output.read_text())['rows']] == ['TINY-T_x4', 'TINY-T_x2']
    good = output.read_bytes()
    capsys.readouterr()
    measured = []
    with monkeypatch.context() as patch:
        patch.setattr(script, 'measure', lambda *a: measured.append(a) or [])
        assert script.main(argv + ['--models', 'TINY-T_x4']) == 2
    assert capsys.readouterr().err.strip() == (
        f'reproduce_tables.py: error: --output {output}: holds 1 measured row(s) this run does not measure again '
        '(e.g. TINY-T_x2 on Tiny); pass --overwrite to replace them, or name another --output')
    assert measured == [] and output.read_bytes() == good
    assert script.main(argv + ['--models', 'TINY-T_x4', '--overwrite']) == 0
    assert [r['model'] for r in json.loads(output.read_text())['rows']] == ['TINY-T_x4']


def test_an_output_that_is_not_a_table_is_not_replaced_without_overwrite(setup, capsys):
    argv, _, output = setup
    output.parent.mkdir()
    output.write_text('my notes\n')
    assert script.main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f'reproduce_tables.py: error: --output {output}: exists and is not a table written by reproduce_tables.py '
        '(JSONDecodeError); pass --overwrite to replace it, or name another --output')
    assert output.read_text() == 'my notes\n'
    assert script.main(argv + ['--overwrite']) == 0
    assert len(json.loads(output.read_text())['rows']) == 1
    capsys.readouterr()
    assert script.main(argv + ['--overwrite', '--output', str(output.parent)]) == 2
    assert capsys.readouterr().err.strip() == (f'reproduce_tables.py: error: --output {output.parent}: is a folder; '
                                               'expected the path of a JSON file')


def test_a_full_disk_while_writing_leaves_the_table_and_no_temporary_file(setup, monkeypatch):
    argv, _, output = setup
    assert script.main(argv) == 0
    good = output.read_bytes()

    def full_disk(content, f, **kwargs):
        f.write('{"settings": ')
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(script.json, 'dump', full_disk)
    with pytest.raises(OSError, match='No space left'):
        script.main(argv)
    assert output.read_bytes() == good
    assert _tables_here(output.parent) == ['reproduce.json']
