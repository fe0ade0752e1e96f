"""Make ``release_swinfirssr_tiny.pt``: outputs and gradients of the released SwinFIRSSR, for test_swinfirssr.py.

    python tests/archs/data/make_release_swinfirssr_tiny.py --release /path/to/SwinFIR [--output FILE] [--check]

``--release`` is a checkout (or ``git archive`` copy) of Zdafeng/SwinFIR; the fixture was made at commit d08db641
(its HEAD on 20 May 2024). Its ``swinfir/archs/swinfirssr_arch.py`` is imported from there with the two files it
imports (``swinfir_utils.py``, ``local_arch.py``), unmodified and never copied; the release's package ``__init__``
files are not run (``swinfir`` and ``swinfir.archs`` are registered as bare packages pointing at the checkout).

The release imports three helpers of pip BasicSR 1.3.5, which is not installed (its ``basicsr`` would clash with
ours, and ours is not imported here either). This script puts minimal stand-ins into ``sys.modules`` instead:
``basicsr.utils.registry.ARCH_REGISTRY`` (a ``register()`` that returns the class unchanged),
``basicsr.archs.arch_util.to_2tuple`` (an int -> (int, int)) and ``trunc_normal_`` (torch's
``nn.init.trunc_normal_``, the same algorithm; every parameter is redrawn below anyway). The release also needs
``einops`` (one ``rearrange`` in its overlapping attention): run this script with a Python that has it, e.g.
``pip install --target /tmp/pylib einops`` and ``PYTHONPATH=/tmp/pylib``; einops is no dependency of ours.

What is made (see README.md beside this file), for each configuration of ``CONFIGS``: ``torch.manual_seed(2023)``,
the release's ``SwinFIRSSR`` with that tiny configuration; every parameter random (LayerNorm weights
~ 1 + 0.2 N(0,1), ``beta``/``gamma`` ~ 0.5 N(0,1), all others ~ 0.2 N(0,1)) so that every branch contributes; the
release's test-time behaviour in eval mode (its ``SwinFIRSSRModel.test``: the input mirrored below and right to the
next multiple of ``window_size`` strictly above its size, the output cropped), reproduced here in
``release_test_forward`` for inputs ``torch.rand(1, 6, h, w)`` of the configuration's sizes; and a training-mode
forward and backward on a whole-window input (as the release trains, unpadded): the output, and the gradients of
``output.square().mean()`` with respect to the input and every parameter. It also prints how far the release's
float32 outputs are from its float64 ones (the 1e-5 tolerance of the test means something only when they are
close). ``--check`` compares with the existing file instead of writing.
"""
import importlib
import os
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ARCH_FILE = os.path.join('swinfir', 'archs', 'swinfirssr_arch.py')
SEED = 2023
# A: windows 4 (shifted: img_size 8 > 4), overlap windows 6, two stages, SFB, x2.
# B: windows 8 with img_size 8 (the release then never shifts), 1conv, x4 (two pixel-shuffle steps).
CONFIGS = {
    'A': dict(config=dict(upscale=2, in_chans=3, img_size=8, window_size=4, compress_ratio=3, squeeze_factor=4,
                          conv_scale=0.01, overlap_ratio=0.5, img_range=1., depths=[2, 2], embed_dim=12,
                          num_heads=[2, 3], mlp_ratio=2, upsampler='pixelshuffle', resi_connection='SFB',
                          drop_path_rate=0.),
              sizes=((8, 12), (5, 11), (9, 7)), train_size=(8, 12)),
    'B': dict(config=dict(upscale=4, in_chans=3, img_size=8, window_size=8, compress_ratio=2, squeeze_factor=4,
                          conv_scale=0.5, overlap_ratio=0.5, img_range=1., depths=[2], embed_dim=8,
                          num_heads=[2], mlp_ratio=2, upsampler='pixelshuffle', resi_connection='1conv',
                          drop_path_rate=0.),
              sizes=((8, 8), (6, 13)), train_size=None),
}
HEAD = ('conv_before_upsample', 'upsample', 'conv_last')  # gradients not stored: most of the bytes, simple convs


def _install_basicsr_stand_ins(torch):
    """Minimal stand-ins for the three pip BasicSR helpers the release imports (see the module docstring)."""

    class _Registry:
        def register(self, *args, **kwargs):
            return lambda cls: cls

    def to_2tuple(x):
        return tuple(x) if isinstance(x, (list, tuple)) else (x, x)

    def trunc_normal_(tensor, mean=0., std=1., a=-2., b=2.):
        return torch.nn.init.trunc_normal_(tensor, mean, std, a, b)

    for name, attrs in (('basicsr', {}), ('basicsr.utils', {}),
                        ('basicsr.utils.registry', {'ARCH_REGISTRY': _Registry()}), ('basicsr.archs', {}),
                        ('basicsr.archs.arch_util', {'to_2tuple': to_2tuple, 'trunc_normal_': trunc_normal_})):
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        sys.modules[name] = module


def import_release_swinfirssr(release):
    """The release's ``SwinFIRSSR`` class, from ``<release>/swinfir/archs/swinfirssr_arch.py``."""
    import torch

    _install_basicsr_stand_ins(torch)
    for name, folder in (('swinfir', 'swinfir'), ('swinfir.archs', os.path.join('swinfir', 'archs'))):
        package = types.ModuleType(name)
        package.__path__ = [os.path.join(release, folder)]  # a bare package: its __init__ is not run
        sys.modules[name] = package
    return importlib.import_module('swinfir.archs.swinfirssr_arch').SwinFIRSSR


