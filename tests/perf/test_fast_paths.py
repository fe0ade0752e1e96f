"""The fast paths of NAFSSR compute the same function as the paper's plain formulation.

The oracle is written here from the formulas, independently of basicsr.models.archs: a float64 functional NAFSSR
that runs each view separately in NCHW, LayerNorm by mean/variance, SimpleGate by chunk, TLSC by an explicit
window mean (avg_pool2d over valid windows + replicate padding, or the global mean when the window covers the
input) and SCAM with two separate softmaxes over an explicitly transposed score matrix. Whatever fast path the
network takes (views stacked on the batch, channels-last, fused residuals, one score matrix), eval outputs must
stay within 1e-5 of the oracle and training gradients close to its gradients.
"""
import pytest
import torch
import torch.nn.functional as F

from basicsr.evaluation import forward_stereo
from basicsr.models.archs import define_network

WIDTH, BLOCKS, SCALE = 8, 2, 2
TRAIN_HW = (30, 90)  # TLSC window: 45x135


# ----------------------------------------------------------------------------- the oracle (float64, NCHW)
def ln(x, w, b, eps=1e-6):
    mu = x.mean(1, keepdim=True)
    var = ((x - mu) ** 2).mean(1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w.view(1, -1, 1, 1) + b.view(1, -1, 1, 1)


def window_mean(x, train_hw=TRAIN_HW):
    kh, kw = int(train_hw[0] * 1.5), int(train_hw[1] * 1.5)
    h, w = x.shape[-2:]
    if kh >= h and kw >= w:
        return x.mean((-2, -1), keepdim=True)
    kh, kw = min(kh, h), min(kw, w)
    out = F.avg_pool2d(x, (kh, kw), stride=1)
    ph, pw = h - out.shape[-2], w - out.shape[-1]
    return F.pad(out, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode='replicate')


def conv(p, name, x, **kw):
    return F.conv2d(x, p[name + '.weight'], p[name + '.bias'], **kw)


def nafblock(p, pre, x):
    c2 = p[pre + 'conv2.weight'].shape[0]
    y = conv(p, pre + 'conv2', conv(p, pre + 'conv1', ln(x, p[pre + 'norm1.weight'], p[pre + 'norm1.bias'])),
             padding=1, groups=c2)
    a, b = y.chunk(2, 1)
    y = a * b
    y = y * conv(p, pre + 'sca.1', window_mean(y))
    x = x + conv(p, pre + 'conv3', y) * p[pre + 'beta']
    a, b = conv(p, pre + 'conv4', ln(x, p[pre + 'norm2.weight'], p[pre + 'norm2.bias'])).chunk(2, 1)
    return x + conv(p, pre + 'conv5', a * b) * p[pre + 'gamma']


def scam(p, pre, xl, xr):
    c = xl.shape[1]
    q_l = conv(p, pre + 'l_proj1', ln(xl, p[pre + 'norm_l.weight'], p[pre + 'norm_l.bias']))
    q_r = conv(p, pre + 'r_proj1', ln(xr, p[pre + 'norm_r.weight'], p[pre + 'norm_r.bias']))
    v_l, v_r = conv(p, pre + 'l_proj2', xl), conv(p, pre + 'r_proj2', xr)
    att = torch.einsum('nchi,nchj->nhij', q_l, q_r) * c ** -0.5  # row h: left position i, right position j
    r2l = torch.einsum('nhij,nchj->nchi', att.softmax(-1), v_r)
    l2r = torch.einsum('nhji,nchi->nchj', att.transpose(-1, -2).contiguous().softmax(-1), v_l)
    return xl + r2l * p[pre + 'beta'], xr + l2r * p[pre + 'gamma']


def nafssr_oracle(p, x):
    views = [conv(p, 'intro', v, padding=1) for v in x.chunk(2, 1)]
    for i in range(BLOCKS):
        pre = f'body.{i}.module.'
        views = [nafblock(p, pre + 'blk.', v) for v in views]
        views = scam(p, pre + 'fusion.', *views)
    up = [F.pixel_shuffle(conv(p, 'up.0', v, padding=1), SCALE) for v in views]
    return torch.cat(up, 1) + F.interpolate(x, scale_factor=SCALE, mode='bilinear', align_corners=False)


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope='module')
def net():
    torch.manual_seed(0)
    net = define_network({'type': 'NAFSSR', 'up_scale': SCALE, 'width': WIDTH, 'num_blks': BLOCKS,
                          'train_size': [1, 6, *TRAIN_HW]})
    with torch.no_grad():  # released weights have non-zero residual scales and trained norms: so must ours
        for name, value in net.named_parameters():
            if name.endswith(('beta', 'gamma', 'norm1.weight', 'norm2.weight', 'norm_l.bias', 'norm_r.weight')):
                value.copy_(torch.randn_like(value) * 0.5 + (1 if name.endswith('weight') else 0))
    return net


