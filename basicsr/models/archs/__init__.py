from basicsr.utils.scan import import_modules

import_modules(__name__, __file__)

from basicsr.models.archs.arch_util import ArchOptionError  # noqa: E402
from basicsr.utils.registry import ARCH_REGISTRY  # noqa: E402


def define_network(opt, key_path='network_g'):
    """Build the network described by ``opt`` (``{'type': 'NAFSSR', 'width': 48, ...}``): ``ARCH_REGISTRY.build``.

    Every error is one line naming the YAML key path: an unknown ``type`` (with close matches), an unknown or
    missing keyword (``network_g:widht``), a bad value (``network_g:train_size: ...``), and, for a network that
    takes pluggable blocks, an unknown block or block keyword (``network_g:intra_kwargs:kernal_size``, checked by
    the network's constructor, ``nafssr_arch.resolve_block``).
    """
    return ARCH_REGISTRY.build(opt, key_path)


__all__ = ['define_network', 'ArchOptionError']
