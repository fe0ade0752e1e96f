"""Registries that map the ``type:`` names of YAML option files to classes and functions.

A class registers itself where it is defined::

    @ARCH_REGISTRY.register()
    class NAFSSR(nn.Module): ...

and ``ARCH_REGISTRY.build({'type': 'NAFSSR', 'width': 48}, 'network_g')`` builds it: networks, blocks,
datasets, losses, optimizers and schedulers are all built this way, and metric entries are checked the same way
(``resolve``). Every error names the YAML key path so that a user knows which line of which file to fix.
"""
import contextvars
import difflib
import inspect

from basicsr.utils.errors import UserError


class UnknownTypeError(UserError, KeyError):
    """A ``type:`` name that is not registered, or a mapping without ``type``; names the YAML key path."""


class OptionKeywordError(UserError, TypeError):
    """An unknown or missing keyword option for a registered class or function; names the YAML key path."""


class BuildError(UserError, ValueError):
    """A registered class refused the value of one of its options (its constructor raised ValueError)."""


class OptionValueError(UserError, ValueError):
    """A constructor argument with a bad value; ``arg`` names it so that ``Registry.build`` can put the YAML key
    path in front (``network_g:train_size: ...``)."""

    def __init__(self, arg, message):
        super().__init__(f'{arg}: {message}')
        self.arg = arg
        self.message = message


# the key path of the entry ``Registry.build`` is constructing, for the errors of what its constructor resolves
_BUILDING = contextvars.ContextVar('building', default=None)


def nested_key_path(arg):
    """``arg`` under the key path being built (``intra_kwargs`` -> ``network_g:intra_kwargs``); ``arg`` alone when
    the constructor was called directly."""
    outer = _BUILDING.get()
    return f'{outer}:{arg}' if outer else arg


class Registry:
    """A name -> object table with clear errors for unknown names and bad keyword arguments."""

    def __init__(self, name):
        self._name = name
        self._obj_map = {}

    def register(self, obj=None, name=None):
        """Register ``obj`` under ``name`` (default: its ``__name__``); usable as ``@REG.register()``."""

        def _do_register(o):
            key = name or o.__name__
            if key in self._obj_map and self._obj_map[key] is not o:
                raise KeyError(f"{key!r} is already registered in the {self._name} registry "
                               f'by {self._obj_map[key].__module__}')
            self._obj_map[key] = o
            return o

        if obj is None:
            return _do_register
        return _do_register(obj)

    def get(self, name, key_path=None):
        if name in self._obj_map:
            return self._obj_map[name]
        where = f'{key_path}: ' if key_path else ''
        close = difflib.get_close_matches(str(name), self._obj_map.keys(), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ''
        raise UnknownTypeError(f'{where}unknown {self._name} type {name!r}.{hint} '
                       f"Registered: {', '.join(sorted(self._obj_map))}.")

    def resolve(self, cfg, key_path, /, meta_keys=(), **extra):
        """Check the entry ``cfg`` (at ``key_path``) without building it; return ``(obj, kwargs)``.

        ``cfg['type']`` must be registered and the other keys of ``cfg`` (less ``meta_keys``, read by the caller)
        plus ``extra`` must fit its signature; an object with ``check_options(kwargs, key_path)`` checks their values
        too (e.g. that a weight file exists). ``kwargs`` are the keys of ``cfg`` without ``type``, ``meta_keys`` and
        ``extra``."""
        if not isinstance(cfg, dict) or 'type' not in cfg:
            raise UnknownTypeError(f'{key_path}: expected a mapping with a "type" key, got {cfg!r}')
        obj = self.get(cfg['type'], key_path=f'{key_path}:type')
        kwargs = {k: v for k, v in cfg.items() if k != 'type' and k not in meta_keys}
        check_kwargs(obj, {**kwargs, **extra}, key_path)
        if hasattr(obj, 'check_options'):
            obj.check_options(kwargs, key_path)
        return obj, kwargs

    def build(self, cfg, key_path, /, **extra):
        """Build ``cfg['type']`` with the remaining keys of ``cfg`` (plus ``extra``) as keyword arguments; a bad value
        is one line naming its key path (``OptionValueError``'s ``arg``, or ``nested_key_path`` in the constructor)."""
        obj, kwargs = self.resolve(cfg, key_path, **extra)
        token = _BUILDING.set(key_path)
        try:
            return obj(**kwargs, **extra)
        except OptionValueError as err:
            raise type(err)(f'{key_path}:{err.arg}', err.message) from None
        except UserError:
            raise
        except ValueError as err:  # constructors check their option values with ValueError
            raise BuildError(f"{key_path}: building {cfg['type']} failed: {err}") from err
        finally:
            _BUILDING.reset(token)

    def __contains__(self, name):
        return name in self._obj_map

    def __iter__(self):
        return iter(sorted(self._obj_map))

    def keys(self):
        return sorted(self._obj_map)

    def __repr__(self):
        return f"Registry({self._name}: {', '.join(sorted(self._obj_map))})"


def check_kwargs(obj, kwargs, key_path):
    """Raise one line naming ``key_path`` when ``kwargs`` do not fit the signature of ``obj``."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return
    params = sig.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items()
                if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, accepted, n=1, cutoff=0.6)
            hints.append(f'{key_path}:{k}' + (f' (did you mean {close[0]}?)' if close else ''))
        raise OptionKeywordError(f"unknown option {', '.join(hints)} for {getattr(obj, '__name__', obj)}; "
                        f"accepted: {', '.join(accepted)}")
    missing = [n for n, p in params.items()
               if p.default is inspect.Parameter.empty and n not in kwargs and n != 'self'
               and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    if missing:
        raise OptionKeywordError(f"missing option {', '.join(f'{key_path}:{m}' for m in missing)} "
                        f"for {getattr(obj, '__name__', obj)}")


ARCH_REGISTRY = Registry('arch')
BLOCK_REGISTRY = Registry('block')  # intra-view and cross-view blocks of the NAFSSR family
DATASET_REGISTRY = Registry('dataset')
MODEL_REGISTRY = Registry('model')
LOSS_REGISTRY = Registry('loss')
OPTIMIZER_REGISTRY = Registry('optimizer')
SCHEDULER_REGISTRY = Registry('scheduler')
METRIC_REGISTRY = Registry('metric')
