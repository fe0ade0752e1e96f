"""Make ``release_ehfssr_tiny.pt``: outputs of the released EHFSSR and EHFSSR-S implementations, for test_ehfssr.py.

    python tests/archs/data/make_release_ehfssr_tiny.py --release /path/to/EHFSSR [--output FILE] [--check]

``--release`` is a checkout of jianwensong/EHFSSR (the fixture was made at commit 66d96aa4, its HEAD on 29 Nov 2026).
The two architecture files ``basicsr/models/archs/{EHFSSR_arch,EHFSSR_S_arch}.py`` are imported from there by
path, unmodified and never copied (the release's package ``__init__`` files are not run, and this project's own
``basicsr`` is not imported). They need torch, einops and matplotlib (imported, unused): run this script with a
Python that has them, e.g. a scratch venv (``python3 -m venv --system-site-packages /tmp/release_venv`` with torch
visible to it, then ``/tmp/release_venv/bin/pip install einops matplotlib``); einops is no dependency of ours.

What is made (see README.md beside this file), for each model in ``MODELS``: ``torch.manual_seed(2024)`` then the
release class built with its tiny ``config`` (4 layers per group: the cross-view layer, an unshifted and a shifted
window-attention layer, the global channel-attention layer); every parameter random (LayerNorm weights
~ 1 + 0.2 N(0,1), ``temperature`` ~ 1 + 0.5 U(0,1), all others ~ 0.2 N(0,1)) so that every branch contributes; eval
mode; inputs ``torch.rand(1, 6, h, w)`` for the model's two sizes, one a multiple of the 16-pixel window and one
not (padded by reflection inside the window attention), one of them wider than the 96-pixel disparity band;
``outputs`` the release's outputs; ``input_grads`` the gradient of ``output.square().mean()`` with respect to each
input (train mode; no layer behaves differently in training), which checks the whole backward pass. ``--check``
compares with the existing file instead of writing: weights and inputs must be bit-identical, outputs and
gradients equal to 1e-5 of their size.
"""
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 2024
MODELS = {
    'EHFSSR': dict(file='EHFSSR_arch.py', config=dict(up_scale=2, dim=16, groups=1, num=4),
                   sizes=((16, 32), (9, 100))),
    'EHFSSR_S': dict(file='EHFSSR_S_arch.py', config=dict(up_scale=4, dim=8, groups=1, num=4),
                     sizes=((16, 16), (9, 13))),
}


def import_release_class(release, name):
    """The release's class ``name``, from its architecture file in the checkout ``release`` (by path)."""
    path = os.path.join(release, 'basicsr', 'models', 'archs', MODELS[name]['file'])
    spec = importlib.util.spec_from_file_location(f'release_{name}_arch', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def randomise(net, torch):
    """Every parameter random, in ``named_parameters`` order (the draws of the committed fixture)."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if 'ayernorm' in name and name.endswith('weight'):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith('temperature'):
                p.copy_(1 + 0.5 * torch.rand_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))


def make_model_entry(release, name):
    import torch

    spec = MODELS[name]
    cls = import_release_class(release, name)
    torch.manual_seed(SEED)
    net = cls(**spec['config'])
    randomise(net, torch)
    inputs = [torch.rand(1, 6, h, w) for h, w in spec['sizes']]
    outputs, grads = [], []
    net.eval()
    with torch.no_grad():
        outputs = [net(x) for x in inputs]
    net.train()
    for x in inputs:
        x = x.clone().requires_grad_()
        net(x).square().mean().backward()
        grads.append(x.grad.detach().clone())
    return {'config': dict(spec['config']), 'state_dict': {k: v.detach().clone() for k, v in net.state_dict().items()},
            'inputs': inputs, 'outputs': outputs, 'input_grads': grads}


def make_fixture(release):
    return {name: make_model_entry(release, name) for name in MODELS}


def compare(made, path):
    """Print how ``made`` differs from the fixture at ``path``; True when weights and inputs are bit-identical and
    outputs and gradients are within 1e-5 of their largest magnitude."""
    import torch

    old = torch.load(path, weights_only=True)
    ok = set(old) == set(made)
    for name in made:
        o, m = old.get(name), made[name]
        if o is None or o['config'] != m['config'] or set(o['state_dict']) != set(m['state_dict']):
            print(f'{path}: {name}: other configuration or parameter names')
            ok = False
            continue
        same_params = all(torch.equal(o['state_dict'][k], m['state_dict'][k]) for k in o['state_dict'])
        same_inputs = all(torch.equal(a, b) for a, b in zip(o['inputs'], m['inputs']))
        out = max((a - b).abs().max().item() for a, b in zip(o['outputs'], m['outputs']))
        grad = max(((a - b).abs().max() / b.abs().max()).item() for a, b in zip(o['input_grads'], m['input_grads']))
        print(f'{path}: {name}: weights {"identical" if same_params else "DIFFER"}, inputs '
              f'{"identical" if same_inputs else "DIFFER"}, largest output difference {out:.2e}, '
              f'largest relative input-gradient difference {grad:.2e}')
        ok = ok and same_params and same_inputs and out <= 1e-5 and grad <= 1e-5
    return ok


def main(argv=None):
    from fixture_cli import run  # beside this file (run as a script, its folder is on the path)

    return run(argv, fixture='release_ehfssr_tiny.pt', repo='jianwensong/EHFSSR', checkout='EHFSSR',
               required=[f"basicsr/models/archs/{m['file']}" for m in MODELS.values()], make=make_fixture, compare=compare, needs=())


if __name__ == '__main__':
    sys.exit(main())
