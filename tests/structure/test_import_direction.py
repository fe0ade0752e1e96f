"""Imports point down: nothing in ``basicsr/utils`` imports ``basicsr.data``, ``basicsr.models`` or
``basicsr.metrics`` (read from the source with ``ast``, imports inside functions included)."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UTILS = os.path.join(ROOT, 'basicsr', 'utils')
UPWARD = ('basicsr.data', 'basicsr.models', 'basicsr.metrics')


def imported_modules(source):
    """Every module an ``import`` or ``from ... import`` names, at any depth; ``from basicsr import data`` counts
    as ``basicsr.data``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
            found += [f'{node.module}.{alias.name}' for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, 'attr', getattr(node.func, 'id', '')) in (
                'import_module', '__import__') and node.args and isinstance(node.args[0], ast.Constant):
            found.append(str(node.args[0].value))
    return found


def upward(modules):
    return sorted({m for m in modules if any(m == u or m.startswith(u + '.') for u in UPWARD)})


@pytest.mark.parametrize('name', sorted(n for n in os.listdir(UTILS) if n.endswith('.py')))
def test_utils_module_imports_point_down(name):
    with open(os.path.join(UTILS, name), encoding='utf-8') as f:
        assert upward(imported_modules(f.read())) == [], f'basicsr/utils/{name} imports upward'


def test_the_rule_catches_every_spelling():
    source = '''
import basicsr.data.layout
from basicsr.models.archs import scam
from basicsr import metrics
def late():
    from basicsr.data import layout
    importlib.import_module('basicsr.models')
'''
    assert upward(imported_modules(source)) == ['basicsr.data', 'basicsr.data.layout', 'basicsr.metrics',
                                                'basicsr.models', 'basicsr.models.archs',
                                                'basicsr.models.archs.scam']
