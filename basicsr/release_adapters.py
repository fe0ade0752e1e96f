"""The released code of each family, run side by side with ours (``scripts/benchmark.py --impl release``).

Everything that imports an authors' checkout lives here: which file and class of which checkout is the released
network (``RELEASE_ARCHS``), the stand-ins for what those files import from outside their checkout, the release's
own way of calling its network (``release_callers``) and of taking a training step (``ReleaseTrainStep``). The
files are imported unmodified with ``basicsr.utils.release_import``; nothing of a release is copied into the project.
Checkouts: megvii-research/NAFNet, AlexZou14/CVHSSR, jianwensong/EHFSSR, YingqianWang/iPASSR, Zdafeng/SwinFIR,
fzuzyb/SCGLANet, GoKerrChen/SwinFSR.
"""
import copy
import importlib
import inspect
import sys
from pathlib import Path

import torch

import basicsr.losses  # noqa: F401  (registers the losses)
import basicsr.models.optimizers  # noqa: F401  (registers the optimizers)
from basicsr.models.archs.drop_path import drop_path
from basicsr.models.ipassr_model import build_stereo_losses, stereo_losses
from basicsr.utils.errors import UserError
from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY, OPTIMIZER_REGISTRY
from basicsr.utils.release_import import ReleaseImportError, import_release_class

DEFAULT_RELEASE_PATH = '/tmp/release_nafssr'
NAFNET_FORKS = ('NAFSSR', 'CVHSSR', 'EHFSSR', 'EHFSSR_S')  # releases built on NAFNet's BasicSR fork
NAFNET_STEP = NAFNET_FORKS + ('SCGLANet',)  # releases whose training step is NAFNet's (SCGLANet's StereoSRModel)


class ReleaseCheckoutError(UserError, ValueError):
    """``--release_path`` is not a checkout of the released code of the network type, or its file cannot be
    imported; the message names the folder or the file and the checkout expected."""


def _pip_basicsr_stand_ins():
    """The pip-BasicSR helpers SwinFIR's arch files import (its checkout does not hold them); SCGLANet's arch file
    imports the registry only (its checkout's ``basicsr/utils`` would import the whole of its BasicSR)."""
    class Registry:
        def register(self, *args, **kwargs):
            return lambda cls: cls

    return {'basicsr.utils.registry': {'ARCH_REGISTRY': Registry()},
            'basicsr.archs.arch_util': {'to_2tuple': lambda x: tuple(x) if isinstance(x, (list, tuple)) else (x, x),
                                        'trunc_normal_': torch.nn.init.trunc_normal_}}


def _timm_stand_ins():
    """The three timm helpers SwinFSR's arch file imports (``timm.models.layers``), as timm defines them: its
    ``DropPath`` is per-sample stochastic depth with its draws (``drop_path.drop_path``, ``draw='bernoulli'``)."""
    class DropPath(torch.nn.Module):
        def __init__(self, drop_prob=0.):
            super().__init__()
            self.drop_prob = drop_prob

        def forward(self, x):
            return drop_path(x, self.drop_prob, self.training, draw='bernoulli')

    return {'timm.models.layers': {
        'DropPath': DropPath, 'trunc_normal_': torch.nn.init.trunc_normal_,
        'to_2tuple': lambda x: tuple(x) if isinstance(x, (list, tuple)) else (x, x)}}


# Released architecture files by network type: path in the authors' checkout, class name, stand-ins for what the
# file imports from outside the checkout, and the release's own way of calling it (``release_callers``).
RELEASE_ARCHS = {
    'NAFSSR': ('basicsr/models/archs/NAFSSR_arch.py', 'NAFSSR', None),  # megvii-research/NAFNet
    'CVHSSR': ('basicsr/models/archs/CVHSSR_arch.py', 'CVHSSR', None),  # AlexZou14/CVHSSR
    'EHFSSR': ('basicsr/models/archs/EHFSSR_arch.py', 'EHFSSR', None),  # jianwensong/EHFSSR
    'EHFSSR_S': ('basicsr/models/archs/EHFSSR_S_arch.py', 'EHFSSR_S', None),
    'iPASSR': ('model.py', 'Net', None),  # YingqianWang/iPASSR
    'SwinFIRSSR': ('swinfir/archs/swinfirssr_arch.py', 'SwinFIRSSR', _pip_basicsr_stand_ins),  # Zdafeng/SwinFIR
    'SCGLANet': ('basicsr/archs/scglanet_arch.py', 'SCGLANet', _pip_basicsr_stand_ins),  # fzuzyb/SCGLANet
    'SwinFSR': ('swin_cam_ffc.py', 'SwinIR', _timm_stand_ins),  # GoKerrChen/SwinFSR: the network of its train.py
}
RELEASE_CODE = {'NAFSSR': 'megvii-research/NAFNet', 'CVHSSR': 'AlexZou14/CVHSSR', 'EHFSSR': 'jianwensong/EHFSSR',
                'EHFSSR_S': 'jianwensong/EHFSSR', 'iPASSR': 'YingqianWang/iPASSR', 'SwinFIRSSR': 'Zdafeng/SwinFIR',
                'SCGLANet': 'fzuzyb/SCGLANet', 'SwinFSR': 'GoKerrChen/SwinFSR'}


