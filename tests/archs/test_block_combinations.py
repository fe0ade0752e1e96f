"""Every registered intra-view block works with every registered cross-view block in the NAFSSR skeleton.

The pairs are read from BLOCK_REGISTRY when the tests are collected, so a newly registered block is tested with all
the others without editing this file. Width 12 and an 8 x 16 input suit every block registered so far.
"""
import itertools

import pytest
import torch

import basicsr.models.archs  # noqa: F401  (registers every block)
from basicsr.models.archs import define_network
from basicsr.utils.registry import BLOCK_REGISTRY


def blocks(kind):
    return [name for name in BLOCK_REGISTRY if getattr(BLOCK_REGISTRY.get(name), 'block_kind', None) == kind]


PAIRS = list(itertools.product(blocks('intra'), blocks('cross')))


def test_every_block_says_its_kind():
    assert {getattr(BLOCK_REGISTRY.get(n), 'block_kind', None) for n in BLOCK_REGISTRY} == {'intra', 'cross'}
    assert len(PAIRS) >= 4


@pytest.mark.parametrize('intra,cross', PAIRS, ids=[f'{a}+{b}' for a, b in PAIRS])
def test_forward_backward(intra, cross):
    torch.manual_seed(0)
    # train_size 4 x 8: the 8 x 16 input is larger than the TLSC window in eval, so local pooling runs too
    net = define_network({'type': 'NAFSSR', 'up_scale': 2, 'width': 12, 'num_blks': 2, 'train_size': [1, 6, 4, 8],
                          'intra_block': intra, 'cross_block': cross}).train()
    for p in net.parameters():  # non-zero beta/gamma so that every branch carries gradient
        torch.nn.init.normal_(p, std=0.1)
    x = torch.rand(2, 6, 8, 16)
    out = net(x)
    assert out.shape == (2, 6, 16, 32)
    out.square().mean().backward()
    assert [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()] == []
    net.eval()
    with torch.no_grad():
        assert torch.isfinite(net(x)).all()
