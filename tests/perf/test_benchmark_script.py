"""scripts/benchmark.py and scripts/benchmark_gpu.py: real measurements in worker processes, real option files."""
import os
import sys
import weakref

import pytest
import torch

from basicsr import release_adapters, zoo
from basicsr.models.archs import define_network
from basicsr.utils.errors import run_main
from basicsr.utils.options import get_path, parse
from helpers import load_script, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope='module')
def benchmark():
    return load_script('scripts/benchmark.py')


def test_infer_row_uses_test_options_and_overrides(benchmark):
    rows = benchmark.main(['--model', 'NAFSSR-T_x2', '--mode', 'infer', '--size', '12x30', '--threads', '1',
                           '--warmup', '0', '--repeats', '2', '--json',
                           '--force_yml', 'val:amp_dtype=bf16', 'network_g:channels_last=false'])
    assert len(rows) == 1
    r = rows[0]
    assert (r['mode'], r['model'], r['impl'], r['size'], r['batch']) == ('infer', 'NAFSSR-T_x2', 'ours', '12x30', 1)
    assert r['force_yml'] == ['val:amp_dtype=bf16', 'network_g:channels_last=false']
    assert r['ms'] > 0 and r['peak_mb'] > 0 and r['repeats'] == 2
    assert r['images_per_s'] == pytest.approx(2 * 1000 / r['ms'], rel=1e-2)  # both rounded to 2 decimals
    assert r['gmacs'] > 0


def test_train_row_is_the_training_step(benchmark):
    rows = benchmark.main(['--model', 'NAFSSR-T_x4', '--mode', 'train', '--batch', '2', '--size', '8x24',
                           '--threads', '1', '--warmup', '0', '--repeats', '1', '--json'])
    r = rows[0]
    assert (r['mode'], r['batch'], r['size'], r['nproc']) == ('train', 2, '8x24', 1)
    assert r['images_per_s'] == pytest.approx(2 * 2 * 1000 / r['ms'], rel=1e-2)
    assert r['it_per_s'] == pytest.approx(1000 / r['ms'], rel=1e-2)


