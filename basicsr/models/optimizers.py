"""The optimizers an option file can name in ``train:optim_g:type`` (and any ``optim_<net>``).

torch's Adam, AdamW and SGD, and Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms", 2023; the
CVHSSR recipe) from the ``lion-pytorch`` package. A new optimizer is one ``OPTIMIZER_REGISTRY.register`` away.
"""
import torch
from lion_pytorch import Lion

from basicsr.utils.registry import OPTIMIZER_REGISTRY

for _cls in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD, Lion):
    OPTIMIZER_REGISTRY.register(_cls)

# torch's multi-tensor ("foreach") update: same arithmetic, far fewer kernel calls; used unless the option file says
FOREACH_CAPABLE = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)
# keep their step counters on the GPU when capturable (else on the CPU, where a device-side skip cannot reach them)
CAPTURABLE = (torch.optim.Adam, torch.optim.AdamW)
# create their state tensors once and update them in place: a skipped step can be rolled back on the device
# (basicsr/models/step_guard.py); any other optimizer's skip is decided on the host
IN_PLACE_STATE = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD, Lion)
