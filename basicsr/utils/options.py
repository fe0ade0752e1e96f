"""Parse, override and validate YAML option files, once, at the edge.

The format is BasicSR's (and the released NAFSSR option files are accepted unchanged). ``parse()`` returns a
plain dict with ``path.*`` filled in; every error is one line that names the file and the key path
(``train:optim_g:lr``), using the same ``a:b:c`` spelling as ``--force_yml``.
"""
import argparse
import importlib.util
import os
import sys
from pathlib import Path

import yaml

from basicsr.utils.amp import AMP_DTYPES
from basicsr.utils.errors import UserError
from basicsr.utils.registry import MODEL_REGISTRY


WEIGHTS_FORMATS = ('pth', 'safetensors')  # logger:weights_format: net_<label>_<iter>.pth or .safetensors


class OptionError(UserError, ValueError):
    """A missing, unknown or ill-typed option; the message names the file and the key path."""


def _yaml_loader():
    """A safe loader that also reads ``1e-3`` (without ``!!float``) as a float, as users expect."""
    import re

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        'tag:yaml.org,2002:float',
        re.compile(r'''^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+][0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$''', re.X), list('-+0123456789.'))
    return Loader


_LOADER = _yaml_loader()


def yaml_load(text_or_path):
    """Load YAML from a ``Path`` (a file) or a ``str`` (YAML text, never opened as a file: an override such as
    ``path:pretrain_network_g=model.pth`` must stay the string it is). Safe: no Python objects are constructed."""
    if isinstance(text_or_path, Path):
        with open(text_or_path, encoding='utf-8') as f:
            return yaml.load(f, Loader=_LOADER)
    return yaml.load(text_or_path, Loader=_LOADER)


def yaml_error_text(err, text=None):
    """The parser's position and words as one line: ``' at line 27, column 10: mapping values are not allowed
    here'``, plus the construct it was in when that started elsewhere. ``text``: the YAML text parsed, when it was
    a string; one line of text is given its column only."""
    def where(mark):
        column = f'column {mark.column + 1}'
        return column if text is not None and '\n' not in text.strip() else f'line {mark.line + 1}, {column}'

    problem, mark = getattr(err, 'problem', None), getattr(err, 'problem_mark', None)
    if not problem or mark is None:  # e.g. a ReaderError (a control character): its own words, on one line
        return ': ' + ' '.join(line.strip() for line in str(err).splitlines() if line.strip())
    line = f' at {where(mark)}: {problem}'
    context, context_mark = getattr(err, 'context', None), getattr(err, 'context_mark', None)
    if context and context_mark is not None and (context_mark.line, context_mark.column) != (mark.line, mark.column):
        line += f' ({context} at {where(context_mark)})'
    elif context:
        line += f' ({context})'
    return line


def apply_force_yml(opt, overrides, source='--force_yml'):
    """Apply BasicSR-style overrides ``a:b:c=value``; the value is parsed as YAML, missing levels are created."""
    for item in overrides or []:
        if '=' not in item:
            raise OptionError(f'{source}: expected key:path=value, got {item!r}')
        key_path, value = item.split('=', 1)
        keys = [k for k in key_path.strip().split(':')]
        if not all(keys):
            raise OptionError(f'{source}: empty key in {key_path!r} (expected a:b:c=value)')
        node = opt
        for depth, key in enumerate(keys[:-1]):
            if node.get(key) is None:
                node[key] = {}
            if not isinstance(node[key], dict):
                raise OptionError(f"{source}: {':'.join(keys[:depth + 1])} is {node[key]!r}, not a mapping, "
                                  f'so {key_path} cannot be set')
            node = node[key]
        try:
            node[keys[-1]] = yaml_load(value) if value.strip() else None
        except yaml.YAMLError as err:
            raise OptionError(f"{source}: the value of {key_path} is not valid YAML{yaml_error_text(err, value)} "
                              "(quote it, e.g. key='a: b')") from None
    return opt


