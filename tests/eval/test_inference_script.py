"""scripts/inference_stereo.py: own pairs of any size, folders of pairs, and every bad input."""
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from basicsr.evaluation import forward_stereo
from basicsr.metrics import calculate_psnr
from basicsr.utils.checkpoint import CheckpointError, save_atomic
from basicsr.utils.img_util import ImageReadError, img2tensor, imread, imwrite, tensor2img
from helpers import load_script, tiny_model_files

REPO = Path(__file__).resolve().parents[2]
NETWORK = {'type': 'NAFSSR', 'up_scale': 2, 'width': 16, 'num_blks': 2}

script = load_script('scripts/inference_stereo.py')


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    """A tiny random NAFSSR x2 as a release checkpoint and an option file naming it."""
    root = tmp_path_factory.mktemp('infer')
    net, weights, opt = tiny_model_files(root, NETWORK, 'tiny_x2.pth')
    return net.eval(), weights, opt


def _pair(folder, name='p', h=70, w=48, seed=0):
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 256, (h // 4, w // 4, 3), dtype=np.uint8), (w + 3, h),
                      interpolation=cv2.INTER_CUBIC)
    left, right = base[:, 3:], base[:, :-3]
    imwrite(left, Path(folder) / f'{name}_L.png')
    imwrite(right, Path(folder) / f'{name}_R.png')
    return left, right


def test_pair_in_strips_matches_the_whole_image(model, tmp_path):
    net, _, opt = model
    left, right = _pair(tmp_path)
    out = tmp_path / 'out'
    written = script.run(['--left', str(tmp_path / 'p_L.png'), '--right', str(tmp_path / 'p_R.png'),
                          '--output', str(out), '-opt', str(opt), '--strip_rows', '16', '--overlap', '24'])
    assert [Path(p).name for p in written] == ['p_L.png', 'p_R.png']
    sr = np.concatenate([imread(out / 'p_L.png'), imread(out / 'p_R.png')], axis=2)
    whole = tensor2img(forward_stereo(net, img2tensor(np.concatenate([left, right], axis=2))[None]))
    assert sr.shape == (140, 96, 6)
    assert calculate_psnr(sr, whole) >= 50  # same bound as test_strips.py: strips with context, not without


def test_folder_of_pairs_with_arch_and_weights(tmp_path):
    """``--input_dir`` with ``--arch NAFSSR-T --scale 2 --weights``: every pair of the folder (sorted; other files
    skipped) through the real NAFSSR-T built by --arch and loaded with the file."""
    from basicsr.models.archs import define_network

    pairs = {'a': _pair(tmp_path, 'a', h=16, w=24, seed=1), 'b': _pair(tmp_path, 'b', h=12, w=20, seed=2)}
    (tmp_path / 'notes.txt').write_text('not a pair')
    weights = _nafssr_t_checkpoint(tmp_path / 'weights', 2, seed=4)
    out = tmp_path / 'out'
    written = script.run(['--input_dir', str(tmp_path), '--output', str(out), '--arch', 'NAFSSR-T', '--scale', '2',
                          '--weights', str(weights)])
    assert [Path(p).name for p in written] == ['a_L.png', 'a_R.png', 'b_L.png', 'b_R.png']
    reference = define_network({**NAFSSR_T, 'up_scale': 2}, key_path='network_g').eval()
    reference.load_state_dict(torch.load(weights, weights_only=True)['params'])
    for name, (left, right) in pairs.items():
        sr = np.concatenate([imread(out / f'{name}_L.png'), imread(out / f'{name}_R.png')], axis=2)
        expected = tensor2img(forward_stereo(reference, img2tensor(np.concatenate([left, right], axis=2))[None]))
        assert sr.shape == (2 * left.shape[0], 2 * left.shape[1], 6)
        assert np.abs(sr.astype(int) - expected).max() <= 1  # a rounding flip of one grey level at most


