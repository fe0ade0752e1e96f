"""What the scripts of ``scripts/`` share: a zoo model by name, ``HxW`` size arguments, the views of a pair folder.

A script is argument parsing and printing over functions of the package; what two scripts both need lives here
(or, for running a trained network, in ``basicsr.inference``; for the released code, in
``basicsr.release_adapters``). Every error is one ``UserError`` line naming the flag or the file, as ``run_main``
prints it.
"""
import argparse
import difflib
import os

from basicsr import zoo
from basicsr.data import layout
from basicsr.utils.errors import UserError
from basicsr.utils.img_util import imread
from basicsr.utils.misc import parse_size

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the zoo's option files are relative to it


class ToolInputError(UserError, ValueError):
    """A bad command-line value of a script (an unknown zoo name, a missing view); the message names the flag."""


def zoo_model(name, flag='--model'):
    """The zoo's card ``name`` (``basicsr.zoo.MODELS``), or a one-line error naming ``flag`` and the closest
    names."""
    if name not in zoo.MODELS:
        close = difflib.get_close_matches(name, zoo.MODELS, n=3, cutoff=0.5)
        hint = f"closest: {', '.join(close)}" if close else 'list: scripts/download_pretrained.py --list'
        raise ToolInputError(f'{flag}: unknown model {name!r}; expected a name of the zoo such as NAFSSR-T_x4 '
                             f'({hint})')
    return zoo.MODELS[name]


def zoo_models(names, flag='--models'):
    """The cards of ``names`` in order; every name of the zoo when ``names`` is empty."""
    return [zoo_model(name, flag) for name in names] if names else list(zoo.MODELS.values())


def zoo_option_file(model):
    """The absolute path of the test option file of the zoo card ``model``."""
    return os.path.join(REPO, model.option)


def size_type(text):
    """``argparse`` type of an ``HxW`` size (``93x310`` -> ``(93, 310)``); a bad one is argparse's one-line
    usage error naming the flag."""
    try:
        return parse_size(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def read_views(folder, stems=layout.LR_VIEWS, flag=None):
    """The two views ``<folder>/<stem>.png`` of one pair folder (``lr0``/``lr1`` or ``hr0``/``hr1``), ``uint8``
    HWC BGR; a missing one is one line naming it (and ``flag``, where the folder came from)."""
    views = []
    for stem in stems:
        path = layout.view_file(folder, stem)
        if not os.path.isfile(path):
            where = f'{flag}: ' if flag else ''
            expected = ' and '.join(layout.view_file('', s) for s in stems)
            raise ToolInputError(f'{where}{path} not found (expected a pair folder with {expected})')
        views.append(imread(path))
    return views
