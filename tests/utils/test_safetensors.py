"""safetensors network files: the one loader reads them wherever a ``.pth`` is read, ``scripts/convert_weights.py``
converts both ways bit for bit, ``train.py`` writes them with ``logger:weights_format: safetensors`` (training
states stay ``.state``), and a safetensors file never runs code.

The layout convention (``basicsr/utils/checkpoint.py``): metadata ``param_keys`` lists the state dicts; with one,
the names are unprefixed (a plain state dict); with several, each is prefixed by its key and a dot."""
import hashlib
import os
import sys

import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import save_file

from basicsr.models.archs import define_network
from basicsr.models.archs.arch_util import build_named
from basicsr.utils.checkpoint import CheckpointError, convert_weights, load_checkpoint, load_network, save_atomic
from basicsr.utils.options import OptionError, parse
import helpers
from helpers import load_script

TINY = {'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 2}
convert_script = load_script('scripts/convert_weights.py')


def _random_state(seed, cfg=TINY):
    """A tiny NAFSSR's state dict with every tensor random, so that two seeds never agree anywhere."""
    torch.manual_seed(seed)
    net = define_network(dict(cfg))
    return {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in net.state_dict().items()}


def _equal(a, b):
    return set(a) == set(b) and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


def _sha256(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


@pytest.fixture()
def release_pth(tmp_path):
    """A network file as train.py writes it: params, params_ema and plain extras (net_g_best's iter and best)."""
    params, ema = _random_state(1), _random_state(2)
    path = tmp_path / 'net_g_best.pth'
    save_atomic({'params': params, 'params_ema': ema, 'iter': 40, 'best': {'psnr': {'value': 23.5, 'iter': 40}}},
                path)
    return path, params, ema


def test_convert_both_ways_is_bit_identical_and_prints_the_checksums(release_pth, tmp_path, capsys):
    path, params, ema = release_pth
    st, back = tmp_path / 'w.safetensors', tmp_path / 'back.pth'
    assert convert_script.main([str(path), str(st)]) == 0
    out = capsys.readouterr().out
    assert f'{path}: sha256 {_sha256(path)}' in out
    assert f'{st}: sha256 {_sha256(st)} (params, params_ema: {2 * len(params)} tensors)' in out
    with safe_open(str(st), framework='pt') as f:
        assert f.metadata()['format'] == 'stereo_sr' and f.metadata()['param_keys'] == 'params,params_ema'
        assert sorted(f.keys()) == sorted([f'params.{k}' for k in params] + [f'params_ema.{k}' for k in ema])
    assert convert_script.main([str(st), str(back)]) == 0
    restored = load_checkpoint(back)
    assert _equal(restored['params'], params) and _equal(restored['params_ema'], ema)
    assert restored['iter'] == 40 and restored['best'] == {'psnr': {'value': 23.5, 'iter': 40}}


def test_one_state_dict_is_a_plain_safetensors_state_dict(release_pth, tmp_path):
    path, _, ema = release_pth
    st = tmp_path / 'ema.safetensors'
    assert convert_weights(path, st, param_key='params_ema') == (['params_ema'], len(ema), [])
    with safe_open(str(st), framework='pt') as f:  # what any other safetensors reader sees
        assert f.metadata()['param_keys'] == 'params_ema'
        assert _equal({k: f.get_tensor(k) for k in f.keys()}, ema)


def test_ipassr_release_layout_converts_to_params(tmp_path):
    net = build_named('iPASSR', 2)
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in net.state_dict().items()}
    tar, st = tmp_path / 'iPASSR_2xSR.pth.tar', tmp_path / 'iPASSR_2xSR.safetensors'
    save_atomic({'epoch': 80, 'state_dict': state}, tar)
    assert convert_weights(tar, st) == (['params'], len(state), [])
    assert load_checkpoint(st)['epoch'] == 80
    load_network(net, st, 'params', key_path='--weights')
    assert _equal(net.state_dict(), state)


def test_load_network_reads_safetensors_with_param_key(release_pth, tmp_path):
    path, params, ema = release_pth
    st = tmp_path / 'w.safetensors'
    convert_weights(path, st)
    for key, expected in (('params', params), ('params_ema', ema)):
        net = define_network(dict(TINY))
        load_network(net, st, key)
        assert _equal(net.state_dict(), expected)
    foreign = tmp_path / 'other_tool.safetensors'  # a bare state dict, no metadata: another tool's file
    save_file({k: v.contiguous() for k, v in ema.items()}, str(foreign))
    net = define_network(dict(TINY))
    load_network(net, foreign, 'params')
    assert _equal(net.state_dict(), ema)


def test_safetensors_of_another_family_is_named(tmp_path):
    st = tmp_path / 'iPASSR_x2.safetensors'
    save_atomic({'params': build_named('iPASSR', 2).state_dict()}, st)
    with pytest.raises(CheckpointError) as err:
        load_network(define_network(dict(TINY)), st, 'params', strict=False)
    assert str(err.value).startswith(f'path:pretrain_network_g: {st}: holds a stereo SR network (iPASSR x2), not '
                                     'NAFSSR (network_g:type): set network_g:type to iPASSR'), str(err.value)


def test_a_safetensors_file_never_runs_code(tmp_path):
    marker = tmp_path / 'ran'

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), 'w'))

    fake = tmp_path / 'weights.safetensors'
    torch.save({'params': Payload()}, fake)  # a pickle under the safetensors name
    with pytest.raises(CheckpointError, match='unreadable or truncated safetensors file'):
        load_network(define_network(dict(TINY)), fake, 'params')
    assert not marker.exists()


