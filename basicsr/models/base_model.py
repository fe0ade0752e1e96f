"""What every training model shares (BasicSR's ``base_model.py``): the device, wrapping networks for training
(channels-last, DistributedDataParallel, ``torch.compile`` with an eager fallback), optimizers and their
schedules with warm-up, network files, training states with their pruning and exact resume, and the random
streams.

A model family subclasses ``BaseModel`` and adds only what differs: its networks, losses and step
(``ImageRestorationModel``), a discriminator and its optimizer (a GAN model). A subclass appends its optimizers to
``self.optimizers`` (their schedules follow from ``train:scheduler``), names the networks whose weights go into
``net_<label>_<iter>.pth`` files, and puts whatever else an exact resume needs into ``extra_state`` /
``load_extra_state``.
"""
import logging
import os
import re
import warnings

import torch
from torch import distributed as dist

from basicsr.models.archs import define_network
from basicsr.models.optimizers import CAPTURABLE, FOREACH_CAPABLE
from basicsr.utils.checkpoint import CheckpointError, load_network, save_atomic, weight_options
from basicsr.utils.dist_util import get_dist_info
from basicsr.utils.errors import shorten
from basicsr.utils.lr_scheduler import warmup_lrs
from basicsr.utils.misc import get_rng_state, scan_states, set_rng_state
from basicsr.utils.options import OptionError, get_path
from basicsr.utils.registry import OPTIMIZER_REGISTRY, SCHEDULER_REGISTRY

logger = logging.getLogger('basicsr')

COMPILE_MODES = ('default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs')  # torch.compile's modes
_NETWORK_FILE = re.compile(r'^net_([a-z]+)_(\d+)\.(?:pth|safetensors)$')  # either logger:weights_format


def select_device(opt):
    """``cuda:<local rank>`` when GPUs are asked for and present, else the CPU (with a warning if GPUs were asked)."""
    num_gpu = opt.get('num_gpu', 1)
    if num_gpu != 0 and torch.cuda.is_available():
        return torch.device('cuda', int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count())
    if num_gpu not in (0, 'auto'):
        warnings.warn(f'num_gpu is {num_gpu} but CUDA is not available: running on the CPU')
    return torch.device('cpu')


def release_state(module):
    """A detached CPU copy of a module's state dict (what network files and training states hold)."""
    return {k: v.detach().clone().cpu() for k, v in module.state_dict().items()}


