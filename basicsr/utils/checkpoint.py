"""The one checkpoint writer and reader, and the one weight loader.

- ``save_atomic`` / ``load_checkpoint``: any checkpoint (network files, training states).
- ``load_network``: the weights of a network file into a network; used by training (``path:pretrain_network_g``),
  ``test.py``, validation and ``scripts/inference_stereo.py`` alike, with ``weight_options`` reading the
  ``path:*`` keys that choose the file, the key inside it and the strictness. A file that does not fit is named
  for what it looks like (``identify_weights``: the network packages register how to tell, see
  ``basicsr/models/archs/identify.py``).
- ``check_hub_file``: a file under one of torchvision's file names must have the SHA-256 its name carries
  (``TORCHVISION_FILES``: the backbones of the perceptual loss and LPIPS).

Writing is crash-safe: a temporary file in the same folder is written, flushed and fsynced, then renamed over the
target (and the folder is fsynced), so a kill at any moment leaves either the old file or the new one, never half.
Reading never runs code: ``torch.load(..., weights_only=True)`` accepts only tensors and plain containers, and a
safetensors file holds only tensors and text.

Network files are ``.pth`` (``{'params': state_dict, 'params_ema': ...}``, BasicSR's layout) or ``.safetensors``
(written when the name ends so; read whatever the name, by content). A safetensors file is one flat mapping of
names to tensors, plus text metadata; this project's convention maps the ``.pth`` layout onto it:

- metadata ``format: stereo_sr`` and ``param_keys``: the state dicts it holds, comma-separated
  (``params`` or ``params,params_ema``), i.e. the ``param_key`` values ``load_state_dict`` picks from;
- with one state dict its tensors keep their names (the file is a plain state dict for any safetensors reader);
  with several, each name is prefixed with its key and a dot (``params_ema.body.0.weight``);
- metadata ``extra``: the file's other entries as JSON (``iter`` and ``best`` of ``net_g_best``), when it has any;
- a file without ``param_keys`` (written by another tool) is read as one bare state dict.
``convert_weights`` converts between the two (``scripts/convert_weights.py``).
"""
import hashlib
import json
import logging
import os
import re
import sys

import torch

from basicsr.utils.atomic import TMP_TAG, write_atomic
from basicsr.utils.dist_util import unwrap
from basicsr.utils.errors import UserError, shorten
from basicsr.utils.options import OptionError, get_path

