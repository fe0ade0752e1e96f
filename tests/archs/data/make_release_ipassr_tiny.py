"""Make ``release_ipassr_tiny.pt``: outputs, attention maps, validity masks, losses and gradients of the released
iPASSR code, for test_ipassr.py.

    python tests/archs/data/make_release_ipassr_tiny.py --release /path/to/iPASSR [--output FILE] [--check]

``--release`` is a checkout (or extracted copy) of YingqianWang/iPASSR (the fixture was made at its HEAD of
29 Nov 2026, the code of Dec 2021). Its ``model.py`` is imported from there as a lone module and its ``train.py``
is run there, both unmodified and never copied; they need torch, torchvision, numpy, matplotlib, scikit-image and
Pillow.

The release's network has one size (``Net(upscale_factor)``, 1.4M parameters), so the fixture uses the real x2 and
x4 networks with small inputs. Their weights are not stored (5.5 MB each): ``fixture_weights`` draws every tensor
from a generator seeded by its name, so the test re-makes them; the fixture keeps a checksum per tensor to prove it.

What is recorded, per scale (2, 4):
- ``eval``: the release's test call (``is_training=0``, module left in training mode as its test.py does: the
  BatchNorm uses each image's own statistics) for inputs ``torch.rand(1, 6, h, w)``, (h, w) in INPUT_SIZES;
- ``running``: the same after ``net.eval()`` (the BatchNorm's running averages), first input only;
- ``train``: ``is_training=1`` on a batch of 2 (BatchNorm statistics over the batch): outputs, both attention
  maps (N, h, w, w) and both validity masks (N, 1, h, w);
and at x2, ``step``: one iteration of the release's ``train.py`` (its ``train()`` on a one-batch loader) with the
same weights: the twelve L1 terms its loss is made of, in the order it computes them (SR left, right; photometric
left, right; smoothness over rows left/right, over the diagonal left/right; cycle left, right; consistency left,
right) and the gradients of a few parameters before its Adam step. ``--check`` compares with the existing file.
"""
import argparse
import contextlib
import importlib.util
import os
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 2021
SCALES = (2, 4)
INPUT_SIZES = ((6, 10), (9, 16))
TRAIN_SIZE = (2, 5, 12)  # batch, h, w
GRAD_PARAMS = ('init_feature.weight', 'pam.bq.weight', 'pam.bn.weight', 'fusion.1.conv_du.0.weight',
               'upscale.2.weight')


def fixture_weights(state_dict):
    """Random values for every tensor of ``state_dict`` (names -> tensors of the release's ``Net``), each drawn from
    a generator seeded by SEED and its name: convolution weights U(-b, b) with b = 0.5 sqrt(3 / fan_in) (half the
    unit gain: residuals of order 0.1, well-conditioned), biases U(-0.1, 0.1), BatchNorm weights U(0.8, 1.2),
    biases U(-0.2, 0.2), running means U(-0.1, 0.1), running variances U(0.5, 1.5); integer buffers unchanged."""
    import torch

    out = {}
    for name, value in state_dict.items():
        if not value.is_floating_point():
            out[name] = value.clone()
            continue
        gen = torch.Generator().manual_seed(SEED + zlib.crc32(name.encode()))
        u = torch.rand(value.shape, generator=gen, dtype=torch.float64)
        if '.bn.' in name:
            low, high = {'weight': (0.8, 1.2), 'bias': (-0.2, 0.2), 'running_mean': (-0.1, 0.1),
                         'running_var': (0.5, 1.5)}[name.rsplit('.', 1)[1]]
        elif name.endswith('weight'):
            bound = 0.5 * (3.0 / value[0].numel()) ** 0.5
            low, high = -bound, bound
        else:
            low, high = -0.1, 0.1
        out[name] = (low + (high - low) * u).to(value.dtype)
    return out


def checksums(state_dict):
    """Sum and sum of squares of every floating-point tensor, in float64: (len, 2)."""
    import torch

    return torch.tensor([[v.double().sum().item(), v.double().square().sum().item()]
                         for v in state_dict.values() if v.is_floating_point()], dtype=torch.float64)


