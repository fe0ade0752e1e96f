"""EHFSSR and EHFSSR-S: hybrid CNN + Transformer stereo image super-resolution.

Song, Sowmya, Sun, "Efficient Hybrid Feature Interaction Network for Stereo Image Super-Resolution",
IEEE Transactions on Multimedia 2024 (arXiv:2311.16518); released code and weights: github.com/jianwensong/EHFSSR.

Input (N, 6, h, w): the left and right low-resolution views concatenated on channels, in [0, 1].
Output (N, 6, s*h, s*w). Both views go through the same weights (here as one batch of 2N): a 3x3 conv (``init``),
``groups`` residual groups of ``num`` layers each, a 1x1 conv + channel attention (``fuse``) with a long skip, and a
3x3 conv with PixelShuffle (``up``); there is no interpolated skip of the input. Every layer starts with a
convolutional feed-forward (``ConvFFN``); then, in each group, layer 0 lets the views exchange information along
epipolar rows (``EHFCrossAttention``), the last layer applies global channel attention (``GlobalChannelAttention``)
and the others window self-attention in 16 x 16 windows, shifted by half a window in every second layer
(``DualScaleWindowAttention`` in EHFSSR, ``LightWindowAttention`` in EHFSSR-S, which is the only difference).

Parameter names and shapes equal the released checkpoints (``{'params': state_dict}``; ``init.*``,
``body.{g}.body.{i}.{MLP, selfatn, interaction}.*``, ``body.{g}.conv.*``, ``fuse.*``, ``up.0.*``), so they load with
strict=True. Test-time behaviour is the release's: the channel attentions pool globally (no TLSC), the window
attention sees its input reflect-padded to a multiple of the window size (the release fails when a side is <= 8
pixels; here the reflection is repeated until the size is reached, so any input size works).

Intra-view ``EHFBlock`` and cross-view ``EHFCrossAttention`` are in BLOCK_REGISTRY for the NAFSSR skeleton
(``intra_block: EHFBlock``, ``intra_kwargs: {attention: light_window, shift: true}``, ``cross_block:
EHFCrossAttention``).
"""
import torch
import torch.nn.functional as F
from torch import nn

from basicsr.models.archs.arch_util import ArchOptionError, LayerNorm2d
from basicsr.models.archs.scam import explicit_attention_requested
from basicsr.utils.registry import ARCH_REGISTRY, BLOCK_REGISTRY

WINDOW_SIZE = 16  # the release's windows (and the multiple its window attention pads to)
MAX_DISPARITY = 96  # the release's cross-view attention band: right-view columns x - 96 .. x for left column x
ROW_CHUNK_ELEMENTS = 1 << 22  # cross-view scores held at once without autograd (16 MiB in float32)


class MultiDilationECA(nn.Module):
    """Efficient channel attention with three dilated 1-D convs over the channels (dilations 1, 2, 4, kernel 3) fused
    by a fourth: ``gate(x)`` is the sigmoid weight per channel from the average pool, ``forward(x) = x * gate(x)``.

    The pool is ``nn.AdaptiveAvgPool2d(1)`` so that the NAFSSR skeleton can turn it into TLSC; a pool that keeps a
    spatial size gets its channel convs at every position.
    """

    def __init__(self):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv1 = nn.Conv1d(1, 1, 3, padding=1, bias=False)
        self.conv2 = nn.Conv1d(1, 1, 3, padding=2, dilation=2, bias=False)
        self.conv3 = nn.Conv1d(1, 1, 3, padding=4, dilation=4, bias=False)
        self.conv = nn.Conv1d(3, 1, 3, padding=1, bias=False)

    def gate(self, x):
        pooled = self.avg_pool(x)
        n, c, ph, pw = pooled.shape
        y = pooled.permute(0, 2, 3, 1).reshape(n * ph * pw, 1, c)
        # the three dilated convs as one conv with 9-tap kernels (offsets -4..4, zeros between the taps): same sums
        taps = self.conv1.weight.new_zeros(3, 1, 9)
        taps[0, :, 3:6] = self.conv1.weight[0]
        taps[1, :, 2:7:2] = self.conv2.weight[0]
        taps[2, :, 0:9:4] = self.conv3.weight[0]
        y = self.conv(F.conv1d(y, taps, padding=4))
        return torch.sigmoid(y.reshape(n, ph, pw, c).permute(0, 3, 1, 2))

    def forward(self, x):
        return x * self.gate(x)