def test_bad_model_name_is_one_line_and_exit_2():
    """A real run of the script: the closest zoo names in one line, exit 2, no worker started."""
    done = run([sys.executable, os.path.join(ROOT, 'scripts', 'benchmark.py'), '--model', 'NAFSR-T_x4'], timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == ("benchmark.py: error: --model: unknown model 'NAFSR-T_x4'; expected a name of the "
                                   'zoo such as NAFSSR-T_x4 (closest: NAFSSR-T_x4, NAFSSR-T_x2, NAFSSR-S_x4)')


@pytest.mark.parametrize('given, expected', [
    (None, '--release_path {default} (the default): no such folder; expected a checkout of megvii-research/NAFNet '
           '(the released NAFSSR) holding basicsr/models/archs/NAFSSR_arch.py'),
    ('', '--release_path: empty; expected a checkout of megvii-research/NAFNet (the released NAFSSR) holding '
         'basicsr/models/archs/NAFSSR_arch.py'),
    ('empty', '--release_path: {empty}/basicsr/models/archs/NAFSSR_arch.py: not found; expected a checkout of '
              'megvii-research/NAFNet (the released NAFSSR) holding basicsr/models/archs/NAFSSR_arch.py')])
def test_release_without_a_checkout_is_one_line_before_any_worker(benchmark, tmp_path, monkeypatch, capsys, given,
                                                                  expected):
    default, empty = tmp_path / 'not_here', tmp_path / 'empty'
    empty.mkdir()
    monkeypatch.setattr(release_adapters, 'DEFAULT_RELEASE_PATH', str(default))
    monkeypatch.setattr(benchmark, 'run_measurement', lambda *a: pytest.fail('a worker was started'))
    argv = ['--model', 'NAFSSR-T_x4', '--impl', 'release', '--size', '6x10']
    argv += [] if given is None else ['--release_path', str(empty) if given == 'empty' else given]
    assert run_main('benchmark.py', benchmark.cli, argv) == 2
    assert capsys.readouterr().err.strip() == 'benchmark.py: error: ' + expected.format(default=default, empty=empty)


def test_a_worker_refusal_is_its_one_line(benchmark, tmp_path):
    """A release arch file that cannot be imported (a missing dependency) is found in the worker: its one line is
    passed on (exit 2), not a 'worker failed' block."""
    archs = tmp_path / 'basicsr' / 'models' / 'archs'
    archs.mkdir(parents=True)
    (archs / 'CVHSSR_arch.py').write_text('import a_dependency_not_installed\n')
    with pytest.raises(benchmark.BenchmarkError) as err:
        benchmark.main(['--model', 'CVHSSR-T_x4', '--mode', 'infer', '--impl', 'release', '--release_path',
                        str(tmp_path), '--size', '6x10', '--threads', '1', '--warmup', '0', '--repeats', '1'])
    assert str(err.value) == (f'--release_path: {archs}/CVHSSR_arch.py: cannot import the released code (No module '
                              "named 'a_dependency_not_installed'); run with a Python that has its dependencies")


@pytest.mark.parametrize('name,mode,expected', [
    ('CVHSSR-T_x4', 'infer', 'options/test/CVHSSR/CVHSSR-T_x4.yml'),
    ('CVHSSR-T_x4', 'train', 'options/train/CVHSSR/CVHSSR-T_x4.yml'),
    ('EHFSSR_S_x2', 'train', 'options/train/EHFSSR/EHFSSR_S_x2_s1.yml'),  # the first stage of the two
    ('NAFSSR-L_x2', 'infer', 'options/test/NAFSSR/NAFSSR-L_x2.yml'),
])
def test_zoo_names_choose_their_option_files(benchmark, name, mode, expected):
    assert benchmark.default_option_file(name, mode) == os.path.join(ROOT, expected)


def test_a_card_without_training_file_is_one_line_for_train(benchmark, monkeypatch):
    import dataclasses

    from basicsr import zoo
    monkeypatch.setitem(zoo.MODELS, 'CVHSSR-T_x4', dataclasses.replace(zoo.MODELS['CVHSSR-T_x4'], train=()))
    with pytest.raises(benchmark.BenchmarkError, match='^--model CVHSSR-T_x4: the zoo has no training option file '
                                                       'for it; give one with -opt$'):
        benchmark.default_option_file('CVHSSR-T_x4', 'train')


def test_opt_rows_are_labelled_by_the_option_file(benchmark):
    """Zoo rows measured through -opt carry the file's name, not the default NAFSSR-T_x4 (a bug of the first
    zoo tables)."""
    rows = benchmark.main(['-opt', os.path.join(ROOT, 'options/test/EHFSSR/EHFSSR_S_x4.yml'), '--mode', 'infer',
                           '--size', '8x20', '--threads', '1', '--warmup', '0', '--repeats', '1', '--json',
                           '--force_yml', 'network_g:dim=12'])
    assert (rows[0]['model'], rows[0]['size']) == ('EHFSSR_S_x4', '8x20')


def test_release_implementation_side_by_side(benchmark, tmp_path):
    """--impl release imports the authors' arch file from a checkout (here a stand-in written by the test, with the
    release's file layout) and builds it with the option file's network_g keys; its training step runs."""
    archs = tmp_path / 'basicsr' / 'models' / 'archs'
    archs.mkdir(parents=True)
    (archs / 'CVHSSR_arch.py').write_text(
        'import torch\n'
        'class CVHSSR(torch.nn.Module):\n'
        '    def __init__(self, up_scale, width, num_blks, drop_path_rate, train_size, drop_out_rate):\n'
        '        super().__init__()\n'
        '        self.kwargs = dict(up_scale=up_scale, width=width, num_blks=num_blks, train_size=train_size)\n'
        '        self.conv = torch.nn.Conv2d(6, 6 * up_scale ** 2, 3, padding=1)\n'
        '        self.up = torch.nn.PixelShuffle(up_scale)\n'
        '    def forward(self, x):\n'
        '        return self.up(self.conv(x))\n')
    for mode in ('infer', 'train'):
        rows = benchmark.main(['--model', 'CVHSSR-T_x4', '--mode', mode, '--impl', 'release', '--release_path',
                               str(tmp_path), '--size', '6x10', '--batch', '2', '--threads', '1', '--warmup', '0',
                               '--repeats', '1', '--json'])
        assert (rows[0]['impl'], rows[0]['model'], rows[0]['size']) == ('release', 'CVHSSR-T_x4', '6x10')
    release = release_adapters.release_class('CVHSSR', str(tmp_path))
    assert release.__module__ == 'basicsr.models.archs.CVHSSR_arch'
    import basicsr
    assert os.path.dirname(basicsr.__file__) == os.path.join(ROOT, 'basicsr')  # ours is back in place


def test_release_path_without_the_arch_file_is_one_line(tmp_path):
    with pytest.raises(release_adapters.ReleaseCheckoutError,
                       match=r'--release_path: .*basicsr/models/archs/EHFSSR_S_arch.py: not found; expected a checkout '
                             r'of jianwensong/EHFSSR'):
        release_adapters.release_class('EHFSSR_S', str(tmp_path))


# Checkouts of the authors' code for the release tests below: STEREO_SR_RELEASES=<folder> holding them under their
# repositories' names (SCGLANet = fzuzyb/SCGLANet, SwinFSR = GoKerrChen/SwinFSR, SwinFIR = Zdafeng/SwinFIR, with
# einops importable). Without it, a stand-in with the
# release's file, class and call (written by the test) takes the checkout's place.
RELEASES = os.environ.get('STEREO_SR_RELEASES')
TINY = {  # network_g overrides: the zoo's L models are 25M parameters
    'SCGLANet-L_x4': ['network_g:width=8', 'network_g:num_blks=[1,1,1,1,1]', 'network_g:chunk_size=4',
                      'network_g:train_size=[1,6,8,16]'],
    'SwinFSR-L_x4': ['network_g:embed_dim=8', 'network_g:depths=[2,2]', 'network_g:num_heads=[2,2]',
                     'network_g:img_size=[6,10]', 'network_g:window_size_h=3', 'network_g:window_size_w=5'],
    'SwinFIRSSR_x4': ['network_g:embed_dim=12', 'network_g:depths=[1,1]', 'network_g:num_heads=[2,2]',
                      'network_g:img_size=8', 'network_g:window_size=4', 'network_g:squeeze_factor=4']}
STAND_INS = {  # the release's file, class, imports from outside its checkout and call; records its arguments
    'SCGLANet-L_x4': ('basicsr/archs/scglanet_arch.py',
                      'import torch\n'
                      'from basicsr.utils.registry import ARCH_REGISTRY\n'
                      '@ARCH_REGISTRY.register()\n'
                      'class SCGLANet(torch.nn.Module):\n'
                      '    def __init__(self, *args, train_size=(1, 6, 30, 90), temperature=1.5, **kwargs):\n'
                      '        super().__init__()\n'
                      '        self.kwargs = dict(kwargs, train_size=tuple(train_size), temperature=temperature)\n'
                      "        self.conv = torch.nn.Conv2d(6, 6 * kwargs['up_scale'] ** 2, 3, padding=1)\n"
                      "        self.up = torch.nn.PixelShuffle(kwargs['up_scale'])\n"
                      '    def forward(self, inp):\n'
                      '        return self.up(self.conv(inp))\n'),
    'SwinFSR-L_x4': ('swin_cam_ffc.py',
                     'import torch\n'
                     'from timm.models.layers import DropPath, to_2tuple, trunc_normal_\n'
                     'class SwinIR(torch.nn.Module):\n'
                     '    def __init__(self, img_size=(30, 90), patch_size=1, in_chans=3, embed_dim=96, depths=[6] * 4,\n'
                     '                 num_heads=[6] * 4, window_size_h=3, window_size_w=9, mlp_ratio=4.,\n'
                     "                 drop_path_rate=0.1, upscale=2, img_range=1., upsampler='', **kwargs):\n"
                     '        super().__init__()\n'
                     '        self.kwargs = dict(upscale=upscale, img_size=to_2tuple(img_size), window_size_h=window_size_h,\n'
                     '                           window_size_w=window_size_w, img_range=img_range, depths=depths,\n'
                     '                           embed_dim=embed_dim, drop_path_rate=drop_path_rate, num_heads=num_heads,\n'
                     '                           mlp_ratio=mlp_ratio, upsampler=upsampler)\n'
                     '        self.drop = DropPath(drop_path_rate)\n'
                     '        self.conv = torch.nn.Conv2d(3, 3 * upscale ** 2, 3, padding=1)\n'
                     '        trunc_normal_(self.conv.weight, std=0.02)\n'
                     '        self.up = torch.nn.PixelShuffle(upscale)\n'
                     '    def forward(self, x, y):\n'
                     '        return self.up(self.drop(self.conv(x))), self.up(self.drop(self.conv(y)))\n'),
    'SwinFIRSSR_x4': ('swinfir/archs/swinfirssr_arch.py',
                      'import torch\n'
                      'from basicsr.utils.registry import ARCH_REGISTRY\n'
                      '@ARCH_REGISTRY.register()\n'
                      'class SwinFIRSSR(torch.nn.Module):\n'
                      '    def __init__(self, img_size=64, in_chans=3, embed_dim=96, depths=(6, 6, 6, 6),\n'
                      '                 num_heads=(6, 6, 6, 6), window_size=7, upscale=2, **kwargs):\n'
                      '        super().__init__()\n'
                      '        self.kwargs = dict(kwargs, img_size=img_size, in_chans=in_chans, embed_dim=embed_dim,\n'
                      '                           depths=depths,\n'
                      '                           num_heads=num_heads, window_size=window_size, upscale=upscale)\n'
                      '        self.conv = torch.nn.Conv2d(6, 6 * upscale ** 2, 3, padding=1)\n'
                      '        self.up = torch.nn.PixelShuffle(upscale)\n'
                      '    def forward(self, x):\n'
                      '        return self.up(self.conv(x))\n')}
# what the release's own code passes: SCGLANet's option file (options/train/StereoSR/train_SCGLANet_L_x4_Track1.yml,
# train_size its default), SwinFSR's train.py and inference.py (SwinIR(upscale=4, img_size=(30, 90), ...))
RELEASE_ARGS = {
    'SCGLANet-L_x4': dict(up_scale=4, width=128, num_blks=[16, 16, 32, 32, 32], drop_path_rate=0.1, drop_out_rate=0.,
                          train_size=(1, 6, 30, 90), temperature=2.0),
    'SwinFSR-L_x4': dict(upscale=4, img_size=(30, 90), window_size_h=6, window_size_w=15, img_range=1.,
                         depths=[6] * 12, embed_dim=180, drop_path_rate=0.2, num_heads=[6] * 12, mlp_ratio=2,
                         upsampler='pixelshuffle'),
    'SwinFIRSSR_x4': dict(upscale=4, in_chans=3, img_size=64, window_size=16, compress_ratio=3, squeeze_factor=30,
                          conv_scale=0.01, overlap_ratio=0.5, img_range=1., depths=[6] * 6, embed_dim=180,
                          num_heads=[6] * 6, mlp_ratio=2, upsampler='pixelshuffle', resi_connection='SFB')}


def _release_checkout(name, tmp_path):
    """The checkout of ``name``'s released code under STEREO_SR_RELEASES, or the stand-in written under tmp_path."""
    model = zoo.card(name)
    if RELEASES:
        path = os.path.join(RELEASES, model.code.split('/')[1])
        assert os.path.isfile(os.path.join(path, release_adapters.RELEASE_ARCHS[model.arch][0])), path
        return path
    relpath, text = STAND_INS[name]
    (tmp_path / relpath).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / relpath).write_text(text)
    return str(tmp_path)


