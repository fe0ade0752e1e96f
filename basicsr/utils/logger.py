"""Text log (console + ``experiments/<name>/<name>_<time>.log``), the training progress line, and the curves and
images of a training run (TensorBoard and/or Weights & Biases, behind one ``ExperimentLogger``)."""
import atexit
import logging
import os
import secrets
import shutil
import string
import sys
import time
from dataclasses import dataclass

import numpy as np

from basicsr.utils.dist_util import on_rank0
from basicsr.utils.errors import UserError, shorten
from basicsr.utils.misc import format_duration

LOGGER_NAME = 'basicsr'


class _ConsoleHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time of each message (it may be replaced after set-up, e.g. by
    a caller that captures output), never to a stream that has since been closed."""

    def __init__(self):
        super().__init__(sys.stdout)

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):  # logging.StreamHandler assigns it; the property always follows sys.stdout
        pass


def get_root_logger(log_file=None, rank=0, level=logging.INFO):
    """The project logger. Rank 0 logs INFO to the console and to ``log_file``; other ranks only errors."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.propagate = False
    fmt = logging.Formatter('%(asctime)s %(levelname)s: %(message)s', datefmt='%Y-%m-%d %H:%M:%S')
    if not any(getattr(h, '_basicsr_console', False) for h in logger.handlers):
        console = _ConsoleHandler()
        console.setFormatter(fmt)
        console._basicsr_console = True
        logger.addHandler(console)
    logger.setLevel(level if rank == 0 else logging.ERROR)
    if log_file is not None and rank == 0:
        for handler in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
            logger.removeHandler(handler)
            handler.close()
        file_handler = logging.FileHandler(log_file, mode='a', encoding='utf-8')
        file_handler.setFormatter(fmt)
        logger.addHandler(file_handler)
    return logger


def init_tb_logger(log_dir):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=log_dir)


WANDB_ID_FILE = 'wandb_run_id'  # in experiments/<name>/: the wandb run that rerunning the same command continues


class WandbError(UserError, RuntimeError):
    """wandb refused to start the run (no API key, no network, a project or entity that cannot be used)."""


@dataclass(frozen=True)
class WandbSettings:
    """What a run logs to Weights & Biases, from ``logger:wandb`` (see ``wandb_settings``)."""
    project: str
    name: str
    experiment_root: str  # holds WANDB_ID_FILE and wandb's own folder (wandb/, or $WANDB_DIR when set)
    config: dict  # the options in use (after --force_yml), shown as the run's config
    option_file: str | None = None  # the YAML file as written, saved with the run
    entity: str | None = None
    mode: str | None = None  # online, offline or disabled; None: wandb's default ($WANDB_MODE, else online)
    resume_id: str | None = None  # BasicSR's logger:wandb:resume_id: log to this run


def wandb_settings(opt):
    """``WandbSettings`` of checked training options, or None: no ``logger:wandb:project``, mode ``disabled`` (in
    the options, else in ``$WANDB_MODE``), or a debug run (a name starting with ``debug``: BasicSR leaves those out
    of wandb as well)."""
    section = (opt.get('logger') or {}).get('wandb') or {}
    mode = section.get('mode') or os.environ.get('WANDB_MODE')
    if section.get('project') is None or mode == 'disabled' or opt['name'].startswith('debug'):
        return None
    config = {k: v for k, v in opt.items() if k not in ('opt_path', 'is_train', 'dist', 'rank', 'world_size')}
    return WandbSettings(project=section['project'], name=opt['name'], experiment_root=opt['path']['experiments_root'],
                         config=config, option_file=opt.get('opt_path'), entity=section.get('entity'),
                         mode=section.get('mode'), resume_id=section.get('resume_id'))


def wandb_run_id(experiment_root, resume_id=None, resuming=False):
    """The id of the wandb run to log to: ``resume_id`` when given (BasicSR's key); else, when the training resumes
    from a state, the id that the run it continues stored in ``<experiment_root>/wandb_run_id``; else a new id. The
    id in use is stored there, so that rerunning the same command after a crash continues the same wandb run while a
    fresh start (its earlier experiment folder moved aside) begins a new one."""
    path = os.path.join(experiment_root, WANDB_ID_FILE)
    run_id = resume_id
    if run_id is None and resuming and os.path.isfile(path):
        with open(path, encoding='utf-8') as f:
            run_id = f.read().strip() or None
    if run_id is None:  # as wandb's own ids: 8 characters of base 36
        run_id = ''.join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(run_id + '\n')
    os.replace(tmp, path)
    return run_id