def params64(net):
    return {k: v.detach().double().requires_grad_(True) for k, v in net.state_dict().items()}


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize('hw', [(20, 60), (64, 200), (40, 150)],
                         ids=['global-pool', 'local-pool', 'local-in-width-only'])
def test_eval_output_matches_oracle(net, hw):
    torch.manual_seed(1)
    x = torch.rand(2, 6, *hw)
    net.eval()
    with torch.no_grad():
        expected = nafssr_oracle(params64(net), x.double())
        out = net(x)
    assert out.dtype == torch.float32 and out.shape == expected.shape
    # measured 3.5e-7 to 4.1e-7 (float32 rounding through the network); a wrong formula is off by >= 1e-3
    assert (out.double() - expected).abs().max().item() < 1e-5


def test_eval_is_per_sample(net):
    """Stacking views or samples on the batch must not mix them: each sample alone gives its own output."""
    torch.manual_seed(2)
    x = torch.rand(3, 6, 24, 70)
    net.eval()
    with torch.no_grad():
        together = net(x)
        alone = torch.cat([net(x[i:i + 1]) for i in range(3)])
    assert (together - alone).abs().max().item() < 1e-5


def test_channels_last_input_gives_same_output(net):
    torch.manual_seed(3)
    x = torch.rand(2, 6, 64, 200)
    net.eval()
    with torch.no_grad():
        ref = net(x)
        out = net(x.contiguous(memory_format=torch.channels_last))
    assert (out - ref).abs().max().item() < 1e-5


def test_inference_path_of_test_py_equals_plain_forward(net):
    """test.py runs basicsr.evaluation.forward_stereo (inference_mode); same numbers as a no_grad forward."""
    torch.manual_seed(4)
    x = torch.rand(1, 6, 48, 160)
    net.eval()
    with torch.no_grad():
        ref = net(x)
    out = forward_stereo(net, x)
    assert (out - ref).abs().max().item() < 1e-5


def test_training_gradients_match_oracle(net):
    torch.manual_seed(5)
    x = torch.rand(2, 6, *TRAIN_HW)
    gt = torch.rand(2, 6, TRAIN_HW[0] * SCALE, TRAIN_HW[1] * SCALE)
    net.train()
    net.zero_grad()
    F.mse_loss(net(x), gt).backward()
    p = params64(net)
    F.mse_loss(nafssr_oracle(p, x.double()), gt.double()).backward()
    worst = 0.0
    for name, value in net.named_parameters():
        ref = p[name].grad
        worst = max(worst, ((value.grad.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item())
    assert worst < 1e-4  # relative to each parameter's largest gradient; measured 1.5e-6 (float32 backward)
    net.zero_grad()


def test_explicit_and_fused_attention_agree(net):
    """Evaluation uses the fused attention kernel, training and MAC counting the explicit score matrix: the same
    numbers, including the channels-last-off network."""
    from basicsr.models.archs.scam import explicit_row_attention

    torch.manual_seed(6)
    x = torch.rand(1, 6, 40, 150)
    net.eval()
    with torch.no_grad():
        fused = net(x)
        with explicit_row_attention():
            explicit = net(x)
        net.channels_last = False
        try:
            plain_layout = net(x)
        finally:
            net.channels_last = True
    assert (fused - explicit).abs().max().item() < 1e-5
    assert (fused - plain_layout).abs().max().item() < 1e-5


def test_simple_gate_backward_is_bitwise_autograd():
    """SimpleGate's hand-written backward writes both halves in place of autograd's concatenation: same bits."""
    from basicsr.models.archs.arch_util import SimpleGate

    torch.manual_seed(7)
    for fmt in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(2, 8, 5, 7).contiguous(memory_format=fmt).requires_grad_()
        g = torch.randn(2, 4, 5, 7)
        out = SimpleGate()(x)
        out.backward(g)
        ours = x.grad.clone()
        x.grad = None
        a, b = x.chunk(2, dim=1)
        (a * b).backward(g)
        assert torch.equal(out, a * b) and torch.equal(ours, x.grad)
        assert ours.is_contiguous(memory_format=fmt)