def test_a_second_run_into_the_same_output_keeps_the_first_results_unless_overwrite(model, tmp_path):
    _, _, opt = model
    _pair(tmp_path)
    out = tmp_path / 'out'
    args = ['--left', str(tmp_path / 'p_L.png'), '--right', str(tmp_path / 'p_R.png'), '--output', str(out),
            '-opt', str(opt)]
    script.run(args)
    first = {name: (out / name).read_bytes() for name in ('p_L.png', 'p_R.png')}
    _pair(tmp_path, seed=5)  # other inputs under the same names: other results
    with pytest.raises(script.InputError, match=r'p_L\.png is already there \(an earlier result\?\); give '
                                                '--overwrite'):
        script.run(args)
    assert {name: (out / name).read_bytes() for name in first} == first
    assert script.run([*args, '--overwrite']) == [str(out / 'p_L.png'), str(out / 'p_R.png')]
    assert all((out / name).read_bytes() != first[name] for name in first)


def test_different_view_sizes_are_refused(tmp_path):
    _pair(tmp_path)
    imwrite(np.zeros((70, 50, 3), np.uint8), tmp_path / 'p_R.png')
    with pytest.raises(script.InputError, match=r'p_R.png: the right view is 50x70 but the left view .* is 48x70'):
        script.read_pair(tmp_path / 'p_L.png', tmp_path / 'p_R.png')


def test_non_image_grey_and_16_bit_inputs(tmp_path, capsys):
    (tmp_path / 'text.png').write_text('hello')
    with pytest.raises(ImageReadError, match=r'text.png: cannot decode'):
        script.read_view(tmp_path / 'text.png')
    cv2.imwrite(str(tmp_path / 'grey.png'), np.zeros((8, 8), np.uint8))
    with pytest.raises(script.InputError, match=r'grey.png: grey-scale image.*refused'):
        script.read_view(tmp_path / 'grey.png')
    deep = (np.arange(8 * 8 * 3).reshape(8, 8, 3) * 257).astype(np.uint16)
    cv2.imwrite(str(tmp_path / 'deep.png'), deep)
    img = script.read_view(tmp_path / 'deep.png')
    assert img.dtype == np.uint8 and np.array_equal(img, np.arange(8 * 8 * 3).reshape(8, 8, 3).astype(np.uint8))
    assert '16-bit image converted to 8 bits' in capsys.readouterr().err


def test_folder_without_pairs_and_missing_right_view(tmp_path):
    with pytest.raises(script.InputError, match='no stereo pairs found'):
        script.find_pairs(str(tmp_path))
    imwrite(np.zeros((8, 8, 3), np.uint8), tmp_path / 'x_L.png')
    with pytest.raises(script.InputError, match=r'x_L.png: no right view x_R.png'):
        script.find_pairs(str(tmp_path))


def test_bad_checkpoint_is_one_line_from_the_command_line(tmp_path):
    _pair(tmp_path)
    marker = tmp_path / 'created.txt'
    evil = tmp_path / 'evil.pth'
    code = ("import torch\nclass P:\n    def __reduce__(self):\n        return (open, (%r, 'w'))\n"
            "torch.save({'params': P()}, %r)\n" % (str(marker), str(evil)))
    subprocess.run([sys.executable, '-c', code], check=True, timeout=300)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, str(REPO / 'scripts' / 'inference_stereo.py'), '--left',
                           str(tmp_path / 'p_L.png'), '--right', str(tmp_path / 'p_R.png'), '--output',
                           str(tmp_path / 'out'), '--arch', 'NAFSSR-T', '--scale', '2', '--weights', str(evil)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 2  # the one exit code of user errors (basicsr.utils.errors.USER_ERROR_EXIT)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(evil) in lines[0] and 'refused' in lines[0], proc.stderr
    assert not marker.exists()
    with pytest.raises(CheckpointError, match='checkpoint file not found'):
        script.run(['--left', str(tmp_path / 'p_L.png'), '--right', str(tmp_path / 'p_R.png'), '--output',
                    str(tmp_path / 'out'), '--arch', 'NAFSSR-T', '--scale', '2', '--weights',
                    str(tmp_path / 'none.pth')])


