"""The errors that mean "the user's input is wrong", and how every entry point reports them.

Each error class of the project that a user can cause (a bad option, image, checkpoint, launcher set-up) derives
from ``UserError`` as well as from the built-in class that fits it (``OptionError`` is a ``ValueError``,
``ImageReadError`` an ``OSError``, ...). The entry points (``train.py``, ``test.py``, the scripts) catch
``UserError`` only, print it as one line ``<prog>: error: <message>`` and exit with ``USER_ERROR_EXIT``; anything
else is a bug and keeps its traceback.
"""
import os
import re
import sys

USER_ERROR_EXIT = 2  # as argparse's usage errors, so that one code means "fix your input" everywhere


class UserError(Exception):
    """Base of the project's one-line errors: the message names the file or option key and what was expected.

    Raised in a data-loader worker, an error reaches the main process rebuilt by PyTorch from the text "Caught
    <Class> in DataLoader worker process N. Original Traceback ..."; it then keeps its own one-line message, as
    without workers, and carries PyTorch's text as a note (shown with the traceback).
    """

    def __init__(self, *args):
        worker_text = None
        if len(args) == 1:
            own, worker_text = _unwrap_worker_message(type(self), args[0])
            args = (own,)
        super().__init__(*args)
        if worker_text is not None and hasattr(self, 'add_note'):  # Python 3.11+
            self.add_note(worker_text.rstrip())

    def __str__(self):
        # KeyError's str() would quote the message; a user error is always shown as its plain text
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


def _unwrap_worker_message(cls, message):
    """``(the error's own message, PyTorch's text)`` when ``message`` is the text PyTorch re-raises an error of a
    data-loader worker with (``torch._utils.ExceptionWrapper``), else ``(message, None)``."""
    if not (isinstance(message, str) and message.startswith(f'Caught {cls.__name__} ')
            and '\nOriginal Traceback' in message):
        return message, None
    name = cls.__qualname__ if cls.__module__ in ('__main__', 'builtins') else f'{cls.__module__}.{cls.__qualname__}'
    for line in reversed(message.splitlines()):  # the traceback ends with "<module>.<class>: <message>"
        if line.startswith(f'{name}: '):
            return line[len(name) + 2:], message
    return message, None


def shorten(text, limit=300):
    """``text`` (a warning, a library's error message) on one line of at most ``limit`` characters.

    Line breaks and runs of spaces become one space. A longer text keeps as many whole sentences as fit (a blank
    line ends a sentence too); when not even the first one fits, it is cut at a word boundary and ends with
    ``...``. A word is never cut, unless it alone is longer than ``limit``.
    """
    flat = ' '.join(str(text).split())
    if len(flat) <= limit:
        return flat
    sentences = [s for paragraph in re.split(r'\n\s*\n', str(text))
                 for s in re.split(r'(?<=[.!?])\s+', ' '.join(paragraph.split())) if s]
    kept = ''
    for sentence in sentences:
        if len(kept) + len(sentence) + (1 if kept else 0) > limit:
            break
        kept = f'{kept} {sentence}' if kept else sentence
    if kept:
        return kept
    cut = flat.rfind(' ', 0, limit - 2)  # the space before the last word that fits with '...'
    return (flat[:cut].rstrip(' ,;:(') if cut > 0 else flat[:limit - 3]) + '...'


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
