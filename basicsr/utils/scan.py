"""Import every public module of a package so that its classes register themselves.

Each sub-package calls this from its ``__init__``; ``import basicsr`` therefore fills every registry.
Modules whose name starts with ``_`` are private helpers and are not scanned.
"""
import importlib
from pathlib import Path


def import_modules(package_name, package_file):
    folder = Path(package_file).parent
    for path in sorted(folder.glob('*.py')):
        if not path.stem.startswith('_'):
            importlib.import_module(f'{package_name}.{path.stem}')
