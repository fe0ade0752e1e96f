"""Train a stereo SR network: ``python train.py -opt options/train/NAFSSR/NAFSSR-T_x4.yml``.

Also under ``torchrun --nproc_per_node=N train.py -opt X --launcher pytorch``, ``python -m
torch.distributed.launch ... --launcher pytorch`` and ``srun ... --launcher slurm``. Rerunning the same command
resumes from the newest valid state in ``experiments/<name>/training_states/``, exactly. SIGTERM/SIGINT save a state
and exit cleanly.
"""
import os
import secrets
import signal
import sys
import time

import torch
from torch import distributed as dist

import basicsr  # noqa: F401  (fills the registries)
from basicsr.data import build_dataloader, build_dataset
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher
from basicsr.models import build_model
from basicsr.models.image_restoration_model import rng_preserved
from basicsr.utils.checkpoint import CheckpointError, load_checkpoint
from basicsr.utils.dist_util import LauncherError, get_dist_info, init_dist
from basicsr.utils.img_util import ImageReadError
from basicsr.utils.logger import MessageLogger, get_root_logger, init_tb_logger
from basicsr.utils.misc import get_time_str, load_newest_state, set_random_seed, tune_cpu_allocator
from basicsr.utils.options import OptionError, dict2str, get_path, parse_options

USER_ERRORS = (OptionError, CheckpointError, ImageReadError, LauncherError, KeyError, TypeError, ValueError,
               OSError)


class TrainingStopped(RuntimeError):
    """Training cannot go on (e.g. the loss stayed NaN); the last good state is kept."""


