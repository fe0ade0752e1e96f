"""Make ``release_swinfsr_tiny.pt``: outputs and gradients of the released SwinFSR, for test_swinfsr.py.

    python tests/archs/data/make_release_swinfsr_tiny.py --release /path/to/SwinFSR [--output FILE] [--check]

``--release`` is a checkout (or ``git archive`` copy) of GoKerrChen/SwinFSR; the fixture was made at commit 80a42eb4
(its HEAD, 16 Jun 2023). Its ``swin_cam_ffc.py`` (the network its ``train.py`` builds) and ``swin_scam_ffc.py`` are
imported from there as lone modules, unmodified and never copied. They import ``DropPath``, ``to_2tuple`` and
``trunc_normal_`` from ``timm.models.layers``; this script puts a minimal stand-in into ``sys.modules`` instead
(``to_2tuple`` as timm's, ``trunc_normal_`` = torch's, ``DropPath`` refusing to be built: the fixture's networks have
no stochastic depth), so it needs only torch.

What is made (see README.md beside this file): ``torch.manual_seed(2023)``; the release's ``SwinIR(**CONFIG)`` of
``swin_cam_ffc.py`` at x4 (width 8, two stages of two blocks, 3 x 5 windows, training patches 6 x 10) and of
``swin_scam_ffc.py`` at x2; every parameter random, drawn in ``named_parameters`` order from generators seeded 2023
and 2024 (``fixture_weights``: ``beta``/``gamma`` and bias tables ~ 0.5 N(0,1), LayerNorm weights ~ 1 + 0.2 N(0,1),
other weights ~ N(0, 1 / fan_in), biases ~ 0.1 N(0,1)); not stored: the test re-makes them from the stored names and
shapes and checks their sum (``param_sum``). Eval-mode outputs for inputs ``torch.rand(1, 6, h, w)`` with (h, w) =
(6, 10) (the training size: the stored masks), (5, 7) (padded to it) and (7, 12) (padded to 9 x 15: masks made at
that size); the plain-SCAM network on the last two; and, after ``torch.manual_seed(TRAIN_SEED)``, a training-mode
forward (its channel dropout drawn left view then right view) and the gradients of ``sr_l.square().mean() +
sr_r.square().mean()`` with respect to both views and every parameter, in float64 (one flat tensor in
``named_parameters`` order, the up-sampler's convs summed over their input channels: ``compact_grads``). The
parameters the release's forward never uses get no gradient (``no_grad_names``); the release's buffers
(``relative_position_index``, ``attn_mask``) are stored as made. ``--check`` compares with the existing file instead of
writing: config, weights and inputs identical, outputs within 1e-5 and float64 results within 1e-9 of their largest
magnitude.
"""
import importlib.util
import os
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
CAM_FILE, SCAM_FILE = 'swin_cam_ffc.py', 'swin_scam_ffc.py'
SEED = 2023
CONFIG = dict(upscale=4, img_size=(6, 10), window_size_h=3, window_size_w=5, img_range=1., depths=[2, 2],
              embed_dim=8, drop_path_rate=0., num_heads=[2, 2], mlp_ratio=2, upsampler='pixelshuffle')
PLAIN_SCALE = 2
INPUT_SIZES = ((6, 10), (5, 7), (7, 12))
TRAIN_SIZE = (6, 10)
TRAIN_SEED = 14


def import_release(release, filename):
    """The release's ``SwinIR`` class from ``<release>/<filename>`` as a lone module, with a stand-in for timm."""
    import torch

    def to_2tuple(x):
        return tuple(x) if isinstance(x, (list, tuple)) else (x, x)

    class DropPath:
        def __init__(self, *args, **kwargs):
            raise RuntimeError('the fixture uses no stochastic depth')

    layers = types.ModuleType('timm.models.layers')
    layers.DropPath, layers.to_2tuple, layers.trunc_normal_ = DropPath, to_2tuple, torch.nn.init.trunc_normal_
    names = ('timm', 'timm.models', 'timm.models.layers')
    saved = {name: sys.modules.get(name) for name in names}
    for name in names[:2]:
        sys.modules[name] = types.ModuleType(name)
    sys.modules['timm.models.layers'] = layers
    try:
        spec = importlib.util.spec_from_file_location(f'release_{filename[:-3]}', os.path.join(release, filename))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
    return module.SwinIR


def fixture_weights(names_shapes, seed, torch):
    """``{name: tensor}``: every parameter random, drawn in the given order from a generator seeded by ``seed``
    (module docstring): ``beta``/``gamma`` ~ 0.5 N(0,1), LayerNorm weights ~ 1 + 0.2 N(0,1), bias tables ~ 0.5
    N(0,1), other weights ~ N(0, 1 / fan_in), biases ~ 0.1 N(0,1); every branch contributes. The test re-makes them
    from the names and shapes stored in the fixture (the up-sampler's 64-channel convs alone would be 600 kB)."""
    gen = torch.Generator().manual_seed(seed)
    weights = {}
    for name, shape in names_shapes:
        r = torch.randn(shape, generator=gen)
        if name.endswith(('beta', 'gamma')) or name.endswith('relative_position_bias_table'):
            r = 0.5 * r
        elif 'norm' in name and name.endswith('weight'):
            r = 1 + 0.2 * r
        elif name.endswith('weight'):
            r = r / r[0].numel() ** 0.5
        else:
            r = 0.1 * r
        weights[name] = r
    return weights


def randomise(net, seed, torch):
    """``fixture_weights`` copied into ``net``; returns ``[(name, shape)]`` in ``named_parameters`` order."""
    names_shapes = [(n, list(p.shape)) for n, p in net.named_parameters()]
    weights = fixture_weights(names_shapes, seed, torch)
    with torch.no_grad():
        for n, p in net.named_parameters():
            p.copy_(weights[n])
    return names_shapes


