"""Ownership of experiment folders: one run at a time per folder, and earlier runs moved aside, never overwritten.

- ``ExperimentLock``: ``experiments/.<name>.lock`` (beside the folder, so that moving the folder aside keeps the
  lock) holds the owner's host, PID, process start time and command. Taking it is atomic (``O_CREAT | O_EXCL``);
  a lock whose process is gone (same host, PID dead or reused) is stale and taken over; a live owner stops the
  second run with one ``ExperimentBusyError`` line. Released on any exit of the owner (context manager, atexit);
  the parent folder the lock created (``experiments/``, ``results/``) is removed again if it is still empty, so
  that a run that refuses at start leaves nothing behind. A lock that cannot be written (a full disk, a read-only
  folder) is one ``ExperimentLockError`` line and leaves no file.
- ``move_aside``: rename a folder to ``<folder>_archived_<time>`` (BasicSR's convention), never deleting anything.
"""
import atexit
import json
import os
import socket
import sys
import time

from basicsr.utils.errors import UserError


class ExperimentBusyError(UserError, RuntimeError):
    """Another live run owns the experiment folder."""


class ExperimentLockError(UserError, OSError):
    """The lock file cannot be written (a full disk, a quota, a read-only folder)."""


def _process_start(pid):
    """The start time of process ``pid`` in clock ticks since boot (Linux), or None where unknown. Together with
    the PID it tells a live owner from a new process that happens to have reused the PID."""
    try:
        with open(f'/proc/{pid}/stat', encoding='ascii', errors='replace') as f:
            return int(f.read().rsplit(')', 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid, start):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    now = _process_start(pid)
    return start is None or now is None or now == start


class ExperimentLock:
    """``with ExperimentLock(experiments_root / name): ...`` owns the experiment ``name`` for the block."""

    def __init__(self, folder):
        folder = os.path.abspath(os.fspath(folder))
        self.folder = folder
        self.path = os.path.join(os.path.dirname(folder), f'.{os.path.basename(folder)}.lock')
        self.held = False
        self.created = []  # the folders acquire() made for the lock, innermost first

    def owner(self):
        """The lock file's content (a dict), or None when there is no readable lock."""
        try:
            with open(self.path, encoding='utf-8') as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def acquire(self):
        me = json.dumps({'host': socket.gethostname(), 'pid': os.getpid(), 'start': _process_start(os.getpid()),
                         'since': time.strftime('%Y-%m-%d %H:%M:%S'), 'command': ' '.join(sys.argv)})
        for _ in range(3):
            self._make_parent()
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileNotFoundError:  # another run removed the empty parent folder this instant: make it again
                continue
            except FileExistsError:
                owner = self.owner()
                if owner is None:  # being written this instant, or garbage: look again shortly
                    time.sleep(0.2)
                    owner = self.owner()
                if owner is not None and not self._stale(owner):
                    self._remove_created()
                    raise ExperimentBusyError(
                        f"{self.folder}: in use by another run (pid {owner.get('pid')} on {owner.get('host')} since "
                        f"{owner.get('since')}: {owner.get('command', '?')}); wait for it, stop it, or give this run "
                        f'another name (if that process is gone, delete {self.path})') from None
                try:
                    os.remove(self.path)  # stale: its process is gone
                except FileNotFoundError:
                    pass
                continue
            except OSError as err:
                self._fail(err)
            try:
                data = me.encode('utf-8')
                try:
                    while data:
                        data = data[os.write(fd, data):]
                finally:
                    os.close(fd)
            except OSError as err:  # a full disk: never leave an empty or partial lock
                os.remove(self.path)
                self._fail(err)
            except BaseException:  # Ctrl-C in the middle of it
                os.remove(self.path)
                self._remove_created()
                raise
            self.held = True
            atexit.register(self.release)
            return
        self._remove_created()
        raise ExperimentBusyError(f'{self.path}: could not take the experiment lock (another run keeps taking it)')

    def _make_parent(self):
        """Create the lock's folder, remembering the folders made here (removed again while empty)."""
        missing, folder = [], os.path.dirname(self.path)
        while folder and not os.path.isdir(folder) and folder != os.path.dirname(folder):
            missing.append(folder)
            folder = os.path.dirname(folder)
        self.created = missing + [f for f in self.created if f not in missing]
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        except OSError as err:
            self._fail(err)

    def _remove_created(self):
        """Remove the folders ``acquire`` created, innermost first, where they are still empty."""
        for folder in self.created:
            try:
                os.rmdir(folder)
            except FileNotFoundError:  # never made (a failed makedirs) or already gone
                continue
            except OSError:  # not empty: the run wrote its results there, or another run uses it
                break
        self.created = []

    def _fail(self, err):
        self._remove_created()
        raise ExperimentLockError(f'{self.path}: cannot write the lock of {self.folder} ({err.strerror or err}); '
                                  'nothing was written') from None

    @staticmethod
    def _stale(owner):
        if owner.get('host') != socket.gethostname():
            return False  # another machine's process cannot be checked from here
        pid = owner.get('pid')
        return not isinstance(pid, int) or not _alive(pid, owner.get('start'))

    def release(self):
        if not self.held:
            return
        self.held = False
        owner = self.owner()
        if owner is not None and owner.get('pid') == os.getpid() and owner.get('host') == socket.gethostname():
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
        self._remove_created()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


def move_aside(folder):
    """Rename ``folder`` to ``<folder>_archived_<YYYYmmdd_HHMMSS>`` (a suffix is added if that exists); return the
    new path."""
    stamp = time.strftime('%Y%m%d_%H%M%S', time.localtime())
    target = f'{folder}_archived_{stamp}'
    n = 1
    while os.path.exists(target):
        target = f'{folder}_archived_{stamp}_{n}'
        n += 1
    os.rename(folder, target)
    return target
