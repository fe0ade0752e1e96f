"""The image restoration model (NAFSSR and friends): one network ``net_g`` maps the LR pair to the SR pair.

On top of ``BaseModel`` (device, wrapping, optimizers, schedules, checkpoints, resume) it adds what is particular
to restoration: the losses, one optimisation step (mixup, autocast, NaN guard, gradient clipping, EMA), and
validation with best-checkpoint tracking and TensorBoard images. ``train.py`` drives the loop.

The step reads nothing back from the device (issue 20): mixup draws on the host, and a step whose loss or
gradients are not finite is rolled back there (``step_guard.py``); the loop reads the skip counts and the losses
only where it prints, validates or saves.
"""
import copy
import logging
import math
import os
import warnings
from collections import OrderedDict
from itertools import chain

import torch
from torch import distributed as dist
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from basicsr.data.batch_augment import BatchAugment
from basicsr.evaluation import evaluate
from basicsr.metrics import metric_better
from basicsr.models.base_model import BaseModel, release_state
from basicsr.models.optimizers import IN_PLACE_STATE
from basicsr.models.step_guard import NonFiniteGuard, Rollback, not_finite, poisoned
from basicsr.utils.amp import AMP_DTYPES
from basicsr.utils.checkpoint import CheckpointError
from basicsr.models.archs.complexity import count_macs
from basicsr.utils.misc import rng_preserved
from basicsr.utils.options import OptionError, get_path
from basicsr.utils.registry import LOSS_REGISTRY, MODEL_REGISTRY

logger = logging.getLogger('basicsr')

RELEASE_GRAD_CLIP_NORM = 0.01  # the NAFSSR release clips every step at this norm although its YAML never says so
_VAL_KEYS = ('better',)  # our keys inside val:metrics:<name>, removed before the metric is called