def _refused(capsys, argv):
    assert convert_script.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_convert_refusals_are_one_line_and_write_nothing(release_pth, tmp_path, capsys):
    path, _, ema = release_pth
    target = tmp_path / 'kept.safetensors'
    target.write_bytes(b'an earlier file')
    line = _refused(capsys, [str(path), str(target)])
    assert line == f'convert_weights.py: error: {target}: already exists; give --overwrite to replace it'
    assert target.read_bytes() == b'an earlier file'
    assert convert_script.main([str(path), str(target), '--overwrite', '--param_key', 'params_ema']) == 0
    assert _equal(load_checkpoint(target)['params_ema'], ema)

    line = _refused(capsys, [str(path), str(tmp_path / 'w.onnx')])
    assert 'w.onnx: expected a file name ending in .safetensors, .pth, .pth.tar, .pt' in line
    line = _refused(capsys, [str(path), str(tmp_path / 'a.safetensors'), '--param_key', 'ema'])
    assert line == f"convert_weights.py: error: {path}: no state dict 'ema' in it (it holds: params, params_ema)"
    truncated = tmp_path / 'cut.safetensors'
    truncated.write_bytes(target.read_bytes()[:-100])
    line = _refused(capsys, [str(truncated), str(tmp_path / 'b.pth')])
    assert line.startswith(f'convert_weights.py: error: {truncated}: unreadable or truncated safetensors file')
    assert not any(p.name in ('w.onnx', 'a.safetensors', 'b.pth') for p in tmp_path.iterdir())


def _options(tmp_path, patches, name, total_iter, weights_format='safetensors'):
    opt = {'name': name, 'model_type': 'ImageRestorationModel', 'scale': 2, 'num_gpu': 0, 'manual_seed': 3,
           'datasets': {'train': {'name': 'tiny', 'type': 'PairedStereoImageDataset', 'dataroot_gt': patches,
                                  'dataroot_lq': patches, 'gt_size_h': 8, 'gt_size_w': 24, 'num_worker_per_gpu': 0,
                                  'batch_size_per_gpu': 2}},
           'network_g': dict(TINY),
           'train': {'optim_g': {'type': 'AdamW', 'lr': 1e-3}, 'total_iter': total_iter, 'ema_decay': 0.9,
                     'pixel_opt': {'type': 'MSELoss', 'loss_weight': 1.0}},
           'logger': {'print_freq': 1, 'save_checkpoint_freq': 1, 'use_tb_logger': False, 'keep_last': 2,
                      'weights_format': weights_format}}
    path = tmp_path / f'{name}_{total_iter}.yml'
    path.write_text(yaml.safe_dump(opt))
    return str(path)


def test_weights_format_is_checked_with_the_options(tiny_stereo_root, tmp_path):
    patches = os.path.join(tiny_stereo_root, 'patches_x2')
    with pytest.raises(OptionError, match=r'logger:weights_format must be pth or safetensors .*, got .safetensor.'):
        parse(_options(tmp_path, patches, 'typo', 2, weights_format='safetensor'), root_path=str(tmp_path))


