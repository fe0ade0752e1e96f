"""Make ``release_cvhssr_tiny.pt``: outputs of the released CVHSSR implementation, for test_cvhssr.py.

    python tests/archs/data/make_release_cvhssr_tiny.py --release /path/to/CVHSSR [--output FILE] [--check]

``--release`` is a checkout (or extracted copy) of AlexZou14/CVHSSR; the fixture was made at commit 252cd388. Its
``basicsr/models/archs/CVHSSR_arch.py`` is imported from there as a lone module, unmodified and never copied (it
imports only torch and numpy, so neither the release's ``basicsr`` package nor this project's is involved).

What is made (see README.md beside this file): ``torch.manual_seed(2023)``; the release's
``CVHSSR(up_scale=2, width=12, num_blks=2, train_size=(1, 6, 8, 16))`` (TLSC windows 12 x 24) and the same network
with ``fast_imp=True`` (both built, then the weights drawn); every parameter random (``beta``/``gamma`` ~ 0.5 N(0,1),
LayerNorm weights ~ 1 + 0.2 N(0,1), all others ~ 0.2 N(0,1)) so that every branch contributes, copied into the fast
network; eval mode; three inputs ``torch.rand(1, 6, h, w)`` for (h, w) = (10, 20) (inside the window: global
pooling), (16, 40) (larger in both dimensions: local pooling) and (8, 30) (larger in width only). The script also
runs the release in float64 and prints how far the float32 outputs are from it, to show that the configuration is
well-conditioned (a tolerance of 1e-5 means something only then). ``--check`` compares with the existing file
instead of writing: config, weights and inputs must be identical, outputs within 1e-5.
"""
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ARCH_FILE = os.path.join('basicsr', 'models', 'archs', 'CVHSSR_arch.py')
SEED = 2023
CONFIG = dict(up_scale=2, width=12, num_blks=2, train_size=[1, 6, 8, 16])
INPUT_SIZES = ((10, 20), (16, 40), (8, 30))  # inside the 12 x 24 window, larger in both, larger in width only


def import_release_cvhssr(release):
    """The release's ``CVHSSR`` class, from ``<release>/basicsr/models/archs/CVHSSR_arch.py`` as a lone module."""
    spec = importlib.util.spec_from_file_location('release_CVHSSR_arch', os.path.join(release, ARCH_FILE))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CVHSSR


def make_fixture(release):
    """The fixture dict: ``config``, ``state_dict`` (release names), ``inputs``, ``outputs``, ``outputs_fast``;
    and the largest distance of the float32 outputs from the release's float64 outputs."""
    import torch

    from fixture_cli import randomise_nafnet_style  # beside this file (its folder is on the path)

    CVHSSR = import_release_cvhssr(release)
    torch.manual_seed(SEED)
    net = CVHSSR(**CONFIG)  # building runs one forward on torch.rand(train_size): it draws random numbers too
    fast = CVHSSR(**CONFIG, fast_imp=True)
    randomise_nafnet_style(net, torch)
    fast.load_state_dict(net.state_dict())
    inputs = [torch.rand(1, 6, h, w) for h, w in INPUT_SIZES]
    net.eval()
    fast.eval()
    with torch.no_grad():
        outputs = [net(lq) for lq in inputs]
        outputs_fast = [fast(lq) for lq in inputs]
        net.double()
        conditioning = max((net(lq.double()) - out).abs().max().item() for lq, out in zip(inputs, outputs))
        net.float()
    fixture = {'config': dict(CONFIG), 'state_dict': {k: v.detach().clone() for k, v in net.state_dict().items()},
               'inputs': inputs, 'outputs': outputs, 'outputs_fast': outputs_fast}
    return fixture, conditioning


def compare(made, path):
    """Print how ``made`` differs from the fixture at ``path``; True when config, weights and inputs are identical
    and every output is within 1e-5 (the tolerance of test_cvhssr.py)."""
    import torch

    old = torch.load(path, weights_only=True)
    if set(old) != set(made) or set(old['state_dict']) != set(made['state_dict']) or old['config'] != made['config']:
        print(f'{path}: other keys or config')
        return False
    same_params = all(torch.equal(old['state_dict'][k], made['state_dict'][k]) for k in old['state_dict'])
    same_inputs = all(torch.equal(a, b) for a, b in zip(old['inputs'], made['inputs']))
    worst = max((a - b).abs().max().item() for key in ('outputs', 'outputs_fast') for a, b in zip(old[key], made[key]))
    print(f'{path}: weights {"identical" if same_params else "DIFFER"}, inputs '
          f'{"identical" if same_inputs else "DIFFER"}, largest output difference {worst:.2e}')
    return same_params and same_inputs and worst <= 1e-5


def main(argv=None):
    from fixture_cli import run  # beside this file (run as a script, its folder is on the path)

    return run(argv, fixture='release_cvhssr_tiny.pt', repo='AlexZou14/CVHSSR', checkout='CVHSSR',
               required=[ARCH_FILE], make=make_fixture, compare=compare, needs=())


if __name__ == '__main__':
    sys.exit(main())