def import_release(release, name):
    spec = importlib.util.spec_from_file_location(f'release_ipassr_{name}', os.path.join(release, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def release_on_path(release):
    """train.py imports ``model`` and ``utils`` by name: let it find the release's, and only while it runs."""
    sys.path.insert(0, release)
    saved = {k: sys.modules.pop(k) for k in ('model', 'utils') if k in sys.modules}
    try:
        yield
    finally:
        sys.path.remove(release)
        for k in ('model', 'utils'):
            sys.modules.pop(k, None)
        sys.modules.update(saved)


def run_release_step(release, weights, scale, batch):
    """One iteration of the release's ``train()`` on ``batch`` = (HR_left, HR_right, LR_left, LR_right) from
    ``weights``: its twelve L1 terms and the gradients of GRAD_PARAMS."""
    import torch

    with release_on_path(release):
        train = import_release(release, 'train')
    terms, grads = [], {}
    release_net = train.Net

    def make_net(upscale_factor):
        net = release_net(upscale_factor)
        net.load_state_dict(weights)
        return net

    class RecordingL1(torch.nn.L1Loss):
        def forward(self, a, b):
            out = super().forward(a, b)
            terms.append(out.detach().clone())
            return out

    class RecordingAdam(torch.optim.Adam):
        def step(self, closure=None):
            named = dict(net_holder[0].named_parameters())
            grads.update({k: named[k].grad.detach().clone() for k in GRAD_PARAMS})
            return super().step(closure)

    net_holder = []

    def make_and_hold(upscale_factor):
        net_holder.append(make_net(upscale_factor))
        return net_holder[0]

    cfg = argparse.Namespace(scale_factor=scale, device='cpu', lr=2e-4, gamma=0.5, start_epoch=0, n_epochs=1,
                             n_steps=30, model_name='iPASSR', load_pretrain=False)
    saved = (train.Net, torch.nn.L1Loss, torch.optim.Adam)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, 'log'))
        os.chdir(tmp)  # its checkpoint goes to ./log/
        train.Net, torch.nn.L1Loss, torch.optim.Adam = make_and_hold, RecordingL1, RecordingAdam
        try:
            with contextlib.redirect_stdout(open(os.devnull, 'w')):
                train.train([batch], cfg)
        finally:
            train.Net, torch.nn.L1Loss, torch.optim.Adam = saved
            os.chdir(cwd)
    return torch.stack(terms), grads


def make_fixture(release):
    """The fixture dict, and the largest distance of the float32 outputs from the release's float64 outputs."""
    import torch

    model = import_release(release, 'model')
    torch.manual_seed(SEED)
    fixture, conditioning = {}, 0.0
    for scale in SCALES:
        net = model.Net(scale)
        weights = fixture_weights(net.state_dict())
        net.load_state_dict(weights)
        entry = {'checksums': checksums(weights), 'inputs': [torch.rand(1, 6, h, w) for h, w in INPUT_SIZES]}
        with torch.no_grad():
            entry['eval'] = [torch.cat(net(x[:, :3], x[:, 3:], is_training=0), dim=1) for x in entry['inputs']]
            net.double()
            conditioning = max([conditioning] + [
                (torch.cat(net(x[:, :3].double(), x[:, 3:].double(), is_training=0), dim=1) - y).abs().max().item()
                for x, y in zip(entry['inputs'], entry['eval'])])
            net.float()
            net.load_state_dict(weights)  # the calls above moved the BatchNorm's running averages
            net.eval()
            entry['running'] = torch.cat(net(entry['inputs'][0][:, :3], entry['inputs'][0][:, 3:], is_training=0), 1)
            net.train()
            b, h, w = TRAIN_SIZE
            entry['train_input'] = torch.rand(b, 6, h, w)
            x = entry['train_input']
            left, right, maps, masks = net(x[:, :3], x[:, 3:], is_training=1)
            entry['train'] = {'output': torch.cat((left, right), dim=1), 'maps': list(maps), 'masks': list(masks)}
        if scale == 2:
            b, h, w = TRAIN_SIZE
            hr = torch.rand(b, 6, h * scale, w * scale)
            lq = torch.rand(b, 6, h, w)
            terms, grads = run_release_step(release, weights, scale, (hr[:, :3], hr[:, 3:], lq[:, :3], lq[:, 3:]))
            entry['step'] = {'lq': lq, 'gt': hr, 'l1_terms': terms, 'grads': grads}
        fixture[f'x{scale}'] = entry
    return fixture, conditioning


def _flatten(obj, prefix=''):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _flatten(v, f'{prefix}{k}.')
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _flatten(v, f'{prefix}{i}.')
    else:
        yield prefix[:-1], obj


def compare(made, path):
    """True when every tensor of ``made`` is within 1e-5 of the fixture at ``path`` (inputs and checksums equal)."""
    import torch

    old = dict(_flatten(torch.load(path, weights_only=True)))
    new = dict(_flatten(made))
    if set(old) != set(new):
        print(f'{path}: other keys ({sorted(set(old) ^ set(new))[:4]})')
        return False
    exact = [k for k in new if 'input' in k or 'checksums' in k or k.endswith(('.lq', '.gt'))]
    same = all(torch.equal(old[k], new[k]) for k in exact)
    worst = max((old[k] - new[k]).abs().max().item() for k in new if k not in exact)
    print(f'{path}: inputs and weight checksums {"identical" if same else "DIFFER"}, largest difference of the '
          f'release results {worst:.2e}')
    return same and worst <= 1e-5


def main(argv=None):
    from fixture_cli import run  # beside this file (run as a script, its folder is on the path)

    return run(argv, fixture='release_ipassr_tiny.pt', repo='YingqianWang/iPASSR', checkout='iPASSR',
               required=['model.py', 'train.py', 'utils.py'], make=make_fixture, compare=compare, needs=())


if __name__ == '__main__':
    sys.exit(main())