def release_callers(net_type, net, scale, window_size=None):
    """The release network called as its own code calls it, on our (N, 6, h, w) pair: a module returning the
    (N, 6, s*h, s*w) pair (and, for iPASSR in training, its attention maps and masks as ours does).

    iPASSR: ``Net(left, right, is_training)``. SwinFIRSSR: its test mirror-pads to the multiple of the window
    strictly above the size and crops the output; its training patches are whole windows (other sizes are padded
    the same way here, so that any size runs). SwinFSR: ``SwinIR(left, right)`` returns the two views (train.py and
    inference.py; the network pads to whole windows and crops itself). SCGLANet: ``net(pair)``, as its model's
    ``test`` and ``optimize_parameters`` (the random rotations of its hashing are drawn inside every forward).
    """
    class Views(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x, return_attention=False):
            if net_type == 'iPASSR':
                out = self.net(x[:, :3], x[:, 3:], 1 if self.training else 0)
                sr = torch.cat(out[:2], 1)
                return (sr, *out[2:]) if self.training and return_attention else sr
            if net_type == 'SwinFSR':
                return torch.cat(self.net(x[:, :3], x[:, 3:]), 1)
            h, w = x.shape[-2:]
            ws = window_size
            if self.training and h % ws == 0 and w % ws == 0:
                return self.net(x)
            x = torch.cat([x, torch.flip(x, [2])], 2)[:, :, :(h // ws + 1) * ws, :]
            x = torch.cat([x, torch.flip(x, [3])], 3)[:, :, :, :(w // ws + 1) * ws]
            return self.net(x)[..., :h * scale, :w * scale]

    return Views() if net_type in ('iPASSR', 'SwinFIRSSR', 'SwinFSR') else net


def check_release_path(net_type, release_path):
    """A one-line ``ReleaseCheckoutError`` unless ``release_path`` is a checkout holding the released file of
    ``net_type`` (cheap: callers check it before starting any work; the import itself is ``release_class``)."""
    if net_type not in RELEASE_ARCHS:
        raise ReleaseCheckoutError(f"--impl release: no released code known for network type {net_type}; known: "
                                   f"{', '.join(RELEASE_ARCHS)}")
    relpath = RELEASE_ARCHS[net_type][0]
    expected = f'expected a checkout of {RELEASE_CODE[net_type]} (the released {net_type}) holding {relpath}'
    if not release_path or not str(release_path).strip():
        raise ReleaseCheckoutError(f'--release_path: empty; {expected}')
    path = Path(release_path)
    if not path.is_dir():
        default = ' (the default)' if str(release_path) == DEFAULT_RELEASE_PATH else ''
        raise ReleaseCheckoutError(f'--release_path {path}{default}: no such folder; {expected}')
    flat = net_type == 'NAFSSR' and any((path / f'{n}.py').is_file() for n in ('release_nafssr', 'NAFSSR_arch'))
    if not (path / relpath).is_file() and not flat:
        raise ReleaseCheckoutError(f'--release_path: {path / relpath}: not found; {expected}')


def release_class(net_type, release_path):
    """The released class of ``net_type`` from the checkout ``release_path`` (imported unmodified, never copied)."""
    check_release_path(net_type, release_path)
    path = Path(release_path)
    relpath, cls_name, stand_ins = RELEASE_ARCHS[net_type]
    if net_type == 'NAFSSR' and not (path / relpath).is_file():  # a flat scratch copy of the NAFSSR arch files
        sys.path.insert(0, str(path))
        for name in ('release_nafssr', 'NAFSSR_arch'):
            if (path / f'{name}.py').is_file():
                return importlib.import_module(name).NAFSSR
    try:
        return import_release_class(str(path), relpath, cls_name, stand_ins() if stand_ins else None)
    except ReleaseImportError as err:
        raise ReleaseCheckoutError(f'--release_path: {err}') from None


def build_release_net(opt, release_path):
    """The released network with ``network_g`` of the parsed options ``opt`` (the constructor keys are the
    release's), wrapped by ``release_callers``; a ``train_size`` our constructor defaults is passed explicitly, so
    both build the same TLSC windows. SwinFSR: the release's ``SwinIR`` defaults are not its train.py's, so every
    argument both constructors take is passed with our default where ``network_g`` leaves it (as train.py passes
    them all); the scale is its ``upscale``; ``scam: plain`` is the release's ``swin_scam_ffc.py``, not timed here."""
    net_opt = dict(opt['network_g'])
    net_type = net_opt.pop('type')
    ours = inspect.signature(ARCH_REGISTRY.get(net_type)).parameters
    if 'train_size' in ours and 'train_size' not in net_opt:
        net_opt['train_size'] = tuple(ours['train_size'].default)
    cls = release_class(net_type, release_path)
    theirs = inspect.signature(cls).parameters
    if 'upscale' in theirs and 'up_scale' not in theirs:
        # SwinFIR and SwinFSR spell it upscale and take **kwargs: up_scale would be swallowed (their default x2)
        net_opt['upscale'] = int(net_opt.pop('up_scale', opt['scale']))
    if net_type == 'iPASSR':  # the release's Net(upscale_factor)
        net_opt = {'upscale_factor': net_opt.pop('up_scale', opt['scale'])}
    if net_type == 'SwinFSR':
        if net_opt.pop('scam', 'centred') != 'centred':
            raise ReleaseCheckoutError("--impl release: SwinFSR is timed with the network of the release's train.py "
                                       "(swin_cam_ffc.py, network_g:scam centred), not scam plain")
        net_opt = {**{k: p.default for k, p in ours.items() if k in theirs and p.default is not None}, **net_opt}
    return release_callers(net_type, cls(**net_opt), int(opt['scale']), net_opt.get('window_size'))


def release_infer_fn(net):
    """Inference as the releases run it: ``torch.no_grad()`` (not inference mode)."""
    def infer(lq):
        with torch.no_grad():
            return net(lq)
    return infer


class ReleaseTrainStep:
    """The released model's training step on the released network, with the losses and optimizer of the option file.

    NAFNet's fork (NAFSSR, CVHSSR, EHFSSR) and SCGLANet's ``StereoSRModel``: ``loss + 0 * sum(params)`` (for DDP's
    unused-parameter check) and clipping at 0.01 (unless ``train:use_grad_clip`` is false). iPASSR's train.py: the
    SR loss plus its four stereo losses on the attention maps, no clipping. SwinFIR and SCGLANet (pip BasicSR): the
    EMA copy updated after every step (``train:ema_decay``). SwinFSR's train.py: the L1 of each view summed (the
    option file's L1 with weight 2 on both views), Adam, no clipping, no EMA.

    The outputs and the loss of a step stay referenced until the next step's forward has run, as in every release's
    own loop (BasicSR's ``self.output``; the loop variables of iPASSR's and SwinFSR's train.py) and in ours
    (``self.output``): it computes nothing differently, but it changes how the allocator reuses the freed
    activations (measured on SwinFSR with 4 stages: 1 GB more peak for both implementations), so both are measured
    holding them.
    """

    def __init__(self, net, opt, device, ddp=False):
        self.net = net.to(device).train()
        self.module = torch.nn.parallel.DistributedDataParallel(self.net) if ddp else self.net
        train_opt = opt['train']
        self.net_type = opt['network_g']['type']
        self.scale = int(opt['scale'])
        self.losses = [LOSS_REGISTRY.build(train_opt[key], f'train:{key}').to(device)
                       for key in ('pixel_opt', 'freq_opt') if train_opt.get(key)]
        self.stereo = build_stereo_losses(train_opt, device)
        self.opt = OPTIMIZER_REGISTRY.build(train_opt['optim_g'], 'train:optim_g', params=self.net.parameters())
        self.clip = 0.01 if self.net_type in NAFNET_STEP and train_opt.get('use_grad_clip', True) else None
        self.ema_decay = float(train_opt.get('ema_decay') or 0) if self.net_type not in NAFNET_FORKS else 0
        self.ema = copy.deepcopy(self.net).eval() if self.ema_decay else None
        self.kept = None  # the last step's outputs and loss (class docstring)

    def __call__(self, lq, gt):
        self.opt.zero_grad()
        if self.stereo:
            sr, maps, masks = self.module(lq, True)
            loss = sum(criterion(sr, gt) for criterion in self.losses)
            loss = loss + sum(stereo_losses(self.stereo, sr, gt, maps, masks, lq, self.scale).values())
            out = (sr, maps, masks)
        else:
            out = self.module(lq)
            loss = sum(criterion(out, gt) for criterion in self.losses)
        if self.net_type in NAFNET_STEP:
            loss = loss + 0. * sum(p.sum() for p in self.net.parameters())
        loss.backward()
        self.kept = (out, loss)
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.clip)
        self.opt.step()
        if self.ema is not None:
            with torch.no_grad():
                for e, p in zip(self.ema.parameters(), self.net.parameters()):
                    e.mul_(self.ema_decay).add_(p, alpha=1 - self.ema_decay)
