"""Import one architecture file of a released code base, unmodified, from a checkout outside this repository.

Used to run a release side by side with our implementation (``scripts/benchmark.py --impl release``); nothing of the
release is copied into the project. The releases of the field are BasicSR forks whose package is also called
``basicsr``, so an arch file that imports ``basicsr.models.archs.<x>`` (NAFNet's ``NAFSSR_arch.py``) would find ours.
``import_release_module`` therefore imports it with the release's packages in place of ours, their ``__init__``
files not run (they import the whole release: data, models, lmdb, ...), then puts ours back. The module keeps
working afterwards: its own imports were resolved while the release's packages were in place.
"""
import importlib
import importlib.util
import logging
import os
import sys
import types

from basicsr.utils.errors import UserError

class ReleaseImportError(UserError, ImportError):
    """A release checkout without the expected file, or an arch file that cannot be imported."""


def _under(name, roots):
    return any(name == root or name.startswith(root + '.') for root in roots)


def import_release_module(root, relpath, stand_ins=None):
    """The module at ``<root>/<relpath>`` (``basicsr/models/archs/CVHSSR_arch.py``), imported under the name its
    package path gives it (``basicsr.models.archs.CVHSSR_arch``) with the release's packages, not ours.

    ``stand_ins``: ``{module name: {attribute: value}}`` for what the file imports from packages that are not in
    the checkout (SwinFIR imports three helpers of pip BasicSR); present during the import only.
    """
    path = os.path.join(root, relpath)
    if not os.path.isfile(path):
        raise ReleaseImportError(f'{path}: not found; expected a checkout of the released code with {relpath}')
    parts = relpath[:-len('.py')].split('/')
    stand_ins = stand_ins or {}
    roots = {'basicsr', parts[0], *(name.split('.')[0] for name in stand_ins)}
    saved = {k: v for k, v in sys.modules.items() if _under(k, roots)}
    for name in saved:
        del sys.modules[name]
    try:
        for name, attrs in stand_ins.items():
            for depth in range(1, name.count('.') + 2):
                sys.modules.setdefault('.'.join(name.split('.')[:depth]),
                                       types.ModuleType('.'.join(name.split('.')[:depth])))
            sys.modules[name].__dict__.update(attrs)
        for depth in range(1, len(parts)):
            name = '.'.join(parts[:depth])
            package = types.ModuleType(name)
            package.__path__ = [os.path.join(root, *parts[:depth])]  # submodules come from the checkout
            sys.modules[name] = package
        if parts[0] == 'basicsr' and 'basicsr.utils' not in stand_ins:  # NAFNet's arch_util.py: get_root_logger
            utils = types.ModuleType('basicsr.utils')
            utils.get_root_logger = lambda *args, **kwargs: logging.getLogger('release')
            sys.modules['basicsr.utils'] = utils
        if len(parts) == 1:  # a lone file at the top of the checkout, importing its siblings (iPASSR's model.py)
            sys.path.insert(0, root)
        try:
            return importlib.import_module('.'.join(parts))
        except ImportError as err:
            raise ReleaseImportError(f'{path}: cannot import the released code ({err}); run with a Python that has '
                                     'its dependencies') from None
    finally:
        if len(parts) == 1 and sys.path and sys.path[0] == root:
            sys.path.pop(0)
        for name in [k for k in sys.modules if _under(k, roots)]:
            del sys.modules[name]
        sys.modules.update(saved)


def import_release_class(root, relpath, class_name, stand_ins=None):
    """``getattr(import_release_module(root, relpath), class_name)``, with a one-line error when absent."""
    module = import_release_module(root, relpath, stand_ins)
    if not hasattr(module, class_name):
        raise ReleaseImportError(f'{os.path.join(root, relpath)}: no class {class_name}')
    return getattr(module, class_name)