class ExperimentLogger:
    """The curves and images of a training run, written to TensorBoard (``tb_dir``) and/or Weights & Biases
    (``wandb``: ``WandbSettings``). train.py and the model call this one object, as they would a ``SummaryWriter``.

    Every wandb row carries ``iter`` and every curve is drawn against it (``define_metric``): a run resumed from its
    last state repeats the iterations after it, which wandb's own step (always increasing) would drop."""

    # the option keys that decide what it logs to (read by ``wandb_settings`` and train.py; see options.known_keys)
    OPTION_KEYS = ('logger:use_tb_logger', 'logger:wandb:project', 'logger:wandb:entity', 'logger:wandb:mode',
                   'logger:wandb:resume_id')

    def __init__(self, tb_dir=None, wandb=None, resuming=False):
        self.tb, self.wandb_run = None, None
        if tb_dir is not None:
            self.tb = init_tb_logger(tb_dir)
            atexit.register(self.tb.close)  # also on a stop request or an error: the last events reach the file
        if wandb is not None:
            self.wandb_run = self._init_wandb(wandb, resuming)

    @staticmethod
    def _init_wandb(settings, resuming):
        import wandb

        run_id = wandb_run_id(settings.experiment_root, settings.resume_id, resuming)
        try:
            run = wandb.init(project=settings.project, entity=settings.entity, mode=settings.mode, id=run_id,
                             resume='allow', name=settings.name, config=settings.config,
                             dir=os.environ.get('WANDB_DIR') or settings.experiment_root)
        except wandb.errors.Error as err:
            raise WandbError(f'logger:wandb: wandb could not start run {run_id} of project {settings.project}: '
                             f'{shorten(err, 200)} (log in with `wandb login`, or set logger:wandb:mode: offline '
                             'and upload later with `wandb sync`)') from None
        run.define_metric('iter')
        run.define_metric('*', step_metric='iter')
        if settings.option_file and os.path.isfile(settings.option_file):
            saved = os.path.join(run.dir, os.path.basename(settings.option_file))
            shutil.copyfile(settings.option_file, saved)  # a copy: later edits of the file do not change the run's
            run.save(saved, base_path=run.dir, policy='now')
        logging.getLogger(LOGGER_NAME).info('wandb: %s run %s of project %s%s', 'continuing' if run.resumed or resuming
                                            else 'logging to', run.id, settings.project,
                                            f' ({settings.mode})' if settings.mode else '')
        return run

    def log_scalars(self, scalars, step):
        """``{'losses/l_pix': 0.01, ...}`` at iteration ``step``: one TensorBoard point each, one wandb row."""
        if self.tb is not None:
            for tag, value in scalars.items():
                self.tb.add_scalar(tag, value, step)
        if self.wandb_run is not None:
            self.wandb_run.log({**scalars, 'iter': step})

    def add_scalar(self, tag, value, step):
        self.log_scalars({tag: value}, step)

    def add_image(self, tag, img, step):
        """``img``: a CHW RGB image in [0, 1] (tensor or array), as ``SummaryWriter.add_image`` takes it."""
        if self.tb is not None:
            self.tb.add_image(tag, img, step)
        if self.wandb_run is not None:
            import wandb

            hwc = (np.clip(np.asarray(img, dtype=np.float32), 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0)
            self.wandb_run.log({tag: wandb.Image(hwc), 'iter': step})

    def close(self):
        if self.tb is not None:
            self.tb.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()
            self.wandb_run = None


def open_experiment_logger(tb_dir=None, wandb=None, resuming=False):
    """Rank 0: an ``ExperimentLogger`` (see there); None on the other ranks, and when neither TensorBoard nor wandb
    is on. All ranks call it: a refusal on rank 0 (e.g. wandb without an API key) stops every rank with its line."""
    if tb_dir is None and wandb is None:
        return None
    opened = []
    on_rank0(lambda: opened.append(ExperimentLogger(tb_dir, wandb, resuming)))
    return opened[0] if opened else None


class MessageLogger:
    """Formats the periodic training line: iteration, epoch, lr, losses, time per iteration, data time (and its share
    of the iteration) and ETA; also writes the scalars to ``tb_logger`` (an ``ExperimentLogger``)."""

    def __init__(self, total_iter, start_iter, print_freq, tb_logger=None, logger=None):
        self.total_iter = int(total_iter)
        self.start_iter = int(start_iter)
        self.print_freq = int(print_freq)
        self.tb_logger = tb_logger
        self.logger = logger or logging.getLogger(LOGGER_NAME)
        self.start_time = time.time()
        self._window = []  # (iter_time, data_time) since the last line

    def record(self, iter_time, data_time):
        self._window.append((iter_time, data_time))

    def __call__(self, current_iter, epoch, lrs, losses):
        window, self._window = self._window, []
        iter_time = sum(t for t, _ in window) / max(1, len(window))
        data_time = sum(d for _, d in window) / max(1, len(window))
        done = current_iter - self.start_iter
        elapsed = time.time() - self.start_time
        eta = elapsed / max(1, done) * (self.total_iter - current_iter)
        lr_text = ','.join(f'{lr:.3e}' for lr in lrs)
        loss_text = ' '.join(f'{k}: {v:.4e}' for k, v in losses.items())
        share = 100.0 * data_time / iter_time if iter_time > 0 else 0.0
        self.logger.info(f'[iter {current_iter:,}/{self.total_iter:,} epoch {epoch}] lr {lr_text} | {loss_text} | '
                         f'time/iter {iter_time:.3f}s data {data_time:.3f}s ({share:.0f}%) | '
                         f'eta {format_duration(eta)}')
        if self.tb_logger is not None:
            self.tb_logger.log_scalars({**{f'losses/{key}': value for key, value in losses.items()},
                                        'train/lr': lrs[0], 'train/time_per_iter': iter_time,
                                        'train/data_time': data_time}, current_iter)