def get_path(opt, key_path, default=None):
    """``get_path(opt, 'train:optim_g:lr')``: the value at a ``:``-separated key path, or ``default``."""
    node = opt
    for key in key_path.split(':'):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def _check(cond, src, key_path, expected, value):
    if not cond:
        raise OptionError(f'{src}: {key_path} must be {expected}, got {value!r}')


def _require(opt, src, key_path, types, expected):
    value = get_path(opt, key_path, default=KeyError)
    if value is KeyError:
        raise OptionError(f'{src}: missing required option {key_path} ({expected})')
    _check(isinstance(value, types) and not isinstance(value, bool), src, key_path, expected, value)
    return value


# The option keys the run itself reads: this module (``validate``, the paths ``parse`` fills in), the entry points
# (train.py, test.py) and the process set-up (``dist_util``). The classes that read the other keys declare them in
# ``OPTION_KEYS``: the model classes (``MODEL_REGISTRY``), the logger (``logger.ExperimentLogger``); ``known_keys``
# puts the tables together, and anything else in these sections is reported as a typo (``unknown_keys``).
RUN_KEYS = ('name', 'model_type', 'scale', 'num_gpu', 'manual_seed', 'datasets', 'is_train', 'opt_path', 'launcher',
            'dist', 'rank', 'world_size', 'train:total_iter', 'val:val_freq', 'val:save_img', 'val:metrics',
            'val:self_ensemble', 'val:amp_dtype', 'logger:print_freq', 'logger:save_checkpoint_freq',
            'path:resume_state', 'path:param_key', 'path:root', 'path:experiments_root', 'path:results_root',
            'path:models', 'path:training_states', 'path:log', 'path:visualization', 'path:tb_logger',
            'dist_params:backend', 'dist_params:port')
# Keys of the released NAFSSR option files that nothing here reads: accepted without a warning, so that those files
# run unchanged (a key path listed here is never reported, never refused, and has no effect).
RELEASE_ONLY_KEYS = ('val:grids', 'val:max_minibatch', 'val:trans_num', 'val:suffix', 'val:pbar', 'val:rgb2bgr',
                     'val:use_image')
# The sections whose keys are checked; a section's mapping values (train:optim_g) are checked by their registries.
CHECKED_SECTIONS = ('', 'train', 'val', 'logger', 'logger:wandb', 'path', 'dist_params')


def known_keys(readers=()):
    """``{section: {key, ...}}`` for ``CHECKED_SECTIONS``: ``RUN_KEYS``, ``RELEASE_ONLY_KEYS`` and every key path
    that a class of ``readers`` declares (``declared_keys``); a key path makes its sections known too
    (``logger:wandb:project`` -> ``wandb`` in ``logger``, ``logger`` at the top level)."""
    known = {section: set() for section in CHECKED_SECTIONS}
    paths = set(RUN_KEYS) | set(RELEASE_ONLY_KEYS)
    for cls in readers:
        paths |= declared_keys(cls)
    for path in paths:
        parts = path.split(':')
        for depth in range(len(parts)):
            section = ':'.join(parts[:depth])
            if section in known:
                known[section].add(parts[depth])
    return known


def declared_keys(cls):
    """The option key paths ``cls`` reads: its own ``OPTION_KEYS`` and those of its base classes (a class declares
    the keys it adds, e.g. ``OPTION_KEYS = ('network_d', 'train:gan_opt')``; subclasses extend by declaring more)."""
    return {key for base in cls.__mro__ for key in vars(base).get('OPTION_KEYS', ())}


