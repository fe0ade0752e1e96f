"""Make ``release_scglanet_tiny.pt``: outputs and gradients of the released SCGLANet, for test_scglanet.py.

    python tests/archs/data/make_release_scglanet_tiny.py --release /path/to/SCGLANet [--output FILE] [--check]

``--release`` is a checkout (or ``git archive`` copy) of fzuzyb/SCGLANet; the fixture was made at commit 3ad03227
(its HEAD of 7 Jun 2023). Its ``basicsr/archs/scglanet_arch.py`` is imported from there as a lone module,
unmodified and never copied. It imports ``ARCH_REGISTRY`` from the release's vendored BasicSR, whose package would
clash with ours: this script puts a minimal stand-in into ``sys.modules`` instead (``basicsr.utils.registry`` with an
``ARCH_REGISTRY.register()`` that returns the class unchanged); the file needs only torch and numpy otherwise.

SCGLA, the release's global attention, hashes the tokens with random rotations drawn from torch's default generator
at every forward (``nn.init.orthogonal_`` of fresh tensors), so every forward here is preceded by
``torch.manual_seed(<its own seed>)``, stored in the fixture: the test seeds the same and must consume the generator
in the same order to get the same buckets.

What is made (see README.md beside this file): ``torch.manual_seed(2023)``; the release's ``SCGLANet(**CONFIG)``
(width 8, one or two blocks per group, chunks of 8 tokens, temperature 2 as its option files, TLSC windows 12 x 24)
and the same network with ``fast_imp=True``; every parameter random (``beta``/``gamma`` ~ 0.5 N(0,1), LayerNorm
weights ~ 1 + 0.2 N(0,1), all others ~ 0.2 N(0,1)), copied into the fast network; eval-mode outputs for inputs
``torch.rand(1, 6, h, w)`` with (h, w) = (5, 7) (70 tokens per view: the last chunk padded; global pooling), (9, 30)
(padded; local pooling in width) and (16, 36) (144 chunks: the bucket count capped at 128; local in both); and a
training-mode forward on an 8 x 16 input with the gradients of ``output.square().mean()`` with respect to the input
and every parameter, in float64 with the same rotations (drawn in float32 and cast: the float32 gradients of
such a random network are ill-conditioned, the release's own 3e-3 away from its float64 ones). Parameters and their gradients are stored as one flat tensor each, in ``named_parameters``
order (``param_names``, ``param_shapes``); ``outputs_fast`` only for the inputs where TLSC pools locally. It also prints how far the release's float32 outputs are from its float64 ones on the same
buckets. ``--check`` compares with the existing file instead of writing: config, weights and inputs identical,
outputs within 1e-5 and float64 training results within 1e-9 of their largest magnitude.
"""
import importlib.util
import os
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ARCH_FILE = os.path.join('basicsr', 'archs', 'scglanet_arch.py')
SEED = 2023
CONFIG = dict(up_scale=2, width=8, num_blks=[1, 2, 1, 1, 1], chunk_size=4, train_size=[1, 6, 8, 16],
              drop_path_rate=0., drop_out_rate=0., temperature=2.0)
INPUT_SIZES = ((5, 7), (9, 31), (13, 27))
TRAIN_SIZE = (8, 16)
FORWARD_SEEDS = (11, 12, 13)  # torch.manual_seed before each eval forward; TRAIN_SEED before the training one
TRAIN_SEED = 14


def import_release_scglanet(release):
    """The release's ``SCGLANet`` class, from ``<release>/basicsr/archs/scglanet_arch.py`` as a lone module."""
    class _Registry:
        def register(self, *args, **kwargs):
            return lambda cls: cls

    saved = {name: sys.modules.get(name) for name in ('basicsr', 'basicsr.utils', 'basicsr.utils.registry')}
    for name in saved:
        sys.modules[name] = types.ModuleType(name)
    sys.modules['basicsr.utils.registry'].ARCH_REGISTRY = _Registry()
    try:
        spec = importlib.util.spec_from_file_location('release_scglanet_arch', os.path.join(release, ARCH_FILE))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
    return module.SCGLANet