@MODEL_REGISTRY.register()
class ImageRestorationModel(BaseModel):
    """Single-network restoration model: ``net_g`` maps the LR input to the SR output."""

    OPTION_KEYS = ('network_g', 'path:pretrain_network_g', 'path:strict_load_g', 'path:param_key_g', 'train:optim_g',
                   'train:pixel_opt', 'train:freq_opt', 'train:perceptual_opt', 'train:grad_clip_norm',
                   'train:use_grad_clip', 'train:use_amp', 'train:amp_dtype', 'train:mixup', 'train:mixup_beta',
                   'train:batch_augment', 'train:max_nan_steps', 'train:ema_decay', 'train:find_unused_parameters',
                   'val:tb_images')

    def __init__(self, opt):
        super().__init__(opt)
        self.net_g = self.build_network(opt['network_g'], 'g')
        self.net_ema = None
        self.best = {}
        self.log_dict = OrderedDict()
        if self.is_train:
            self._init_training(opt.get('train') or {})

    # ------------------------------------------------------------------ set-up
    def _init_training(self, train_opt):
        self.net_g.train()
        self.cri_pix = self.cri_freq = self.cri_perceptual = None
        if train_opt.get('pixel_opt'):
            self.cri_pix = LOSS_REGISTRY.build(train_opt['pixel_opt'], 'train:pixel_opt').to(self.device)
        if train_opt.get('freq_opt'):  # EHFSSR's release adds a frequency loss under this key (FFTLoss)
            self.cri_freq = LOSS_REGISTRY.build(train_opt['freq_opt'], 'train:freq_opt').to(self.device)
        if train_opt.get('perceptual_opt'):
            percep_opt = dict(train_opt['perceptual_opt'])
            if percep_opt.get('type') == 'LPIPSLoss':  # returns one term, not perceptual_opt's (perceptual, style)
                raise OptionError('train:perceptual_opt:type: LPIPSLoss goes under train:lpips_opt (model_type: '
                                  'StereoSRGANModel), as in SCGLANet\'s track 2 recipe')
            if percep_opt.get('type') == 'PerceptualLoss' and 'input_bgr' not in percep_opt:
                percep_opt['input_bgr'] = get_path(self.opt, 'datasets:train:color_order', 'bgr') == 'bgr'
            self.cri_perceptual = LOSS_REGISTRY.build(percep_opt, 'train:perceptual_opt').to(self.device)
        if self.cri_pix is None and self.cri_freq is None and self.cri_perceptual is None:
            raise OptionError('train: expected a loss: set train:pixel_opt (e.g. type: MSELoss), train:freq_opt '
                              'and/or train:perceptual_opt')

        self.optimizer = self.build_optimizer([p for p in self.net_g.parameters() if p.requires_grad],
                                              train_opt['optim_g'], 'train:optim_g')
        self.setup_schedulers(train_opt.get('scheduler'))

        # Gradient clipping: the release clips at 0.01 unless use_grad_clip is false; grad_clip_norm overrides.
        clip = train_opt.get('grad_clip_norm', RELEASE_GRAD_CLIP_NORM)
        if train_opt.get('use_grad_clip', True) is False or clip in (None, False, 0):
            clip = None
        self.grad_clip_norm = float(clip) if clip is not None else None

        self.use_amp = bool(train_opt.get('use_amp', False))
        amp_name = str(train_opt.get('amp_dtype', 'bf16'))
        if amp_name not in AMP_DTYPES:
            raise OptionError(f'train:amp_dtype: expected bf16 or fp16, got {amp_name!r}')
        self.amp_dtype = AMP_DTYPES[amp_name]
        if self.use_amp and self.amp_dtype == torch.float16:
            if self.device.type == 'cuda':
                self.scaler = torch.amp.GradScaler('cuda')
            else:
                warnings.warn('train:amp_dtype fp16 on the CPU runs without gradient scaling; bf16 is preferred')

        mixup = bool(train_opt.get('mixup', False))
        self.batch_augment = None
        if mixup or train_opt.get('batch_augment'):
            try:  # its own generator: seeded from the run's seed and the rank, saved in the training state
                self.batch_augment = BatchAugment(train_opt.get('batch_augment') or {}, self.scale,
                                                  [int(self.opt.get('manual_seed') or 0), self.rank, 0xA06],
                                                  float(train_opt.get('mixup_beta', 1.2)) if mixup else None)
            except ValueError as err:
                raise OptionError(str(err)) from None
        self.max_nan_steps = int(train_opt.get('max_nan_steps', 5))
        self.nan_guard = NonFiniteGuard(self.max_nan_steps, self.device)
        self._rollbacks = {}  # optimizer -> (its key, Rollback) of the tensors its step changes; rebuilt on change
        self._ema_averaged = None  # (net_ema, True once it has averaged a step): the first average is a copy

        decay = train_opt.get('ema_decay')
        if decay:
            if not 0 < float(decay) < 1:
                raise OptionError(f'train:ema_decay: expected a number between 0 and 1 (e.g. 0.999), got {decay!r}')
            self.net_ema = AveragedModel(self.net_g, multi_avg_fn=get_ema_multi_avg_fn(float(decay)),
                                         use_buffers=True)
            self.net_ema.eval()

        find_unused = train_opt.get('find_unused_parameters')
        if find_unused is None:  # drop-path skips whole blocks, whose parameters then get no gradient
            find_unused = float(self.opt['network_g'].get('drop_path_rate', 0) or 0) > 0
        self.net_train = self.wrap_for_training(self.net_g, 'net_train', find_unused)

    # ------------------------------------------------------------------ one iteration
    def feed_data(self, data):
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        self.lq = data['lq'].to(self.device, non_blocking=True).contiguous(memory_format=fmt)
        self.gt = data['gt'].to(self.device, non_blocking=True).contiguous(memory_format=fmt) \
            if 'gt' in data else None

    def forward_g(self, lq):
        """The generator's training forward (autocast when ``train:use_amp``); sets ``self.output`` and returns
        every output as float32 (a network may return several, e.g. intermediate predictions)."""
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            preds = self.run_wrapped('net_train', lq)
        preds = preds if isinstance(preds, (list, tuple)) else [preds]
        preds = [p.float() for p in preds]
        self.output = preds[-1]
        return preds

    def restoration_losses(self, preds, gt, percep_gt=None):
        """``(losses, total)``: the pixel and frequency losses summed over ``preds`` and the perceptual/style losses
        of the last (against ``percep_gt`` when given, the GAN model's Real-ESRGAN target choice)."""
        losses = OrderedDict()
        total = 0.0
        if self.cri_pix is not None:
            losses['l_pix'] = sum(self.cri_pix(p, gt) for p in preds)
            total = total + losses['l_pix']
        if self.cri_freq is not None:
            losses['l_freq'] = sum(self.cri_freq(p, gt) for p in preds)
            total = total + losses['l_freq']
        if self.cri_perceptual is not None:
            percep, style = self.cri_perceptual(preds[-1], gt if percep_gt is None else percep_gt)
            for key, value in (('l_percep', percep), ('l_style', style)):
                if value is not None:
                    losses[key] = value
                    total = total + value
        return losses, total

    @property
    def nan_steps(self):
        """Steps skipped in a row because the loss was not finite (reading it synchronises)."""
        return self.nan_guard.in_a_row

    @nan_steps.setter
    def nan_steps(self, value):
        self.nan_guard.in_a_row = value

    def augmented_batch(self):
        """``(lq, gt)`` of the fed batch after NAFNet's mixup (``train:mixup``) and ``train:batch_augment``, both
        drawn by ``BatchAugment``."""
        lq, gt = self.lq, self.gt
        if self.batch_augment is not None:
            lq, gt, _ = self.batch_augment(lq, gt)
        return lq, gt

    def optimize_parameters(self, current_iter):
        """One optimisation step, issued without reading anything back from the device. A step whose loss or
        gradients are not finite changes nothing (weights, optimizer state, EMA) and counts against
        ``train:max_nan_steps`` (``NonFiniteGuard``; train.py reads the counts where it prints or saves). Returns
        a 0-dim bool tensor on the device: True when the step was taken (reading it synchronises)."""
        self.optimizer.zero_grad(set_to_none=True)
        lq, gt = self.augmented_batch()
        losses, total = self.restoration_losses(self.forward_g(lq), gt)
        bad = not_finite(total)
        if self.world_size > 1:  # the gradient all-reduce tells every process (step_guard.py)
            total = poisoned(total, bad)
        (self.scaler.scale(total) if self.scaler else total).backward()
        taken = self.guarded_step(self.optimizer, self.net_g, bad, current_iter)
        self.log_dict = OrderedDict((k, torch.where(bad, float('nan'), v.detach())) for k, v in losses.items())
        return taken

    def guarded_step(self, optimizer, net, bad, current_iter, clip=True):
        """Unscale (fp16), clip the gradient norm of ``net`` (unless ``clip`` is false: the GAN's discriminator),
        step ``optimizer`` and the EMA of ``net_g`` unless the loss was not finite (``bad``, a device flag) or the
        gradients are not; count the skip (unless ``current_iter`` is None: the caller counts it). Returns the
        device flag of a taken step.

        Without gradient scaling a non-finite gradient counts as a non-finite loss. With fp16 scaling it is an
        overflow: skipped as GradScaler skips it (the scale backs off), not counted."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)
        if self.grad_clip_norm is not None and clip:
            norm = torch.nn.utils.clip_grad_norm_(net.parameters(), self.grad_clip_norm, foreach=True)
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in net.parameters() if p.grad is not None],
                                                 foreach=True)
        skip = bad | not_finite(norm)
        counted = bad if self.scaler is not None else skip
        ema = self.net_ema if net is self.net_g else None
        rollback = self._rollback_for(optimizer, ema)
        if rollback is not None:
            rollback.capture()
            optimizer.step()
            if ema is not None:
                self._ema_update(ema)
            rollback.restore_where(skip)
        elif not skip:  # the first steps (optimizer state and EMA still to be created): decided on the host
            optimizer.step()
            if ema is not None:
                ema.update_parameters(self.net_g)
                self._ema_averaged = (ema, True)
        if self.scaler is not None:
            self.scaler.update()
        if current_iter is not None:
            self.nan_guard.record(counted, current_iter)
        return ~skip

    def _rollback_for(self, optimizer, ema):
        """The ``Rollback`` of what a step of ``optimizer`` (and the EMA) changes, or None while the step must be
        decided on the host: a parameter with a gradient has no optimizer state yet (the first step creates it),
        the EMA has not averaged yet (its first average is a copy), the optimizer is not known to update its state
        in place, or some of it lives on another device than the flag."""
        if not isinstance(optimizer, IN_PLACE_STATE):
            return None
        state = optimizer.state
        params = [p for group in optimizer.param_groups for p in group['params']]
        if len(state) < len(params) and any(p.grad is not None and p not in state for p in params):
            return None
        if ema is not None:
            if self._ema_averaged is None or self._ema_averaged[0] is not ema:
                self._ema_averaged = (ema, int(ema.n_averaged) > 0)  # once per EMA object
            if not self._ema_averaged[1]:
                return None
        key = (state, ema)  # a resumed optimizer has a new state dict; new state appears as entries
        cached = self._rollbacks.get(optimizer)
        if cached is None or cached[1] != len(state) or any(a is not b for a, b in zip(cached[0], key)):
            tensors = [p for p in params if p in state]
            tensors += [v for p in params if p in state for v in state[p].values() if torch.is_tensor(v)]
            if ema is not None:
                tensors += [*ema.module.parameters(), *ema.module.buffers(), ema.n_averaged]
            self._rollbacks[optimizer] = (key, len(state), Rollback(tensors))
        rollback = self._rollbacks[optimizer][2]
        return rollback if rollback.devices <= {self.device} else None

    def _ema_update(self, ema):
        """``AveragedModel.update_parameters`` once it has averaged (its ``n_averaged == 0`` test reads the
        device): the same ``multi_avg_fn`` over the same tensors, grouped by device and dtype."""
        groups = {}
        for mine, theirs in zip(chain(ema.module.parameters(), ema.module.buffers()),
                                chain(self.net_g.parameters(), self.net_g.buffers())):
            pair = groups.setdefault((mine.device, mine.dtype), ([], []))
            pair[0].append(mine.detach())
            pair[1].append(theirs.detach().to(mine.device))
        for mine, theirs in groups.values():
            ema.multi_avg_fn(mine, theirs, ema.n_averaged)
        ema.n_averaged.add_(1)

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
        if tb_logger is not None and self.rank == 0:  # an ExperimentLogger: TensorBoard and/or wandb
            tb_logger.log_scalars({f'metrics/{name}/{key}': value for key, value in scalars.items()}, current_iter)
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
    def network_files(self):
        files = {'params': self.net_g}
        if self.net_ema is not None:
            files['params_ema'] = self.net_ema.module
        return {'g': files}

    def extra_state(self):
        return {'params': release_state(self.net_g),
                'params_ema': self.net_ema.state_dict() if self.net_ema is not None else None,
                'nan_steps': int(getattr(self, 'nan_steps', 0)),
                'best': copy.deepcopy(self.best),
                'batch_augment': self.batch_augment.state_dict() if getattr(self, 'batch_augment', None) else None}

    def own_generators(self):
        return {'batch_augment': self.batch_augment} if getattr(self, 'batch_augment', None) is not None else {}

    def load_extra_state(self, state, path):
        own = self.net_g.state_dict()
        saved = state['params']
        wrong = [f'{k} {tuple(saved[k].shape)} (network_g now: {tuple(v.shape)})' for k, v in own.items()
                 if k in saved and tuple(saved[k].shape) != tuple(v.shape)]
        missing = [k for k in own if k not in saved]
        if wrong or missing or len(saved) != len(own):
            detail = wrong[0] if wrong else (f'no {missing[0]}' if missing else
                                             f'{len(saved) - len(own)} more tensors than the network')
            raise CheckpointError(f'{path}: saved from a different network_g than the option file now describes '
                                  f'(e.g. {detail}); resume with the options it was trained with, or start a new '
                                  'experiment name')
        self.net_g.load_state_dict(saved)
        if self.net_ema is not None:
            if state.get('params_ema') is not None:
                self.net_ema.load_state_dict(state['params_ema'])
            else:
                logger.warning('the training state has no EMA weights: EMA restarts from the current weights')
                self.net_ema = AveragedModel(self.net_g, multi_avg_fn=self.net_ema.multi_avg_fn, use_buffers=True)
        self.nan_steps = int(state.get('nan_steps', 0))
        self.best = copy.deepcopy(state.get('best') or {})
        if getattr(self, 'batch_augment', None) is not None:
            if state.get('batch_augment'):
                self.batch_augment.load_state_dict(state['batch_augment'])
            else:
                logger.warning('%s has no generator state for train:mixup/batch_augment: their draws restart from '
                               'the seed', path)
