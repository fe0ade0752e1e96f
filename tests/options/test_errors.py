"""One-line option errors that name the file, the position or the key path, and what was expected.

YAML syntax errors keep the parser's line and column; dataset folders, ``network_g:up_scale`` and the ``type:``
names are checked when the options are read, before any data, network or checkpoint is touched.
"""
import os

import pytest
import yaml

import basicsr.models.optimizers  # noqa: F401  (registers the optimizers)
import basicsr.utils.lr_scheduler  # noqa: F401  (registers the schedulers)
from basicsr.utils.options import OptionError, apply_force_yml, check_types, parse
from basicsr.utils.registry import (ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY,
                                    OPTIMIZER_REGISTRY, SCHEDULER_REGISTRY, Registry)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_FILE = os.path.join(ROOT, 'options', 'train', 'NAFSSR', 'NAFSSR-T_x4.yml')
TEST_FILE = os.path.join(ROOT, 'options', 'test', 'NAFSSR', 'NAFSSR-T_x4.yml')
# what an entry point passes: every type: name of an option file, checked against the registry that holds it
REGISTRIES = {'network_g:type': ARCH_REGISTRY, 'datasets:*:type': DATASET_REGISTRY, 'model_type': MODEL_REGISTRY,
              'train:pixel_opt:type': LOSS_REGISTRY, 'train:perceptual_opt:type': LOSS_REGISTRY,
              'val:metrics:*:type': METRIC_REGISTRY, 'train:optim_g:type': OPTIMIZER_REGISTRY,
              'train:scheduler:type': SCHEDULER_REGISTRY}


def _one_line(exc_info):
    message = str(exc_info.value)
    assert len(message.splitlines()) == 1, message
    return message


# -- YAML syntax: the parser's position and words -------------------------------------------------------------

def test_yaml_syntax_error_names_line_and_column(tmp_path):
    path = tmp_path / 'opt.yml'
    path.write_text('name: x\nscale: 2\nnetwork_g:\n  type: NAFSSR\n  width: a: b\n')
    with pytest.raises(OptionError) as exc:
        parse(path, root_path=tmp_path)
    assert _one_line(exc) == f'{path}: not valid YAML at line 5, column 11: mapping values are not allowed here'


def test_yaml_error_with_context_names_both_positions(tmp_path):
    path = tmp_path / 'opt.yml'
    path.write_text('name: x\nnetwork_g: {type: NAFSSR,\n  width: 8\nscale: 2\n')
    with pytest.raises(OptionError) as exc:
        parse(path, root_path=tmp_path)
    assert _one_line(exc) == (f"{path}: not valid YAML at line 4, column 6: expected ',' or '}}', but got "
                              "':' (while parsing a flow mapping at line 2, column 12)")


def test_yaml_tab_indentation_is_named(tmp_path):
    path = tmp_path / 'opt.yml'
    path.write_text('name: x\nscale: 2\n\tnetwork_g: {}\n')
    with pytest.raises(OptionError) as exc:
        parse(path, root_path=tmp_path)
    assert _one_line(exc) == (f"{path}: not valid YAML at line 3, column 1: found character '\\t' that cannot "
                              'start any token (while scanning for the next token)')


def test_force_yml_value_error_names_the_column():
    with pytest.raises(OptionError) as exc:
        apply_force_yml({}, ['train:x=[1, 2'])
    assert _one_line(exc) == ("--force_yml: the value of train:x is not valid YAML at column 6: expected ',' or ']', "
                              "but got '<stream end>' (while parsing a flow sequence at column 1) "
                              "(quote it, e.g. key='a: b')")
    with pytest.raises(OptionError) as exc:
        apply_force_yml({}, ['name=a: b: c'])
    assert _one_line(exc) == ('--force_yml: the value of name is not valid YAML at column 5: mapping values are not '
                              "allowed here (quote it, e.g. key='a: b')")


def test_force_yml_multi_line_value_names_line_and_column():
    with pytest.raises(OptionError) as exc:
        apply_force_yml({}, ['train:x=a\nb: c'])
    assert 'not valid YAML at line 2, column 2: mapping values are not allowed here' in _one_line(exc)


# -- dataset folders -------------------------------------------------------------------------------------------

@pytest.mark.parametrize('phase, key, value, shown', [
    ('train', 'dataroot_gt', None, 'None'),
    ('train', 'dataroot_lq', None, 'None'),
    ('val', 'dataroot_gt', 5, '5'),
    ('train', 'dataroot_lq', '', "''"),
    ('train', 'dataroot_gt', ['a', 'b'], "['a', 'b']"),
])
def test_dataroot_must_be_a_folder_path(tmp_path, phase, key, value, shown):
    opt = yaml.safe_load(open(TRAIN_FILE))
    opt['datasets'][phase][key] = value
    path = tmp_path / 'opt.yml'
    path.write_text(yaml.safe_dump(opt))
    with pytest.raises(OptionError) as exc:
        parse(path, root_path=tmp_path)
    assert _one_line(exc) == f'{path}: datasets:{phase}:{key} must be a folder path, got {shown}'


