"""Train a stereo SR network: ``python train.py -opt options/train/NAFSSR/NAFSSR-T_x4.yml``.

Also under ``torchrun --nproc_per_node=N train.py -opt X --launcher pytorch``, ``python -m
torch.distributed.launch ... --launcher pytorch`` and ``srun ... --launcher slurm``. Rerunning the same command
resumes from the newest valid state in ``experiments/<name>/training_states/``, exactly. SIGTERM/SIGINT save a state
and exit cleanly; a Ctrl-C before the first iteration (building the datasets or the model) ends with one line and
exit code 130, the lock released and no model or state written.
"""
import os
import secrets
import signal
import sys
import time

import torch
from torch import distributed as dist

import basicsr  # noqa: F401  (fills the registries)
from basicsr.data import build_loaders
from basicsr.data.prefetch_dataloader import build_prefetcher
from basicsr.data.stereo_dataset import train_crop
from basicsr.models import build_model
from basicsr.models.archs import define_network
from basicsr.option_checks import OPTION_CHECKS
from basicsr.utils.checkpoint import CheckpointError, load_checkpoint, remove_partial_saves, state_model_type
from basicsr.utils.dist_util import env_rank, get_dist_info, init_dist, on_rank0
from basicsr.utils.errors import UserError, run_main
from basicsr.utils.experiment import ExperimentLock, move_aside
from basicsr.utils.logger import MessageLogger, get_root_logger, open_experiment_logger, wandb_settings
from basicsr.utils.misc import (get_time_str, load_newest_state, rng_preserved, set_random_seed,
                                tune_cpu_allocator)
from basicsr.utils.options import WEIGHTS_FORMATS, dict2str, get_path, parse_options


INTERRUPTED_EXIT = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C


class TrainingStopped(UserError, RuntimeError):
    """Training cannot go on (e.g. the loss stayed NaN); the last good state is kept."""


class StopRequest:
    """SIGTERM/SIGINT set a flag; the loop saves a state and exits at the end of the current iteration (one
    process) or of the next iteration where the processes agree (see ``agreed``)."""

    def __init__(self):
        self.requested = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        self.requested = True


def agreed(flags, device):
    """``[any process's flag is set, ...]`` for a list of per-process flags (ints): one all-reduce for all of them.
    All processes must call it at the same iteration."""
    if not (dist.is_available() and dist.is_initialized()):
        return [bool(f) for f in flags]
    values = torch.tensor([float(f) for f in flags], device=device)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return [v > 0 for v in values.tolist()]


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
    if not explicit:
        return load_newest_state(opt['path']['training_states'])
    try:
        state = load_checkpoint(explicit)
    except CheckpointError as err:
        raise CheckpointError(f'path:resume_state: {err}') from None
    if not isinstance(state, dict) or not {'iter', 'params', 'optimizers'} <= set(state):
        kind = 'a network file (net_g_<iter>.pth)' if isinstance(state, dict) and 'params' in state else \
            'not a training state'
        raise CheckpointError(f'path:resume_state: {explicit} is {kind}; expected a training state '
                              f'(experiments/<name>/training_states/<iter>.state); to start from a network file '
                              'use path:pretrain_network_g')
    return explicit, state


def check_state_model_type(opt, resume_path, state):
    """A run resumes only the states of its own ``model_type``: a state saved by another (a GAN run started under the
    name of a finished fidelity run) is refused before anything else, even before "nothing to do". For a state saved
    before the model type was recorded, only what its content shows is compared: a discriminator or none."""
    mine = opt.get('model_type', 'ImageRestorationModel')
    saved, recorded = state_model_type(state)
    gan = bool(opt.get('network_d'))  # read by the GAN model only: any other model_type refuses the key
    if saved == mine or (not recorded and (saved == 'StereoSRGANModel') == gan):
        return
    files = [os.path.join(opt['path']['models'], f"net_g_{state['iter']}.{f}") for f in WEIGHTS_FORMATS]
    net_g = next((f for f in files if os.path.exists(f)), files[0])  # the format that run wrote
    what = ('has no discriminator weights (params_d): it was saved by ' if gan and saved != 'StereoSRGANModel'
            else 'was saved by ')
    what += f"model_type {saved}{'' if recorded else ' (by its content)'}, this run is {mine}"
    suffix = 'gan' if gan else mine.removesuffix('Model').lower()
    raise CheckpointError(f'{resume_path}: {what}; a run resumes only its own states: to fine-tune its generator as '
                          f"{mine}, run under another name: --force_yml name={opt['name']}_{suffix} "
                          f'path:pretrain_network_g={net_g}')


