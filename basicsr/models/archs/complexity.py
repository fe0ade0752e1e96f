"""The one MAC counter: ptflops' ``aten`` backend on one eval forward pass.

It counts every convolution and matrix product (``aten.mm/bmm/matmul/addmm``), so SCAM's attention is included;
element-wise operations, norms, softmax and pooling are not. SCAM evaluates its attention with a fused kernel
outside autograd (``scaled_dot_product_attention``), which ptflops does not see; the count therefore runs the
explicit score-matrix form (``scam.explicit_row_attention``), the model's own arithmetic: 3 W x W x C products
per row pair.
"""
import copy
import warnings

import torch

from basicsr.models.archs.scam import explicit_row_attention


def count_macs(net, input_shape):
    """Multiply-accumulates of one eval forward pass on a (1, *input_shape) input; ``net`` is left untouched
    (a copy is measured: ptflops leaves hooks behind). Raises RuntimeError when ptflops cannot run it."""
    from ptflops import get_model_complexity_info

    net = copy.deepcopy(net).eval()
    with torch.no_grad(), explicit_row_attention(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        macs, _ = get_model_complexity_info(net, tuple(input_shape), as_strings=False, backend='aten',
                                            print_per_layer_stat=False, verbose=False)
    if macs is None:
        raise RuntimeError(f'ptflops could not run the network on an input of {tuple(input_shape)}')
    return int(macs)