@pytest.mark.parametrize('name', ['SCGLANet-L_x4', 'SwinFSR-L_x4', 'SwinFIRSSR_x4'])
def test_release_of_the_new_families_side_by_side(benchmark, tmp_path, name):
    """--impl release for SCGLANet, SwinFSR and SwinFIRSSR: the released class built with the arguments the
    release's own code passes (SwinFSR's SwinIR defaults are not its train.py's; SwinFIR spells the scale upscale and
    swallows unknown keys), called as its code calls it (SwinFSR: two views in, two out), its training step run by
    the benchmark; with a real checkout, its output equals ours for its weights."""
    release = _release_checkout(name, tmp_path)
    rows = benchmark.main(['--model', name, '--mode', 'train', '--impl', 'release', '--release_path', release,
                           '--size', '6x10', '--batch', '2', '--threads', '1', '--warmup', '0', '--repeats', '1',
                           '--no_macs', '--json', '--force_yml', *TINY[name]])
    assert (rows[0]['impl'], rows[0]['model'], rows[0]['size'], rows[0]['batch']) == ('release', name, '6x10', 2)
    assert rows[0]['gmacs'] != rows[0]['gmacs']  # nan: --no_macs
    opt = parse(benchmark.default_option_file(name, 'infer'), is_train=False, force_yml=TINY[name],
                root_path=str(tmp_path))
    net = release_adapters.build_release_net(opt, release).eval()
    lq = torch.rand(1, 6, 7, 12)
    torch.manual_seed(3)  # SCGLANet hashes with rotations drawn at every forward
    out = release_adapters.release_infer_fn(net)(lq)
    assert out.shape == (1, 6, 28, 48)
    if RELEASES:
        ours = define_network(opt['network_g']).eval()
        ours.load_state_dict(getattr(net, 'net', net).state_dict())  # strict: the release's names
        torch.manual_seed(3)
        with torch.no_grad():
            assert torch.allclose(ours(lq), out, atol=1e-5)
    else:  # the full-size network_g of the zoo's option file, as the release's code passes it
        full = parse(benchmark.default_option_file(name, 'infer'), is_train=False, root_path=str(tmp_path))
        built = release_adapters.build_release_net(full, release)
        assert getattr(built, 'net', built).kwargs == RELEASE_ARGS[name]