def release_test_forward(net, lq, window_size, scale):
    """The release's ``SwinFIRSSRModel.test`` (swinfir/models/swinfirssr_model.py) on one input: mirror to the
    next multiple of window_size strictly above (h // ws + 1) * ws, run, crop."""
    import torch

    _, _, h, w = lq.shape
    pad_h = (h // window_size + 1) * window_size - h
    pad_w = (w // window_size + 1) * window_size - w
    img = torch.cat([lq, torch.flip(lq, [2])], 2)[:, :, :h + pad_h, :]
    img = torch.cat([img, torch.flip(img, [3])], 3)[:, :, :, :w + pad_w]
    return net(img)[..., :h * scale, :w * scale]


def randomise(net, torch):
    """Every parameter random, in ``named_parameters`` order (the draws of the committed fixture), then rounded to
    ``k * 2**-e`` with an int8 ``k`` and one exponent ``e`` per tensor (exact in float32; the fixture stores ``k``
    and ``e``, a quarter of the bytes). Conv and linear weights ~ N(0, 1 / fan_in) / 2, their biases, LayerNorm
    biases ~ 0.1 N(0,1), LayerNorm weights ~ 1 + 0.2 N(0,1), ``beta``/``gamma`` ~ 0.5 N(0,1), bias tables
    ~ 0.5 N(0,1): every branch contributes and activations stay O(1). Returns ``({name: k}, {name: e})``."""
    import math

    codes, exponents = {}, {}
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(('beta', 'gamma', 'relative_position_bias_table')):
                v = 0.5 * torch.randn_like(p)
            elif 'norm' in name and name.endswith('weight'):
                v = 1 + 0.2 * torch.randn_like(p)
            elif name.endswith('weight'):
                v = torch.randn_like(p) * (0.5 / math.sqrt(p[0].numel()))
            else:
                v = 0.1 * torch.randn_like(p)
            e = math.floor(math.log2(127 / v.abs().max().item()))
            k = torch.round(v * 2.0 ** e).clamp_(-127, 127)
            p.copy_(k * 2.0 ** -e)
            codes[name], exponents[name] = k.to(torch.int8), e
    return codes, exponents


def make_fixture(release):
    """The fixture dict (one entry per configuration) and the largest distance of the release's float32 outputs
    from its float64 outputs."""
    import torch

    SwinFIRSSR = import_release_swinfirssr(release)
    fixture, conditioning = {}, 0.
    for key, spec in CONFIGS.items():
        cfg = spec['config']
        torch.manual_seed(SEED)
        net = SwinFIRSSR(**cfg)
        codes, exponents = randomise(net, torch)
        inputs = [torch.rand(1, 6, h, w) for h, w in spec['sizes']]
        net.eval()
        with torch.no_grad():
            outputs = [release_test_forward(net, lq, cfg['window_size'], cfg['upscale']).clone() for lq in inputs]
            net.double()
            conditioning = max([conditioning] + [
                (release_test_forward(net, lq.double(), cfg['window_size'], cfg['upscale']) - out).abs().max().item()
                for lq, out in zip(inputs, outputs)])
            net.float()
        buffers = {k: v.to(torch.int16) for k, v in net.state_dict().items()
                   if k.startswith('relative_position_index')}  # the release's index buffers, small integers
        fixture[key] = {'config': dict(cfg), 'param_codes': codes, 'param_exponents': exponents, 'buffers': buffers,
                        'inputs': inputs, 'outputs': outputs}
        if spec['train_size']:  # training: the release's forward on a whole-window input, then the backward
            net.train()
            train_input = torch.rand(1, 6, *spec['train_size']).requires_grad_()
            train_output = net(train_input)
            train_output.square().mean().backward()
            fixture[key].update(
                train_input=train_input.detach(), train_output=train_output.detach(),
                train_input_grad=train_input.grad,
                train_param_grads={n: p.grad.clone() for n, p in net.named_parameters() if not n.startswith(HEAD)})
    return fixture, conditioning


def _tensors(entry):
    """(name, tensor) of every output and gradient of one configuration's entry."""
    yield from (('outputs', t) for t in entry['outputs'])
    if 'train_output' in entry:
        yield 'train_output', entry['train_output']
        yield 'train_input_grad', entry['train_input_grad']
        yield from entry['train_param_grads'].items()


def compare(made, path):
    """Print how ``made`` differs from the fixture at ``path``; True when configs, weights and inputs are
    identical and every output and gradient is within 1e-5 of its largest magnitude (the test's tolerance)."""
    import torch

    old = torch.load(path, weights_only=True)
    if set(old) != set(made):
        print(f'{path}: other configurations')
        return False
    ok = True
    for key in made:
        a, b = old[key], made[key]
        same = (a['config'] == b['config'] and a['param_exponents'] == b['param_exponents']
                and set(a['param_codes']) == set(b['param_codes'])
                and all(torch.equal(a['param_codes'][k], b['param_codes'][k]) for k in a['param_codes'])
                and all(torch.equal(a['buffers'][k], b['buffers'][k]) for k in a['buffers'])
                and all(torch.equal(x, y) for x, y in zip(a['inputs'], b['inputs'])))
        worst = max(((x - y).abs().max() / y.abs().max().clamp_min(1e-12)).item()
                    for (_, x), (_, y) in zip(_tensors(a), _tensors(b)))
        print(f'{path} [{key}]: config, weights and inputs {"identical" if same else "DIFFER"}, largest relative '
              f'difference of outputs and gradients {worst:.2e}')
        ok = ok and same and worst <= 1e-5
    return ok


def main(argv=None):
    from fixture_cli import run  # beside this file (run as a script, its folder is on the path)

    return run(argv, fixture='release_swinfirssr_tiny.pt', repo='Zdafeng/SwinFIR', checkout='SwinFIR',
               required=[ARCH_FILE], make=make_fixture, compare=compare, needs=('einops',))


if __name__ == '__main__':
    sys.exit(main())
