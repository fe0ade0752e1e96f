"""Every option key is read by the configured model or refused: a key that only another model class reads (its
``OPTION_KEYS``) stops the run when the options are parsed, naming the class that would read it (the checks of
``logger:wandb`` are in tests/train/test_wandb.py)."""
import glob
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from basicsr.data import LOADER_KEYS
from basicsr.option_checks import OPTION_CHECKS
from basicsr.utils.logger import ExperimentLogger
from basicsr.utils.options import (CHECKED_SECTIONS, RELEASE_ONLY_KEYS, RUN_KEYS, OptionError, check_declared_keys,
                                   declared_keys, get_path, key_readers, known_keys, parse_options, yaml_load)
from basicsr.utils.registry import DATASET_REGISTRY, MODEL_REGISTRY, Registry

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GAN_FILE = os.path.join(ROOT, 'options', 'train', 'NAFSSR', 'sample_perceptual_x4.yml')
IPASSR_FILE = os.path.join(ROOT, 'options', 'train', 'iPASSR', 'sample_x4.yml')
PLAIN_FILE = os.path.join(ROOT, 'options', 'train', 'NAFSSR', 'quickstart_x4.yml')
OPTION_FILES = sorted(glob.glob(os.path.join(ROOT, 'options', 't*', '*', '*.yml')))


def parse_train(path, *overrides):
    argv = ['-opt', path] + (['--force_yml', *overrides] if overrides else [])
    return parse_options(True, argv, registries=OPTION_CHECKS)[0]


def refusal(path, *overrides):
    with pytest.raises(OptionError) as info:
        parse_train(path, *overrides)
    message = str(info.value)
    assert '\n' not in message and message.startswith(f'{path}: '), message
    return message[len(path) + 2:]


