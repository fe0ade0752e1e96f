"""Scripts are thin (docs STYLE.md): no script edits ``sys.path`` (the editable install is the set-up), every
script's ``__main__`` ends through ``run_main`` (one-line errors, exit 2), and no script imports another script or
train.py / test.py: what two scripts share lives in the package (``basicsr.toolbox``, ``basicsr.inference``,
``basicsr.release_adapters``). Read from the source with ``ast``."""
import ast
import glob
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, 'scripts', '**', '*.py'),
                                                               recursive=True))
ENTRY_POINTS = SCRIPTS + ['train.py', 'test.py', 'demo.py']
SCRIPT_MODULES = {os.path.splitext(os.path.basename(p))[0] for p in ENTRY_POINTS}


def _tree(relpath):
    with open(os.path.join(ROOT, relpath), encoding='utf-8') as f:
        return ast.parse(f.read())


def edits_sys_path(tree):
    """Lines that change ``sys.path`` (``sys.path.insert/append/extend``, assignments to it)."""
    lines = []
    for node in ast.walk(tree):
        target = node.func.value if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) else None
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            target = next((t.value if isinstance(t, ast.Subscript) else t for t in targets
                           if ast.unparse(t).startswith('sys.path')), None)
        if target is not None and ast.unparse(target) == 'sys.path':
            lines.append(node.lineno)
    return lines


def imported_scripts(tree):
    """Scripts or entry points named by an import or by a path a module is loaded from."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split('.')[0] in SCRIPT_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split('.')[0] in SCRIPT_MODULES:
            found.append(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, 'attr', '') == 'spec_from_file_location':
            found.append(ast.unparse(node))
    return found


def _name(call):
    return getattr(call.func, 'id', getattr(call.func, 'attr', None))


def functions_calling_run_main(tree):
    """Names of the file's functions that call ``run_main``, and of those it imports from a ``basicsr`` module
    whose function of that name does (``demo.py``: ``basicsr.demo_app.main``)."""
    def local(tree):
        return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)
                and any(isinstance(n, ast.Call) and _name(n) == 'run_main' for n in ast.walk(node))}

    names = local(tree)
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or '').startswith('basicsr'):
            path = os.path.join(ROOT, *node.module.split('.')) + '.py'
            if os.path.isfile(path):
                names |= {a.asname or a.name for a in node.names if a.name in local(_tree(path))}
    return names


def main_goes_through_run_main(tree):
    """An ``if __name__ == '__main__':`` block calls ``run_main``, or a function that does."""
    allowed = {'run_main'} | functions_calling_run_main(tree)
    return any(isinstance(node, ast.If) and ast.unparse(node.test) in ("__name__ == '__main__'",
                                                                       '__name__ == "__main__"')
               and any(isinstance(n, ast.Call) and _name(n) in allowed for n in ast.walk(node)) for node in tree.body)


@pytest.mark.parametrize('relpath', ENTRY_POINTS)
def test_no_script_edits_sys_path(relpath):
    assert edits_sys_path(_tree(relpath)) == [], f'{relpath} edits sys.path; import from the installed package'


@pytest.mark.parametrize('relpath', ENTRY_POINTS)
def test_every_script_ends_through_run_main(relpath):
    assert main_goes_through_run_main(_tree(relpath)), f'{relpath}: its __main__ does not go through run_main'


@pytest.mark.parametrize('relpath', ENTRY_POINTS)
def test_no_script_imports_another_script(relpath):
    assert imported_scripts(_tree(relpath)) == [], f'{relpath} imports a script; move what it needs into basicsr/'


def test_the_checks_catch_each_spelling():
    tree = ast.parse('''
import sys
sys.path.insert(0, ROOT)
sys.path.append(ROOT)
sys.path[:0] = [ROOT]
from train import build_loaders
import make_sample
spec = importlib.util.spec_from_file_location('make_sample', path)
def main():
    return 0
if __name__ == '__main__':
    sys.exit(main())
''')
    assert sorted(edits_sys_path(tree)) == [3, 4, 5]
    assert len(imported_scripts(tree)) == 3
    assert not main_goes_through_run_main(tree)
    good = ast.parse('def main():\n    return run_main("x.py", run)\n'
                     'if __name__ == "__main__":\n    sys.exit(main())\n')
    assert main_goes_through_run_main(good)
