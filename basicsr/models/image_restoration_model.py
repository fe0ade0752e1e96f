"""The training model: network, losses, optimizer, schedule, EMA, mixed precision, checkpoints and validation.

``train.py`` drives the loop; this class does one iteration at a time and knows how to save and restore
everything that an exact resume needs (see ``training_state``/``resume``).
"""
import copy
import logging
import math
import os
import warnings
from collections import OrderedDict
from contextlib import contextmanager

import torch
from torch import distributed as dist
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from basicsr.metrics import metric_better
from basicsr.models.archs import define_network
from basicsr.utils.checkpoint import CheckpointError, load_state_dict, save_atomic
from basicsr.utils.complexity import count_macs
from basicsr.utils.dist_util import get_dist_info
from basicsr.utils.lr_scheduler import build_scheduler, warmup_lrs
from basicsr.utils.misc import get_rng_state, scan_states, set_rng_state
from basicsr.utils.options import OptionError, get_path
from basicsr.utils.registry import LOSS_REGISTRY, MODEL_REGISTRY, check_kwargs

logger = logging.getLogger('basicsr')

OPTIMIZERS = {'Adam': torch.optim.Adam, 'AdamW': torch.optim.AdamW, 'SGD': torch.optim.SGD}
RELEASE_GRAD_CLIP_NORM = 0.01  # the NAFSSR release clips every step at this norm although its YAML never says so
COMPILE_MODES = ('default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs')  # torch.compile's modes
_AMP_DTYPES = {'bf16': torch.bfloat16, 'bfloat16': torch.bfloat16, 'fp16': torch.float16, 'float16': torch.float16}
_VAL_KEYS = ('better',)  # our keys inside val:metrics:<name>, removed before the metric is called


@contextmanager
def rng_preserved():
    """Run a block without disturbing any random generator (validation, data-loader set-up, FLOP counting), so that
    resuming from a state reproduces the random streams of an uninterrupted run."""
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


def select_device(opt):
    """``cuda:<local rank>`` when GPUs are asked for and present, else the CPU (with a warning if GPUs were asked)."""
    num_gpu = opt.get('num_gpu', 1)
    if num_gpu != 0 and torch.cuda.is_available():
        return torch.device('cuda', int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count())
    if num_gpu not in (0, 'auto'):
        warnings.warn(f'num_gpu is {num_gpu} but CUDA is not available: running on the CPU')
    return torch.device('cpu')