def check_declared_keys(opt, registry, key_path):
    """Refuse the keys that other classes of ``registry`` declare (``OPTION_KEYS``) but the class named at
    ``key_path`` (e.g. ``model_type``) does not read, so that a key is read or refused, never silently ignored:
    one line naming the keys, the class that reads them and the configured one. A key set to null counts as absent.
    Raises ``OptionError`` without the file name (the caller adds it)."""
    name = get_path(opt, key_path)
    if name not in registry:  # an unknown name is the registry check's to report
        return
    own = declared_keys(registry.get(name))
    readers = {}  # key path -> the classes that declare it themselves (not through a base class)
    for other in registry:
        for key in vars(registry.get(other)).get('OPTION_KEYS', ()):
            if key not in own:
                readers.setdefault(key, []).append(other)
    stray = {}  # the readers -> the keys set in the options that only they read
    for key, classes in readers.items():
        if get_path(opt, key) is not None:
            stray.setdefault(' or '.join(classes), []).append(key)
    if stray:
        classes, keys = next(iter(stray.items()))
        listed = ', '.join(keys[:-1]) + f' and {keys[-1]}' if len(keys) > 1 else keys[0]
        raise OptionError(f"{listed} {'are' if len(keys) > 1 else 'is'} read by {classes}, but {key_path} is "
                          f"{name}; set {key_path}: {classes.split(' or ')[0]} or remove "
                          f"{'them' if len(keys) > 1 else 'it'}")


def key_readers():
    """The classes that declare the option keys they read: the registered model classes (``MODEL_REGISTRY``, filled
    when ``basicsr.models`` is imported, as every entry point does) and the experiment logger."""
    from basicsr.utils.logger import ExperimentLogger  # imported here: the logger's modules import this one

    return [ExperimentLogger, *(MODEL_REGISTRY.get(name) for name in MODEL_REGISTRY)]


def unknown_keys(opt, readers=None):
    """``['train:totl_iter (did you mean total_iter?)', ...]`` for keys that neither the run nor a class of
    ``readers`` (default: ``key_readers()``) reads (see ``known_keys``)."""
    import difflib

    found = []
    for section, known in known_keys(key_readers() if readers is None else readers).items():
        node = opt if not section else get_path(opt, section)
        if not isinstance(node, dict):
            continue
        for key in node:
            if key not in known:
                close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.7)
                name = f'{section}:{key}' if section else str(key)
                found.append(name + (f' (did you mean {close[0]}?)' if close else ''))
    return found


def _entries(node, keys, done=()):
    """``(key path, value)`` for every present key matching ``keys``, where ``*`` is every key of a mapping."""
    if not keys:
        yield ':'.join(done), node
        return
    if isinstance(node, dict):
        for key in (list(node) if keys[0] == '*' else [keys[0]]):
            if key in node:
                yield from _entries(node[key], keys[1:], (*done, str(key)))


def check_types(opt, registries, src='options'):
    """Check the ``type:`` names against the registries that hold them, before anything is built.

    ``registries`` maps key paths (``*`` standing for every entry of a mapping) to registries, e.g.
    ``{'network_g:type': ARCH_REGISTRY, 'datasets:*:type': DATASET_REGISTRY, 'model_type': MODEL_REGISTRY}``;
    the caller passes them, as this module knows nothing of what registers in them. Absent keys are not checked.
    A value may also be a function ``check(value, key_path)`` that raises a ``UserError`` for a bad entry (e.g. the
    metrics' ``check_metric_opt`` for ``val:metrics:*``). The empty pattern ``''`` hands such a function the whole
    option mapping, for checks of keys that depend on each other (``check_declared_keys``).
    """
    for pattern, registry in registries.items():
        for key_path, value in _entries(opt, pattern.split(':') if pattern else []):
            try:
                if hasattr(registry, 'get'):
                    registry.get(value, key_path=key_path)
                else:
                    registry(value, key_path)
            except UserError as err:  # the registry's one line: unknown name, close matches, registered names
                raise OptionError(f'{src}: {err}') from None


WANDB_MODES = ('online', 'offline', 'disabled')