def test_null_dataroot_from_the_command_line_in_a_test_file(tmp_path):
    with pytest.raises(OptionError) as exc:
        parse(TEST_FILE, is_train=False, root_path=tmp_path, force_yml=['datasets:test2:dataroot_lq=~'])
    assert _one_line(exc) == f'{TEST_FILE}: datasets:test2:dataroot_lq must be a folder path, got None'


# -- network_g:up_scale against scale --------------------------------------------------------------------------

@pytest.mark.parametrize('opt_file, is_train', [(TRAIN_FILE, True), (TEST_FILE, False)])
def test_up_scale_must_equal_scale(tmp_path, opt_file, is_train):
    with pytest.raises(OptionError) as exc:
        parse(opt_file, is_train=is_train, root_path=tmp_path, force_yml=['scale=2'])
    assert _one_line(exc) == f'{opt_file}: network_g:up_scale must equal scale (2), got 4'
    opt = parse(opt_file, is_train=is_train, root_path=tmp_path, force_yml=['scale=2', 'network_g:up_scale=2'])
    assert opt['scale'] == opt['network_g']['up_scale'] == 2


def test_network_without_up_scale_is_not_checked(tmp_path):
    opt = parse(TRAIN_FILE, root_path=tmp_path, force_yml=['network_g={type: NAFNet, width: 8}'])
    assert 'up_scale' not in opt['network_g']


# -- type names against the registries the caller passes -------------------------------------------------------

def test_release_files_pass_the_type_check(tmp_path):
    for opt_file, is_train in ((TRAIN_FILE, True), (TEST_FILE, False)):
        parse(opt_file, is_train=is_train, root_path=tmp_path, registries=REGISTRIES)


@pytest.mark.parametrize('override, message', [
    ('network_g:type=NAFSR', "network_g:type: unknown arch type 'NAFSR'. Did you mean NAFSSR"),
    ('datasets:val:type=PairedStereoDataset', "datasets:val:type: unknown dataset type 'PairedStereoDataset'. "
                                              'Did you mean PairedStereoImageDataset'),
    ('model_type=ImageRestorationModle', "model_type: unknown model type 'ImageRestorationModle'"),
    ('train:pixel_opt:type=MSELos', "train:pixel_opt:type: unknown loss type 'MSELos'. Did you mean MSELoss"),
    ('train:optim_g:type=AdamV', "train:optim_g:type: unknown optimizer type 'AdamV'. Did you mean Adam"),
    ('train:scheduler:type=TrueCosineAnnealing', "train:scheduler:type: unknown scheduler type "
                                                 "'TrueCosineAnnealing'. Did you mean TrueCosineAnnealingLR"),
])
def test_type_typos_are_found_when_the_options_are_read(tmp_path, override, message):
    with pytest.raises(OptionError) as exc:
        parse(TRAIN_FILE, root_path=tmp_path, force_yml=[override], registries=REGISTRIES)
    line = _one_line(exc)
    assert line.startswith(f'{TRAIN_FILE}: {message}') and 'Registered: ' in line
    parse(TRAIN_FILE, root_path=tmp_path, force_yml=[override])  # without registries: no type check


def test_check_types_takes_any_registry_and_key_path():
    things = Registry('thing')
    things.register(int, name='X')
    opt = {'network_g': {'type': 'NAFSSR'}, 'datasets': {'a': {'type': 'X'}, 'b': {'type': 'Y'}, 'c': None}}
    check_types(opt, {'network_g:type': ARCH_REGISTRY, 'datasets:a:type': things, 'model_type': MODEL_REGISTRY},
                src='o.yml')  # an absent key (model_type) is left to the code that fills in its default
    with pytest.raises(OptionError) as exc:
        check_types(opt, {'datasets:*:type': things}, src='o.yml')
    assert _one_line(exc) == "o.yml: datasets:b:type: unknown thing type 'Y'. Registered: X."


def test_metric_type_typo_is_found_with_the_registries(tmp_path):
    with pytest.raises(OptionError) as exc:
        parse(TRAIN_FILE, root_path=tmp_path, force_yml=['val:metrics:psnr:type=calculate_psnrr'],
              registries=REGISTRIES)
    assert _one_line(exc).startswith(f"{TRAIN_FILE}: val:metrics:psnr:type: unknown metric type 'calculate_psnrr'. "
                                     'Did you mean calculate_psnr')


def test_dataset_key_typos_are_refused_when_the_options_are_read(tmp_path):
    """A datasets entry is checked against its dataset class's arguments (and the loader's keys) when the options
    are read, with the closest argument, as build_dataset would refuse it later."""
    from basicsr.option_checks import OPTION_CHECKS

    with pytest.raises(OptionError) as exc:
        parse(TRAIN_FILE, root_path=tmp_path, force_yml=['datasets:train:gt_size_hh=120'], registries=OPTION_CHECKS)
    line = _one_line(exc)
    assert line.startswith(f'{TRAIN_FILE}: unknown option datasets:train:gt_size_hh (did you mean gt_size_h?) for '
                           'PairedStereoImageDataset')
    parse(TRAIN_FILE, root_path=tmp_path, force_yml=['datasets:train:num_worker_per_gpu=0'], registries=OPTION_CHECKS)