@MODEL_REGISTRY.register()
class ImageRestorationModel:
    """Single-network restoration model (NAFSSR and friends): ``net_g`` maps the LR input to the SR output."""

    def __init__(self, opt):
        self.opt = opt
        self.is_train = bool(opt.get('is_train', False))
        self.device = select_device(opt)
        self.rank, self.world_size = get_dist_info()
        self.scale = int(opt['scale'])
        self.net_g = define_network(copy.deepcopy(opt['network_g']), key_path='network_g').to(self.device)
        train_opt = opt.get('train') or {}
        if self.is_train and self.device.type == 'cuda':
            # fixed patch size: let cuDNN pick the fastest convolution algorithms once (as BasicSR's train.py)
            torch.backends.cudnn.benchmark = bool(train_opt.get('cudnn_benchmark', True))
        self.channels_last = bool(train_opt.get('channels_last', False))
        if self.channels_last:
            self.net_g = self.net_g.to(memory_format=torch.channels_last)

        pretrain = get_path(opt, 'path:pretrain_network_g')
        if pretrain and not get_path(opt, 'path:resume_state'):
            self.load_network(pretrain, strict=get_path(opt, 'path:strict_load_g', True),
                              param_key=get_path(opt, 'path:param_key', 'params'))
        self.net_ema = None
        self.best = {}
        self.log_dict = OrderedDict()
        if self.is_train:
            self._init_training(train_opt)

    # ------------------------------------------------------------------ set-up
    def _init_training(self, train_opt):
        self.net_g.train()
        self.cri_pix = self.cri_perceptual = None
        if train_opt.get('pixel_opt'):
            self.cri_pix = LOSS_REGISTRY.build(train_opt['pixel_opt'], 'train:pixel_opt').to(self.device)
        if train_opt.get('perceptual_opt'):
            percep_opt = dict(train_opt['perceptual_opt'])
            if percep_opt.get('type') == 'PerceptualLoss' and 'input_bgr' not in percep_opt:
                percep_opt['input_bgr'] = get_path(self.opt, 'datasets:train:color_order', 'bgr') == 'bgr'
            self.cri_perceptual = LOSS_REGISTRY.build(percep_opt, 'train:perceptual_opt').to(self.device)
        if self.cri_pix is None and self.cri_perceptual is None:
            raise OptionError('train: expected a loss: set train:pixel_opt (e.g. type: MSELoss) and/or '
                              'train:perceptual_opt')

        optim_opt = dict(train_opt['optim_g'])
        name = optim_opt.pop('type')
        if name not in OPTIMIZERS:
            raise OptionError(f'train:optim_g:type: expected one of {", ".join(OPTIMIZERS)}, got {name!r}')
        check_kwargs(OPTIMIZERS[name], dict(optim_opt, params=None), 'train:optim_g')
        params = [p for p in self.net_g.parameters() if p.requires_grad]
        if 'fused' not in optim_opt:  # multi-tensor updates: same arithmetic, far fewer kernel calls
            optim_opt.setdefault('foreach', True)
        self.optimizer = OPTIMIZERS[name](params, **optim_opt)

        sched_opt = train_opt.get('scheduler')
        self.scheduler = build_scheduler(self.optimizer, sched_opt) if sched_opt else None
        self.warmup_iter = int(train_opt.get('warmup_iter', -1) or -1)

        # Gradient clipping: the release clips at 0.01 unless use_grad_clip is false; grad_clip_norm overrides.
        clip = train_opt.get('grad_clip_norm', RELEASE_GRAD_CLIP_NORM)
        if train_opt.get('use_grad_clip', True) is False or clip in (None, False, 0):
            clip = None
        self.grad_clip_norm = float(clip) if clip is not None else None

        self.use_amp = bool(train_opt.get('use_amp', False))
        amp_name = str(train_opt.get('amp_dtype', 'bf16'))
        if amp_name not in _AMP_DTYPES:
            raise OptionError(f'train:amp_dtype: expected bf16 or fp16, got {amp_name!r}')
        self.amp_dtype = _AMP_DTYPES[amp_name]
        self.scaler = None
        if self.use_amp and self.amp_dtype == torch.float16:
            if self.device.type == 'cuda':
                self.scaler = torch.amp.GradScaler('cuda')
            else:
                warnings.warn('train:amp_dtype fp16 on the CPU runs without gradient scaling; bf16 is preferred')

        self.mixup = bool(train_opt.get('mixup', False))
        self.mixup_beta = float(train_opt.get('mixup_beta', 1.2))
        self.max_nan_steps = int(train_opt.get('max_nan_steps', 5))
        self.nan_steps = 0

        decay = train_opt.get('ema_decay')
        if decay:
            if not 0 < float(decay) < 1:
                raise OptionError(f'train:ema_decay: expected a number between 0 and 1 (e.g. 0.999), got {decay!r}')
            self.net_ema = AveragedModel(self.net_g, multi_avg_fn=get_ema_multi_avg_fn(float(decay)),
                                         use_buffers=True)
            self.net_ema.eval()

        self.net_train = self.net_g
        if dist.is_available() and dist.is_initialized():
            find_unused = train_opt.get('find_unused_parameters')
            if find_unused is None:
                find_unused = float(self.opt['network_g'].get('drop_path_rate', 0) or 0) > 0
            device_ids = [self.device.index] if self.device.type == 'cuda' else None
            self.net_train = torch.nn.parallel.DistributedDataParallel(
                self.net_g, device_ids=device_ids, find_unused_parameters=bool(find_unused))
        self._compiled = False
        if train_opt.get('compile', False):
            mode = train_opt.get('compile_mode') or 'default'
            if mode not in COMPILE_MODES:
                raise OptionError(f"train:compile_mode: expected one of {', '.join(COMPILE_MODES)}, got {mode!r}")
            try:
                self.net_train = torch.compile(self.net_train, mode=mode)
                self._compiled = True
            except Exception as err:  # noqa: BLE001  (any failure means: run eagerly)
                warnings.warn(f'train:compile: torch.compile failed ({err}); training without compilation')

    def load_network(self, path, strict=True, param_key='params'):
        """Load weights into ``net_g``; one-line errors naming ``path:pretrain_network_g`` and the file."""
        try:
            state = load_state_dict(path, param_key=param_key or 'params')
        except CheckpointError as err:
            raise CheckpointError(f'path:pretrain_network_g: {err}') from None
        own = self.net_g.state_dict()
        for key, value in state.items():
            if key in own and own[key].shape != value.shape:
                raise CheckpointError(f'path:pretrain_network_g: {path}: {key} has shape {tuple(value.shape)}, the '
                                      f'network (network_g) expects {tuple(own[key].shape)}')
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise CheckpointError(f'path:pretrain_network_g: {path} does not fit network_g (missing: '
                                  f'{", ".join(missing[:3]) or "-"}; unexpected: {", ".join(unexpected[:3]) or "-"}); '
                                  'set path:strict_load_g: false to load the matching part')
        self.net_g.load_state_dict(state, strict=False)
        logger.info('loaded network weights from %s (%s)', path, param_key or 'params')

    # ------------------------------------------------------------------ one iteration
    def feed_data(self, data):
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        self.lq = data['lq'].to(self.device, non_blocking=True).contiguous(memory_format=fmt)
        self.gt = data['gt'].to(self.device, non_blocking=True).contiguous(memory_format=fmt) \
            if 'gt' in data else None

    def update_learning_rate(self, current_iter):
        """Step the schedule once per iteration from the second on (the release's convention), then warm up."""
        if self.scheduler is not None and current_iter > 1:
            for group, lr in zip(self.optimizer.param_groups, self.scheduler.get_last_lr()):
                group['lr'] = lr  # undo a warm-up override so chainable torch schedules continue correctly
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', UserWarning)  # "lr_scheduler.step() before optimizer.step()"
                self.scheduler.step()
        lrs = warmup_lrs([g['initial_lr'] if 'initial_lr' in g else g['lr'] for g in self.optimizer.param_groups],
                         current_iter, self.warmup_iter)
        if lrs is not None:
            for group, lr in zip(self.optimizer.param_groups, lrs):
                group['lr'] = lr

    def current_lrs(self):
        return [group['lr'] for group in self.optimizer.param_groups]

    def _mixup(self, lq, gt):
        """NAFNet's mixup: blend each sample with another of the batch, weight ~ Beta(1.2, 1.2) (torch RNG)."""
        lam = torch.distributions.Beta(self.mixup_beta, self.mixup_beta).sample().item()
        perm = torch.randperm(lq.shape[0]).to(lq.device)
        return lam * lq + (1 - lam) * lq[perm], lam * gt + (1 - lam) * gt[perm]

    def _forward_train(self, lq):
        try:
            return self.net_train(lq)
        except Exception as err:  # noqa: BLE001
            if not self._compiled:
                raise
            warnings.warn(f'train:compile: the compiled network failed ({type(err).__name__}: '
                          f'{str(err).splitlines()[0] if str(err) else ""}); training without compilation')
            self.net_train = self.net_train._orig_mod
            self._compiled = False
            return self.net_train(lq)

    def optimize_parameters(self, current_iter):
        """One optimisation step. Returns False when the step was skipped because the loss was not finite."""
        self.optimizer.zero_grad(set_to_none=True)
        lq, gt = self.lq, self.gt
        if self.mixup:
            lq, gt = self._mixup(lq, gt)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            preds = self._forward_train(lq)
        preds = preds if isinstance(preds, (list, tuple)) else [preds]
        preds = [p.float() for p in preds]
        self.output = preds[-1]

        losses = OrderedDict()
        total = 0.0
        if self.cri_pix is not None:
            losses['l_pix'] = sum(self.cri_pix(p, gt) for p in preds)
            total = total + losses['l_pix']
        if self.cri_perceptual is not None:
            percep, style = self.cri_perceptual(self.output, gt)
            for key, value in (('l_percep', percep), ('l_style', style)):
                if value is not None:
                    losses[key] = value
                    total = total + value

        (self.scaler.scale(total) if self.scaler else total).backward()
        bad = torch.tensor([0.0 if torch.isfinite(total.detach()).item() else 1.0])
        if dist.is_available() and dist.is_initialized():
            bad = bad.to(self.device)
            dist.all_reduce(bad, op=dist.ReduceOp.MAX)  # every rank skips together
        if bad.item() > 0:
            self.optimizer.zero_grad(set_to_none=True)
            self.nan_steps += 1
            logger.warning('iter %d: the loss is %s; skipping this step (%d in a row, limit train:max_nan_steps=%d)',
                           current_iter, float(total.detach()), self.nan_steps, self.max_nan_steps)
            self.log_dict = OrderedDict((k, float('nan')) for k in losses)
            return False
        self.nan_steps = 0

        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.grad_clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.net_g.parameters(), self.grad_clip_norm, foreach=True)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.net_ema is not None:
            self.net_ema.update_parameters(self.net_g)
        self.log_dict = OrderedDict((k, v.detach()) for k, v in losses.items())
        return True

    def reduced_losses(self):
        """The last iteration's losses averaged over processes, as floats (all ranks must call it together)."""
        if not self.log_dict:
            return OrderedDict()
        keys = list(self.log_dict)
        values = torch.stack([torch.as_tensor(self.log_dict[k], dtype=torch.float32, device=self.device)
                              for k in keys])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(values)
            values /= dist.get_world_size()
        return OrderedDict(zip(keys, values.tolist()))

    # ------------------------------------------------------------------ networks for evaluation
    def eval_network(self):
        """The network validation uses: the EMA weights when EMA is on, else ``net_g``."""
        return self.net_ema.module if self.net_ema is not None else self.net_g

    def log_complexity(self, lq_shape):
        """Log parameters and (ptflops) MACs for one input of ``lq_shape`` (C, h, w)."""
        net = self.net_g
        params = sum(p.numel() for p in net.parameters())
        try:
            with rng_preserved():
                macs = count_macs(net, lq_shape)
            macs_text = f'{macs / 1e9:.3f} GMACs' if macs >= 1e8 else f'{macs / 1e6:.3f} MMACs'
        except Exception as err:  # noqa: BLE001  (a counting failure must never stop training)
            macs_text = f'MACs unavailable ({type(err).__name__})'
        logger.info('network %s: %.3f M parameters, %s for an input of %s',
                    self.opt['network_g']['type'], params / 1e6, macs_text, tuple(lq_shape))

    # ------------------------------------------------------------------ validation
    def validation(self, dataloader, current_iter, tb_logger=None, save_img=False, dataset_opt=None):
        """Evaluate on ``dataloader`` with the test metrics; track the best values; returns the metric dict.
        Random generators are left untouched so that validation never changes the training stream."""
        from basicsr.evaluation import evaluate

        val_opt = self.opt.get('val') or {}
        metrics_opt = {name: {k: v for k, v in m.items() if k not in _VAL_KEYS}
                       for name, m in (val_opt.get('metrics') or {}).items()}
        dataset_opt = dataset_opt or {}
        name = dataset_opt.get('name') or getattr(dataloader.dataset, 'name', None) or 'val'
        color_order = dataset_opt.get('color_order', 'bgr')
        save_dir = os.path.join(self.opt['path']['visualization'], name, str(current_iter)) if save_img else None
        net = self.eval_network()
        was_training = net.training
        net.eval()
        try:
            with rng_preserved():
                results = evaluate(net, dataloader, metrics_opt, device=self.device, save_dir=save_dir,
                                   color_order=color_order, amp_dtype=self.amp_dtype if self.use_amp else None,
                                   desc=f'val {name} @{current_iter}', show_progress=self.rank == 0)
                if tb_logger is not None and self.rank == 0:
                    self._tb_images(net, dataloader.dataset, current_iter, tb_logger, name, color_order,
                                    int(val_opt.get('tb_images', 2)))
        finally:
            net.train(was_training)
        scalars = {k: float(v) for k, v in results.items() if isinstance(v, (int, float)) or
                   (torch.is_tensor(v) and v.numel() == 1)}
        text = ', '.join(f'{k}: {v:.4f}' for k, v in scalars.items())
        improved = self._update_best(name, scalars, current_iter)
        logger.info('validation %s @ iter %d: %s%s', name, current_iter, text,
                    ' (new best)' if improved else '')
        if tb_logger is not None and self.rank == 0:
            for key, value in scalars.items():
                tb_logger.add_scalar(f'metrics/{name}/{key}', value, current_iter)
        if improved and self.rank == 0:
            self.save_network('best', extra={'iter': current_iter, 'best': self.best[name]})
        return scalars

    def _update_best(self, dataset_name, scalars, current_iter):
        """Track the best value of every metric; True when the first (key) metric improved."""
        metric_opts = (self.opt.get('val') or {}).get('metrics') or {}
        record = self.best.setdefault(dataset_name, {})
        improved_key = False
        for i, (key, value) in enumerate(scalars.items()):
            if not math.isfinite(value):
                continue
            higher = metric_better(metric_opts.get(key) or {}) == 'higher'
            old = record.get(key)
            if old is None or (value > old['value'] if higher else value < old['value']):
                record[key] = {'value': value, 'iter': current_iter}
                improved_key = improved_key or i == 0
        return improved_key

    @torch.no_grad()
    def _tb_images(self, net, dataset, current_iter, tb_logger, name, color_order, count):
        for i in range(min(count, len(dataset))):
            sample = dataset[i]
            lq = sample['lq'][None].to(self.device)
            out = net(lq)
            out = (out[-1] if isinstance(out, (list, tuple)) else out)[0].float().clamp(0, 1).cpu()
            gt = sample['gt']
            views = [out[:3], gt[:3]]
            if gt.shape[1:] != out.shape[1:]:
                views = [out[:3]]
            img = torch.cat(views, dim=2)
            if color_order == 'bgr':
                img = img.flip(0)
            tb_logger.add_image(f'val/{name}/{sample.get("name", i)}_sr_gt', img, current_iter)

    # ------------------------------------------------------------------ checkpoints
    def _release_state(self, module):
        return {k: v.detach().clone().cpu() for k, v in module.state_dict().items()}

    def save_network(self, label, extra=None):
        """``models/net_g_<label>.pth`` in the release format ``{'params': ...}`` (+ ``params_ema``)."""
        ckpt = {'params': self._release_state(self.net_g)}
        if self.net_ema is not None:
            ckpt['params_ema'] = self._release_state(self.net_ema.module)
        ckpt.update(extra or {})
        save_atomic(ckpt, os.path.join(self.opt['path']['models'], f'net_g_{label}.pth'))

    def training_state(self, epoch, current_iter, iter_in_epoch, seed):
        """Everything an exact resume needs. All ranks must call it (random states are gathered); only rank 0
        gets the dict, the others None."""
        rng = get_rng_state()
        if dist.is_available() and dist.is_initialized():
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, rng)
        else:
            gathered = [rng]
        if self.rank != 0:
            return None
        return {
            'iter': int(current_iter), 'epoch': int(epoch), 'iter_in_epoch': int(iter_in_epoch),
            'seed': int(seed), 'world_size': int(self.world_size),
            'params': self._release_state(self.net_g),
            'params_ema': self.net_ema.state_dict() if self.net_ema is not None else None,
            'optimizers': [self.optimizer.state_dict()],
            'schedulers': [self.scheduler.state_dict()] if self.scheduler is not None else [],
            'scaler': self.scaler.state_dict() if self.scaler is not None else None,
            'nan_steps': int(self.nan_steps),
            'best': copy.deepcopy(self.best),
            'rng': gathered,
        }

    def save(self, epoch, current_iter, iter_in_epoch, seed):
        """Save ``net_g_<iter>.pth`` and ``training_states/<iter>.state`` (all ranks call it), then prune."""
        state = self.training_state(epoch, current_iter, iter_in_epoch, seed)
        if self.rank == 0:
            self.save_network(str(current_iter))
            save_atomic(state, os.path.join(self.opt['path']['training_states'], f'{current_iter}.state'))
            self._prune(int(get_path(self.opt, 'logger:keep_last', 0) or 0))
        if dist.is_available() and dist.is_initialized():
            dist.barrier()

    def _prune(self, keep_last):
        """Keep the newest ``keep_last`` states and models (0: keep all); run only after the new ones are safe."""
        if keep_last <= 0:
            return
        for _, path in scan_states(self.opt['path']['training_states'])[keep_last:]:
            os.remove(path)
        models = self.opt['path']['models']
        iters = sorted((int(n[6:-4]) for n in os.listdir(models)
                        if n.startswith('net_g_') and n.endswith('.pth') and n[6:-4].isdigit()), reverse=True)
        for it in iters[keep_last:]:
            os.remove(os.path.join(models, f'net_g_{it}.pth'))

    def resume(self, state):
        """Restore weights, optimizer, schedule, EMA, scaler and best values from a training state (the random
        generators are restored by the caller at the right moment, see ``restore_rng``)."""
        self.net_g.load_state_dict(state['params'])
        if self.net_ema is not None:
            if state.get('params_ema') is not None:
                self.net_ema.load_state_dict(state['params_ema'])
            else:
                logger.warning('the training state has no EMA weights: EMA restarts from the current weights')
                self.net_ema = AveragedModel(self.net_g, multi_avg_fn=self.net_ema.multi_avg_fn, use_buffers=True)
        self.optimizer.load_state_dict(state['optimizers'][0])
        if self.scheduler is not None and state.get('schedulers'):
            self.scheduler.load_state_dict(state['schedulers'][0])
        if self.scaler is not None and state.get('scaler'):
            self.scaler.load_state_dict(state['scaler'])
        self.nan_steps = int(state.get('nan_steps', 0))
        self.best = copy.deepcopy(state.get('best') or {})

    def restore_rng(self, state):
        """Put this rank's random generators back to where they were when ``state`` was saved."""
        saved = state.get('rng') or []
        if len(saved) != self.world_size:
            logger.warning('the state was saved by %d process(es), this run has %d: random streams are re-seeded, '
                           'so the continuation is not bit-exact', len(saved), self.world_size)
            return
        set_rng_state(saved[self.rank])
