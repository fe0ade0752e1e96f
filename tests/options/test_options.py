"""basicsr.utils.options and the registry: parsing, --force_yml overrides, path layout, one-line errors."""
import os
import re

import pytest
import yaml

from basicsr.utils.options import OptionError, apply_force_yml, get_path, parse, parse_options
from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY, Registry

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RELEASE = [os.path.join(ROOT, 'options', kind, 'NAFSSR', f'NAFSSR-{v}_x{s}.yml')
           for kind in ('train', 'test') for v in 'TSBL' for s in (2, 4)]


@pytest.mark.parametrize('path', RELEASE, ids=lambda p: '/'.join(p.split(os.sep)[-3:]))
def test_release_option_files_parse(path, tmp_path):
    is_train = os.sep + 'train' + os.sep in path
    opt = parse(path, is_train=is_train, root_path=tmp_path)
    scale = opt['scale']
    assert opt['network_g']['type'] == 'NAFSSR' and opt['network_g']['up_scale'] == scale
    if is_train:
        assert opt['path']['training_states'] == str(tmp_path / 'experiments' / opt['name'] / 'training_states')
        assert opt['path']['tb_logger'] == str(tmp_path / 'tb_logger' / opt['name'])
        assert opt['train']['scheduler']['T_max'] == opt['train']['total_iter']
        assert opt['datasets']['train']['gt_size_h'] == 30 * scale
        assert opt['datasets']['train']['phase'] == 'train' and opt['datasets']['val']['phase'] == 'val'
        assert isinstance(opt['val']['val_freq'], float)  # !!float 2e4 as in the release
    else:
        assert [d['name'] for d in opt['datasets'].values()] == ['KITTI2012', 'KITTI2015', 'Middlebury',
                                                                 'Flickr1024']
        assert opt['path']['results_root'] == str(tmp_path / 'results' / opt['name'])


def test_quickstart_options_parse(tmp_path):
    opt = parse(os.path.join(ROOT, 'options', 'train', 'NAFSSR', 'quickstart_x4.yml'), root_path=tmp_path)
    assert opt['num_gpu'] == 0 and opt['scale'] == 4


def _write(tmp_path, opt):
    path = tmp_path / 'opt.yml'
    path.write_text(yaml.safe_dump(opt))
    return str(path)


def _minimal():
    return {'name': 'x', 'scale': 2, 'network_g': {'type': 'NAFSSR'},
            'datasets': {'train': {'type': 'PairedStereoImageDataset', 'batch_size_per_gpu': 2}},
            'train': {'total_iter': 10, 'optim_g': {'type': 'AdamW'}}}


def test_force_yml_overrides_parse_values_and_create_levels():
    opt = {'train': {'total_iter': 5}}
    apply_force_yml(opt, ['train:total_iter=7', 'train:optim_g:lr=1e-3', 'val:save_img=true', 'path:x=~'])
    assert opt['train']['total_iter'] == 7 and opt['train']['optim_g']['lr'] == 1e-3
    assert opt['val']['save_img'] is True and opt['path']['x'] is None
    assert get_path(opt, 'train:optim_g:lr') == 1e-3 and get_path(opt, 'train:nope', 3) == 3
    with pytest.raises(OptionError, match='expected key:path=value'):
        apply_force_yml(opt, ['train:total_iter'])
    with pytest.raises(OptionError, match='train:total_iter is 7, not a mapping'):
        apply_force_yml(opt, ['train:total_iter:x=1'])


def test_force_yml_values_are_never_read_as_files(tmp_path):
    """A value naming an existing file stays that string (a checkpoint is not parsed as YAML)."""
    weights = tmp_path / 'net_g_20.pth'
    weights.write_bytes(b'\x80\x02binary')
    text = tmp_path / 'notes.yml'
    text.write_text('a: 1\n')
    opt = apply_force_yml({}, [f'path:pretrain_network_g={weights}', f'path:resume_state={text}'])
    assert opt['path'] == {'pretrain_network_g': str(weights), 'resume_state': str(text)}
    with pytest.raises(OptionError, match=r"--force_yml: the value of train:x is not valid YAML at .*\(quote it"):
        apply_force_yml({}, ['train:x=[1, 2'])


def test_force_yml_null_leaves_a_dataset_out(tmp_path):
    test_file = [p for p in RELEASE if os.sep + 'test' + os.sep in p][0]
    opt = parse(test_file, is_train=False, force_yml=['datasets:test1=~', 'datasets:test3='], root_path=tmp_path)
    assert [d['name'] for d in opt['datasets'].values()] == ['KITTI2012', 'Middlebury']


def test_binary_option_file_is_one_line(tmp_path):
    bad = tmp_path / 'model.pth'
    bad.write_bytes(b'\x80\x02\x00binary')
    with pytest.raises(OptionError, match=r'model.pth: not a text \(UTF-8\) YAML option file'):
        parse(bad, is_train=False, root_path=tmp_path)