class ConvFFN(nn.Module):
    """(N, c, H, W) -> same: LayerNorm, 1x1 conv to 2c, plus a 5x5 depthwise conv of itself, LeakyReLU(0.1),
    1x1 conv back to c, channel attention, residual. (The release's ``MLP``.)"""

    def __init__(self, c, ratio=2):
        super().__init__()
        hidden = int(c * ratio)
        self.layernorm1 = LayerNorm2d(c)
        self.proj1 = nn.Conv2d(c, hidden, 1)
        self.conv = nn.Conv2d(hidden, hidden, 5, padding=2, groups=hidden)
        self.projout = nn.Conv2d(hidden, c, 1)
        self.ca = MultiDilationECA()

    def forward(self, x0):
        h = self.proj1(self.layernorm1(x0))
        x = self.conv(h)
        x += h  # in place: neither the conv nor the add needs this tensor for its gradient
        x = self.projout(F.leaky_relu_(x, 0.1))
        return torch.addcmul(x0, x, self.ca.gate(x))


def reflect_pad_to_multiple(x, multiple):
    """Pad the bottom and right of (N, C, H, W) by reflection to multiples of ``multiple``.

    Equal to ``F.pad(x, ..., 'reflect')`` wherever that works (padding < size: the release's case); a side too short
    for one reflection is reflected again from its new end (a side of 1 pixel is repeated) instead of failing.
    """
    for dim in (-1, -2):
        pad = -x.shape[dim] % multiple
        while pad:
            size = x.shape[dim]
            step = min(pad, size - 1) if size > 1 else pad
            x = F.pad(x, (0, step, 0, 0) if dim == -1 else (0, 0, 0, step), mode='reflect' if size > 1 else 'replicate')
            pad -= step
    return x


