"""The errors that mean "the user's input is wrong", and how every entry point reports them.

Each error class of the project that a user can cause (a bad option, image, checkpoint, launcher set-up) derives
from ``UserError`` as well as from the built-in class that fits it (``OptionError`` is a ``ValueError``,
``ImageReadError`` an ``OSError``, ...). The entry points (``train.py``, ``test.py``, the scripts) catch
``UserError`` only, print it as one line ``<prog>: error: <message>`` and exit with ``USER_ERROR_EXIT``; anything
else is a bug and keeps its traceback.
"""
import os
import sys

USER_ERROR_EXIT = 2  # as argparse's usage errors, so that one code means "fix your input" everywhere


class UserError(Exception):
    """Base of the project's one-line errors: the message names the file or option key and what was expected."""

    def __str__(self):
        # KeyError's str() would quote the message; a user error is always shown as its plain text
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


def one_line(err):
    """The first non-empty line of an error's message (its class name when it has none)."""
    text = str(err)
    return next((line.strip() for line in text.splitlines() if line.strip()), type(err).__name__)


def report(prog, err, rank=0):
    """Print ``err`` as ``<prog>: error[ (rank N)]: <first line>`` on stderr."""
    where = f' (rank {rank})' if rank else ''
    print(f'{prog}: error{where}: {one_line(err)}', file=sys.stderr, flush=True)


def run_main(prog, func, *args, rank_fn=None, **kwargs):
    """Call ``func``; a ``UserError`` becomes one line and ``USER_ERROR_EXIT``, anything else propagates.

    ``STEREO_SR_TRACEBACK=1`` shows the traceback of user errors too. Returns ``func``'s result or the exit code.
    """
    try:
        return func(*args, **kwargs)
    except UserError as err:
        if os.environ.get('STEREO_SR_TRACEBACK'):
            raise
        report(prog, err, rank_fn() if rank_fn else 0)
        return USER_ERROR_EXIT
