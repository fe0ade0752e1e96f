"""What a state dict holds, told from its parameter names and shapes: a registered network family (``NAFSSR``,
``CVHSSR``, a discriminator...) with its named size, scale and zoo model when they fit exactly (``NAFSSR-T x4``),
or a torchvision ImageNet backbone (``VGG19``, ``AlexNet``...).

The weight loaders use it to say what a file that does not fit looks like ("holds a stereo SR network (NAFSSR-T
x4), not torchvision VGG19 weights"), through ``basicsr.utils.checkpoint.identify_weights`` (registered below).

Cheap: the references are built once per process on the meta device (no memory, no arithmetic). A family is the
one sharing the largest part of the file's parameter-name patterns (the name with the indices of repeated blocks
replaced by ``#``: ``body.#.module.fusion.l_proj1.weight``), at least half; a named size and scale, or a torchvision
backbone, must have exactly the file's names and shapes.
"""
import functools
import inspect
import re
from dataclasses import dataclass

import torch

from basicsr import zoo
from basicsr.models.archs.arch_util import NAMED_SIZES, build_named
from basicsr.utils.checkpoint import register_identifier
from basicsr.utils.registry import ARCH_REGISTRY

MIN_SHARED_PATTERNS = 0.5  # a family claims a file whose name patterns it shares at least half of (Jaccard index)
SCALES = (4, 2, 3, 8)  # the up-scaling factors a named size is tried at, most common first
# torchvision's ImageNet classifiers whose weights the losses and metrics read: builder name -> display name
BACKBONES = {'vgg19': 'VGG19', 'vgg16': 'VGG16', 'alexnet': 'AlexNet', 'squeezenet1_1': 'SqueezeNet 1.1'}
# constructor arguments of the reference of families without named sizes whose defaults leave parts out (NAFNet's
# and the Baseline's U-Net has no encoder stage by default)
REFERENCE_KWARGS = {name: {'enc_blk_nums': (1,), 'dec_blk_nums': (1,)}
                    for name in ('NAFNet', 'NAFNetLocal', 'Baseline', 'BaselineLocal')}
_INDEX = re.compile(r'(?<![^.])\d+(?![^.])')  # a whole dot-separated segment of digits


@dataclass(frozen=True)
class Identity:
    """What a state dict was saved from. ``kind``: ``'stereo SR network'``, ``'restoration network'``,
    ``'discriminator'`` or ``'backbone'``; ``family``: the registered class name (``'NAFSSR'``) or the torchvision
    model (``'VGG19'``); ``named``, ``scale``: the named size and up-scaling whose names and shapes the file has
    exactly (``'NAFSSR-T'``, 4), else None; ``option``: the test option file of that zoo model, if any."""
    kind: str
    family: str
    named: str | None = None
    scale: int | None = None
    option: str | None = None

    @property
    def exact(self):
        """The named size (or scale) that fits: what ``--arch`` / ``--scale`` should say."""
        if self.named is None:
            return None
        return f'{self.named} x{self.scale}' if self.scale else self.named

    def __str__(self):
        if self.kind == 'backbone':
            return f'torchvision {self.family} ImageNet weights'
        article = 'an' if self.kind[0] in 'aeiou' else 'a'
        return f'{article} {self.kind} ({self.exact or self.family})'


def patterns(names):
    """The parameter-name patterns of ``names``: indices of repeated blocks replaced by ``#``."""
    return frozenset(_INDEX.sub('#', name) for name in names)


def _shapes(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _on_meta(build):
    """``build()`` on the meta device, leaving the global random streams as they were."""
    with torch.random.fork_rng(devices=[]), torch.device('meta'):
        return build()


def _kind(cls):
    if 'discriminator' in cls.__module__:
        return 'discriminator'
    stereo = cls.__name__ in {c.__name__ for c, _ in NAMED_SIZES.values()}
    takes_scale = 'up_scale' in inspect.signature(cls).parameters
    return 'stereo SR network' if stereo or takes_scale else 'restoration network'


_FAMILIES = {}  # registered name -> (kind, named sizes, patterns), or None when it cannot be built with defaults


def _family(name):
    """``(kind, named sizes, patterns)`` of the registered network ``name``, built once: its first named size at
    x4, or its defaults with ``REFERENCE_KWARGS`` (None when it cannot be built so)."""
    if name not in _FAMILIES:
        cls = ARCH_REGISTRY.get(name)
        named = tuple(n for n, (c, _) in NAMED_SIZES.items() if c is cls)
        try:
            net = _on_meta(lambda: build_named(named[0], 4) if named else cls(**REFERENCE_KWARGS.get(name, {})))
            _FAMILIES[name] = (_kind(cls), named, patterns(net.state_dict()))
        except Exception:  # noqa: BLE001  (a network without usable defaults is simply not recognised)
            _FAMILIES[name] = None
    return _FAMILIES[name]


def _closest_family(own):
    """``(Jaccard index, family name)`` of the registered network whose patterns are closest to ``own``. The
    families built before are tried first, and the search stops at an exact match: building them all on the meta
    device takes seconds the first time (some constructors' index arithmetic imports torch's compiler)."""
    names = sorted(ARCH_REGISTRY, key=lambda n: (n not in _FAMILIES, n.lower()))
    best = (0.0, None)
    for name in names:
        found = _family(name)
        if found is None:
            continue
        ref = found[2]
        score = len(own & ref) / len(own | ref)
        if score > best[0]:
            best = (score, name)
        if score == 1.0:
            break
    return best


@functools.lru_cache(maxsize=None)
def _named_shapes(named, scale):
    return _shapes(_on_meta(lambda: build_named(named, scale)))


@functools.lru_cache(maxsize=None)
def _backbone_shapes(builder):
    import torchvision.models  # imported on first use: only a file that fits nothing needs it

    return _shapes(_on_meta(lambda: getattr(torchvision.models, builder)(weights=None)))


def _zoo_option(named, scale):
    wanted = f'{named}_x{scale}'.replace('_', '-').upper()
    return next((m.option for m in zoo.MODELS.values() if m.name.replace('_', '-').upper() == wanted), None)


def identify(state, exact=True):
    """The ``Identity`` of a state dict (name -> tensor), or None when it looks like nothing known; ``exact=False``
    skips the search for its named size and scale (building the large sizes takes a second)."""
    shapes = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not shapes:
        return None
    torchvision_like = all(k.startswith(('features.', 'classifier.')) for k in shapes)  # import torchvision only then
    for builder, display in BACKBONES.items() if torchvision_like else ():
        full = _backbone_shapes(builder)
        # torchvision's own file holds every tensor; a backbone file may hold only the convolutions (features)
        if shapes == full or shapes == {k: v for k, v in full.items() if k.startswith('features.')}:
            return Identity('backbone', display)
    score, family = _closest_family(patterns(shapes))
    if score < MIN_SHARED_PATTERNS:
        return None
    kind, named, _ = _family(family)
    for size in named if exact else ():
        if len(_named_shapes(size, SCALES[0])) != len(shapes):
            continue
        for scale in SCALES:
            if _named_shapes(size, scale) == shapes:
                return Identity(kind, family, size, scale, _zoo_option(size, scale))
    return Identity(kind, family)


register_identifier(identify)
