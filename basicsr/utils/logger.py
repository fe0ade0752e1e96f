"""Text log (console + ``experiments/<name>/<name>_<time>.log``), the training progress line, and TensorBoard."""
import logging
import sys
import time

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


class MessageLogger:
    """Formats the periodic training line: iteration, epoch, lr, losses, time per iteration, data time (and its share
    of the iteration) and ETA; also writes the scalars to TensorBoard."""

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
            for key, value in losses.items():
                self.tb_logger.add_scalar(f'losses/{key}', value, current_iter)
            self.tb_logger.add_scalar('train/lr', lrs[0], current_iter)
            self.tb_logger.add_scalar('train/time_per_iter', iter_time, current_iter)
            self.tb_logger.add_scalar('train/data_time', data_time, current_iter)
