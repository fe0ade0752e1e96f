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


def import_release_module(root, relpath):
    """The module at ``<root>/<relpath>`` (``basicsr/models/archs/CVHSSR_arch.py``), imported under the name its
    package path gives it (``basicsr.models.archs.CVHSSR_arch``) with the release's packages, not ours."""
    path = os.path.join(root, relpath)
    if not os.path.isfile(path):
        raise ReleaseImportError(f'{path}: not found; expected a checkout of the released code with {relpath}')
    parts = relpath[:-len('.py')].split('/')
    saved = {k: v for k, v in sys.modules.items() if k == 'basicsr' or k.startswith('basicsr.')}
    for name in saved:
        del sys.modules[name]
    try:
        for depth in range(1, len(parts)):
            name = '.'.join(parts[:depth])
            package = types.ModuleType(name)
            package.__path__ = [os.path.join(root, *parts[:depth])]  # submodules come from the checkout
            sys.modules[name] = package
        if parts[0] == 'basicsr':  # NAFNet's arch_util.py imports get_root_logger from here, only that
            utils = types.ModuleType('basicsr.utils')
            utils.get_root_logger = lambda *args, **kwargs: logging.getLogger('release')
            sys.modules['basicsr.utils'] = utils
        try:
            return importlib.import_module('.'.join(parts))
        except ImportError as err:
            raise ReleaseImportError(f'{path}: cannot import the released code ({err}); run with a Python that has '
                                     'its dependencies') from None
    finally:
        for name in [k for k in sys.modules if k == 'basicsr' or k.startswith('basicsr.')]:
            del sys.modules[name]
        sys.modules.update(saved)


def import_release_class(root, relpath, class_name):
    """``getattr(import_release_module(root, relpath), class_name)``, with a one-line error when absent."""
    module = import_release_module(root, relpath)
    if not hasattr(module, class_name):
        raise ReleaseImportError(f'{os.path.join(root, relpath)}: no class {class_name}')
    return getattr(module, class_name)