# NAFSSR-T is width 48, 16 blocks (NAFSSR paper, Table 1; README "Models and complexity"); its released checkpoints
# hold 445,068 (x2) and 460,656 (x4) parameters (the released NAFSSR-T_2x.pth / NAFSSR-T_4x.pth).
NAFSSR_T = {'type': 'NAFSSR', 'width': 48, 'num_blks': 16}
NAFSSR_T_PARAMS = {2: 445_068, 4: 460_656}


def _nafssr_t_checkpoint(folder, scale, seed):
    """A real NAFSSR-T x``scale`` with random residual gains (so that every block's weights change the output),
    saved in the release format."""
    from basicsr.models.archs import define_network

    torch.manual_seed(seed)
    net = define_network({**NAFSSR_T, 'up_scale': scale}, key_path='network_g')
    assert sum(p.numel() for p in net.parameters()) == NAFSSR_T_PARAMS[scale]
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(('beta', 'gamma')):
                p.copy_(torch.randn_like(p) * 0.1)
    path = Path(folder) / f'NAFSSR-T_{scale}x.pth'
    save_atomic({'params': net.state_dict()}, path)
    return path


@pytest.mark.parametrize('scale', [2, 4])
def test_arch_and_scale_build_nafssr_t_with_the_file_weights(tmp_path, scale):
    """``--arch NAFSSR-T --scale s`` builds NAFSSR width 48, 16 blocks, up_scale s, and runs the weights of the file:
    the output is x``s`` and equals a NAFSSR-T built here from the paper's sizes and loaded with the same file."""
    from basicsr.models.archs import define_network

    weights = _nafssr_t_checkpoint(tmp_path, scale, seed=scale)
    left, right = _pair(tmp_path, h=12, w=20, seed=3)
    out = tmp_path / 'out'
    script.run(['--left', str(tmp_path / 'p_L.png'), '--right', str(tmp_path / 'p_R.png'), '--output', str(out),
                '--arch', 'NAFSSR-T', '--scale', str(scale), '--weights', str(weights)])
    sr = np.concatenate([imread(out / 'p_L.png'), imread(out / 'p_R.png')], axis=2)
    assert sr.shape == (12 * scale, 20 * scale, 6)

    torch.manual_seed(100)  # other initial weights than the file's: only loading the file can make them agree
    reference = define_network({**NAFSSR_T, 'up_scale': scale}, key_path='network_g').eval()
    lq = img2tensor(np.concatenate([left, right], axis=2))[None]
    untrained = tensor2img(forward_stereo(reference, lq))
    reference.load_state_dict(torch.load(weights, weights_only=True)['params'])
    expected = tensor2img(forward_stereo(reference, lq))
    # same network, same weights, same input: equal up to a rounding flip of one grey level
    assert np.abs(sr.astype(int) - expected).max() <= 1
    assert np.abs(untrained.astype(int) - expected).mean() > 1  # the file's weights do change the output


def test_arch_refuses_a_checkpoint_of_another_scale_or_size(tmp_path):
    """The network --arch/--scale builds is exactly NAFSSR-T at that scale: an x4 file does not fit --scale 2, nor
    a NAFSSR-S (width 64, 32 blocks) file --arch NAFSSR-T."""
    from basicsr.models.archs import define_network

    _pair(tmp_path, h=12, w=20)
    args = ['--left', str(tmp_path / 'p_L.png'), '--right', str(tmp_path / 'p_R.png'), '--output', str(tmp_path / 'o')]
    x4 = _nafssr_t_checkpoint(tmp_path, 4, seed=0)
    with pytest.raises(CheckpointError, match='NAFSSR-T_4x.pth'):
        script.run([*args, '--arch', 'NAFSSR-T', '--scale', '2', '--weights', str(x4)])
    with torch.device('meta'):  # shapes only; the file is built from zeros below
        small = define_network({'type': 'NAFSSR', 'up_scale': 2, 'width': 64, 'num_blks': 32})
    s_file = tmp_path / 'NAFSSR-S_2x.pth'
    save_atomic({'params': {k: torch.zeros(v.shape) for k, v in small.state_dict().items()}}, s_file)
    with pytest.raises(CheckpointError, match='NAFSSR-S_2x.pth'):
        script.run([*args, '--arch', 'NAFSSR-T', '--scale', '2', '--weights', str(s_file)])