@pytest.mark.parametrize('edit, key', [
    (lambda o: o.pop('name'), 'name'),
    (lambda o: o.update(scale='4'), 'scale'),
    (lambda o: o['train'].pop('total_iter'), 'train:total_iter'),
    (lambda o: o['train'].update(total_iter=0), 'train:total_iter'),
    (lambda o: o['datasets']['train'].update(batch_size_per_gpu=0), 'datasets:train:batch_size_per_gpu'),
    (lambda o: o['network_g'].pop('type'), 'network_g:type'),
    (lambda o: o.update(num_gpu=-1), 'num_gpu'),
    (lambda o: o.update(logger={'print_freq': 0}), 'logger:print_freq'),
])
def test_validation_errors_name_the_key_path(tmp_path, edit, key):
    opt = _minimal()
    edit(opt)
    path = _write(tmp_path, opt)
    with pytest.raises(OptionError) as exc:
        parse(path, root_path=tmp_path)
    message = str(exc.value)
    assert len(message.splitlines()) == 1 and key in message and path in message


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(OptionError, match='option file not found'):
        parse(str(tmp_path / 'nope.yml'))
    bad = tmp_path / 'bad.yml'
    bad.write_text('name: [unclosed\n')
    with pytest.raises(OptionError, match='not valid YAML'):
        parse(str(bad))


def test_command_line_launcher_spellings(tmp_path, monkeypatch):
    path = _write(tmp_path, _minimal())
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    opt, args = parse_options(True, ['-opt', path, '--launcher', 'pytorch', '--local-rank=1'])
    assert opt['launcher'] == 'pytorch' and args.local_rank == 1 and os.environ['LOCAL_RANK'] == '1'
    opt, args = parse_options(True, ['-opt', path, '--local_rank', '1', '--debug'])
    assert opt['name'] == 'debug_x' and opt['logger']['print_freq'] == 1


def test_registry_errors_are_one_line_with_key_path():
    import basicsr  # noqa: F401

    with pytest.raises(KeyError) as exc:
        LOSS_REGISTRY.build({'type': 'MSELos'}, 'train:pixel_opt')
    assert 'train:pixel_opt:type' in exc.value.args[0] and 'MSELoss' in exc.value.args[0]
    with pytest.raises(TypeError, match=r'train:pixel_opt:loss_wieght \(did you mean loss_weight\?\)'):
        LOSS_REGISTRY.build({'type': 'MSELoss', 'loss_wieght': 1}, 'train:pixel_opt')
    assert 'ImageRestorationModel' in MODEL_REGISTRY and 'NAFSSR' in ARCH_REGISTRY
    reg = Registry('thing')
    reg.register(int, name='a')
    with pytest.raises(KeyError, match='already registered'):
        reg.register(float, name='a')


def test_unknown_keys_are_reported_once_and_ignored(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv('RANK', raising=False)
    train_file = [p for p in RELEASE if os.sep + 'train' + os.sep in p][0]
    opt = parse(train_file, is_train=True, root_path=tmp_path,
                force_yml=['train:totl_iter=5', 'val:savee_img=true', 'zzz=1'])
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f'{train_file}: warning: unknown options zzz, train:totl_iter (did you mean total_iter?), '
                   'val:savee_img (did you mean save_img?); ignored']
    assert opt['train']['total_iter'] == 400000  # the typo changed nothing
    monkeypatch.setenv('RANK', '1')  # other processes of a distributed run stay quiet
    parse(train_file, is_train=True, root_path=tmp_path, force_yml=['train:totl_iter=5'])
    assert capsys.readouterr().err == ''


@pytest.mark.parametrize('path', RELEASE, ids=lambda p: '/'.join(p.split(os.sep)[-3:]))
def test_release_option_files_have_no_unknown_keys(path, tmp_path, capsys):
    parse(path, is_train=os.sep + 'train' + os.sep in path, root_path=tmp_path)
    assert capsys.readouterr().err == ''


def test_val_amp_dtype_is_checked(tmp_path):
    test_file = [p for p in RELEASE if os.sep + 'test' + os.sep in p][0]
    with pytest.raises(OptionError, match=r"val:amp_dtype must be bf16 or fp16 \(or null\), got 'fp32x'"):
        parse(test_file, is_train=False, force_yml=['val:amp_dtype=fp32x'], root_path=tmp_path)
    opt = parse(test_file, is_train=False, force_yml=['val:amp_dtype=bf16'], root_path=tmp_path)
    assert opt['val']['amp_dtype'] == 'bf16'


@pytest.mark.parametrize('override, message', [
    ('train:warmup_iter=abc', "train:warmup_iter must be a whole number >= -1, got 'abc'"),
    ('train:mixup_beta=-1', 'train:mixup_beta must be a positive number'),
    ('val:save_img=maybe', "val:save_img must be true or false, got 'maybe'"),
    ('logger:keep_last=0', 'logger:keep_last must be a whole number >= 1, got 0'),
])
def test_bad_values_name_their_key_when_read(override, message, tmp_path):
    train_file = [p for p in RELEASE if os.sep + 'train' + os.sep in p][0]
    with pytest.raises(OptionError, match=re.escape(message)):
        parse(train_file, is_train=True, root_path=tmp_path, force_yml=[override])
    assert parse(train_file, is_train=True, root_path=tmp_path, force_yml=['train:warmup_iter=1e3'])


def test_force_yml_can_be_repeated(tmp_path):
    train_file = [p for p in RELEASE if os.sep + 'train' + os.sep in p][0]
    opt, _ = parse_options(True, ['-opt', train_file, '--force_yml', 'name=first', 'scale=2',
                                  '--force_yml', 'name=second'])
    assert opt['name'] == 'second' and opt['scale'] == 2
