"""Perceptual (GAN) training of a stereo SR generator: ``model_type: StereoSRGANModel``.

On top of ``ImageRestorationModel`` (the generator ``net_g``, its pixel/perceptual losses, EMA, validation) it adds
what a GAN needs and nothing else: the discriminator ``network_d`` with its own optimizer ``train:optim_d`` (and a
schedule of ``train:scheduler``, like the generator's), the adversarial loss ``train:gan_opt`` (``GANLoss``),
``train:net_d_iters`` (update G every that many iterations) and ``train:net_d_init_iters`` (train only D for that
many first iterations), the LPIPS loss of the generator ``train:lpips_opt`` (``LPIPSLoss``; the key and the loss
of SCGLANet's track 2 recipe, logged as ``l_g_lpips``), and ``net_d_<iter>.pth`` files beside ``net_g_<iter>.pth``. Training states hold D, its
optimizer and schedule, so a resumed run continues bit for bit (on the CPU).

The discriminator judges each view on its own (``train:discriminator_input: views``, default: a 3-channel D sees
the left and the right views as separate images) or the stereo pair at once (``pair``: a 6-channel D, which can
also judge stereo consistency).

Real-ESRGAN's choice of targets (its ``l1_gt_usm``, ``percep_gt_usm``, ``gan_gt_usm``): with a training set that
sharpens its HR (``datasets:train:gt_usm: true``, which also hands over the plain HR as ``gt_plain``),
``train:l1_gt_usm`` (pixel and frequency losses), ``train:percep_gt_usm`` (perceptual and LPIPS losses) and
``train:gan_gt_usm`` (the discriminator's real input) say whether each compares with the sharpened HR (true, the
default: the batch's ``gt``) or the plain one (false). Real-ESRGAN x4plus: true, true, false.
"""
import os
from collections import OrderedDict

import torch

from basicsr.data.stereo_dataset import train_crop
from basicsr.models.archs.discriminator_arch import discriminator_fits
from basicsr.models.base_model import release_state
from basicsr.models.image_restoration_model import ImageRestorationModel
from basicsr.models.step_guard import not_finite, poisoned
from basicsr.utils.checkpoint import CheckpointError
from basicsr.utils.options import WEIGHTS_FORMATS, OptionError, get_path
from basicsr.utils.registry import LOSS_REGISTRY, MODEL_REGISTRY

DISCRIMINATOR_INPUTS = {'views': 3, 'pair': 6}  # what D sees -> its input channels
USM_TARGETS = ('l1', 'percep', 'gan')  # train:<name>_gt_usm: sharpened (true) or plain (false) HR for that loss


