"""Make ``release_nafssr_tiny.pt``: outputs of the released NAFSSR implementation, for test_release_fixture.py.

    python tests/archs/data/make_release_nafssr_tiny.py --release /path/to/NAFNet [--output FILE] [--check]

``--release`` is a checkout of megvii-research/NAFNet (the fixture was made at commit f2809712; the four files used,
``basicsr/models/archs/{NAFSSR_arch,NAFNet_arch,arch_util,local_arch}.py``, are unchanged up to its HEAD apart
from NAFNet_arch's ``__main__`` block). Its code is imported from there, unmodified and never copied: the release's
``basicsr`` package is stood in for by empty package modules whose search path is the checkout's folders, so that
its ``__init__`` files (which import the release's whole training stack) do not run and this project's own
``basicsr`` is not imported. Only torch is needed.

What is made (see README.md beside this file): ``torch.manual_seed(2022)``; ``NAFSSR(up_scale=2, width=16,
num_blks=2, train_size=(1, 6, 8, 16))`` (TLSC windows 12 x 24) and the same network with ``fast_imp=True`` (both
built, then the weights drawn); every parameter random (``beta``/``gamma`` ~ 0.5 N(0,1), LayerNorm weights
~ 1 + 0.2 N(0,1), all others ~ 0.2 N(0,1)) so that every branch contributes, copied into the fast network; eval
mode; three inputs ``torch.rand(1, 6, h, w)`` for (h, w) = (10, 20), (16, 40), (8, 30). ``--check`` compares with the
existing file instead of writing: weights and inputs must be bit-identical; outputs differ by float rounding only
(torch 2.14.1 on a 2-core x86 CPU reproduces the committed outputs within 2e-6, the test allows 1e-5).
"""
import importlib
import logging
import os
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ARCH_FILES = ('NAFSSR_arch.py', 'NAFNet_arch.py', 'arch_util.py', 'local_arch.py')
SEED = 2022
CONFIG = dict(up_scale=2, width=16, num_blks=2, train_size=(1, 6, 8, 16))
INPUT_SIZES = ((10, 20), (16, 40), (8, 30))  # smaller than the 12 x 24 window, larger in both, larger in width only


def import_release_nafssr(release):
    """The release's ``NAFSSR`` class, imported from the checkout ``release`` without running its package
    ``__init__`` files."""
    archs = os.path.join(release, 'basicsr', 'models', 'archs')
    if any(name == 'basicsr' or name.startswith('basicsr.') for name in sys.modules):
        raise SystemExit('error: another basicsr package is already imported; run this script on its own')
    for name, path in (('basicsr', os.path.join(release, 'basicsr')),
                       ('basicsr.models', os.path.join(release, 'basicsr', 'models')),
                       ('basicsr.models.archs', archs)):
        package = types.ModuleType(name)
        package.__path__ = [path]  # submodules are found in the checkout; its __init__.py is not run
        sys.modules[name] = package
    utils = types.ModuleType('basicsr.utils')  # arch_util.py imports get_root_logger from here, only that
    utils.get_root_logger = lambda *args, **kwargs: logging.getLogger('basicsr')
    sys.modules['basicsr.utils'] = utils
    return importlib.import_module('basicsr.models.archs.NAFSSR_arch').NAFSSR


def make_fixture(release):
    """The fixture dict: ``params`` (release names) and, for each input i, ``lq_i``, ``sr_i``, ``sr_fast_i``."""

    import torch

    from fixture_cli import randomise_nafnet_style  # beside this file (its folder is on the path)

    NAFSSR = import_release_nafssr(release)
    torch.manual_seed(SEED)
    net = NAFSSR(**CONFIG)  # building runs one forward on torch.rand(train_size): it draws random numbers too
    fast = NAFSSR(**CONFIG, fast_imp=True)
    randomise_nafnet_style(net, torch)
    fast.load_state_dict(net.state_dict())
    inputs = [torch.rand(1, 6, h, w) for h, w in INPUT_SIZES]
    net.eval()
    fast.eval()
    fixture = {'params': {k: v.detach().clone() for k, v in net.state_dict().items()}}
    with torch.no_grad():
        for i, lq in enumerate(inputs):
            fixture[f'lq_{i}'] = lq
            fixture[f'sr_{i}'] = net(lq)
            fixture[f'sr_fast_{i}'] = fast(lq)
    return fixture


def compare(made, path):
    """Print how ``made`` differs from the fixture at ``path``; True when weights and inputs are bit-identical and
    every output is within 1e-5 (the tolerance of test_release_fixture.py)."""
    import torch

    old = torch.load(path, weights_only=True)
    if set(old) != set(made) or set(old['params']) != set(made['params']):
        print(f'{path}: other keys')
        return False
    same_params = all(torch.equal(old['params'][k], made['params'][k]) for k in old['params'])
    same_inputs = all(torch.equal(old[k], made[k]) for k in old if k.startswith('lq_'))
    worst = max((old[k] - made[k]).abs().max().item() for k in old if k.startswith('sr_'))
    print(f'{path}: weights {"identical" if same_params else "DIFFER"}, inputs '
          f'{"identical" if same_inputs else "DIFFER"}, largest output difference {worst:.2e}')
    return same_params and same_inputs and worst <= 1e-5


def main(argv=None):
    from fixture_cli import run  # beside this file (run as a script, its folder is on the path)

    return run(argv, fixture='release_nafssr_tiny.pt', repo='megvii-research/NAFNet', checkout='NAFNet',
               required=[f'basicsr/models/archs/{f}' for f in ARCH_FILES], make=make_fixture, compare=compare, needs=())


if __name__ == '__main__':
    sys.exit(main())