def _check_wandb(opt, src):
    """``logger:wandb`` (BasicSR's ``project`` and ``resume_id``, plus ``entity`` and ``mode``): checked as wandb
    itself would check them, so that a bad value stops the run before anything is written. Logging is on when
    ``project`` is set (the released files leave it null); a training run that asks for it without the wandb package
    installed is refused here, as BasicSR stops at start (there with an ImportError), rather than training for days
    without the curves the user asked for."""
    wandb = get_path(opt, 'logger:wandb')
    if wandb is None:
        return
    _check(isinstance(wandb, dict), src, 'logger:wandb', 'a mapping with project (and resume_id, entity, mode)', wandb)
    project = wandb.get('project')
    _check(project is None or (isinstance(project, str) and project.strip() and len(project) <= 128
                               and not set(project) & set('/\\#?%:')),
           src, 'logger:wandb:project', 'a wandb project name (at most 128 characters, none of / \\ # ? % :) or ~',
           project)
    entity = wandb.get('entity')
    _check(entity is None or (isinstance(entity, str) and entity.strip()), src, 'logger:wandb:entity',
           'a wandb user or team name, or ~', entity)
    run_id = wandb.get('resume_id')
    _check(run_id is None or (isinstance(run_id, str) and run_id.strip() == run_id != ''
                              and not set(run_id) & set(":;,#?/'")),
           src, 'logger:wandb:resume_id', "the id of a wandb run (a quoted string, none of : ; , # ? / ') or ~", run_id)
    mode = wandb.get('mode')
    _check(mode is None or mode in WANDB_MODES, src, 'logger:wandb:mode', 'online, offline or disabled (or ~)', mode)
    if project is None or not opt['is_train'] or (mode or os.environ.get('WANDB_MODE')) == 'disabled':
        return
    if importlib.util.find_spec('wandb') is None:
        raise OptionError(f"{src}: logger:wandb:project is {project!r}, but the wandb package is not installed: "
                          'pip install wandb (or pip install -e ".[wandb]"), or set logger:wandb:project to ~ to '
                          'train without Weights & Biases')