@pytest.mark.parametrize('path', OPTION_FILES, ids=lambda p: os.path.relpath(p, os.path.join(ROOT, 'options')))
def test_every_option_file_of_the_repository_parses_with_the_checks(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parse_options(os.sep + 'train' + os.sep in path, ['-opt', path], registries=OPTION_CHECKS)


def test_the_gan_keys_without_the_gan_model_are_refused_naming_it():
    gan = 'network_d, train:gan_opt, train:optim_d, train:net_d_iters, train:net_d_init_iters and ' \
          'train:discriminator_input are read by StereoSRGANModel'
    for model_type in ('ImageRestorationModel', '~', 'IPASSRModel'):
        shown = 'ImageRestorationModel' if model_type == '~' else model_type  # null: the default model
        assert refusal(GAN_FILE, f'model_type={model_type}') == (
            f'{gan}, but model_type is {shown}; set model_type: StereoSRGANModel or remove them')


@pytest.mark.parametrize('key, value', [
    ('network_d', '{type: UNetDiscriminatorSN, num_in_ch: 3}'), ('train:gan_opt', '{type: GANLoss}'),
    ('train:optim_d', '{type: Adam, lr: 1.0e-4}'), ('train:net_d_iters', '2'), ('train:net_d_init_iters', '10'),
    ('train:discriminator_input', 'pair'), ('path:pretrain_network_d', 'net_d.pth'), ('path:strict_load_d', 'false'),
    ('path:param_key_d', 'params'),
])
def test_each_gan_key_alone_is_refused_for_the_restoration_model(key, value):
    assert refusal(PLAIN_FILE, f'{key}={value}') == (
        f'{key} is read by StereoSRGANModel, but model_type is ImageRestorationModel; set model_type: '
        'StereoSRGANModel or remove it')


def test_ipassr_losses_without_the_ipassr_model_are_refused_naming_it():
    assert refusal(IPASSR_FILE, 'model_type=ImageRestorationModel') == (
        'train:photometric_opt, train:cycle_opt, train:smoothness_opt and train:consistency_opt are read by '
        'IPASSRModel, but model_type is ImageRestorationModel; set model_type: IPASSRModel or remove them')
    assert refusal(PLAIN_FILE, 'train:cycle_opt={type: CycleLoss}').startswith('train:cycle_opt is read by IPASSRModel')


def test_a_null_key_counts_as_absent():
    opt = parse_train(GAN_FILE, 'model_type=ImageRestorationModel', 'network_d=~', 'train:gan_opt=~', 'train:optim_d=~',
                      'train:net_d_iters=~', 'train:net_d_init_iters=~', 'train:discriminator_input=~')
    assert opt['model_type'] == 'ImageRestorationModel'


@pytest.mark.parametrize('path', OPTION_FILES, ids=lambda p: os.path.relpath(p, os.path.join(ROOT, 'options')))
def test_every_key_of_the_option_files_is_declared_by_a_class_that_reads_it(path):
    """Each key of an option file is declared by what reads it for that file's configuration: the run itself
    (``RUN_KEYS``), the file's model class (not another model's), the logger, or its dataset class (its constructor
    arguments and the loader keys); the deeper entries (``train:optim_g:lr``) are checked by their registries.
    The only other keys are the released files' ``RELEASE_ONLY_KEYS``, accepted to run those files unchanged."""
    opt = yaml_load(Path(path))
    model = MODEL_REGISTRY.get(opt.get('model_type') or 'ImageRestorationModel')
    declared = set(RUN_KEYS) | set(RELEASE_ONLY_KEYS) | declared_keys(model) | declared_keys(ExperimentLogger)
    for section in CHECKED_SECTIONS:
        node = opt if not section else get_path(opt, section)
        for key in node if isinstance(node, dict) else ():
            key_path = f'{section}:{key}' if section else key
            assert key_path in declared or any(d.startswith(key_path + ':') for d in declared), (
                f'{key_path} is read by no class for model_type {model.__name__}')
    for phase, dataset in opt['datasets'].items():
        accepted = set(inspect.signature(DATASET_REGISTRY.get(dataset['type'])).parameters) | set(LOADER_KEYS)
        assert set(dataset) - {'type'} <= accepted, f'datasets:{phase}: {set(dataset) - {"type"} - accepted}'


def test_a_key_that_no_class_declares_is_reported_and_one_another_model_reads_is_refused(capsys, monkeypatch):
    """Removing a key from its class's declaration makes it a typo warning, and a key only another model declares
    is refused: the warnings and refusals come from the declarations, not from a hand-kept list."""
    monkeypatch.delenv('RANK', raising=False)
    parse_train(PLAIN_FILE, 'train:mixup_betta=0.4')
    assert capsys.readouterr().err.strip() == (f'{PLAIN_FILE}: warning: unknown option train:mixup_betta (did you '
                                               'mean mixup_beta?); ignored')
    model = MODEL_REGISTRY.get('ImageRestorationModel')
    monkeypatch.setattr(model, 'OPTION_KEYS', tuple(k for k in model.OPTION_KEYS if k != 'train:pixel_opt'))
    parse_train(PLAIN_FILE)  # its train:pixel_opt
    assert capsys.readouterr().err.strip() == f'{PLAIN_FILE}: warning: unknown option train:pixel_opt; ignored'
    monkeypatch.setattr(MODEL_REGISTRY.get('IPASSRModel'), 'OPTION_KEYS', ('train:pixel_opt',))
    assert refusal(PLAIN_FILE) == (
        'train:pixel_opt is read by IPASSRModel, but model_type is ImageRestorationModel; set model_type: '
        'IPASSRModel or remove it')


def test_every_declared_key_is_a_known_key():
    """A key a model class or the logger declares is never reported as an unknown option (a typo)."""
    known = known_keys(key_readers())
    for cls in key_readers():
        for key in declared_keys(cls):
            section, _, last = key.rpartition(':')
            assert last in known[section], f'{cls.__name__} declares {key}, which known_keys does not list'


def test_subclasses_extend_the_keys_of_their_base():
    class Base:
        OPTION_KEYS = ('train:a',)

    class Child(Base):
        OPTION_KEYS = ('train:b',)

    class Other(Base):
        pass

    models = Registry('model')
    for cls in (Base, Child, Other):
        models.register(cls)
    assert declared_keys(Child) == {'train:a', 'train:b'} and declared_keys(Other) == {'train:a'}
    check_declared_keys({'model_type': 'Child', 'train': {'a': 1, 'b': 2}}, models, 'model_type')
    check_declared_keys({'model_type': 'Other', 'train': {'a': 1}}, models, 'model_type')
    with pytest.raises(OptionError, match='^train:b is read by Child, but model_type is Other; set model_type: Child '
                                          'or remove it$'):
        check_declared_keys({'model_type': 'Other', 'train': {'a': 1, 'b': 2}}, models, 'model_type')


def test_train_py_refuses_a_gan_file_with_another_model_before_writing_anything(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop('STEREO_SR_TRACEBACK', None)
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'train.py'), '-opt', GAN_FILE, '--force_yml',
                             'model_type=ImageRestorationModel'], cwd=str(tmp_path), env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f'train.py: error: {GAN_FILE}: network_d, train:gan_opt, train:optim_d, train:net_d_iters, '
        'train:net_d_init_iters and train:discriminator_input are read by StereoSRGANModel, but model_type is '
        'ImageRestorationModel; set model_type: StereoSRGANModel or remove them')
    assert os.listdir(tmp_path) == []  # no experiments/ folder, no lock, no log