@pytest.mark.parametrize('arch,family', [('CVHSSR-T', 'CVHSSR'), ('EHFSSR_S', 'EHFSSR_S'), ('ehfssr', 'EHFSSR')])
def test_arch_names_every_zoo_family(arch, family):
    """--arch builds the named sizes of every family, not only NAFSSR's (what the zoo's users pass)."""
    from basicsr.models.archs import arch_util
    with torch.device('meta'):
        net = arch_util.build_named(arch, 4)
    assert type(net).__name__ == family and net.up_scale == 4


def test_arch_feeds_the_colour_order_of_its_zoo_card(monkeypatch):
    """Every named size's views go in the channel order its released weights were trained with, as its card says
    (SCGLANet-L and SwinFSR-L were fed BGR while their cards and option files say RGB)."""
    import basicsr.inference as inference
    from basicsr import zoo
    from basicsr.models.archs import arch_util

    build = arch_util.build_named

    def on_meta(name, scale):
        with torch.device('meta'):  # the real class, without memory
            return build(name, scale)

    monkeypatch.setattr(arch_util, 'build_named', on_meta)
    monkeypatch.setattr(inference, 'load_network', lambda *args, **kwargs: None)
    orders = {size: inference.load_model(arch=size, scale=4, weights='w.pth')[2] for size in zoo.sizes()}
    assert orders == {size: zoo.card(size).color_order for size in zoo.sizes()}
    assert orders['SCGLANet-L'] == orders['iPASSR'] == 'rgb' and orders['NAFSSR-T'] == 'bgr'


def test_unknown_arch_lists_the_names(tmp_path):
    for view in 'LR':
        imwrite(np.zeros((8, 8, 3), np.uint8), tmp_path / f'p_{view}.png')
    with pytest.raises(script.InputError, match=r"^--arch: unknown size 'CVHSSR-X'; expected one of NAFSSR-T, .*CVHSSR-T, "
                                         r"CVHSSR-S, EHFSSR-S, EHFSSR"):
        script.run(['--left', str(tmp_path / 'p_L.png'), '--right', str(tmp_path / 'p_R.png'), '--output',
                    str(tmp_path / 'out'), '--arch', 'CVHSSR-X', '--scale', '4', '--weights', str(tmp_path / 'w.pth')])


def test_arch_ipassr_takes_the_release_file_and_rgb_views(tmp_path):
    """--arch iPASSR loads the release's .pth.tar layout ({'epoch', 'state_dict'}) and, as its weights were trained
    on RGB views, feeds RGB by default: the written views equal the network run on the RGB pair."""
    from basicsr.models.archs.arch_util import build_named
    torch.manual_seed(0)
    net = build_named('iPASSR', 2).eval()
    weights = tmp_path / 'iPASSR_2xSR.pth.tar'
    torch.save({'epoch': 80, 'state_dict': net.state_dict()}, weights)
    rng = np.random.default_rng(0)
    views = [rng.integers(0, 256, (6, 10, 3), dtype=np.uint8) for _ in 'LR']
    for view, img in zip('LR', views):
        imwrite(img, tmp_path / f'p_{view}.png')  # BGR on disk, as every image file read by OpenCV
    script.run(['--left', str(tmp_path / 'p_L.png'), '--right', str(tmp_path / 'p_R.png'), '--output',
                str(tmp_path / 'out'), '--arch', 'iPASSR', '--scale', '2', '--weights', str(weights)])
    rgb = torch.cat([img2tensor(v[..., ::-1].astype(np.float32) / 255.) for v in views], 0)[None]
    expected = tensor2img(forward_stereo(net, rgb))  # RGB out
    assert np.array_equal(imread(tmp_path / 'out' / 'p_L.png'), expected[..., 2::-1])
    assert np.array_equal(imread(tmp_path / 'out' / 'p_R.png'), expected[..., 5:2:-1])
