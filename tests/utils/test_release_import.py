"""basicsr/utils/release_import.py: a released arch file is imported with the release's own ``basicsr`` packages
(here a stand-in checkout written by the test, laid out like the NAFNet release), and ours is back afterwards."""
import os
import sys

import pytest

import basicsr
from basicsr.utils.release_import import ReleaseImportError, import_release_class


def make_checkout(root):
    archs = root / 'basicsr' / 'models' / 'archs'
    archs.mkdir(parents=True)
    (root / 'basicsr' / '__init__.py').write_text('raise RuntimeError("the release package __init__ must not run")\n')
    (archs / '__init__.py').write_text('raise RuntimeError("the release archs __init__ must not run")\n')
    (archs / 'Block_arch.py').write_text('from basicsr.utils import get_root_logger\nWIDTH = 7\n')
    (archs / 'Net_arch.py').write_text('from basicsr.models.archs.Block_arch import WIDTH\n'
                                       'class Net:\n    width = WIDTH\n')


def test_release_modules_come_from_the_checkout_and_ours_stay(tmp_path):
    make_checkout(tmp_path)
    ours = {k: v for k, v in sys.modules.items() if k == 'basicsr' or k.startswith('basicsr.')}
    net = import_release_class(str(tmp_path), 'basicsr/models/archs/Net_arch.py', 'Net')
    assert net.width == 7  # its sibling module was the checkout's, not ours
    assert net.__module__ == 'basicsr.models.archs.Net_arch'
    assert {k: v for k, v in sys.modules.items() if k == 'basicsr' or k.startswith('basicsr.')} == ours
    assert os.path.dirname(basicsr.__file__) != str(tmp_path / 'basicsr')
    from basicsr.models.archs import define_network  # ours still imports as before
    assert define_network.__module__ == 'basicsr.models.archs'


def test_missing_file_and_class_are_one_line(tmp_path):
    make_checkout(tmp_path)
    with pytest.raises(ReleaseImportError, match=r'Other_arch.py: not found; expected a checkout of the released '
                                                 r'code with basicsr/models/archs/Other_arch.py'):
        import_release_class(str(tmp_path), 'basicsr/models/archs/Other_arch.py', 'Net')
    with pytest.raises(ReleaseImportError, match=r'Net_arch.py: no class Nett$'):
        import_release_class(str(tmp_path), 'basicsr/models/archs/Net_arch.py', 'Nett')


def test_missing_dependency_names_the_file(tmp_path):
    make_checkout(tmp_path)
    (tmp_path / 'basicsr' / 'models' / 'archs' / 'Dep_arch.py').write_text('import no_such_package_xyz\n')
    with pytest.raises(ReleaseImportError, match=r"Dep_arch.py: cannot import the released code \(No module named "
                                                 r"'no_such_package_xyz'\)"):
        import_release_class(str(tmp_path), 'basicsr/models/archs/Dep_arch.py', 'Net')


def test_a_lone_file_at_the_top_imports_its_siblings(tmp_path):
    """iPASSR's layout: model.py at the top of the checkout, importing utils.py beside it (not ours)."""
    (tmp_path / 'utils.py').write_text('SCALE = 3\n')
    (tmp_path / 'model.py').write_text('from utils import SCALE\nclass Net:\n    scale = SCALE\n')
    path_before = list(sys.path)
    assert import_release_class(str(tmp_path), 'model.py', 'Net').scale == 3
    assert sys.path == path_before and 'model' not in sys.modules


def test_stand_ins_serve_imports_from_outside_the_checkout(tmp_path):
    """SwinFIR's layout: swinfir/archs/x_arch.py importing helpers of pip BasicSR, which the checkout lacks."""
    archs = tmp_path / 'swinfir' / 'archs'
    archs.mkdir(parents=True)
    (archs / 'x_arch.py').write_text('from basicsr.archs.arch_util import to_2tuple\n'
                                     'from swinfir.archs.utils import K\nclass X:\n    size = to_2tuple(K)\n')
    (archs / 'utils.py').write_text('K = 5\n')
    ours = {k: v for k, v in sys.modules.items() if k == 'basicsr' or k.startswith('basicsr.')}
    x = import_release_class(str(tmp_path), 'swinfir/archs/x_arch.py', 'X',
                             stand_ins={'basicsr.archs.arch_util': {'to_2tuple': lambda v: (v, v)}})
    assert x.size == (5, 5)
    assert {k: v for k, v in sys.modules.items() if k == 'basicsr' or k.startswith('basicsr.')} == ours
    assert not any(k == 'swinfir' or k.startswith('swinfir.') for k in sys.modules)
