"""The one table of mixed-precision dtypes: the names option files use for ``train:amp_dtype`` and
``val:amp_dtype``."""
import torch

AMP_DTYPES = {'bf16': torch.bfloat16, 'bfloat16': torch.bfloat16, 'fp16': torch.float16, 'float16': torch.float16}


def amp_dtype(name):
    """``'bf16'`` -> ``torch.bfloat16``; a torch dtype or None is returned as it is; KeyError for other names."""
    if name is None or isinstance(name, torch.dtype):
        return name
    return AMP_DTYPES[name]