def holds_results(experiment_root):
    """True when an experiment folder holds network files or training states (something a run could lose)."""
    for sub in ('models', 'training_states'):
        folder = os.path.join(experiment_root, sub)
        if os.path.isdir(folder) and any(n.endswith(('.pth', '.safetensors', '.state')) for n in os.listdir(folder)):
            return True
    return False


def claim_experiment(opt, resume_path):
    """Rank 0, once the run is set up, before anything is written (the caller owns the experiment's lock): move an
    earlier run aside when this run does not continue it, create the folders and remove leftovers of interrupted
    saves. Returns the lines to log."""
    paths = opt['path']
    notes = []
    root = paths['experiments_root']
    resumes_here = resume_path is not None and os.path.abspath(resume_path).startswith(
        os.path.abspath(paths['training_states']) + os.sep)
    if not resumes_here and holds_results(root):
        notes.append(f'{root} held models or states of an earlier run that this run does not resume from: '
                     f'moved to {move_aside(root)}')
        if os.path.isdir(paths['tb_logger']):
            notes.append(f'its TensorBoard folder moved to {move_aside(paths["tb_logger"])}')
    for key in ('experiments_root', 'models', 'training_states', 'visualization'):
        os.makedirs(paths[key], exist_ok=True)
    for key in ('models', 'training_states'):
        removed = remove_partial_saves(paths[key])
        if removed:
            notes.append(f'removed {len(removed)} partial file(s) of an interrupted save in {paths[key]}: '
                         f'{", ".join(removed[:3])}')
    return notes