@MODEL_REGISTRY.register()
class StereoSRGANModel(ImageRestorationModel):
    """A stereo SR generator trained against a discriminator (pixel + perceptual + adversarial losses)."""

    OPTION_KEYS = ('network_d', 'train:gan_opt', 'train:optim_d', 'train:net_d_iters', 'train:net_d_init_iters',
                   'train:discriminator_input', 'train:lpips_opt', 'path:pretrain_network_d', 'path:strict_load_d',
                   'path:param_key_d', 'train:l1_gt_usm', 'train:percep_gt_usm', 'train:gan_gt_usm')

    def _init_training(self, train_opt):
        if not self.opt.get('network_d'):
            raise OptionError('network_d: StereoSRGANModel needs a discriminator (e.g. type: UNetDiscriminatorSN)')
        if not train_opt.get('gan_opt'):
            raise OptionError('train:gan_opt: StereoSRGANModel needs an adversarial loss (type: GANLoss)')
        if not train_opt.get('optim_d'):
            raise OptionError('train:optim_d: StereoSRGANModel needs an optimizer for the discriminator')
        if train_opt.get('use_amp') and str(train_opt.get('amp_dtype', 'bf16')) in ('fp16', 'float16'):
            raise OptionError('train:amp_dtype: StereoSRGANModel supports bf16 autocast only (fp16 would need a '
                              'gradient scaler per network)')
        self.d_input = train_opt.get('discriminator_input', 'views')
        if self.d_input not in DISCRIMINATOR_INPUTS:
            raise OptionError(f'train:discriminator_input: expected views or pair, got {self.d_input!r}')
        self.gt_usm_targets = self._usm_targets(train_opt)
        self.net_d_iters = int(train_opt.get('net_d_iters', 1))
        self.net_d_init_iters = int(train_opt.get('net_d_init_iters', 0))
        if self.net_d_iters < 1 or self.net_d_init_iters < 0:
            raise OptionError(f'train:net_d_iters must be >= 1 and train:net_d_init_iters >= 0, got '
                              f'{self.net_d_iters} and {self.net_d_init_iters}')

        self.net_d = self.build_network(self.opt['network_d'], 'd')
        self._check_discriminator()
        self.cri_gan = LOSS_REGISTRY.build(train_opt['gan_opt'], 'train:gan_opt').to(self.device)
        self.cri_lpips = None
        if train_opt.get('lpips_opt'):
            lpips_opt = dict(train_opt['lpips_opt'])
            if lpips_opt.get('type') == 'LPIPSLoss' and 'input_bgr' not in lpips_opt:
                lpips_opt['input_bgr'] = get_path(self.opt, 'datasets:train:color_order', 'bgr') == 'bgr'
            self.cri_lpips = LOSS_REGISTRY.build(lpips_opt, 'train:lpips_opt').to(self.device)
        super()._init_training(train_opt)  # G: losses, optimizer (optimizers[0]), clipping, AMP, EMA, wrapping
        self.net_d.train()
        self.optimizer_d = self.build_optimizer([p for p in self.net_d.parameters() if p.requires_grad],
                                                train_opt['optim_d'], 'train:optim_d')
        self.setup_schedulers(train_opt.get('scheduler'))  # D's schedule, the same kind as G's
        # no DDP copy of D's buffers from rank 0 before each forward (a collective per forward): spectral norm's
        # vectors follow from the weights, equal on every process; BatchNorm statistics do not enter a training pass
        self.net_d_train = self.wrap_for_training(self.net_d, 'net_d_train', broadcast_buffers=False)

    def _usm_targets(self, train_opt):
        """``{l1, percep, gan: True (the sharpened HR) or False (the plain one)}`` from ``train:*_gt_usm``."""
        given = [f'{name}_gt_usm' for name in USM_TARGETS if train_opt.get(f'{name}_gt_usm') is not None]
        for key in given:
            if not isinstance(train_opt[key], bool):
                raise OptionError(f'train:{key}: expected true (the sharpened HR) or false (the plain HR), got '
                                  f'{train_opt[key]!r}')
        if given and get_path(self.opt, 'datasets:train:gt_usm', False) is not True:
            raise OptionError(f'train:{given[0]}: chooses between the sharpened and the plain HR, but the training '
                              'set does not sharpen (datasets:train:gt_usm is not true); set datasets:train:gt_usm: '
                              'true (type: RealisticStereoDataset) or remove the key')
        return {name: train_opt.get(f'{name}_gt_usm', True) is not False for name in USM_TARGETS}

    def _check_discriminator(self):
        """Before any work: D takes the channels and the patch size this run will give it."""
        channels = DISCRIMINATOR_INPUTS[self.d_input]
        crop = train_crop(self.opt)
        first = next(m for m in self.net_d.modules() if isinstance(m, torch.nn.Conv2d))
        if first.in_channels != channels:
            raise OptionError(f'network_d:num_in_ch: train:discriminator_input {self.d_input} gives the '
                              f'discriminator {channels}-channel images, network_d takes {first.in_channels}')
        if crop is not None:
            problem = discriminator_fits(self.net_d, (1, channels, int(crop[0]), int(crop[1])))
            if problem:
                raise OptionError(f'network_d: does not fit the training patch {crop[0]}x{crop[1]} '
                                  f'(datasets:train:gt_size_h/w): {problem}')

    # ------------------------------------------------------------------ one iteration
    def feed_data(self, data):
        super().feed_data(data)
        self.gt_plain = None
        if self.is_train and not all(self.gt_usm_targets.values()) and 'gt' in data:
            if 'gt_plain' not in data:
                raise OptionError('train:*_gt_usm: a loss compares with the plain HR, but the training batch has no '
                                  "'gt_plain' (datasets:train: type RealisticStereoDataset with gt_usm: true)")
            fmt = torch.channels_last if self.channels_last else torch.contiguous_format
            self.gt_plain = data['gt_plain'].to(self.device, non_blocking=True).contiguous(memory_format=fmt)

    def augmented_targets(self):
        """``(lq, targets)``: the fed batch after the batch augmentations and ``{l1, percep, gan: HR}``, the HR each
        loss compares with: the batch's ``gt`` (sharpened with ``datasets:train:gt_usm``) or ``gt_plain``, as
        ``train:*_gt_usm`` say. Both HR tensors are augmented by one draw (stacked as channels)."""
        if self.gt_plain is None:
            lq, gt = self.augmented_batch()
            return lq, dict.fromkeys(USM_TARGETS, gt)
        lq, gt, plain = self.lq, self.gt, self.gt_plain
        if self.batch_augment is not None:
            lq, both, _ = self.batch_augment(lq, torch.cat([gt, plain], dim=1))
            gt, plain = both.split(gt.shape[1], dim=1)
        return lq, {name: gt if sharp else plain for name, sharp in self.gt_usm_targets.items()}

    def _d_images(self, x):
        """The discriminator's view of a stereo batch (N, 6, H, W): (2N, 3, H, W) views or the pair."""
        return torch.cat([x[:, :3], x[:, 3:]], dim=0) if self.d_input == 'views' else x

    def restoration_losses(self, preds, gt, percep_gt=None):
        """The generator's pixel/perceptual losses plus ``l_g_lpips``, the LPIPS loss of the last prediction (a
        perceptual loss: against ``percep_gt`` when given)."""
        losses, total = super().restoration_losses(preds, gt, percep_gt=percep_gt)
        if self.cri_lpips is not None:
            losses['l_g_lpips'] = self.cri_lpips(preds[-1], gt if percep_gt is None else percep_gt)
            total = total + losses['l_g_lpips']
        return losses, total

    def optimize_parameters(self, current_iter):
        """One G step (every ``net_d_iters`` iterations after ``net_d_init_iters``) and one D step, issued without
        reading anything back from the device, as the fidelity model's step: a G step whose loss or gradients are
        not finite is skipped with the D step of its iteration, a D step whose losses or gradients are not finite on
        its own (G's step stands); a skipped iteration counts once against ``train:max_nan_steps``. Returns a 0-dim
        bool tensor on the device: True when the iteration's steps were taken (reading it synchronises)."""
        lq, target = self.augmented_targets()
        losses = OrderedDict()
        skip_g = False

        for p in self.net_d.parameters():  # G's step must not accumulate gradients in D
            p.requires_grad_(False)
        self.optimizer.zero_grad(set_to_none=True)
        preds = self.forward_g(lq)
        update_g = current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters
        if update_g:
            g_losses, total = self.restoration_losses(preds, target['l1'], percep_gt=target['percep'])
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                fake_pred = self.run_wrapped('net_d_train', self._d_images(self.output))
            g_losses['l_g_gan'] = self.cri_gan(fake_pred, True, is_disc=False)
            total = total + g_losses['l_g_gan']
            bad = not_finite(total)
            if self.world_size > 1:  # the gradient all-reduce tells every process (step_guard.py)
                total = poisoned(total, bad)
            total.backward()
            skip_g = ~self.guarded_step(self.optimizer, self.net_g, bad, None)  # with the EMA; counted below
            losses.update((k, torch.where(skip_g, float('nan'), v.detach())) for k, v in g_losses.items())

        for p in self.net_d.parameters():
            p.requires_grad_(True)
        self.optimizer_d.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            real_pred = self.run_wrapped('net_d_train', self._d_images(target['gan']))
        l_d_real = self.cri_gan(real_pred, True, is_disc=True)
        l_d_real.backward()
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            fake_pred = self.run_wrapped('net_d_train', self._d_images(self.output.detach()))
        l_d_fake = self.cri_gan(fake_pred, False, is_disc=True)
        bad_d = not_finite(l_d_real + l_d_fake)
        (poisoned(l_d_fake, bad_d) if self.world_size > 1 else l_d_fake).backward()
        skip = ~self.guarded_step(self.optimizer_d, self.net_d, bad_d | skip_g, None, clip=False)  # D: never clipped
        self.nan_guard.record(skip, current_iter)
        d_losses = OrderedDict(l_d_real=l_d_real, l_d_fake=l_d_fake, out_d_real=real_pred.detach().float().mean(),
                               out_d_fake=fake_pred.detach().float().mean())
        losses.update((k, torch.where(skip, float('nan'), v.detach())) for k, v in d_losses.items())
        self.log_dict = losses
        return ~skip

    # ------------------------------------------------------------------ checkpoints
    def network_files(self):
        files = super().network_files()
        if getattr(self, 'net_d', None) is not None:
            files['d'] = {'params': self.net_d}
        return files

    def extra_state(self):
        return {**super().extra_state(), 'params_d': release_state(self.net_d)}

    def load_extra_state(self, state, path):
        super().load_extra_state(state, path)
        if state.get('params_d') is None:
            # a run resumes its own states whatever path:pretrain_network_g says: fine-tuning needs another name
            files = [self.network_file(state.get('iter', '<iter>'), 'g', f) for f in (None, *WEIGHTS_FORMATS)]
            net_g = next((f for f in files if os.path.exists(f)), files[0])  # the format that run wrote
            raise CheckpointError(f'{path}: has no discriminator weights (params_d): it was saved by another '
                                  f"model_type; to fine-tune its generator as a GAN, run under another name: "
                                  f"--force_yml name={self.opt['name']}_gan path:pretrain_network_g={net_g}")
        own = self.net_d.state_dict()
        wrong = [f'{k} {tuple(v.shape)} (network_d now: {tuple(own[k].shape)})' for k, v in state['params_d'].items()
                 if k in own and tuple(v.shape) != tuple(own[k].shape)]
        if wrong or set(own) != set(state['params_d']):
            detail = wrong[0] if wrong else 'other parameter names'
            raise CheckpointError(f'{path}: saved from a different network_d than the option file now describes '
                                  f'(e.g. {detail}); resume with the options it was trained with')
        self.net_d.load_state_dict(state['params_d'])