def validate(opt, src='options', registries=None):
    """Check the options every run needs; raise ``OptionError`` naming the key path on the first problem.

    With ``registries`` (see ``check_types``), the ``type:`` names are checked too."""
    _check(isinstance(opt, dict), src, '<top level>', 'a mapping of options', opt)
    _require(opt, src, 'name', str, 'a non-empty experiment name')
    _check(opt['name'].strip() != '' and '/' not in opt['name'], src, 'name', 'a non-empty name without /',
           opt['name'])
    scale = _require(opt, src, 'scale', int, 'an integer up-scaling factor such as 2 or 4')
    _check(scale >= 1, src, 'scale', 'a positive integer', scale)
    num_gpu = opt.get('num_gpu', 1)
    _check((isinstance(num_gpu, int) and not isinstance(num_gpu, bool) and num_gpu >= 0) or num_gpu == 'auto',
           src, 'num_gpu', 'a non-negative integer or auto', num_gpu)
    _require(opt, src, 'network_g', dict, 'a mapping with a type key')
    _require(opt, src, 'network_g:type', str, 'the name of a registered network')
    if 'up_scale' in opt['network_g']:  # a network of another factor fails deep inside its first forward
        up_scale = opt['network_g']['up_scale']
        if up_scale != scale or isinstance(up_scale, bool):
            raise OptionError(f'{src}: network_g:up_scale must equal scale ({scale}), got {up_scale!r}')
    datasets = _require(opt, src, 'datasets', dict, 'a mapping of phase -> dataset options')
    for phase, ds in datasets.items():
        _check(isinstance(ds, dict), src, f'datasets:{phase}', 'a mapping of dataset options', ds)
        _require(opt, src, f'datasets:{phase}:type', str, 'the name of a registered dataset')
        for key in ('dataroot_gt', 'dataroot_lq'):
            if key in ds:
                _check(isinstance(ds[key], str) and ds[key].strip() != '', src, f'datasets:{phase}:{key}',
                       'a folder path', ds[key])
    if opt['is_train']:
        _require(opt, src, 'datasets:train', dict, 'the training dataset')
        _require(opt, src, 'train', dict, 'a mapping of training settings')
        total = _require(opt, src, 'train:total_iter', (int, float), 'the number of iterations')
        _check(total >= 1, src, 'train:total_iter', 'a positive number', total)
        _require(opt, src, 'train:optim_g:type', str, 'an optimizer name such as AdamW')
        _require(opt, src, 'datasets:train:batch_size_per_gpu', int, 'a positive integer')
        _check(opt['datasets']['train']['batch_size_per_gpu'] >= 1, src, 'datasets:train:batch_size_per_gpu',
               'a positive integer', opt['datasets']['train']['batch_size_per_gpu'])
    else:
        _check(any(p.startswith('test') or p.startswith('val') for p in datasets), src, 'datasets',
               'at least one test* dataset', list(datasets))
    amp = get_path(opt, 'val:amp_dtype')
    _check(amp is None or amp in AMP_DTYPES, src, 'val:amp_dtype', 'bf16 or fp16 (or null)', amp)
    metrics = get_path(opt, 'val:metrics')
    if metrics is not None:  # each entry is checked by the caller's registries (basicsr.option_checks)
        _check(isinstance(metrics, dict), src, 'val:metrics', 'a mapping of name -> metric options', metrics)
    for key in ('val:save_img', 'val:self_ensemble', 'train:mixup', 'train:use_amp', 'train:compile',
                'train:channels_last', 'logger:use_tb_logger'):
        value = get_path(opt, key)
        _check(value is None or isinstance(value, bool), src, key, 'true or false', value)
    for key, low in (('train:warmup_iter', -1), ('logger:keep_last', 1), ('train:max_nan_steps', 1)):
        value = get_path(opt, key)
        whole = isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer()
        _check(value is None or (whole and value >= low), src, key, f'a whole number >= {low}', value)
    weights_format = get_path(opt, 'logger:weights_format')
    _check(weights_format is None or weights_format in WEIGHTS_FORMATS, src, 'logger:weights_format',
           f"{' or '.join(WEIGHTS_FORMATS)} (the network files' format; training states stay .state)", weights_format)
    beta = get_path(opt, 'train:mixup_beta')
    _check(beta is None or (isinstance(beta, (int, float)) and not isinstance(beta, bool) and beta > 0), src,
           'train:mixup_beta', 'a positive number (the Beta distribution parameter)', beta)
    _check_wandb(opt, src)
    for key in ('val:val_freq', 'logger:print_freq', 'logger:save_checkpoint_freq'):
        value = get_path(opt, key)
        if value is not None:
            _check(isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0, src,
                   key, 'a positive number', value)
    if registries:
        check_types(opt, registries, src)
    return opt


