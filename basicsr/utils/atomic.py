"""Writing a file so that a failure never leaves it half written: the one way checkpoints, images and result
files are written (a temporary file beside the target, renamed into place)."""
import os

from basicsr.utils.errors import shorten

TMP_TAG = '.tmp'  # <file>.tmp<pid>: a write in progress


def write_atomic(path, write, *, mode='wb', newline=None, mkdir=False, durable=False, error=None, what='the file',
                 failures=(OSError,)):
    """Write ``path`` through ``write(f)`` on ``<path>.tmp<pid>`` (opened with ``mode``), then ``os.replace`` it in.

    A write that fails (a full disk, a quota, a read-only folder, a value that cannot be written) or is interrupted
    leaves no temporary file and the earlier ``path``, if any, untouched. ``mkdir``: create the folder first.
    ``durable``: flush and fsync the file before the rename and the folder after it (checkpoints). ``error``: a
    one-line error class; the ``failures`` exceptions (``OSError`` by default) are then raised as one line
    ``<path>: cannot write <what> (<reason>); the earlier file is untouched`` (or ``nothing was written``).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = f'{path}{TMP_TAG}{os.getpid()}'
    try:
        if mkdir:
            os.makedirs(folder, exist_ok=True)
        with open(tmp, mode, newline=newline, **({} if 'b' in mode else {'encoding': 'utf-8'})) as f:
            write(f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except failures as err:
        if error is None:
            raise
        reason = (isinstance(err, OSError) and err.strerror) or shorten(str(err), 200)
        kept = 'the earlier file is untouched' if os.path.exists(path) else 'nothing was written'
        raise error(f'{path}: cannot write {what} ({reason}); {kept}') from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    if durable:
        _fsync_folder(folder)


def _fsync_folder(folder):
    """Make a rename in ``folder`` durable (where the platform lets a folder be opened)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