logger = logging.getLogger('basicsr')


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that is missing, truncated, or holds anything but tensors and plain containers; or one that
    could not be written."""




def remove_partial_saves(folder):
    """Delete the ``<file>.tmp<pid>`` files that a kill during ``save_atomic`` left in ``folder`` (call it only
    while owning the folder, so that no save is in progress); return their names."""
    if not os.path.isdir(folder):
        return []
    removed = []
    for name in sorted(os.listdir(folder)):
        stem, tag, pid = name.rpartition(TMP_TAG)
        if stem and tag and pid.isdigit():
            os.remove(os.path.join(folder, name))
            removed.append(name)
    return removed


def state_model_type(state):
    """``(model_type, recorded)``: the ``model_type`` that saved a training state, as recorded in it (``model_type``,
    ``BaseModel.training_state``); for a state saved before it was recorded (``recorded`` False), the one its content
    shows: StereoSRGANModel when it holds discriminator weights (``params_d``), else ImageRestorationModel (whose
    states IPASSRModel's look like)."""
    if isinstance(state.get('model_type'), str):
        return state['model_type'], True
    return ('StereoSRGANModel' if state.get('params_d') is not None else 'ImageRestorationModel'), False


def save_atomic(obj, path):
    """``torch.save`` to ``path`` atomically (tmp file, flush, fsync, rename, fsync the folder); a ``path`` ending in
    ``.safetensors`` is written as safetensors (``obj`` in the ``.pth`` layout, see the module docstring)."""
    path = os.fspath(path)
    data = safetensors_bytes(obj, path) if path.endswith(SAFETENSORS_SUFFIX) else None  # refusals come first
    # torch.save reports a failed write as RuntimeError ("file write failed"), a full disk as OSError
    write_atomic(path, lambda f: torch.save(obj, f) if data is None else f.write(data), mkdir=True, durable=True,
                 error=CheckpointError, what='the checkpoint', failures=(OSError, RuntimeError))


def load_checkpoint(path, map_location='cpu'):
    """Load a checkpoint safely; one-line ``CheckpointError`` naming the file on any problem."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f'{path}: checkpoint file not found')
    if is_safetensors(path):
        return _load_safetensors(path, map_location)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001  (torch raises many kinds; all mean "not a safe checkpoint")
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        # torch's long generic preface is useless here: keep the line that says what was found
        detail = next((line for line in lines if 'GLOBAL' in line or 'Unsupported' in line), lines[0] if lines
                      else type(err).__name__)
        if 'GLOBAL' in detail or 'Unsupported global' in detail:
            raise CheckpointError(f'{path}: refused, it holds Python objects other than tensors and plain '
                                  f'containers (loading it could run code): {shorten(detail, 200)}') from None
        raise CheckpointError(f'{path}: unreadable or truncated checkpoint ({type(err).__name__}: '
                              f'{shorten(detail, 200)})') from None



SAFETENSORS_SUFFIX = '.safetensors'
SAFETENSORS_FORMAT = 'stereo_sr'  # metadata "format" of the safetensors files this project writes


def is_safetensors(path):
    """True for a file named ``*.safetensors``, or whose content starts as one (an 8-byte little-endian header
    length that fits the file, then a JSON object): such a file is never handed to ``torch.load``."""
    path = os.fspath(path)
    if path.endswith(SAFETENSORS_SUFFIX):
        return True
    try:
        with open(path, 'rb') as f:
            head = f.read(9)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b'{' and 0 < int.from_bytes(head[:8], 'little') <= size - 8


def is_state_dict(value):
    """A non-empty dict of tensors (a network's weights)."""
    return isinstance(value, dict) and bool(value) and all(isinstance(v, torch.Tensor) for v in value.values())


def safetensors_bytes(ckpt, path):
    """The bytes of a safetensors file holding ``ckpt`` (the ``.pth`` layout ``{param_key: state_dict, ...}`` or a
    bare state dict; convention in the module docstring); one ``CheckpointError`` line naming ``path`` for what it
    cannot hold."""
    from safetensors.torch import save

    if is_state_dict(ckpt):
        ckpt = {'params': ckpt}
    states = {k: v for k, v in ckpt.items() if is_state_dict(v)} if isinstance(ckpt, dict) else {}
    if not states:
        raise CheckpointError(f'{path}: nothing to write as safetensors: expected state dicts of tensors '
                              f"({{'params': state_dict}}), got {type(ckpt).__name__}")
    odd = next((k for k in states if not isinstance(k, str) or not k or set(k) & set('.,')), None)
    if odd is not None:
        raise CheckpointError(f'{path}: the key {odd!r} cannot name a state dict in a safetensors file '
                              '(expected a name without dots or commas, such as params_ema)')
    extra = {k: v for k, v in ckpt.items() if k not in states}
    metadata = {'format': SAFETENSORS_FORMAT, 'param_keys': ','.join(states)}
    if extra:
        try:
            metadata['extra'] = json.dumps(extra)
        except (TypeError, ValueError) as err:
            raise CheckpointError(f'{path}: cannot write {", ".join(map(str, extra))} as safetensors metadata '
                                  f'({err}); only tensors, numbers, text, lists and dicts of them fit') from None
    flat = {}
    for key, state in states.items():
        prefix = f'{key}.' if len(states) > 1 else ''
        for name, tensor in state.items():
            # a copy of each: safetensors refuses tensors that share memory (tied weights, views)
            flat[f'{prefix}{name}'] = tensor.detach().to('cpu', copy=True).contiguous()
    return save(flat, metadata)


def _load_safetensors(path, map_location='cpu'):
    """A safetensors file in the ``.pth`` layout (see the module docstring): ``{param_key: state_dict, **extra}``,
    or the bare state dict of a file without ``param_keys``. Nothing in it can run code."""
    from safetensors import safe_open

    device = str(map_location) if isinstance(map_location, (str, torch.device)) else 'cpu'
    try:
        with safe_open(path, framework='pt', device=device) as f:
            metadata = f.metadata() or {}
            flat = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as err:  # noqa: BLE001  (safetensors raises its own error, OSError, ...: all mean unreadable)
        raise CheckpointError(f'{path}: unreadable or truncated safetensors file ({type(err).__name__}: '
                              f'{shorten(str(err), 200)})') from None
    keys = [k for k in metadata.get('param_keys', '').split(',') if k]
    if not keys:
        return flat
    if len(keys) == 1:
        ckpt = {keys[0]: flat}
    else:
        ckpt = {key: {} for key in keys}
        for name, tensor in flat.items():
            key = next((k for k in keys if name.startswith(f'{k}.')), None)
            if key is None:
                raise CheckpointError(f'{path}: the tensor {name} starts with none of the file\'s param_keys '
                                      f"({', '.join(keys)}); a safetensors file with several state dicts prefixes "
                                      'each name with its key and a dot')
            ckpt[key][name[len(key) + 1:]] = tensor
    if metadata.get('extra'):
        try:
            extra = json.loads(metadata['extra'])
        except ValueError as err:
            raise CheckpointError(f'{path}: its metadata "extra" is not JSON ({err})') from None
        if isinstance(extra, dict):
            ckpt.update({k: v for k, v in extra.items() if k not in ckpt})
    return ckpt

# torchvision's ImageNet weight files that the perceptual loss and LPIPS read. torch.hub names each
# <model>-<first hex digits of the file's SHA-256>.pth (and checks that prefix when it downloads one).
TORCHVISION_FILES = ('vgg19-dcbb9e9d.pth', 'vgg16-397923af.pth', 'alexnet-owt-7be5be79.pth',
                     'squeezenet1_1-b8a52dc0.pth')
_HUB_HASH = re.compile(r'-([0-9a-f]{8,64})\.pth$')
_SHA256 = {}  # (real path, size, mtime) -> hex digest: each file is read once per process
_CHECKED = {}  # (real path, size, mtime) -> check_hub_file's verdict, so that it is logged once


def sha256_of(path):
    """The hex SHA-256 of a file, read in 1 MiB blocks (cached while its size and time stay the same)."""
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA256:
        digest = hashlib.sha256()
        with open(path, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                digest.update(block)
        _SHA256[key] = digest.hexdigest()
    return _SHA256[key]


def check_hub_file(path, key_path, source=None):
    """Check a torchvision weight file against the SHA-256 prefix in its name; True when verified.

    A file named as one of ``TORCHVISION_FILES`` must have the SHA-256 its name starts (torch.hub's convention):
    anything else under that name (another network, a damaged or truncated download) is one ``CheckpointError``
    line naming ``key_path``, the file and where the official one is (``source``). A file under another name
    cannot be checked: one log line says that it is used unverified. Each file is checked and logged once per
    process (callers may check at every use). A missing file is left to the loader to report.
    """
    name = os.path.basename(os.fspath(path))
    if not os.path.isfile(path):
        return False
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    if key in _CHECKED:
        return _CHECKED[key]
    if name not in TORCHVISION_FILES:
        logger.warning('%s: %s is not named as one of torchvision\'s files (%s): used unverified', key_path, path,
                       ', '.join(TORCHVISION_FILES))
        _CHECKED[key] = False
        return False
    prefix = _HUB_HASH.search(name).group(1)
    digest = sha256_of(path)
    if not digest.startswith(prefix):
        raise CheckpointError(f"{key_path}: {path}: not torchvision's {name}: its SHA-256 starts with "
                              f'{digest[:len(prefix)]}, the official file\'s with {prefix} (another file under its '
                              f"name, or a damaged download){f'; download it again from {source}' if source else ''}")
    logger.info('%s: %s: SHA-256 matches torchvision\'s file name', key_path, path)
    _CHECKED[key] = True
    return True


def load_state_dict(path, param_key='params'):
    """The state dict of a network checkpoint: ``ckpt[param_key]`` (release format ``{'params': ...}``), falling
    back to ``params_ema``/``params`` or a bare state dict; ``module.`` prefixes from DDP are stripped."""
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt, dict):
        raise CheckpointError(f'{path}: expected a dict of tensors, got {type(ckpt).__name__}')
    state, used = None, None
    for key in (param_key, 'params', 'params_ema', 'state_dict'):
        if key and key in ckpt and isinstance(ckpt[key], dict):
            state, used = ckpt[key], key
            break
    if state is None:
        if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
            state = ckpt
        else:
            raise CheckpointError(f'{path}: no {param_key!r} state dict in the checkpoint (keys: '
                                  f'{", ".join(map(str, list(ckpt)[:8]))})')
    if param_key and used != param_key:  # as BasicSR: say which weights were taken instead
        print(f"{path}: no {param_key!r} in the checkpoint; loaded {repr(used) if used else 'its bare state dict'}",
              file=sys.stderr, flush=True)
    return {(k[7:] if k.startswith('module.') else k): v for k, v in state.items()}


WEIGHT_SUFFIXES = (SAFETENSORS_SUFFIX, '.pth', '.pth.tar', '.pt')  # what convert_weights writes (by the target name)


def convert_weights(source, target, param_key=None, overwrite=False):
    """Write the network weights of ``source`` (``.pth``, iPASSR's ``.pth.tar`` or ``.safetensors``, told apart by
    content) to ``target`` in the format its name ends with (``WEIGHT_SUFFIXES``). Returns ``(keys, tensors,
    dropped)``: the state dicts written, their number of tensors, and the entries that could not go along.

    Every state dict of the file goes along under its key (``params``, ``params_ema``...; iPASSR's ``state_dict``
    becomes ``params``, as ``scripts/convert_ipassr.py`` writes it; a bare state dict becomes ``params``), or only
    ``param_key`` when given; the other entries (``iter``, ``epoch``, ``best``) when they are numbers or text.
    Tensors are copied bit for bit, names unchanged. Refused in one ``CheckpointError`` line, before anything is
    written: a ``target`` that exists (unless ``overwrite``) or is ``source`` itself, another suffix, an unreadable
    ``source``, a ``param_key`` it does not hold."""
    source, target = os.fspath(source), os.fspath(target)
    if not target.endswith(WEIGHT_SUFFIXES):
        raise CheckpointError(f'{target}: expected a file name ending in {", ".join(WEIGHT_SUFFIXES)} (it chooses '
                              'the format written)')
    if os.path.isdir(target):
        raise CheckpointError(f'{target}: is a folder; expected the name of the file to write')
    if os.path.exists(target):
        if os.path.exists(source) and os.path.samefile(source, target):
            raise CheckpointError(f'{target}: is the source file itself; write the conversion to another name')
        if not overwrite:
            raise CheckpointError(f'{target}: already exists; give --overwrite to replace it')
    ckpt = load_checkpoint(source)
    if is_state_dict(ckpt):
        ckpt = {'params': ckpt}
    if not isinstance(ckpt, dict):
        raise CheckpointError(f'{source}: expected a dict of state dicts, got {type(ckpt).__name__}')
    states = {k: v for k, v in ckpt.items() if is_state_dict(v)}
    if param_key is not None:
        if param_key not in states:
            raise CheckpointError(f'{source}: no state dict {param_key!r} in it (it holds: '
                                  f"{', '.join(map(str, states)) or 'none'})")
        states = {param_key: states[param_key]}
    if not states:
        raise CheckpointError(f'{source}: holds no state dict of tensors (keys: {", ".join(map(str, list(ckpt)[:8]))})')
    if 'state_dict' in states and 'params' not in states:  # iPASSR's release layout {'epoch', 'state_dict'}
        states = {('params' if k == 'state_dict' else k): v for k, v in states.items()}
    out, dropped = dict(states), []
    for key, value in ckpt.items():
        if key in states or is_state_dict(value) or key == 'state_dict':
            continue
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            dropped.append(str(key))
            continue
        out[key] = value
    save_atomic(out, target)
    return list(states), sum(len(s) for s in states.values()), dropped


def weight_options(opt, net_label='g'):
    """``(file, param_key, strict)`` of ``path:pretrain_network_<label>``, ``path:param_key_<label>`` and
    ``path:strict_load_<label>`` (BasicSR's keys; defaults: no file, ``params``, strict).

    The NAFNet release's option files spell the key ``path:param_key``: it is read as ``param_key_g`` with a
    one-line notice; both keys with different values is an error (one of them would be ignored).
    """
    key = f'path:param_key_{net_label}'
    param_key = get_path(opt, key)
    legacy = get_path(opt, 'path:param_key') if net_label == 'g' else None
    if legacy is not None:
        if param_key is not None and param_key != legacy:
            raise OptionError(f'{opt.get("opt_path", "options")}: path:param_key ({legacy!r}) and {key} '
                              f'({param_key!r}) disagree; keep only {key}')
        if param_key is None and os.environ.get('RANK', '0') == '0':
            print(f'{opt.get("opt_path", "options")}: note: path:param_key (the NAFNet release\'s spelling) is read '
                  f'as {key}: {legacy!r}', file=sys.stderr, flush=True)
        param_key = legacy
    strict = get_path(opt, f'path:strict_load_{net_label}', True)
    return get_path(opt, f'path:pretrain_network_{net_label}'), param_key or 'params', strict is not False


MIN_NON_STRICT_SHARE = 0.5  # a non-strict load must fill half of the network's tensors or use half of the file's
_IDENTIFIERS = []  # functions state dict -> what it was saved from (see register_identifier), or None


def register_identifier(func):
    """Add ``func(state_dict, exact)`` to the ways ``identify_weights`` tells what a file was saved from.

    It returns None or an object whose ``str()`` says what the file holds (``a stereo SR network (NAFSSR-T x4)``),
    with the attributes ``kind`` (``'stereo SR network'``, ``'discriminator'``, ``'backbone'``...), ``family``
    (``'NAFSSR'``), ``named`` and ``scale`` (the named size and up-scaling that fit exactly, else None; not searched
    when ``exact`` is False) and ``option`` (its test option file, else None). The network packages register theirs
    (``basicsr/models/archs/identify.py``): this module cannot import them."""
    _IDENTIFIERS.append(func)
    return func


def identify_weights(state, exact=True):
    """What the state dict ``state`` was saved from (see ``register_identifier``), or None when nothing knows;
    ``exact=False``: its family only, not its named size and scale."""
    for func in _IDENTIFIERS:
        found = func(state, exact)
        if found is not None:
            return found
    return None


def tensors_mismatch(state, expected, what):
    """None when the state dict ``state`` holds every tensor of ``expected`` (name -> shape), else why not, in
    words that name what it holds instead of ``what`` (``'torchvision VGG19 weights'``): ``holds a stereo SR
    network (NAFSSR-T x4), not torchvision VGG19 weights (no features.0.weight, ...)``."""
    missing = [k for k in expected if not isinstance(state.get(k), torch.Tensor)]
    wrong = [k for k in expected if k not in missing and tuple(state[k].shape) != tuple(expected[k])]
    if not missing and not wrong:
        return None
    if missing:
        detail = f"no {', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}"
    else:
        detail = f'{wrong[0]} is {tuple(state[wrong[0]].shape)}, expected {tuple(expected[wrong[0]])}'
    theirs = identify_weights(state)
    return f'{f"holds {theirs}, not" if theirs is not None else "not"} {what} ({detail})'


def _advice(theirs, ours_kind, arch_key, key_path):
    """What to do with a file that holds ``theirs`` where a network of kind ``ours_kind`` was asked for."""
    if theirs.kind == 'backbone':
        return 'it is an ImageNet classifier for a perceptual loss or LPIPS, not the weights of this network'
    if theirs.kind == 'discriminator' and ours_kind != 'discriminator':
        return f'{key_path} takes a generator file (net_g_<iter>.pth), not a discriminator file (net_d_<iter>.pth)'
    if ours_kind == 'discriminator' and theirs.kind != 'discriminator':
        label = key_path.rsplit('_', 1)[-1] if key_path.startswith('path:pretrain_network_') else 'd'
        return (f'{key_path} takes a discriminator file (net_d_<iter>.pth), this one looks like a generator '
                f'(net_g_<iter>.pth; path:strict_load_{label} does not change that)')
    if arch_key == '--arch':
        if theirs.named:
            return f"use --arch {theirs.named}{f' --scale {theirs.scale}' if theirs.scale else ''}"
        return (f'no named size of {theirs.family} fits it: use -opt with an option file '
                f'(network_g:type {theirs.family})')
    where = f'; the zoo tests {theirs.named} x{theirs.scale} with {theirs.option}' if theirs.option else ''
    return f'set {arch_key} to {theirs.family}{where}'


def _mismatch(state, own, bare, arch_key, key_path):
    """``(lead, advice)`` naming what the file holds when it is not this network's family or size, else None."""
    theirs = identify_weights(state)
    if theirs is None:
        return None
    ours = identify_weights(own, exact=False)
    ours_family = ours.family if ours is not None else type(bare).__name__
    if theirs.family != ours_family:
        not_ours = ours_family if ours is None or ours.kind == theirs.kind else str(ours)
        return f'holds {theirs}, not {not_ours} ({arch_key})', _advice(theirs, ours and ours.kind, arch_key, key_path)
    if theirs.named:  # the file does not fit: another size or scale of the same family
        if arch_key == '--arch':
            return f'holds {theirs.named} x{theirs.scale}', _advice(theirs, theirs.kind, arch_key, key_path)
        option = f' (the zoo tests it with {theirs.option})' if theirs.option else ''
        return f'holds {theirs.named} x{theirs.scale}{option}', f'set {arch_key.rsplit(":", 1)[0]} to its sizes'
    return None


def load_network(net, path, param_key='params', strict=True, key_path='path:pretrain_network_g', arch_key=None,
                 strict_key=None):
    """Load the weights of checkpoint ``path`` into ``net`` (DDP/compile wrappers are looked through).

    ``param_key`` picks the state dict inside the file (release format ``{'params': state_dict}``; see
    ``load_state_dict``). Tensors whose shapes differ are always refused; missing or unexpected names are refused
    when ``strict``, else the common part is loaded and the rest reported, unless the file and the network share
    fewer than half of the network's tensors and fewer than half of the file's (a file of another network that
    happens to share a few names, or none: loading it would leave an untrained network). Loading never runs code.

    Every problem is one ``CheckpointError`` line starting with ``key_path`` and the file, saying what the file
    looks like when it is another network (``identify_weights``) and which option to change: ``arch_key`` (what
    chose the architecture: ``network_g:type`` for ``path:pretrain_network_g``, ``--arch``) and ``strict_key`` (the
    option of non-strict loading, ``path:strict_load_g``; derived from ``key_path`` when None, none otherwise).
    The log line says how many tensors were loaded, missing and unexpected. Returns ``net``.
    """
    where = f'{key_path}: {path}' if key_path else f'{path}'
    label = key_path[len('path:pretrain_network_'):] if (key_path or '').startswith('path:pretrain_network_') else None
    arch_key = arch_key or (f'network_{label}:type' if label else 'the network')
    if strict_key is None and label:
        strict_key = f'path:strict_load_{label}'
    try:
        state = load_state_dict(path, param_key=param_key)
    except CheckpointError as err:
        raise CheckpointError(f'{key_path}: {err}' if key_path else str(err)) from None
    bare = unwrap(net)
    own = bare.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f'{k} {tuple(state[k].shape)} (network: {tuple(own[k].shape)})' for k in own
             if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    shared = len(own) - len(missing) - len(wrong)
    counts = (f"{shared} of the network's {len(own)} tensors loaded, {len(missing)} missing, "
              f'{len(unexpected)} unexpected')
    enough = shared > 0 and (shared >= MIN_NON_STRICT_SHARE * len(own) or shared >= MIN_NON_STRICT_SHARE * len(state))
    examples = ', '.join(f'{len(names)} {what} (e.g. {names[0]})'
                         for names, what in ((missing, 'missing'), (unexpected, 'unexpected')) if names)
    if wrong:
        problem = f'{len(wrong)} tensors do not fit the network, e.g. {wrong[0]}'
    elif (missing or unexpected) and strict:
        problem = f'does not fit the network: {examples} parameters'
    elif (missing or unexpected) and not enough:
        problem = (f"shares only {shared} of the network's {len(own)} tensors and of the file's {len(state)}; a "
                   f"non-strict load{f' ({strict_key} false)' if strict_key else ''} needs at least half of either")
    else:
        problem = None
    if problem:
        found = _mismatch(state, own, bare, arch_key, key_path or 'the file')
        if found:
            lead, advice = found
            raise CheckpointError(f'{where}: {lead}: {advice} ({problem})')
        hint = f' (set {strict_key} false to load the common ones)' if strict and enough and strict_key and not wrong \
            else ''
        raise CheckpointError(f'{where}: {problem}{hint}')
    if missing or unexpected:
        logger.warning('%s: loaded non-strictly: %s; %s parameters', where, counts, examples)
    bare.load_state_dict(state, strict=False)
    logger.info('loaded network weights from %s (%s): %s', path, param_key, counts)
    return net