def parse(opt_path, is_train=True, force_yml=None, debug=False, root_path=None, registries=None):
    """Read ``opt_path``, apply ``force_yml`` overrides, validate, and fill ``path.*``.

    ``root_path`` (default: the current directory) holds ``experiments/``, ``results/`` and ``tb_logger/``.
    ``registries``: check the ``type:`` names against them (see ``check_types``).
    """
    opt_path = Path(opt_path)
    if not opt_path.is_file():
        raise OptionError(f'{opt_path}: option file not found')
    try:
        opt = yaml_load(opt_path)
    except yaml.YAMLError as err:
        raise OptionError(f'{opt_path}: not valid YAML{yaml_error_text(err)}') from None
    except UnicodeDecodeError:
        raise OptionError(f'{opt_path}: not a text (UTF-8) YAML option file') from None
    if not isinstance(opt, dict):
        raise OptionError(f'{opt_path}: expected a mapping of options at the top level, got {type(opt).__name__}')
    apply_force_yml(opt, force_yml)
    if isinstance(opt.get('datasets'), dict):  # `datasets:test1=~` leaves a set of the file out
        for phase in [k for k, v in opt['datasets'].items() if v is None]:
            del opt['datasets'][phase]
    unknown = unknown_keys(opt)
    if unknown and os.environ.get('RANK', '0') == '0':  # once per run, not once per process
        print(f"{opt_path}: warning: unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
              'ignored', file=sys.stderr, flush=True)
    opt['is_train'] = is_train
    opt['opt_path'] = str(opt_path)
    if opt.get('model_type') is None:  # absent or null (`--force_yml model_type=~`): the default model
        opt['model_type'] = 'ImageRestorationModel'
    validate(opt, src=str(opt_path), registries=registries)

    if debug and not opt['name'].startswith('debug'):
        opt['name'] = 'debug_' + opt['name']
    if debug:
        opt.setdefault('val', {})['val_freq'] = 8
        opt.setdefault('logger', {}).update(print_freq=1, save_checkpoint_freq=8)

    for phase, dataset in opt['datasets'].items():
        dataset['phase'] = phase.split('_')[0]
        dataset.setdefault('name', phase)
        dataset.setdefault('scale', opt['scale'])
        for key in ('dataroot_gt', 'dataroot_lq'):
            if dataset.get(key) is not None:
                dataset[key] = os.path.expanduser(dataset[key])

    root = Path(root_path or os.getcwd()).resolve()
    paths = opt.get('path') or {}
    opt['path'] = paths
    for key, value in list(paths.items()):
        if value is not None and ('resume_state' in key or 'pretrain_network' in key):
            paths[key] = os.path.expanduser(value)
    paths['root'] = str(root)
    if is_train:
        exp = root / 'experiments' / opt['name']
        paths['experiments_root'] = str(exp)
        paths['models'] = str(exp / 'models')
        paths['training_states'] = str(exp / 'training_states')
        paths['log'] = str(exp)
        paths['visualization'] = str(exp / 'visualization')
        paths['tb_logger'] = str(root / 'tb_logger' / opt['name'])
    else:
        res = root / 'results' / opt['name']
        paths['results_root'] = str(res)
        paths['log'] = str(res)
        paths['visualization'] = str(res / 'visualization')
    return opt


def build_arg_parser(is_train):
    """The command line shared by train.py and test.py (BasicSR's, plus the modern launcher spellings)."""
    parser = argparse.ArgumentParser(description='stereo_sr ' + ('training' if is_train else 'testing'))
    parser.add_argument('-opt', '--opt', required=True, help='path to the option YAML file')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='process launcher: none (one process), pytorch (torchrun or '
                             'torch.distributed.launch), slurm (srun)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=None,
                        help='set by torch.distributed.launch; torchrun sets LOCAL_RANK instead')
    parser.add_argument('--force_yml', nargs='+', action='extend', default=None, metavar='KEY:PATH=VALUE',
                        help='override options, e.g. train:total_iter=1000 datasets:train:batch_size_per_gpu=2 '
                             '(repeatable; later ones win)')
    parser.add_argument('--debug', action='store_true', help='debug mode: tiny frequencies, name prefixed debug_')
    parser.add_argument('--auto_resume', action='store_true',
                        help='accepted for BasicSR compatibility; resuming is always automatic')
    return parser


def parse_options(is_train, argv=None, registries=None):
    """Parse the command line and the option file it names; return ``(opt, args)``. ``registries``: see
    ``check_types``."""
    args = build_arg_parser(is_train).parse_args(argv)
    if args.local_rank is not None:
        os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    opt = parse(args.opt, is_train=is_train, force_yml=args.force_yml, debug=args.debug, registries=registries)
    opt['launcher'] = args.launcher
    return opt, args


def dict2str(opt, indent=0):
    """Options as indented text for the log."""
    lines = []
    for key, value in opt.items():
        if isinstance(value, dict):
            lines.append(' ' * indent + f'{key}:')
            lines.append(dict2str(value, indent + 2))
        else:
            lines.append(' ' * indent + f'{key}: {value}')
    return '\n'.join(line for line in lines if line)