class BaseModel:
    """Device, wrapping, optimizers, schedules, checkpoints and resume; subclasses add networks and the step."""

    # The option keys this class reads; a subclass declares the ones it adds (basicsr.utils.options.declared_keys),
    # and a key that only another model_type reads is refused when the options are parsed.
    OPTION_KEYS = ('train:scheduler', 'train:warmup_iter', 'train:channels_last', 'train:cudnn_benchmark',
                   'train:compile', 'train:compile_mode', 'logger:keep_last', 'logger:weights_format')

    def __init__(self, opt):
        self.opt = opt
        self.is_train = bool(opt.get('is_train', False))
        self.device = select_device(opt)
        self.rank, self.world_size = get_dist_info()
        self.scale = int(opt['scale'])
        train_opt = opt.get('train') or {}
        if self.is_train and self.device.type == 'cuda':
            # fixed patch size: let cuDNN pick the fastest convolution algorithms once (as BasicSR's train.py)
            torch.backends.cudnn.benchmark = bool(train_opt.get('cudnn_benchmark', True))
        self.channels_last = bool(train_opt.get('channels_last', False))
        self.optimizers = []
        self.schedulers = []
        self.warmup_iter = int(train_opt.get('warmup_iter', -1) or -1)
        self.scaler = None
        self._compiled = set()  # attributes holding a torch.compile'd network

    # ------------------------------------------------------------------ networks
    def build_network(self, net_opt, label='g'):
        """``network_<label>`` on this model's device (channels-last when asked), with its pretrained weights
        (``path:pretrain_network_<label>``) unless the run resumes from a training state."""
        net = define_network(dict(net_opt), key_path=f'network_{label}').to(self.device)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        path, param_key, strict = weight_options(self.opt, label)
        if path and not get_path(self.opt, 'path:resume_state'):
            load_network(net, path, param_key, strict, key_path=f'path:pretrain_network_{label}')
        return net

    def wrap_for_training(self, net, attr, find_unused=False, broadcast_buffers=True):
        """``net`` wrapped in DistributedDataParallel under a process group and compiled with ``torch.compile``
        when ``train:compile`` is set; ``attr`` is the attribute the caller stores it in (see ``run_wrapped``).
        ``broadcast_buffers`` false: DDP does not copy rank 0's buffers to every process before each forward."""
        wrapped = net
        if dist.is_available() and dist.is_initialized():
            device_ids = [self.device.index] if self.device.type == 'cuda' else None
            wrapped = torch.nn.parallel.DistributedDataParallel(net, device_ids=device_ids,
                                                                find_unused_parameters=bool(find_unused),
                                                                broadcast_buffers=broadcast_buffers)
        train_opt = self.opt.get('train') or {}
        if train_opt.get('compile', False):
            mode = train_opt.get('compile_mode') or 'default'
            if mode not in COMPILE_MODES:
                raise OptionError(f"train:compile_mode: expected one of {', '.join(COMPILE_MODES)}, got {mode!r}")
            try:
                wrapped = torch.compile(wrapped, mode=mode)
                self._compiled.add(attr)
            except Exception as err:  # noqa: BLE001  (any failure means: run eagerly)
                warnings.warn(f'train:compile: torch.compile failed ({shorten(str(err))}); training without compilation')
        return wrapped

    def run_wrapped(self, attr, *inputs):
        """Call the network stored in ``attr``; when its compiled form fails (no C++ compiler, an unsupported
        operation), warn once, put the eager network back in ``attr`` and run that."""
        net = getattr(self, attr)
        try:
            return net(*inputs)
        except Exception as err:  # noqa: BLE001
            if attr not in self._compiled:
                raise
            warnings.warn(f'train:compile: the compiled network failed ({type(err).__name__}: {shorten(str(err))}); '
                          'training without compilation')
            setattr(self, attr, net._orig_mod)
            self._compiled.discard(attr)
            return getattr(self, attr)(*inputs)

    # ------------------------------------------------------------------ optimizers and schedules
    def build_optimizer(self, params, optim_opt, key_path):
        """The registered optimizer ``optim_opt['type']`` (``basicsr/models/optimizers.py``) over ``params``;
        appended to ``optimizers``."""
        optim_opt = dict(optim_opt)
        cls, _ = OPTIMIZER_REGISTRY.resolve(optim_opt, key_path, params=None)
        if issubclass(cls, FOREACH_CAPABLE) and 'fused' not in optim_opt:
            optim_opt.setdefault('foreach', True)  # multi-tensor updates: same arithmetic, far fewer kernel calls
        if issubclass(cls, CAPTURABLE) and self.device.type == 'cuda' and not optim_opt.get('fused'):
            optim_opt.setdefault('capturable', True)  # step counters on the GPU: a skipped step rolls back there
        optimizer = OPTIMIZER_REGISTRY.build(optim_opt, key_path, params=params)
        self.optimizers.append(optimizer)
        return optimizer

    def setup_schedulers(self, sched_opt, key_path='train:scheduler'):
        """One schedule of ``sched_opt`` for each optimizer that has none yet (none when ``sched_opt`` is empty);
        a subclass that adds an optimizer calls it again."""
        if sched_opt:
            self.schedulers += [SCHEDULER_REGISTRY.build(sched_opt, key_path, optimizer=optimizer)
                                for optimizer in self.optimizers[len(self.schedulers):]]

    def update_learning_rate(self, current_iter):
        """Step the schedules once per iteration from the second on (the release's convention), then warm up."""
        if current_iter > 1:
            for optimizer, scheduler in zip(self.optimizers, self.schedulers):
                for group, lr in zip(optimizer.param_groups, scheduler.get_last_lr()):
                    group['lr'] = lr  # undo a warm-up override so chainable torch schedules continue correctly
                with warnings.catch_warnings():
                    warnings.simplefilter('ignore', UserWarning)  # "lr_scheduler.step() before optimizer.step()"
                    scheduler.step()
        for optimizer in self.optimizers:
            groups = optimizer.param_groups
            lrs = warmup_lrs([g['initial_lr'] if 'initial_lr' in g else g['lr'] for g in groups], current_iter,
                             self.warmup_iter)
            if lrs is not None:
                for group, lr in zip(groups, lrs):
                    group['lr'] = lr

    def current_lrs(self):
        """The learning rates of the first optimizer's parameter groups (the generator's)."""
        return [group['lr'] for group in self.optimizers[0].param_groups]

    # ------------------------------------------------------------------ checkpoints
    def network_files(self):
        """``{label: {key: module}}`` of the networks saved as ``net_<label>_<iter>.pth`` files holding
        ``{key: state_dict}`` (``{'g': {'params': net_g, 'params_ema': ema}}``); subclasses say."""
        return {}

    def extra_state(self):
        """What an exact resume needs beyond optimizers, schedules, scaler and random streams (the weights...)."""
        return {}

    def load_extra_state(self, state, path):
        """Restore what ``extra_state`` saved (``path``: the state file, for messages)."""

    def own_generators(self):
        """``{name: generator}`` of this rank's own random generators (objects with ``state_dict`` and
        ``load_state_dict``, e.g. the batch augmentations'): saved and restored per rank with the global ones."""
        return {}

    def network_file(self, label, net_label='g', weights_format=None):
        """``models/net_<net_label>_<label>.pth``, or ``.safetensors`` with ``logger:weights_format: safetensors``
        (or ``weights_format``)."""
        weights_format = weights_format or get_path(self.opt, 'logger:weights_format')
        suffix = '.safetensors' if weights_format == 'safetensors' else '.pth'
        return os.path.join(self.opt['path']['models'], f'net_{net_label}_{label}{suffix}')

    def save_network(self, label, extra=None, net_label='g'):
        """``network_file(label, net_label)`` in the release format ``{'params': ...}`` (+ ``params_ema``); as
        safetensors, the same state dicts under the metadata ``param_keys`` (``basicsr/utils/checkpoint.py``)."""
        ckpt = {key: release_state(module) for key, module in self.network_files()[net_label].items()}
        ckpt.update(extra or {})
        save_atomic(ckpt, self.network_file(label, net_label))

    def training_state(self, epoch, current_iter, iter_in_epoch, seed):
        """Everything an exact resume needs. All ranks must call it (random states are gathered); only rank 0
        gets the dict, the others None."""
        rng = dict(get_rng_state(), own={name: g.state_dict() for name, g in self.own_generators().items()})
        if dist.is_available() and dist.is_initialized():
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, rng)
        else:
            gathered = [rng]
        if self.rank != 0:
            return None
        state = {'iter': int(current_iter), 'epoch': int(epoch), 'iter_in_epoch': int(iter_in_epoch),
                 'seed': int(seed), 'world_size': int(self.world_size),
                 'model_type': type(self).__name__}  # a run resumes only its own model type's states (train.py)
        state.update(self.extra_state())
        state.update({
            'optimizers': [optimizer.state_dict() for optimizer in self.optimizers],
            'schedulers': [scheduler.state_dict() for scheduler in self.schedulers],
            'scaler': self.scaler.state_dict() if self.scaler is not None else None,
            'rng': gathered,
        })
        return state

    def save(self, epoch, current_iter, iter_in_epoch, seed):
        """Save the network files and ``training_states/<iter>.state`` (all ranks call it), then prune."""
        state = self.training_state(epoch, current_iter, iter_in_epoch, seed)
        if self.rank == 0:
            for net_label in self.network_files():
                self.save_network(str(current_iter), net_label=net_label)
            save_atomic(state, os.path.join(self.opt['path']['training_states'], f'{current_iter}.state'))
            self._prune(int(get_path(self.opt, 'logger:keep_last', 0) or 0))
        if dist.is_available() and dist.is_initialized():
            dist.barrier()

    def _prune(self, keep_last):
        """Keep the newest ``keep_last`` states and network files of each network (0: keep all); run only after
        the new ones are safe. ``net_<label>_best.pth`` is never pruned."""
        if keep_last <= 0:
            return
        for _, path in scan_states(self.opt['path']['training_states'])[keep_last:]:
            os.remove(path)
        models = self.opt['path']['models']
        by_label = {}  # label -> iteration -> its files (.pth and .safetensors when the format changed on resume)
        for name in os.listdir(models):
            match = _NETWORK_FILE.match(name)
            if match:
                by_label.setdefault(match.group(1), {}).setdefault(int(match.group(2)), []).append(name)
        for files in by_label.values():
            for it in sorted(files, reverse=True)[keep_last:]:
                for name in files[it]:
                    os.remove(os.path.join(models, name))

    def resume(self, state, path='the training state'):
        """Restore the subclass's state, the optimizers, schedules and scaler from a training state (the random
        generators are restored by the caller at the right moment, see ``restore_rng``). A state that does not
        fit this run (another network or optimizer) is one ``CheckpointError`` line naming ``path``."""
        self.load_extra_state(state, path)
        saved = state.get('optimizers') or []
        if len(saved) != len(self.optimizers):
            raise CheckpointError(f'{path}: holds {len(saved)} optimizer state(s), this model has '
                                  f'{len(self.optimizers)}; it was saved by another model_type')
        for i, (optimizer, saved_opt) in enumerate(zip(self.optimizers, saved)):
            self._check_optimizer_state(optimizer, saved_opt, path, i)
            optimizer.load_state_dict(saved_opt)
        for scheduler, saved_sched in zip(self.schedulers, state.get('schedulers') or []):
            scheduler.load_state_dict(saved_sched)
        if self.scaler is not None and state.get('scaler'):
            self.scaler.load_state_dict(state['scaler'])

    @staticmethod
    def _check_optimizer_state(optimizer, saved, path, index):
        """A saved optimizer state must come from the same optimizer type over the same parameters."""
        key = 'train:optim_g' if index == 0 else f'the optimizer #{index + 1}'
        groups = saved.get('param_groups') or []
        if len(groups) != len(optimizer.param_groups) or any(
                len(a['params']) != len(b['params']) for a, b in zip(groups, optimizer.param_groups)):
            raise CheckpointError(f'{path}: its optimizer state covers other parameters than this network '
                                  f'({key}); the state was saved by another network or optimizer set-up')
        own = set(optimizer.param_groups[0]) - {'params', 'initial_lr'}
        theirs = set(groups[0]) - {'params', 'initial_lr'} if groups else set()
        settings = {'betas', 'momentum', 'dampening', 'nesterov', 'amsgrad', 'eps'}
        if own & settings != theirs & settings:
            raise CheckpointError(
                f'{path}: saved with another optimizer than {key}:type {type(optimizer).__name__} (its settings: '
                f"{', '.join(sorted(theirs & settings)) or '-'}; expected: {', '.join(sorted(own & settings))}); "
                f'resume with the option file it was trained with, or start a new experiment name')

    def restore_rng(self, state):
        """Put this rank's random generators back to where they were when ``state`` was saved."""
        saved = state.get('rng') or []
        if len(saved) != self.world_size:
            logger.warning('the state was saved by %d process(es), this run has %d: random streams are re-seeded, '
                           'so the continuation is not bit-exact', len(saved), self.world_size)
            return
        set_rng_state(saved[self.rank])
        own = saved[self.rank].get('own') or {}
        for name, generator in self.own_generators().items():
            if name in own:  # a state saved before these were kept per rank has rank 0's in extra_state
                generator.load_state_dict(own[name])
