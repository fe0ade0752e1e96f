"""constraints.txt pins everything `make test` installs: each requirement, the test extras, torch and torchvision at
the versions the Makefile names, so that CI on a fresh machine installs exactly what the suite was run with."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement):
    """The normalised project name of a requirement line (``opencv-python>=4.6`` -> ``opencv-python``)."""
    return re.split(r'[<>=!~;\[ ]', requirement.strip(), maxsplit=1)[0].lower().replace('_', '-')


def _pins():
    pins = {}
    for line in (ROOT / 'constraints.txt').read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if line:
            name, sep, version = line.partition('==')
            assert sep and version, f'constraints.txt: {line!r} is not an exact pin (name==version)'
            pins[_name(name)] = version
    return pins


def _test_extras():
    tree = ast.parse((ROOT / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == 'extras_require':
            return ast.literal_eval(node.value)['test']
    raise AssertionError('setup.py: no extras_require')


def test_every_installed_requirement_is_pinned():
    pins = _pins()
    requirements = [line for line in (ROOT / 'requirements.txt').read_text().splitlines()
                    if line.strip() and not line.startswith('#')]
    missing = [r for r in requirements + _test_extras() if _name(r) not in pins]
    assert missing == [], f'add to constraints.txt (pip freeze): {missing}'
    assert {'pytest', 'pytest-timeout'} <= set(pins)


def test_torch_pins_agree_with_the_makefile():
    pins = _pins()
    torch_line = re.search(r'^TORCH\s*:=\s*(.+)$', (ROOT / 'Makefile').read_text(), re.M).group(1)
    for requirement in torch_line.split():
        name, _, version = requirement.partition('==')
        assert pins[name] == version, f'Makefile says {requirement}, constraints.txt {name}=={pins[name]}'