class StopRequest:
    """SIGTERM/SIGINT set a flag; the loop saves a state at the end of the current iteration and exits."""

    def __init__(self):
        self.requested = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        self.requested = True

    def agreed(self, device):
        """True when any process was asked to stop (all processes must call it at the same iteration)."""
        if not (dist.is_available() and dist.is_initialized()):
            return self.requested
        flag = torch.tensor([1.0 if self.requested else 0.0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return flag.item() > 0


def agree_seed(seed):
    """Every process must use the same seed; a missing ``manual_seed`` is drawn once on rank 0."""
    if seed is None:
        seed = secrets.randbelow(10000)
    if dist.is_available() and dist.is_initialized():
        box = [seed]
        dist.broadcast_object_list(box, src=0)
        seed = box[0]
    return int(seed)


def find_resume_state(opt):
    """``(path, state)`` from ``path:resume_state`` or the newest valid file in training_states, else (None, None)."""
    explicit = get_path(opt, 'path:resume_state')
    if explicit:
        try:
            return explicit, load_checkpoint(explicit)
        except CheckpointError as err:
            raise CheckpointError(f'path:resume_state: {err}') from None
    return load_newest_state(opt['path']['training_states'])


def build_loaders(opt, seed, rank, world_size, num_gpu):
    train_opt = opt['datasets']['train']
    train_set = build_dataset(train_opt, key_path='datasets:train')
    sampler = EnlargedSampler(train_set, world_size, rank, ratio=train_opt.get('dataset_enlarge_ratio', 1),
                              seed=seed)
    batch = train_opt['batch_size_per_gpu']
    if len(sampler) < batch:
        raise OptionError(f"datasets:train:batch_size_per_gpu: {batch} is larger than the {len(sampler)} training "
                          f"samples per process in {train_opt.get('dataroot_gt')}")
    loader = build_dataloader(train_set, train_opt, num_gpu, world_size > 1, sampler=sampler, seed=seed)
    val_loaders = []
    for phase, ds_opt in opt['datasets'].items():
        if phase.startswith('val'):
            val_set = build_dataset(ds_opt, key_path=f'datasets:{phase}')
            val_loaders.append((build_dataloader(val_set, ds_opt, num_gpu, world_size > 1, sampler=None, seed=seed),
                                ds_opt))
    return loader, sampler, val_loaders


def train(opt):
    rank, world_size = get_dist_info()
    paths = opt['path']
    if rank == 0:  # an existing experiment folder is reused (and resumed from), never renamed away
        for key in ('experiments_root', 'models', 'training_states', 'visualization'):
            os.makedirs(paths[key], exist_ok=True)
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
    log = get_root_logger(os.path.join(paths['log'], f"{opt['name']}_{get_time_str()}.log"), rank)
    resume_path, state = find_resume_state(opt)
    total_iter = int(opt['train']['total_iter'])
    if state is not None and state['iter'] >= total_iter:
        log.info('%s: already trained to iter %d (train:total_iter %d); nothing to do', resume_path, state['iter'],
                 total_iter)
        return
    log.info('stereo_sr %s, torch %s, %d process(es)', basicsr.__version__, torch.__version__, world_size)

    seed = agree_seed(state['seed'] if state is not None else opt.get('manual_seed'))
    set_random_seed(seed + rank)
    num_gpu = opt.get('num_gpu', 1) if torch.cuda.is_available() else 0
    num_gpu = torch.cuda.device_count() if num_gpu == 'auto' else num_gpu
    loader, sampler, val_loaders = build_loaders(opt, seed, rank, world_size, num_gpu)
    batch = loader.batch_size
    iters_per_epoch = len(loader)

    if state is not None:
        paths['resume_state'] = resume_path  # the model then skips pretrain_network_g
    model = build_model(opt)
    # logged once the data and the model are built, so that a bad folder or checkpoint ends in its one error line
    log.info('options (%s):\n%s', opt['opt_path'], dict2str(opt))
    lq_shape = (6, *[int(s) for s in (opt['network_g'].get('train_size') or (1, 6, 30, 90))[2:]])
    model.log_complexity(lq_shape)
    start_iter, epoch, iter_in_epoch = 0, 0, 0
    if state is not None:
        model.resume(state)
        start_iter, epoch, iter_in_epoch = state['iter'], state['epoch'], state['iter_in_epoch']
        log.info('resumed from %s: iter %d, epoch %d (%d/%d batches of the epoch done)', resume_path, start_iter,
                 epoch, iter_in_epoch, iters_per_epoch)
    tb = init_tb_logger(paths['tb_logger']) if rank == 0 and get_path(opt, 'logger:use_tb_logger', True) else None
    use_cuda_prefetch = opt['datasets']['train'].get('prefetch_mode') == 'cuda' and model.device.type == 'cuda'
    prefetcher = CUDAPrefetcher(loader, model.device) if use_cuda_prefetch else CPUPrefetcher(loader)

    print_freq = int(get_path(opt, 'logger:print_freq', 100))
    save_freq = int(get_path(opt, 'logger:save_checkpoint_freq', 5000))
    val_freq = int(get_path(opt, 'val:val_freq', 0) or 0)
    save_img = bool(get_path(opt, 'val:save_img', False))
    msg = MessageLogger(total_iter, start_iter, print_freq, tb, log)
    stop = StopRequest()
    log.info('training %d iterations from iter %d: %d samples per process, %d iterations per epoch', total_iter,
             start_iter, len(sampler), iters_per_epoch)

    current_iter, saved_iter = start_iter, start_iter
    while current_iter < total_iter:
        if iter_in_epoch >= iters_per_epoch:
            epoch, iter_in_epoch = epoch + 1, 0
        sampler.set_epoch(epoch)
        sampler.set_start(iter_in_epoch * batch)
        with rng_preserved():  # creating the loader iterator must not consume random numbers
            prefetcher.reset()
        if state is not None:
            model.restore_rng(state)  # the streams continue exactly where the state was saved
            state = None
        t_data = time.time()
        data = prefetcher.next()
        while data is not None and current_iter < total_iter:
            t_iter = time.time()
            current_iter += 1
            iter_in_epoch += 1
            model.update_learning_rate(current_iter)
            model.feed_data(data)
            if not model.optimize_parameters(current_iter) and model.nan_steps >= model.max_nan_steps:
                raise TrainingStopped(f'the loss was NaN/inf for {model.nan_steps} iterations in a row (limit '
                                      f'train:max_nan_steps={model.max_nan_steps}); stopped at iter {current_iter}, '
                                      f'the last good state (iter {saved_iter}) is kept in {paths["training_states"]}')
            t_end = time.time()
            msg.record(t_end - t_data, t_iter - t_data)
            if current_iter % print_freq == 0:
                msg(current_iter, epoch, model.current_lrs(), model.reduced_losses())
            if val_loaders and val_freq and (current_iter % val_freq == 0 or current_iter == total_iter):
                for val_loader, val_opt in val_loaders:
                    model.validation(val_loader, current_iter, tb, save_img, val_opt)
            stop_now = stop.agreed(model.device)
            if current_iter % save_freq == 0 or current_iter == total_iter or stop_now:
                model.save(epoch, current_iter, iter_in_epoch, seed)
                saved_iter = current_iter
                log.info('saved the model and training state at iter %d', current_iter)
            if stop_now:
                log.info('stop requested (SIGTERM/SIGINT): state saved at iter %d; rerun the same command to resume',
                         current_iter)
                return
            t_data = time.time()
            data = prefetcher.next() if current_iter < total_iter else None
        if data is None:
            iter_in_epoch = iters_per_epoch  # the epoch is used up
    if tb is not None:
        tb.close()
    log.info('training finished at iter %d', current_iter)


def main():
    tune_cpu_allocator()
    try:
        opt, args = parse_options(is_train=True)
        if opt['launcher'] != 'none':
            use_cuda = torch.cuda.is_available() and opt.get('num_gpu', 1) != 0
            init_dist(opt['launcher'], backend=get_path(opt, 'dist_params:backend'), use_cuda=use_cuda,
                      port=get_path(opt, 'dist_params:port'))
        train(opt)
    except (TrainingStopped, *USER_ERRORS) as err:
        if os.environ.get('STEREO_SR_TRACEBACK'):
            raise
        rank = get_dist_info()[0]
        text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        line = text.splitlines()[0] if text else repr(err)
        print(f"train.py: error{f' (rank {rank})' if rank else ''}: {line}", file=sys.stderr)
        sys.exit(2)
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == '__main__':
    main()