def test_gpu_table_settings_are_real_options(tmp_path):
    gpu = load_script('scripts/benchmark_gpu.py')
    jobs = gpu.plan(['T_x4', 'L_x4'], '/scratch/release', ['T_x4', 'S_x4'])
    settings = [s for s, _ in jobs]
    # importance order: fp32 and release side by side first, then bf16, one compile, NCHW, other compiles
    assert settings[:8] == ['fp32', 'release'] * 4
    assert settings.index('bf16') == 8 and settings[8:12] == ['bf16'] * 4
    assert settings[12:14] == ['compile', 'compile-cg'] and settings[-1] == 'compile'
    assert settings.count('fp32-nchw') == 4
    for setting, args in jobs:
        assert args[args.index('--device') + 1] == 'cuda'
        mode, model = args[args.index('--mode') + 1], args[args.index('--model') + 1]
        if setting == 'release':
            assert args[args.index('--release_path') + 1] == '/scratch/release'
            continue
        overrides = args[args.index('--force_yml') + 1:] if '--force_yml' in args else []
        folder = 'train' if mode == 'train' else 'test'
        opt = parse(os.path.join(ROOT, 'options', folder, 'NAFSSR', f'{model}.yml'), is_train=mode == 'train',
                    force_yml=overrides, root_path=str(tmp_path))
        expected = {'fp32': {}, 'bf16': ({'train:use_amp': True, 'train:amp_dtype': 'bf16'} if mode == 'train'
                                         else {'val:amp_dtype': 'bf16'}),
                    'fp32-nchw': {'network_g:channels_last': False}, 'compile': {'train:compile': True},
                    'compile-cg': {'train:compile': True, 'train:compile_mode': 'reduce-overhead'}}[setting]
        for key, value in expected.items():
            assert get_path(opt, key) == value, (setting, key)