def compact_grads(names, grads, torch):
    """The gradients as one flat float64 tensor: whole, except the up-sampler's convs (``upsample.*.weight``),
    summed over their input channels (their values follow from the other gradients and outputs checked)."""
    return torch.cat([(g.sum(dim=1) if n.startswith('upsample.') and n.endswith('weight') else g).reshape(-1)
                      for n, g in zip(names, grads)])


def checksum(tensors, torch):
    """Sum of the absolute values of ``tensors``, in float64 (guards the re-made weights against another RNG)."""
    return sum(t.detach().double().abs().sum().item() for t in tensors)


def flatten(tensors, torch):
    """One 1-D tensor of all ``tensors`` (a tensor per entry would cost more bytes of zip headers than of data)."""
    return torch.cat([t.reshape(-1) for t in tensors])


def make_fixture(release):
    """The fixture dict and the largest distance of the float32 eval outputs from the float64 ones."""
    import torch

    cam_cls, scam_cls = import_release(release, CAM_FILE), import_release(release, SCAM_FILE)
    torch.manual_seed(SEED)
    net = cam_cls(**CONFIG)
    plain = scam_cls(**{**CONFIG, 'upscale': PLAIN_SCALE})
    names_shapes = randomise(net, SEED, torch)
    plain_names_shapes = randomise(plain, SEED + 1, torch)
    inputs = [torch.rand(1, 6, h, w) for h, w in INPUT_SIZES]
    train_input = torch.rand(1, 6, *TRAIN_SIZE)
    net.eval()
    plain.eval()
    conditioning = 0.
    with torch.no_grad():
        outputs = [torch.cat(net(*lq.chunk(2, dim=1)), dim=1) for lq in inputs]
        outputs_plain = [torch.cat(plain(*lq.chunk(2, dim=1)), dim=1) for lq in inputs[1:]]
        net.double()
        for lq, out in zip(inputs, outputs):
            out64 = torch.cat(net(*lq.double().chunk(2, dim=1)), dim=1)
            conditioning = max(conditioning, (out64 - out).abs().max().item())
    net.train()
    x_l, x_r = (v.double().requires_grad_() for v in train_input.chunk(2, dim=1))
    torch.manual_seed(TRAIN_SEED)
    sr_l, sr_r = net(x_l, x_r)
    (sr_l.square().mean() + sr_r.square().mean()).backward()
    names = [n for n, _ in names_shapes]
    no_grad = [n for n, p in net.named_parameters() if p.grad is None]
    with_grad = [(n, p.grad) for n, p in net.named_parameters() if p.grad is not None]
    buffers = {k: v for k, v in net.state_dict().items() if k not in names}
    fixture = {'config': {**CONFIG, 'img_size': list(CONFIG['img_size'])}, 'plain_scale': PLAIN_SCALE, 'seed': SEED,
               'train_seed': TRAIN_SEED, 'param_names': names, 'param_shapes': [s for _, s in names_shapes],
               'param_sum': checksum(net.parameters(), torch),
               'plain_param_names': [n for n, _ in plain_names_shapes],
               'plain_param_shapes': [s for _, s in plain_names_shapes],
               'buffers': {k: v.float() if v.is_floating_point() else v for k, v in buffers.items()},
               'inputs': inputs, 'outputs': outputs, 'outputs_plain': outputs_plain,
               'train_input': train_input, 'train_output': torch.cat([sr_l, sr_r], dim=1).detach(),
               'train_input_grad': torch.cat([x_l.grad, x_r.grad], dim=1), 'no_grad_names': no_grad,
               'train_param_grads': compact_grads(*zip(*with_grad), torch)}
    return fixture, conditioning


def _results(fixture):
    """(name, tensor) of every output and gradient."""
    yield from (('outputs', t) for t in fixture['outputs'])
    yield from (('outputs_plain', t) for t in fixture['outputs_plain'])
    yield 'train_output', fixture['train_output']
    yield 'train_input_grad', fixture['train_input_grad']
    yield 'train_param_grads', fixture['train_param_grads']


def compare(made, path):
    """Print how ``made`` differs from the fixture at ``path``; True when config, weights and inputs are identical
    and every float32 output is within 1e-5, every float64 result within 1e-9, of its largest magnitude."""
    import torch

    old = torch.load(path, weights_only=True)
    if set(old) != set(made) or any(old[k] != made[k] for k in ('config', 'param_names', 'param_shapes',
                                                                  'no_grad_names', 'plain_param_names')):
        print(f'{path}: other keys, config or parameter names')
        return False
    same_params = old['param_sum'] == made['param_sum']
    same_inputs = all(torch.equal(a, b) for a, b in zip(old['inputs'] + [old['train_input']],
                                                        made['inputs'] + [made['train_input']]))
    worst = max(((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()
                * (1e-5 / 1e-9 if b.dtype == torch.float64 else 1)  # in units of the tolerance of its dtype
                for (_, a), (_, b) in zip(_results(old), _results(made)))
    print(f'{path}: weights {"identical" if same_params else "DIFFER"}, inputs '
          f'{"identical" if same_inputs else "DIFFER"}, largest relative difference {worst:.2e} (float64 ones scaled '
          'by 1e4)')
    return same_params and same_inputs and worst <= 1e-5


def main(argv=None):
    from fixture_cli import run  # beside this file (run as a script, its folder is on the path)

    return run(argv, fixture='release_swinfsr_tiny.pt', repo='GoKerrChen/SwinFSR', checkout='SwinFSR',
               required=[CAM_FILE, SCAM_FILE], make=make_fixture, compare=compare)


if __name__ == '__main__':
    sys.exit(main())