def test_train_writes_safetensors_network_files(tiny_stereo_root, tmp_path):
    """A real train.py run; resuming reads the training state (.state), never a network file, so it is the same
    for either format."""
    patches = os.path.join(tiny_stereo_root, 'patches_x2')
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=helpers.ROOT)
    env.pop('STEREO_SR_TRACEBACK', None)
    result = helpers.run([sys.executable, os.path.join(helpers.ROOT, 'train.py'), '-opt',
                          _options(tmp_path, patches, 'st', 4)], 300, cwd=str(tmp_path), env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    exp = tmp_path / 'experiments' / 'st'
    assert sorted(os.listdir(exp / 'models')) == ['net_g_3.safetensors', 'net_g_4.safetensors']  # keep_last: 2
    assert sorted(os.listdir(exp / 'training_states')) == ['3.state', '4.state']
    state = load_checkpoint(exp / 'training_states' / '4.state')
    saved = load_checkpoint(exp / 'models' / 'net_g_4.safetensors')
    assert _equal(saved['params'], state['params'])
    ema = {k[len('module.'):]: v for k, v in state['params_ema'].items() if k.startswith('module.')}  # AveragedModel
    assert _equal(saved['params_ema'], ema)


def test_an_experiment_holding_only_safetensors_files_is_kept(tmp_path):
    train = load_script('train.py')
    (tmp_path / 'models').mkdir()
    assert not train.holds_results(str(tmp_path))
    (tmp_path / 'models' / 'net_g_1000.safetensors').write_bytes(b'x')
    assert train.holds_results(str(tmp_path))


def test_every_weights_file_is_read_by_the_one_loader():
    """``torch.load`` and the safetensors package appear only in basicsr/utils/checkpoint.py, so test.py, training's
    pretrain_network_*, inference_stereo.py, export_onnx.py and the demo all read both formats through
    ``load_checkpoint`` (read from the source with ``ast``)."""
    import ast

    found = []
    roots = [os.path.join(helpers.ROOT, d) for d in ('basicsr', 'scripts')]
    files = [os.path.join(helpers.ROOT, f) for f in ('train.py', 'test.py')]
    files += [os.path.join(d, n) for root in roots for d, _, names in os.walk(root) for n in names if n.endswith('.py')]
    for path in files:
        if path.endswith(os.path.join('basicsr', 'utils', 'checkpoint.py')):
            continue
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == 'load' and getattr(node.value, 'id', '') == 'torch':
                found.append(f'{os.path.relpath(path, helpers.ROOT)}:{node.lineno} torch.load')
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ''] if isinstance(node, ast.ImportFrom) else []
            found += [f'{os.path.relpath(path, helpers.ROOT)}:{node.lineno} {n}' for n in names
                      if n.split('.')[0] == 'safetensors']
    assert found == []


def test_the_gan_resume_hint_names_the_network_file_that_run_wrote(tiny_stereo_root, tmp_path):
    """A GAN run meeting a fidelity run's state suggests fine-tuning from its last net_g file: the .safetensors
    one when that run wrote safetensors, whatever this run's logger:weights_format."""
    from basicsr.models import build_model

    opt_path = _options(tmp_path, os.path.join(tiny_stereo_root, 'patches_x2'), 'gan', 4, weights_format='pth')
    opt = yaml.safe_load(open(opt_path))
    opt['model_type'] = 'StereoSRGANModel'
    opt['network_d'] = {'type': 'UNetDiscriminatorSN', 'num_in_ch': 3, 'num_feat': 4}
    opt['train'].update(optim_d={'type': 'AdamW', 'lr': 1e-3}, gan_opt={'type': 'GANLoss', 'gan_type': 'vanilla'})
    with open(opt_path, 'w') as f:
        yaml.safe_dump(opt, f)
    model = build_model(parse(opt_path, root_path=str(tmp_path)))
    models = tmp_path / 'experiments' / 'gan' / 'models'
    models.mkdir(parents=True)
    (models / 'net_g_7.safetensors').write_bytes(b'written by the fidelity run')
    with pytest.raises(CheckpointError, match=f'path:pretrain_network_g={models / "net_g_7.safetensors"}$'):
        model.load_extra_state({**model.extra_state(), 'iter': 7, 'params_d': None}, 'fid/7.state')