def window_partition(x, size, heads):
    """(N, heads*d, H, W) -> (N * H/size * W/size, heads, size*size, d): the tokens of each window, per head.

    Read through the channels-last order (N, H, W, c), the layout of the network's features, so that the gradient
    comes back channels-last too (a channels-first one costs each conv's backward a transposing copy)."""
    n, c, h, w = x.shape
    x = x.permute(0, 2, 3, 1).reshape(n, h // size, size, w // size, size, heads, c // heads)
    return x.permute(0, 1, 3, 5, 2, 4, 6).reshape(-1, heads, size * size, c // heads)


def window_merge(y, n, h, w, size):
    """Inverse of ``window_partition``: (N * H/size * W/size, heads, size*size, d) -> (N, heads*d, H, W), stored
    channels-last."""
    heads, d = y.shape[1], y.shape[-1]
    y = y.reshape(n, h // size, w // size, heads, size, size, d)
    return y.permute(0, 1, 4, 2, 5, 3, 6).reshape(n, h, w, heads * d).permute(0, 3, 1, 2)


class _RecomputedAttention(torch.autograd.Function):
    """softmax(q k^T * scale) v whose backward recomputes the attention weights instead of keeping them: the same
    arithmetic as autograd through the explicit products, without holding a score matrix per layer in training.
    The softmax backward is torch's own kernel (one pass, no score-sized temporaries); the scale multiplies the two
    small query/key gradients instead of the scores. Where a layer's scores exceed 32 MiB (48 MiB in EHFSSR-S
    training), forward and backward run over a few windows at a time (about ``ATTENTION_CHUNK_ELEMENTS`` scores
    each): whole, each score-sized temporary is above glibc's largest mmap threshold (``tune_cpu_allocator``), so
    fresh zeroed pages, and out of the cache; chunked, the attention's forward + backward is about 3x faster on one
    thread (198 -> 62 ms per EHFSSR-S layer); each window's products are the same, so bit for bit the same results."""

    @staticmethod
    def forward(ctx, q, k, v, scale):
        ctx.save_for_backward(q, k, v)
        ctx.scale = scale
        return _cat([torch.matmul(_attention_weights(q[rows], k[rows], scale), v[rows])
                     for rows in _attention_chunks(q, k)])

    @staticmethod
    def backward(ctx, grad):
        q, k, v = ctx.saved_tensors
        parts = []
        for rows in _attention_chunks(q, k):
            p = _attention_weights(q[rows], k[rows], ctx.scale)
            grad_v = torch.matmul(p.transpose(-2, -1), grad[rows])
            grad_logits = torch._softmax_backward_data(torch.matmul(grad[rows], v[rows].transpose(-2, -1)), p, -1,
                                                       p.dtype)
            del p
            grad_q = torch.matmul(grad_logits, k[rows]).mul_(ctx.scale)
            grad_k = torch.matmul(grad_logits.transpose(-2, -1), q[rows]).mul_(ctx.scale)
            parts.append((grad_q, grad_k, grad_v))
        return (*map(_cat, zip(*parts)), None)


def _cat(parts):
    return parts[0] if len(parts) == 1 else torch.cat(parts)


ATTENTION_CHUNK_ELEMENTS = 1 << 18  # window-attention scores computed at once in training (1 MiB in float32) ...
ATTENTION_WHOLE_ELEMENTS = 1 << 23  # ... where a layer's scores exceed 32 MiB, glibc's largest mmap threshold


def _attention_chunks(q, k):
    """Slices of the leading (window) dim of ``q``, ``k``: one, the whole, when all scores fit in
    ``ATTENTION_WHOLE_ELEMENTS`` (EHFSSR training: chunks were 3-5% faster there, but its peak memory ~130 MB higher,
    above the release's), else of about ``ATTENTION_CHUNK_ELEMENTS`` scores each (EHFSSR-S training)."""
    per_window = q[:1].numel() // q.shape[-1] * k.shape[-2]
    if per_window * q.shape[0] <= ATTENTION_WHOLE_ELEMENTS:
        return [slice(None)]
    step = max(1, ATTENTION_CHUNK_ELEMENTS // max(1, per_window))
    return [slice(i, i + step) for i in range(0, q.shape[0], step)]


def _attention_weights(q, k, scale):
    return torch.matmul(q, k.transpose(-2, -1)).mul_(scale).softmax(dim=-1)


def attention(q, k, v, scale):
    """softmax(q k^T * scale) v over the last two dims, as the release computes it. Without autograd, torch's fused
    kernel (the same outputs up to float rounding); with autograd, the explicit products with the weights recomputed
    in the backward (torch's fused CPU backward is less accurate for large logits: its float32 input gradients
    differed from the release's by up to 6e-3 relative on random inputs, these by 1e-9); explicit too where MACs are
    counted (``scam.explicit_row_attention``: ptflops sees matrix products, not the fused kernel)."""
    if explicit_attention_requested():
        return torch.matmul(_attention_weights(q, k, scale), v)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v)):
        return _RecomputedAttention.apply(q, k, v, scale)
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


class _WindowAttention(nn.Module):
    """Shared frame of the two window attentions: reflect padding to whole windows (cropped back afterwards),
    LayerNorm, a 3x3 depthwise conv ``x1`` of the normalised input that feeds a channel attention ``CA`` (on the
    values) and a spatial gate, and the half-window cyclic shift of the queries, keys and values (undone on the
    output) when ``shift``. Subclasses define ``attend(x, x1) -> (y, local)``; the output is
    ``project_out(y + sigmoid(sa(y)) * local) + input``."""

    def __init__(self, c, window_size=WINDOW_SIZE, shift=False):
        super().__init__()
        self.window_size = window_size
        self.shift = bool(shift)
        self.Layernorm = LayerNorm2d(c)
        self.depthwise = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.CA = MultiDilationECA()

    def rolled(self, x):
        """``x`` cyclically shifted by half a window up and left when ``shift`` (the release's ``torch.roll``)."""
        half = self.window_size // 2
        return torch.roll(x, (-half, -half), dims=(2, 3)) if self.shift else x

    def unrolled(self, y):
        half = self.window_size // 2
        return torch.roll(y, (half, half), dims=(2, 3)) if self.shift else y

    def forward(self, inp):
        h, w = inp.shape[-2:]
        x0 = reflect_pad_to_multiple(inp, self.window_size)
        x = self.Layernorm(x0)
        y, local = self.attend(x, self.depthwise(x))
        out = self.project_out(torch.addcmul(y, self.sa(y), local)) + x0
        return crop(out, h, w)


class _Crop(torch.autograd.Function):
    """``x[:, :, :h, :w]`` whose gradient is zero-padded in ``x``'s memory layout (slicing's own backward zero-fills
    a channels-first tensor, which the channels-last convs before it then copy back)."""

    @staticmethod
    def forward(ctx, x, h, w):
        ctx.shape = x.shape
        ctx.memory_format = (torch.channels_last if x.dim() == 4 and not x.is_contiguous()
                             and x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format)
        return x[:, :, :h, :w]

    @staticmethod
    def backward(ctx, grad):
        full = torch.empty(ctx.shape, dtype=grad.dtype, device=grad.device, memory_format=ctx.memory_format).zero_()
        full[:, :, :grad.shape[2], :grad.shape[3]] = grad
        return full, None, None


def crop(x, h, w):
    """(N, C, H, W) -> (N, C, h, w), the top-left part (a view when no gradient is needed)."""
    if x.shape[-2:] == (h, w):
        return x
    if torch.is_grad_enabled() and x.requires_grad:
        return _Crop.apply(x, h, w)
    return x[:, :, :h, :w]


class DualScaleWindowAttention(_WindowAttention):
    """EHFSSR's window self-attention, (N, c, H, W) -> same: two heads of c/2 channels; in each 16 x 16 window the
    queries of head 0 attend to the window's keys, those of head 1 to keys and values down-sampled 2x by a learnt
    depthwise 2x2 stride-2 conv (``down``, shared by keys and values): 8 x 8 tokens per window. Values are scaled by
    the channel attention of the depthwise branch; the depthwise branch itself is gated by ``sa`` of the output."""

    def __init__(self, c, window_size=WINDOW_SIZE, shift=False):
        super().__init__(c, window_size, shift)
        half = c // 2
        self.to_q = nn.Conv2d(c, c, 1, bias=False)
        self.to_v = nn.Conv2d(c, c, 1, bias=False)
        self.to_k = nn.Conv2d(c, c, 1, bias=False)
        self.scale = half ** -0.5
        self.down = nn.Conv2d(half, half, 2, stride=2, groups=half)
        self.sa = nn.Sequential(nn.Conv2d(c, 1, 1), nn.Sigmoid())
        self.project_out = nn.Conv2d(c, c, 1)

    def attend(self, x, x1):
        n, c, h, w = x.shape
        size, half = self.window_size, c // 2
        # 1x1 projections and a per-channel scale commute with the shift: shift once, then project; q apart from
        # k and v (one conv): q is dropped once split into windows, while k and v stay for the gradients of
        # the down-sampling conv and the channel-attention scale (as the release's to_k and to_v outputs)
        x_s = self.rolled(x)
        q_full, q_down = self.to_q(x_s).split(half, dim=1)
        # one split into per-head pieces (not slices): its backward concatenates channels-last gradients into a
        # channels-last one, where slices' backwards would zero-fill channels-first tensors
        k_full, k_down, v_full, v_down = F.conv2d(x_s, torch.cat([self.to_k.weight, self.to_v.weight])).split(
            half, dim=1)
        gate_full, gate_down = self.CA.gate(x1).split(half, dim=1)
        # the shift is a whole number of 2x2 cells, so down-sampling the shifted map equals the release's
        # shift of the down-sampled one
        y_full = attention(window_partition(q_full, size, 1), window_partition(k_full, size, 1),
                           window_partition(v_full * gate_full, size, 1), self.scale)
        y_down = attention(window_partition(q_down, size, 1), window_partition(self.down(k_down), size // 2, 1),
                           window_partition(self.down(v_down * gate_down), size // 2, 1), self.scale)
        y = self.unrolled(window_merge(torch.cat([y_full, y_down], dim=1), n, h, w, size))
        return y, x1


class LightWindowAttention(_WindowAttention):
    """EHFSSR-S's window self-attention, (N, c, H, W) -> same: queries and keys from one 1x1 conv (c/2 channels
    each), values of c/2 channels from the channel-attention-scaled input, two heads (c/4 channels each) in 16 x 16
    windows with logits scaled by (c/2) ** -0.5 (the release's), and the depthwise branch reduced to c/2 channels
    (``local``) and gated by ``sa`` of the output."""

    def __init__(self, c, window_size=WINDOW_SIZE, shift=False):
        super().__init__(c, window_size, shift)
        half = c // 2
        self.heads = 2
        self.local = nn.Conv2d(c, half, 1)
        self.to_qk = nn.Conv2d(c, c, 1)
        self.to_v = nn.Conv2d(c, half, 1)
        self.scale = half ** -0.5
        self.sa = nn.Sequential(nn.Conv2d(half, 1, 1), nn.Sigmoid())
        self.project_out = nn.Conv2d(half, c, 1)

    def attend(self, x, x1):
        n, c, h, w = x.shape
        size = self.window_size
        x_s = self.rolled(x)  # 1x1 projections and a per-channel scale commute with the shift
        v = self.to_v(self.CA.gate(x1) * x_s)
        q, k = self.to_qk(x_s).chunk(2, dim=1)
        y = attention(window_partition(q, size, self.heads), window_partition(k, size, self.heads),
                      window_partition(v, size, self.heads), self.scale)
        return self.unrolled(window_merge(y, n, h, w, size)), self.local(x1)


class GlobalChannelAttention(nn.Module):
    """(N, c, H, W) -> same: half the channels attend to each other over the whole image (queries and keys
    L2-normalised over the pixels, learnt ``temperature``), the other half is a 1x1 conv, a 9x9 depthwise conv and
    LeakyReLU(0.1); both are concatenated, projected (``out``) and added to the input. (The release's ``GSAttention``.)
    """

    def __init__(self, c):
        super().__init__()
        half = c // 2
        self.Layernorm = LayerNorm2d(c)
        self.to_qkv = nn.Conv2d(c, 3 * half, 1, bias=False)
        self.to_sp = nn.Conv2d(c, half, 1, bias=False)
        self.conv = nn.Conv2d(half, half, 9, padding=4, groups=half)
        self.out = nn.Conv2d(2 * half, c, 1, bias=False)
        self.temperature = nn.Parameter(torch.ones(1, 1, 1))

    def forward(self, x0):
        n, _, h, w = x0.shape
        x = self.Layernorm(x0)
        q, k, v = self.to_qkv(x).reshape(n, 3, -1, h * w).unbind(1)
        attn = torch.matmul(F.normalize(q, dim=-1), F.normalize(k, dim=-1).transpose(-2, -1)) * self.temperature
        glob = torch.matmul(attn.softmax(dim=-1), v).reshape(n, -1, h, w)
        local = F.leaky_relu(self.conv(self.to_sp(x)), 0.1)
        return self.out(torch.cat([glob, local], dim=1)) + x0


ATTENTIONS = {'window': DualScaleWindowAttention, 'light_window': LightWindowAttention,
              'global': GlobalChannelAttention, 'none': None}


@BLOCK_REGISTRY.register()
class EHFBlock(nn.Module):
    """EHFSSR's intra-view layer, (N, c, H, W) -> same: ``ConvFFN`` (``MLP``), then self-attention (``selfatn``):
    ``attention`` = ``window`` (EHFSSR's dual-scale window attention), ``light_window`` (EHFSSR-S's), ``global``
    (global channel attention) or ``none``; ``shift`` shifts the windows by half a window, ``window_size`` their side.
    """
    block_kind = 'intra'

    def __init__(self, c, attention='window', shift=False, window_size=WINDOW_SIZE):
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f'attention: expected one of {", ".join(ATTENTIONS)}, got {attention!r}')
        if not isinstance(window_size, int) or isinstance(window_size, bool) or window_size < 4 or window_size % 4:
            raise ValueError(f'window_size: expected a multiple of 4, got {window_size!r}')
        heads_channels = {'window': 2, 'light_window': 4}.get(attention, 1)
        if c % heads_channels:
            raise ValueError(f'{attention} attention splits the channels in {heads_channels}; got {c} channels')
        self.MLP = ConvFFN(c)
        make = ATTENTIONS[attention]
        if make is None:
            self.selfatn = None
        elif make is GlobalChannelAttention:
            self.selfatn = make(c)
        else:
            self.selfatn = make(c, window_size=window_size, shift=shift)

    def forward(self, x):
        x = self.MLP(x)
        return x if self.selfatn is None else self.selfatn(x)


def shift_channel_groups(x):
    """Four groups of c//8 channels moved by one pixel (left, right, up, down; zeros shifted in), the rest kept."""
    g, h, w = x.shape[1] // 8, x.shape[2], x.shape[3]
    p = F.pad(x[:, :4 * g], (1, 1, 1, 1))
    return torch.cat([p[:, :g, 1:h + 1, 2:], p[:, g:2 * g, 1:h + 1, :w], p[:, 2 * g:3 * g, 2:, 1:w + 1],
                      p[:, 3 * g:4 * g, :h, 1:w + 1], x[:, 4 * g:]], dim=1)


def epipolar_band(width, max_disparity, device):
    """(W, W) boolean: True where right-view column j may match left-view column i, i - max_disparity <= j <= i."""
    i = torch.arange(width, device=device)
    d = i[:, None] - i[None, :]
    return (d >= 0) & (d <= max_disparity)


@BLOCK_REGISTRY.register()
class EHFCrossAttention(nn.Module):
    """EHFSSR's cross-view interaction: (x_l, x_r), each (N, c, H, W) -> the same, each view plus (``out``) what it
    gathers from the same row of the other view. (The release's ``Crossattention``.)

    Queries/keys: the view plus a shared depthwise 3x3 + 1x1 conv of itself (``transition``), LayerNorm, channel
    groups shifted by one pixel, 1x1 conv (``to_l``, ``to_r``); values: shifted channel groups of the raw view and
    a 1x1 conv (``feaL``, ``feaR``). ``heads`` channel groups; unscaled logits, multiplied by the band mask of
    disparities 0..``max_disparity`` as in the release (so logits outside the band are 0, not -inf), softmax over
    the right view's columns for the left view and over the left view's columns for the right one.
    """
    block_kind = 'cross'

    def __init__(self, c, heads=2, max_disparity=MAX_DISPARITY):
        super().__init__()
        if not isinstance(heads, int) or heads < 1 or (c and c % heads):
            raise ValueError(f'heads: expected a positive divisor of the channels ({c}), got {heads!r}')
        self.heads = heads
        self.max_disparity = max_disparity
        self.LayernormL = LayerNorm2d(c)
        self.LayernormR = LayerNorm2d(c)
        self.feaL = nn.Conv2d(c, c, 1, bias=False)
        self.feaR = nn.Conv2d(c, c, 1, bias=False)
        self.to_l = nn.Conv2d(c, c, 1, bias=False)
        self.to_r = nn.Conv2d(c, c, 1, bias=False)
        self.transition = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=c), nn.Conv2d(c, c, 1))
        self.out = nn.Conv2d(c, c, 1, bias=False)

    def _rows(self, x):
        """(N, c, H, W) -> (N, H, heads, W, c/heads)."""
        n, c, h, w = x.shape
        return x.reshape(n, self.heads, c // self.heads, h, w).permute(0, 3, 1, 4, 2)

    def _unrows(self, y):
        n, h, heads, w, d = y.shape
        return y.permute(0, 2, 4, 1, 3).reshape(n, heads * d, h, w)

    def stacked(self, x):
        """The same on both views stacked as one batch (left views first): (2N, c, H, W) -> same."""
        x_l, x_r = x.chunk(2, dim=0)
        shifted = shift_channel_groups(x).chunk(2, dim=0)
        t = self.transition(x) + x
        t_l, t_r = t.chunk(2, dim=0)
        q_l = self._rows(self.to_l(shift_channel_groups(self.LayernormL(t_l))))
        q_r = self._rows(self.to_r(shift_channel_groups(self.LayernormR(t_r))))
        v_l, v_r = self._rows(self.feaL(shifted[0])), self._rows(self.feaR(shifted[1]))
        band = epipolar_band(x.shape[-1], self.max_disparity, x.device)
        if torch.is_grad_enabled() and x.requires_grad:
            r2l, l2r = self._attend(q_l, q_r, v_l, v_r, band)
        else:  # without autograd, a few rows at a time: the W x W scores of all rows need not exist at once
            rows = max(1, ROW_CHUNK_ELEMENTS // (q_l.shape[0] * self.heads * x.shape[-1] ** 2))
            parts = [self._attend(*chunk, band) for chunk in zip(*(t.split(rows, dim=1) for t in (q_l, q_r, v_l, v_r)))]
            r2l, l2r = (torch.cat(p, dim=1) for p in zip(*parts))
        return self.out(self._unrows(torch.cat([r2l, l2r], dim=0))) + x

    @staticmethod
    def _attend(q_l, q_r, v_l, v_r, band):
        """(right-to-left, left-to-right) features, (N, rows, heads, W, d) each."""
        logits = torch.matmul(q_l, q_r.transpose(-1, -2))  # N, rows, heads, W_left, W_right
        logits.mul_(band)  # in place: the product's gradient needs only its inputs
        r2l = torch.matmul(logits.softmax(dim=-1), v_r)
        l2r = torch.matmul(logits.softmax(dim=-2).transpose(-1, -2), v_l)
        return r2l, l2r

    def forward(self, x_l, x_r):
        return self.stacked(torch.cat([x_l, x_r], dim=0)).chunk(2, dim=0)


class EHFStereoLayer(EHFBlock):
    """One layer of an EHFSSR group on both views stacked as a batch of 2N: ``EHFBlock``, then, when ``cross``,
    ``EHFCrossAttention`` between the two halves of the batch (``interaction``)."""

    def __init__(self, c, attention, shift, cross):
        super().__init__(c, attention, shift)
        self.interaction = EHFCrossAttention(c) if cross else None

    def forward(self, x):
        x = super().forward(x)
        return x if self.interaction is None else self.interaction.stacked(x)


class EHFGroup(nn.Module):
    """``num`` layers (0: cross-view; last: global channel attention; others: window attention, shifted in even
    layers), a 1x1 conv with channel attention (``conv``), and a residual over the group."""

    def __init__(self, c, num, window_attention):
        super().__init__()
        self.body = nn.ModuleList(
            EHFStereoLayer(c, attention='none' if i == 0 else 'global' if i == num - 1 else window_attention,
                           shift=i % 2 == 0, cross=i == 0)
            for i in range(num))
        self.conv = nn.Sequential(nn.Conv2d(c, c, 1), MultiDilationECA())

    def forward(self, x0):
        x = x0
        for layer in self.body:
            x = layer(x)
        return self.conv(x) + x0


@ARCH_REGISTRY.register()
class EHFSSR(nn.Module):
    """EHFSSR stereo super-resolution network (the release's option keys).

    Args:
        up_scale: up-sampling factor s.
        dim: channels of the features.
        groups: number of residual groups.
        num: layers per group (at least 1; layer 0 is the cross-view one).
    """
    window_attention = 'window'

    def __init__(self, up_scale=4, dim=64, groups=5, num=6):
        super().__init__()
        img_channel = 3
        for arg, value, least in (('up_scale', up_scale, 1), ('dim', dim, 4), ('groups', groups, 0),
                                  ('num', num, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ArchOptionError(arg, f'expected an integer >= {least}, got {value!r}')
        if dim % 4:
            raise ArchOptionError('dim', f'expected a multiple of 4 (the attention heads split it), got {dim!r}')
        self.up_scale = up_scale
        self.in_channels = 2 * img_channel  # left and right views
        self.init = nn.Conv2d(img_channel, dim, 3, padding=1)
        self.body = nn.ModuleList(EHFGroup(dim, num, self.window_attention) for _ in range(groups))
        self.fuse = nn.Sequential(nn.Conv2d(dim, dim, 1), MultiDilationECA())
        self.up = nn.Sequential(nn.Conv2d(dim, img_channel * up_scale ** 2, 3, padding=1),
                                nn.PixelShuffle(up_scale))
        # features and conv weights channels-last in memory (values and names unchanged, so checkpoints load either
        # way): the depthwise and 1x1 convs run faster on CPUs and the LayerNorms need no copies; the weights are in
        # the layout their gradients come back in, as DDP's gradient buckets want
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                module.to(memory_format=torch.channels_last)

    def forward(self, inp):
        if inp.dim() != 4 or inp.shape[1] != self.in_channels:
            raise ValueError(f'{type(self).__name__} expects (N, 6, h, w) = left and right views on channels, '
                             f'got {tuple(inp.shape)}')
        views = torch.cat(inp.chunk(2, dim=1), dim=0).contiguous(memory_format=torch.channels_last)
        x0 = self.init(views)  # the views as one batch: (2N, dim, h, w)
        x = x0
        for group in self.body:
            x = group(x)
        out = self.up(self.fuse(x) + x0)
        return torch.cat(out.chunk(2, dim=0), dim=1).contiguous()


@ARCH_REGISTRY.register()
class EHFSSR_S(EHFSSR):
    """EHFSSR-S: EHFSSR with the lighter window attention (``LightWindowAttention``); default width 48."""
    window_attention = 'light_window'

    def __init__(self, up_scale=4, dim=48, groups=5, num=6):
        super().__init__(up_scale=up_scale, dim=dim, groups=groups, num=num)