def train(opt, lock, progress):
    """Train the run of ``opt``; ``progress['stage']`` says how far it got (for a Ctrl-C before the loop)."""
    rank, world_size = get_dist_info()
    paths = opt['path']
    log = get_root_logger(None, rank)
    on_rank0(lock.acquire)  # a second run of the same name stops here, before reading or writing anything
    resume_path, state = find_resume_state(opt)
    if state is not None:
        check_state_model_type(opt, resume_path, state)
    total_iter = int(opt['train']['total_iter'])
    if state is not None and state['iter'] >= total_iter:
        with torch.device('meta'):  # no weights: only the option check (a typo must not pass unnoticed)
            define_network(opt['network_g'], key_path='network_g')
        log.info('%s: already trained to iter %d (train:total_iter %d); nothing to do', resume_path, state['iter'],
                 total_iter)
        return

    seed = agree_seed(state['seed'] if state is not None else opt.get('manual_seed'))
    opt['manual_seed'] = seed  # the seed in use (drawn when the file has none): logged, and seeds model generators
    set_random_seed(seed + rank)
    num_gpu = opt.get('num_gpu', 1) if torch.cuda.is_available() else 0
    num_gpu = torch.cuda.device_count() if num_gpu == 'auto' else num_gpu
    loader, sampler, val_loaders = build_loaders(opt, seed, rank, world_size, num_gpu)
    batch = loader.batch_size
    iters_per_epoch = len(loader)

    if state is not None:
        paths['resume_state'] = resume_path  # the model then skips pretrain_network_g
    model = build_model(opt)
    if state is not None:
        model.resume(state, resume_path)  # refuses a state of another network or optimizer before any write

    # everything is checked: only now is the experiment folder claimed and written to
    for note in on_rank0(claim_experiment, opt, resume_path):
        log.warning(note)
    progress['stage'] = 'claimed'
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
    log = get_root_logger(os.path.join(paths['log'], f"{opt['name']}_{get_time_str()}.log"), rank)
    log.info('stereo_sr %s, torch %s, %d process(es)', basicsr.__version__, torch.__version__, world_size)
    log.info('options (%s):\n%s', opt['opt_path'], dict2str(opt))
    crop = train_crop(opt)  # the HR training crop of datasets:train; the LR patch is crop / scale
    if crop is not None:
        model.log_complexity((6, crop[0] // opt['scale'], crop[1] // opt['scale']))
    start_iter, epoch, iter_in_epoch = 0, 0, 0
    if state is not None:
        start_iter, epoch, iter_in_epoch = state['iter'], state['epoch'], state['iter_in_epoch']
        log.info('resumed from %s: iter %d, epoch %d (%d/%d batches of the epoch done)', resume_path, start_iter,
                 epoch, iter_in_epoch, iters_per_epoch)
    # rank 0 only (None elsewhere): TensorBoard and/or wandb; a resumed run continues the same wandb run
    tb = open_experiment_logger(paths['tb_logger'] if get_path(opt, 'logger:use_tb_logger', True) else None,
                                wandb_settings(opt), resuming=start_iter > 0)
    prefetcher = build_prefetcher(loader, opt['datasets']['train'].get('prefetch_mode'), model.device)

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
            model.optimize_parameters(current_iter)  # issued without reading anything back from the device
            t_end = time.time()
            msg.record(t_end - t_data, t_iter - t_data)
            print_now = current_iter % print_freq == 0
            val_now = bool(val_loaders and val_freq and (current_iter % val_freq == 0 or current_iter == total_iter))
            save_now = current_iter % save_freq == 0 or current_iter == total_iter
            # Only here are the step's results read back (skipped non-finite steps, losses) and stop requests agreed
            # on: where the loop prints, validates or saves anyway; a single process also stops at once.
            if print_now or val_now or save_now or (stop.requested and world_size == 1):
                limit_iter = model.nan_guard.report()
                stop_now, limit_hit = agreed([stop.requested, limit_iter], model.device)
                if limit_hit:
                    where = f' (reached at iter {limit_iter})' if 0 < limit_iter < current_iter else ''
                    raise TrainingStopped(f'the loss was NaN/inf for {model.max_nan_steps} iterations in a row '
                                          f'(limit train:max_nan_steps={model.max_nan_steps}){where}; stopped at iter '
                                          f'{current_iter}, the last good state (iter {saved_iter}) is kept in '
                                          f'{paths["training_states"]}')
                if print_now:
                    msg(current_iter, epoch, model.current_lrs(), model.reduced_losses())
                if val_now:
                    for val_loader, val_opt in val_loaders:
                        model.validation(val_loader, current_iter, tb, save_img, val_opt)
                if save_now or stop_now:
                    model.save(epoch, current_iter, iter_in_epoch, seed)
                    saved_iter = current_iter
                    log.info('saved the model and training state at iter %d', current_iter)
                if stop_now:
                    log.info('stop requested (SIGTERM/SIGINT): state saved at iter %d; rerun the same command to '
                             'resume', current_iter)
                    return
            t_data = time.time()
            data = prefetcher.next() if current_iter < total_iter else None
        if data is None:
            iter_in_epoch = iters_per_epoch  # the epoch is used up
    if tb is not None:
        tb.close()
    log.info('training finished at iter %d', current_iter)


def run(argv=None):
    opt, _ = parse_options(is_train=True, argv=argv, registries=OPTION_CHECKS)
    lock = ExperimentLock(opt['path']['experiments_root'])
    progress = {'stage': 'starting'}
    try:
        if opt['launcher'] != 'none':
            use_cuda = torch.cuda.is_available() and opt.get('num_gpu', 1) != 0
            init_dist(opt['launcher'], backend=get_path(opt, 'dist_params:backend'), use_cuda=use_cuda,
                      port=get_path(opt, 'dist_params:port'))
        train(opt, lock, progress)
    except KeyboardInterrupt:  # before the loop: once it runs, SIGINT saves a state and stops (StopRequest)
        rank = env_rank()
        state = {'starting': 'nothing was written',
                 'claimed': 'no model or state was saved; rerun the same command'}[progress['stage']]
        print(f"train.py: interrupted{f' (rank {rank})' if rank else ''} (Ctrl-C) before training started: {state}",
              file=sys.stderr, flush=True)
        return INTERRUPTED_EXIT
    finally:
        lock.release()
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0


def main():
    """A bad option, file, checkpoint or launcher set-up ends with one line and exit code 2 (set
    STEREO_SR_TRACEBACK=1 for the traceback); anything else is a bug and shows its traceback."""
    tune_cpu_allocator()
    sys.exit(run_main('train.py', run, rank_fn=env_rank))  # the rank also after the process group is gone


if __name__ == '__main__':
    main()
