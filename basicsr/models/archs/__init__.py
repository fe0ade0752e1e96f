from basicsr.utils.scan import import_modules

import_modules(__name__, __file__)

import inspect  # noqa: E402
from functools import partial  # noqa: E402

from basicsr.models.archs.arch_util import ArchOptionError  # noqa: E402
from basicsr.utils.registry import (ARCH_REGISTRY, BLOCK_REGISTRY, BuildError, OptionKeywordError,  # noqa: E402
                                    UnknownTypeError, check_kwargs)


def define_network(opt, key_path='network_g'):
    """Build the network described by ``opt`` (``{'type': 'NAFSSR', 'width': 48, ...}``).

    Every error is one line naming the YAML key path: an unknown ``type`` (with close matches), an unknown or
    missing keyword (``network_g.widht``), a bad value (``network_g.train_size: ...``), and, for a network that
    takes pluggable blocks (arguments ``<x>_block`` with ``<x>_kwargs``), an unknown block or block keyword
    (``network_g.intra_kwargs.kernal_size``).
    """
    if not isinstance(opt, dict) or 'type' not in opt:
        raise UnknownTypeError(f'{key_path}: expected a mapping with a "type" key, got {opt!r}')
    cls = ARCH_REGISTRY.get(opt['type'], key_path=f'{key_path}:type')
    kwargs = {k: v for k, v in opt.items() if k != 'type'}
    check_kwargs(cls, kwargs, key_path)
    _check_block_options(cls, kwargs, key_path)
    try:
        return cls(**kwargs)
    except ArchOptionError as err:
        raise ArchOptionError(f'{key_path}:{err.arg}', err.message) from None
    except ValueError as err:  # constructors check their option values with ValueError
        raise BuildError(f"{key_path}: building {opt['type']} failed: {err}") from None


def _check_block_options(cls, kwargs, key_path):
    """Check ``<x>_block`` names and ``<x>_kwargs`` keys of a network with pluggable blocks."""
    params = inspect.signature(cls).parameters
    for name, param in params.items():
        kw_name = name[:-len('_block')] + '_kwargs'
        if not name.endswith('_block') or kw_name not in params:
            continue
        block_name = kwargs.get(name, param.default)
        block_cls = BLOCK_REGISTRY.get(block_name, key_path=f'{key_path}:{name}')
        block_kwargs = kwargs.get(kw_name) or {}
        if not isinstance(block_kwargs, dict):
            raise OptionKeywordError(f'{key_path}:{kw_name}: expected a mapping of keyword arguments for {block_name}, '
                            f'got {block_kwargs!r}')
        check_kwargs(partial(block_cls, 0), block_kwargs, f'{key_path}:{kw_name}')


__all__ = ['define_network', 'ArchOptionError']