def test_train_row_with_the_real_loader(benchmark, tmp_path):
    """--data: batches come from the option file's training set through train.py's loader; the row reports the
    loader's patch size and batch and the wait for data as a share of the step."""
    import sys
    sys.path.insert(0, os.path.join(ROOT, 'tests', 'train'))
    from train_helpers import make_tiny_data
    data = make_tiny_data(tmp_path)  # x2 patches, HR 16x48
    rows = benchmark.main(['--model', 'NAFSSR-T_x2', '--mode', 'train', '--data', '--batch', '3', '--threads', '1',
                           '--warmup', '1', '--repeats', '5', '--json', '--force_yml',
                           f"datasets:train:dataroot_gt={data['patches']}",
                           f"datasets:train:dataroot_lq={data['patches']}",
                           'datasets:train:gt_size_h=8', 'datasets:train:gt_size_w=24',
                           'datasets:train:num_worker_per_gpu=1'])
    r = rows[0]
    assert (r['size'], r['batch']) == ('4x12', 3)
    assert 0 < r['data_ms'] < r['ms'] and 0 < r['data_share_pct'] < 100
    assert r['data_share_pct'] == pytest.approx(100 * r['data_ms'] / r['ms'], abs=0.1)  # rounded to 0.1%


def test_data_needs_the_training_step(benchmark):
    with pytest.raises(benchmark.BenchmarkError,
                       match='--data: the loader is measured for --mode train --impl ours only'):
        benchmark.main(['--mode', 'infer', '--data'])


def test_release_step_keeps_its_outputs_until_the_next_forward(tmp_path):
    """The release's training step holds its last outputs and loss until the next step's forward has run, as every
    release's own loop does (BasicSR's self.output, the loop variables of iPASSR's and SwinFSR's train.py) and as
    ours does: it changes how the allocator reuses memory (the peak), so both are measured alike."""
    name = 'SwinFSR-L_x4'
    opt = parse(os.path.join(ROOT, 'options/train/SwinFSR/SwinFSR-L_x4.yml'), is_train=True, force_yml=TINY[name],
                root_path=str(tmp_path))
    net = release_adapters.build_release_net(opt, _release_checkout(name, tmp_path))
    step = release_adapters.ReleaseTrainStep(net, opt, torch.device('cpu'))
    lq, gt = torch.rand(1, 6, 6, 10), torch.rand(1, 6, 24, 40)
    step(lq, gt)
    previous = weakref.ref(step.kept[0])
    alive_in_forward = []
    net.register_forward_hook(lambda *args: alive_in_forward.append(previous() is not None))
    step(lq, gt)
    assert alive_in_forward == [True]
    assert previous() is None  # released once the next step has its own
