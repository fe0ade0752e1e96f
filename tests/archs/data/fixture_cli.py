"""What the ``make_release_*_tiny.py`` fixture generators beside this file share: the command line, and the weight
draws of the NAFNet-style families.

    python tests/archs/data/make_release_<family>_tiny.py --release <checkout> [--output FILE] [--check]

Each generator gives ``run`` its fixture's name, the authors' repository, the files a checkout must hold, what the
release imports from outside the checkout, a ``make(release)`` returning the fixture (or ``(fixture, conditioning)``:
how far the release's float32 outputs are from its float64 ones) and a ``compare(made, path)`` deciding ``--check``.
Without a checkout it prints its usage and exits 2 (argparse), as the tests of each family check.
"""
import argparse
import importlib
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def run(argv, *, fixture, repo, checkout, required, make, compare, needs=()):
    """Make the fixture ``fixture`` from ``--release``, or compare with ``--output`` under ``--check``; exit code."""
    parser = argparse.ArgumentParser(description=f'Make {fixture} from a checkout of the released {checkout} code '
                                                 f'({repo}).')
    parser.add_argument('--release', required=True, help=f'folder of a {repo} checkout')
    parser.add_argument('--output', default=os.path.join(HERE, fixture),
                        help='file to write (default: the fixture beside this script)')
    parser.add_argument('--check', action='store_true', help='compare with --output instead of writing it')
    args = parser.parse_args(argv)
    missing = [f for f in required if not os.path.isfile(os.path.join(args.release, f))]
    if missing:
        parser.error(f'--release {args.release}: not a {checkout} checkout (missing {", ".join(missing)})')
    for module in needs:
        try:
            importlib.import_module(module)
        except ImportError:
            parser.error(f'the release needs {module}: run with a Python that has it (e.g. PYTHONPATH=<pip --target '
                         'dir>)')
    made = make(os.path.abspath(args.release))
    if isinstance(made, tuple):
        made, conditioning = made
        print(f'release float32 outputs within {conditioning:.1e} of its float64 outputs')
    if args.check:
        return 0 if compare(made, args.output) else 1
    import torch

    tmp = f'{args.output}.tmp{os.getpid()}'  # a fixture is either the old one or the new one, never half written
    torch.save(made, tmp)
    os.replace(tmp, args.output)
    print(f'wrote {args.output} ({os.path.getsize(args.output):,} bytes)')
    return 0


def randomise_nafnet_style(net, torch):
    """Every parameter random, in ``named_parameters`` order (the draws of the NAFSSR and CVHSSR fixtures):
    ``beta``/``gamma`` ~ 0.5 N(0,1), LayerNorm weights ~ 1 + 0.2 N(0,1), all others ~ 0.2 N(0,1), so that every
    branch contributes."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(('beta', 'gamma')):
                p.copy_(0.5 * torch.randn_like(p))
            elif 'norm' in name and name.endswith('weight'):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