def randomise(net, torch):
    """Every parameter random, in ``named_parameters`` order: ``beta``/``gamma`` ~ 0.5 N(0,1), LayerNorm weights
    ~ 1 + 0.2 N(0,1), other weights ~ N(0, 1 / fan_in), biases ~ 0.1 N(0,1): every branch contributes and the
    features stay O(1)."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(('beta', 'gamma')):
                p.copy_(0.5 * torch.randn_like(p))
            elif 'norm' in name and name.endswith('weight'):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith('weight'):
                p.copy_(torch.randn_like(p) / p[0].numel() ** 0.5)
            else:
                p.copy_(0.1 * torch.randn_like(p))


def _float32_rotations(torch):
    """A stand-in for ``nn.init.orthogonal_`` that draws in float32 and casts: in the float64 run the release then
    hashes with the same rotations as in the float32 run."""
    orthogonal_ = torch.nn.init.orthogonal_

    def draw(tensor, *args, **kwargs):
        with torch.no_grad():
            return tensor.copy_(orthogonal_(torch.empty(tensor.shape, dtype=torch.float32), *args, **kwargs))
    return orthogonal_, draw


def make_fixture(release):
    """The fixture dict and the largest distance of the float32 eval outputs from the float64 ones."""
    import torch

    SCGLANet = import_release_scglanet(release)
    torch.manual_seed(SEED)
    net = SCGLANet(**CONFIG)  # building runs one forward on torch.rand(train_size): it draws random numbers too
    fast = SCGLANet(**CONFIG, fast_imp=True)
    randomise(net, torch)
    fast.load_state_dict(net.state_dict())
    inputs = [torch.rand(1, 6, h, w) for h, w in INPUT_SIZES]
    train_input = torch.rand(1, 6, *TRAIN_SIZE)
    net.eval()
    fast.eval()
    outputs, outputs_fast, conditioning = [], [], 0.
    with torch.no_grad():
        for seed, lq in zip(FORWARD_SEEDS, inputs):
            torch.manual_seed(seed)
            outputs.append(net(lq))
            torch.manual_seed(seed)
            outputs_fast.append(fast(lq))
        net.double()
        orthogonal_, torch.nn.init.orthogonal_ = _float32_rotations(torch)
        torch.set_default_dtype(torch.float64)  # the release makes its rotation tensors in the default dtype
        try:
            for seed, lq, out in zip(FORWARD_SEEDS, inputs, outputs):
                torch.manual_seed(seed)
                conditioning = max(conditioning, (net(lq.double()) - out).abs().max().item())
        finally:
            torch.set_default_dtype(torch.float32)
            torch.nn.init.orthogonal_ = orthogonal_
        net.float()
    # training in float64: the float32 gradients of this configuration are ill-conditioned (the release's own are
    # 3e-3 away from its float64 ones, through the exponentials of the chunk attention), the float64 ones are not
    net.double().train()
    x = train_input.double().requires_grad_()
    orthogonal_, torch.nn.init.orthogonal_ = _float32_rotations(torch)
    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(TRAIN_SEED)
        train_output = net(x)
    finally:
        torch.set_default_dtype(torch.float32)
        torch.nn.init.orthogonal_ = orthogonal_
    train_output.square().mean().backward()
    names = [n for n, _ in net.named_parameters()]  # the state dict holds parameters only
    assert names == list(net.state_dict())
    fixture = {'config': dict(CONFIG), 'forward_seeds': list(FORWARD_SEEDS), 'train_seed': TRAIN_SEED,
               'param_names': names, 'param_shapes': [list(p.shape) for p in net.parameters()],
               'params': flatten([p.detach().float() for p in net.parameters()], torch),
               'inputs': inputs, 'outputs': outputs, 'outputs_fast': outputs_fast[1:],
               'train_input': train_input, 'train_output': train_output.detach(), 'train_input_grad': x.grad,
               'train_param_grads': flatten([p.grad for p in net.parameters()], torch)}
    return fixture, conditioning


def flatten(tensors, torch):
    """One 1-D tensor of all ``tensors`` (a tensor per entry would cost more bytes of zip headers than of data)."""
    return torch.cat([t.reshape(-1) for t in tensors])


def _results(fixture):
    """(name, tensor) of every output and gradient."""
    yield from (('outputs', t) for t in fixture['outputs'])
    yield from (('outputs_fast', t) for t in fixture['outputs_fast'])
    yield 'train_output', fixture['train_output']
    yield 'train_input_grad', fixture['train_input_grad']
    yield 'train_param_grads', fixture['train_param_grads']


def compare(made, path):
    """Print how ``made`` differs from the fixture at ``path``; True when config, weights and inputs are identical
    and every float32 output is within 1e-5, every float64 training result within 1e-9, of its largest magnitude."""
    import torch

    old = torch.load(path, weights_only=True)
    if set(old) != set(made) or any(old[k] != made[k] for k in ('config', 'param_names', 'param_shapes')):
        print(f'{path}: other keys, config or parameter names')
        return False
    same_params = torch.equal(old['params'], made['params'])
    same_inputs = all(torch.equal(a, b) for a, b in zip(old['inputs'] + [old['train_input']],
                                                        made['inputs'] + [made['train_input']]))
    worst = max(((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()
                * (1e-5 / 1e-9 if b.dtype == torch.float64 else 1)  # in units of the tolerance of its dtype
                for (_, a), (_, b) in zip(_results(old), _results(made)))
    print(f'{path}: weights {"identical" if same_params else "DIFFER"}, inputs '
          f'{"identical" if same_inputs else "DIFFER"}, largest relative difference {worst:.2e} (float64 ones scaled by 1e4)')
    return same_params and same_inputs and worst <= 1e-5


def main(argv=None):
    from fixture_cli import run  # beside this file (run as a script, its folder is on the path)

    return run(argv, fixture='release_scglanet_tiny.pt', repo='fzuzyb/SCGLANet', checkout='SCGLANet',
               required=[ARCH_FILE], make=make_fixture, compare=compare, needs=('numpy',))


if __name__ == '__main__':
    sys.exit(main())
