"""SwinFIRSSR: SwinFIR's hybrid-attention transformer with stereo cross-attention after every stage.

Zhang, Huang, Liu, Wang, Jin, "SwinFIR: Revisiting the SwinIR with Fast Fourier Convolution and Improved Training
for Image Super-Resolution" (arXiv:2208.11247), with the stereo fusion of its NTIRE 2023 stereo SR entry; released
code and weights: github.com/Zdafeng/SwinFIR (``swinfir/archs/swinfirssr_arch.py``, ``swinfir_utils.py``).

Input (N, 6, h, w): the left and right LR views concatenated on channels, RGB in [0, 1] (the release's dataset
converts OpenCV's BGR to RGB, and the network subtracts an RGB mean). Output (N, 6, s*h, s*w). Both views go through
the same weights as one batch of 2N. After a 3x3 conv (``conv_first``) the features are tokens (2N, H, W, C) with a
LayerNorm (``patch_embed.norm``); each of the ``len(depths)`` stages (``layers.{i}``) is

* ``depths[i]`` hybrid attention blocks (``HAB``, from HAT): window self-attention with a relative position bias in
  ``window_size`` windows, shifted by half a window in every second block, plus ``conv_scale`` times a channel
  attention conv branch (``CAB``), then an MLP;
* one overlapping cross-attention block (``OCAB``): queries from each window, keys and values from the window
  enlarged by ``overlap_ratio`` (zero-padded at the image border);
* a residual connection through ``resi_connection`` = ``SFB`` (spatial-frequency block: a residual conv pair beside
  a fast Fourier convolution, fused by a 1x1 conv), ``1conv`` or ``identity``;

followed by a stereo cross-attention between the two views along rows (``scam_layer.{i}``, ``SwinFIRSCAM``). Then
a LayerNorm, a 3x3 conv with a residual from ``conv_first`` and the pixel-shuffle up-sampler.

Parameter and buffer names and shapes equal the release's (``relative_position_index_SA``/``_OCA``, ``layers.{i}.
residual_group.blocks.{j}.*``, ``layers.{i}.residual_group.overlap_attn.*``, ``layers.{i}.conv.*``,
``scam_layer.{i}.*``, ...), so its ``params_ema`` checkpoints load with strict loading. Attention runs through
``scaled_dot_product_attention`` with the relative position bias (plus the shifted-window mask) as an additive
mask. Any input size works: the input is padded by mirroring to whole windows (in eval mode by the release's test
rule, always 1..window_size rows and columns more, so that results equal its test code) and the output cropped.

``HAB`` and ``SFB`` (intra-view) and ``SwinFIRSCAM`` (cross-view) are in BLOCK_REGISTRY for the NAFSSR skeleton.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from basicsr.models.archs.arch_util import ArchOptionError
from basicsr.models.archs.drop_path import drop_path
from basicsr.models.archs.scam import explicit_attention_requested, row_cross_attention
from basicsr.utils.registry import ARCH_REGISTRY, BLOCK_REGISTRY

RGB_MEAN = (0.4488, 0.4371, 0.4040)  # the release's (DIV2K) mean, subtracted from 3-channel input
SHIFT_MASK = -100.0  # the release's additive logit for token pairs from different regions of a shifted window


# ---------------------------------------------------------------------------------------------- window helpers
def window_relative_index(ws):
    """(ws*ws, ws*ws) index into a (2ws-1)^2 bias table: the relative offset of every token pair in a window."""
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing='ij')).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :] + (ws - 1)
    return rel[0] * (2 * ws - 1) + rel[1]


def overlap_relative_index(ws, ows):
    """(ws*ws, ows*ows) index of the overlapping attention's bias table ((ws + ows - 1)^2 rows), as HAT computes
    it: offsets shifted by ws - ows + 1, so some are negative and index the table from its end (a fixed bijection;
    kept as is because the released checkpoints hold this buffer)."""
    ori = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing='ij')).flatten(1)
    ext = torch.stack(torch.meshgrid(torch.arange(ows), torch.arange(ows), indexing='ij')).flatten(1)
    rel = ext[:, None, :] - ori[:, :, None] + (ws - ows + 1)
    return rel[0] * (ws + ows - 1) + rel[1]


def partition(x, ws, groups):
    """(B, H, W, groups*d) tokens -> (B, H/ws, W/ws, groups, ws*ws, d): the tokens of each window, per group."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, groups, c // groups)
    return x.permute(0, 1, 3, 5, 2, 4, 6).reshape(b, h // ws, w // ws, groups, ws * ws, c // groups)


def merge(y, ws):
    """Inverse of ``partition``: (B, nh, nw, groups, ws*ws, d) -> (B, nh*ws, nw*ws, groups*d)."""
    b, nh, nw, g, _, d = y.shape
    y = y.view(b, nh, nw, g, ws, ws, d).permute(0, 1, 4, 2, 5, 3, 6)
    return y.reshape(b, nh * ws, nw * ws, g * d)


def shifted_window_groups(h, w, ws, shift, device):
    """The windows of an (h, w) map shifted by ``shift``, in groups that share one attention mask:
    ``[(rows, cols, mask)]`` with slices over the window grid and ``mask`` (ws*ws, ws*ws) (None: no mask).

    After the cyclic shift only the last row and the last column of windows mix tokens from different image
    regions (the release's mask, made from region labels, is zero elsewhere), so four masks cover any size and the
    (windows, heads, n, n) mask of all windows is never made.
    """
    if not shift:
        return [(slice(None), slice(None), None)]
    n = ws * ws
    idx = torch.arange(ws, device=device)

    def labels(last):  # region of each row (column) inside a window of the last row (column), else 0
        return (idx >= ws - shift).long() + 1 if last else torch.zeros_like(idx)

    groups = []
    nh, nw = h // ws, w // ws
    for last_row, rows in ((False, slice(0, nh - 1)), (True, slice(nh - 1, nh))):
        for last_col, cols in ((False, slice(0, nw - 1)), (True, slice(nw - 1, nw))):
            if rows.stop - rows.start <= 0 or cols.stop - cols.start <= 0:
                continue
            region = (labels(last_row)[:, None] * 3 + labels(last_col)[None, :]).reshape(n)
            mask = None
            if last_row or last_col:
                mask = torch.zeros(n, n, device=device).masked_fill_(region[:, None] != region[None, :], SHIFT_MASK)
            groups.append((rows, cols, mask))
    return groups


# window-attention scores computed at once without autograd (1 MiB in float32): cache-sized, and far below glibc's
# largest mmap threshold, so the fused kernel's temporaries are reused heap pages (whole, the released x4 network at
# 48x96 held 390 MB more at its peak and ran 20% slower; the windows are independent: bit-identical results)
ATTENTION_CHUNK_ELEMENTS = 1 << 18


def attention(q, k, v, bias, scale):
    """softmax(q k^T * scale + bias) v for (..., heads, n, d) inputs; ``bias`` (heads, n, m) is added to the logits.
    Without autograd torch's fused kernel (the same results up to float rounding; given 4-D inputs, as its CPU kernel
    needs), over a few windows at a time (``ATTENTION_CHUNK_ELEMENTS``); with autograd, and where MACs are counted,
    the explicit products as the release computes them (torch's CPU backward with a mask takes its slower generic
    path)."""
    if explicit_attention_requested() or (torch.is_grad_enabled() and q.requires_grad):
        return torch.matmul(torch.softmax(torch.matmul(q * scale, k.transpose(-2, -1)) + bias, dim=-1), v)
    lead = q.shape[:-3]
    q, k, v = (t.reshape((-1,) + t.shape[-3:]) for t in (q, k, v))
    mask = bias.to(q.dtype)
    step = max(1, ATTENTION_CHUNK_ELEMENTS // (q.shape[1] * q.shape[2] * k.shape[2]))
    out = torch.cat([F.scaled_dot_product_attention(q[i:i + step], k[i:i + step], v[i:i + step], attn_mask=mask,
                                                    scale=scale) for i in range(0, q.shape[0], step)])
    return out.view(lead + out.shape[-3:])


def mirror_pad(x, pad_h, pad_w):
    """Pad (N, C, H, W) at the bottom and right with its mirror image (the edge pixel repeated: the release's
    ``cat([x, flip(x)])``); mirrored again as often as needed where the padding exceeds the size."""
    for dim, pad in ((2, pad_h), (3, pad_w)):
        if pad:
            size = x.shape[dim]
            reps = math.ceil((size + pad) / (2 * size))
            x = torch.cat([x, x.flip(dim)] * reps, dim=dim).narrow(dim, 0, size + pad)
    return x


def _conv_view(x):
    """(B, H, W, C) tokens as an (B, C, H, W) tensor (channels-last in memory: no copy)."""
    return x.permute(0, 3, 1, 2)


def _tokens(x):
    """(B, C, H, W) -> (B, H, W, C) contiguous (free when ``x`` is channels-last in memory)."""
    return x.permute(0, 2, 3, 1).contiguous()


# ---------------------------------------------------------------------------------------------- blocks
class Mlp(nn.Module):
    """Linear -> GELU -> Linear on the last dim (dropout ``drop`` after each)."""

    def __init__(self, c, hidden, drop=0.):
        super().__init__()
        self.fc1 = nn.Linear(c, hidden)
        self.fc2 = nn.Linear(hidden, c)
        self.drop = nn.Dropout(drop) if drop > 0 else nn.Identity()

    def forward(self, x):
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class ChannelAttention(nn.Module):
    """RCAN's channel attention, (N, C, H, W) -> same: x * sigmoid(conv(relu(conv(mean over H, W))))."""

    def __init__(self, c, hidden):
        super().__init__()
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, hidden, 1), nn.ReLU(inplace=True),
                                       nn.Conv2d(hidden, c, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.attention(x)


class CAB(nn.Module):
    """Channel attention block: 3x3 conv to c / compress_ratio, GELU, 3x3 conv back, channel attention."""

    def __init__(self, c, compress_ratio=3, squeeze_factor=30):
        super().__init__()
        self.cab = nn.Sequential(nn.Conv2d(c, c // compress_ratio, 3, padding=1), nn.GELU(),
                                 nn.Conv2d(c // compress_ratio, c, 3, padding=1),
                                 ChannelAttention(c, max(1, c // squeeze_factor)))

    def forward(self, x):
        return self.cab(x)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a learnt relative position bias (Swin's); holds the
    parameters (``qkv``, ``proj``, ``relative_position_bias_table``), ``HAB`` does the windowing."""

    def __init__(self, c, window_size, num_heads, qkv_bias=True, qk_scale=None, attn_drop=0., proj_drop=0.):
        super().__init__()
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = qk_scale or (c // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.qkv = nn.Linear(c, 3 * c, bias=qkv_bias)
        self.proj = nn.Linear(c, c)
        if attn_drop > 0:
            raise ArchOptionError('attn_drop_rate', 'attention dropout is not supported (the release uses 0)')
        self.proj_drop = nn.Dropout(proj_drop) if proj_drop > 0 else nn.Identity()
        nn.init.trunc_normal_(self.relative_position_bias_table, std=.02)

    def bias(self, rpi):
        """(heads, n, n) relative position bias for the index ``rpi`` (n, n)."""
        n = rpi.shape[0]
        return self.relative_position_bias_table[rpi.reshape(-1)].view(n, n, -1).permute(2, 0, 1)


class HAB(nn.Module):
    """Hybrid attention block (HAT's), on tokens (B, H, W, C) with H, W multiples of ``window_size``:
    ``x + attn(norm1(x)) + conv_scale * CAB(norm1(x))``, then ``+ mlp(norm2(.))``; the window attention is
    shifted by ``shift`` (cyclically, with the shifted-window mask) when ``shift`` > 0."""

    def __init__(self, c, num_heads, window_size, shift=0, compress_ratio=3, squeeze_factor=30, conv_scale=0.01,
                 mlp_ratio=2., qkv_bias=True, qk_scale=None, drop=0., attn_drop=0., drop_path=0.):
        super().__init__()
        self.window_size = window_size
        self.shift = shift
        self.conv_scale = conv_scale
        self.drop_path = drop_path
        self.norm1 = nn.LayerNorm(c)
        self.attn = WindowAttention(c, window_size, num_heads, qkv_bias, qk_scale, attn_drop, drop)
        self.conv_block = CAB(c, compress_ratio, squeeze_factor)
        self.norm2 = nn.LayerNorm(c)
        self.mlp = Mlp(c, int(c * mlp_ratio), drop)

    def forward(self, x, rpi, groups):
        """``rpi``: the window's relative position index; ``groups``: ``shifted_window_groups`` for this size and
        this block's shift."""
        ws, heads, s = self.window_size, self.attn.num_heads, self.shift
        y = self.norm1(x)
        conv_x = _tokens(self.conv_block(_conv_view(y)))
        if s:
            y = torch.roll(y, (-s, -s), dims=(1, 2))
        q, k, v = partition(self.attn.qkv(y), ws, 3 * heads).chunk(3, dim=3)
        bias = self.attn.bias(rpi)
        if len(groups) == 1 and groups[0][2] is None:
            out = attention(q, k, v, bias, self.attn.scale)
        else:
            out = q.new_empty(q.shape)
            for rows, cols, mask in groups:
                out[:, rows, cols] = attention(q[:, rows, cols], k[:, rows, cols], v[:, rows, cols],
                                               bias if mask is None else bias + mask, self.attn.scale)
        y = merge(out, ws)
        if s:
            y = torch.roll(y, (s, s), dims=(1, 2))
        y = self.attn.proj_drop(self.attn.proj(y))
        x = x + drop_path(y, self.drop_path, self.training) + conv_x * self.conv_scale
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)


class OCAB(nn.Module):
    """Overlapping cross-attention block (HAT's), tokens (B, H, W, C) -> same: the queries of each window attend
    to the keys and values of the window enlarged to ``int(window_size * overlap_ratio) + window_size`` (centred,
    zero keys and values outside the image), with a relative position bias; projection and residual, then an MLP
    with a residual."""

    def __init__(self, c, window_size, overlap_ratio, num_heads, qkv_bias=True, qk_scale=None, mlp_ratio=2.):
        super().__init__()
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = qk_scale or (c // num_heads) ** -0.5
        self.overlap_win_size = int(window_size * overlap_ratio) + window_size
        self.norm1 = nn.LayerNorm(c)
        self.qkv = nn.Linear(c, 3 * c, bias=qkv_bias)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((window_size + self.overlap_win_size - 1) ** 2, num_heads))
        self.proj = nn.Linear(c, c)
        self.norm2 = nn.LayerNorm(c)
        self.mlp = Mlp(c, int(c * mlp_ratio))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=.02)

    def forward(self, x, rpi):
        b, h, w, c = x.shape
        ws, ows, heads = self.window_size, self.overlap_win_size, self.num_heads
        pad = (ows - ws) // 2
        qkv = self.qkv(self.norm1(x))
        q = partition(qkv[..., :c], ws, heads)
        kv = F.pad(qkv[..., c:], (0, 0, pad, pad, pad, pad))  # zeros around the image, as the release's unfold
        kv = kv.unfold(1, ows, ws).unfold(2, ows, ws)  # B, nh, nw, 2C, ows, ows (a view)
        nh, nw = kv.shape[1:3]
        kv = kv.reshape(b, nh, nw, 2, heads, c // heads, ows * ows).permute(3, 0, 1, 2, 4, 6, 5)
        n = ws * ws
        bias = self.relative_position_bias_table[rpi.reshape(-1)].view(n, ows * ows, -1).permute(2, 0, 1)
        y = merge(attention(q, kv[0], kv[1], bias, self.scale), ws)
        x = self.proj(y) + x
        return x + self.mlp(self.norm2(x))


class ResB(nn.Module):
    """3x3 conv, LeakyReLU(0.2), 3x3 conv, plus the input."""

    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
                                  nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x):
        return self.body(x) + x


class FourierUnit(nn.Module):
    """Fast Fourier convolution's spectral unit, (N, c, H, W) -> same: orthonormal 2-D real FFT, a 1x1 conv over
    the real and imaginary parts of every channel (interleaved: c0.re, c0.im, c1.re, ...), LeakyReLU(0.2), inverse
    FFT back to (H, W)."""

    def __init__(self, c):
        super().__init__()
        self.conv_layer = nn.Conv2d(2 * c, 2 * c, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        spec = torch.view_as_real(torch.fft.rfft2(x.float(), norm='ortho'))  # N, c, H, W/2+1, 2
        spec = spec.permute(0, 2, 3, 1, 4).reshape(n, h, -1, 2 * c)  # per frequency: c0.re, c0.im, c1.re, ...
        weight = self.conv_layer.weight.reshape(2 * c, 2 * c)
        spec = F.leaky_relu_(F.linear(spec, weight.float(), self.conv_layer.bias.float()), 0.2)
        spec = torch.view_as_complex(spec.reshape(n, h, -1, c, 2)).permute(0, 3, 1, 2)
        return torch.fft.irfft2(spec, s=(h, w), norm='ortho').to(x.dtype)


class SpectralTransform(nn.Module):
    """1x1 conv to c/2 with LeakyReLU(0.2), plus its ``FourierUnit``, 1x1 conv back to c."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(c, c // 2, 1), nn.LeakyReLU(0.2, inplace=True))
        self.fu = FourierUnit(c // 2)
        self.conv2 = nn.Conv2d(c // 2, c, 1)

    def forward(self, x):
        x = self.conv1(x)
        return self.conv2(x + self.fu(x))


@BLOCK_REGISTRY.register()
class SFB(nn.Module):
    """Spatial-frequency block, (N, c, H, W) -> same: a residual conv pair (``S``) and a spectral transform
    (``F``) side by side, concatenated and fused by a 1x1 conv. No outer residual (SwinFIRSSR adds it around
    the whole stage)."""
    block_kind = 'intra'

    def __init__(self, c):
        super().__init__()
        if c < 2:
            raise ValueError(f'SFB halves the channels for its Fourier branch; got {c} channels')
        self.S = ResB(c)
        self.F = SpectralTransform(c)
        self.fusion = nn.Conv2d(2 * c, c, 1)

    def forward(self, x):
        return self.fusion(torch.cat([self.S(x), self.F(x)], dim=1))


@BLOCK_REGISTRY.register()
class SwinFIRSCAM(nn.Module):
    """SwinFIRSSR's stereo cross-attention, (x_l, x_r), each (N, c, H, W) -> the same: both views LayerNorm'd
    over the channels by one shared ``norm``; queries/keys (``l_proj1``, ``r_proj1``) and values (``l_proj2``,
    ``r_proj2``) are 1x1 convs of the normalised views; each row of one view attends to the same row of the other
    (logits scaled by c ** -0.5), and what it gathers, scaled by ``beta`` (left) / ``gamma`` (right), is added to
    the *normalised* view (the release's residual; NAFSSR's SCAM adds it to the raw view)."""
    block_kind = 'cross'

    def __init__(self, c):
        super().__init__()
        self.scale = c ** -0.5
        self.norm = nn.LayerNorm(c)
        self.l_proj1 = nn.Conv2d(c, c, 1)
        self.r_proj1 = nn.Conv2d(c, c, 1)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.l_proj2 = nn.Conv2d(c, c, 1)
        self.r_proj2 = nn.Conv2d(c, c, 1)

    def tokens(self, x):
        """On tokens (2N, H, W, C), left views first: -> the same."""
        x = _conv_view(self.norm(x))
        x_l, x_r = x.chunk(2, dim=0)
        r2l, l2r = row_cross_attention(self.l_proj1(x_l), self.r_proj1(x_r), self.l_proj2(x_l), self.r_proj2(x_r),
                                       self.scale)
        return _tokens(torch.cat([torch.addcmul(x_l, r2l, self.beta), torch.addcmul(x_r, l2r, self.gamma)]))

    def forward(self, x_l, x_r):
        return _conv_view(self.tokens(torch.cat([_tokens(x_l), _tokens(x_r)]))).chunk(2, dim=0)


class _TokenEmbed(nn.Module):
    """The release's ``PatchEmbed`` with patch size 1: only its optional LayerNorm (``norm``) over the tokens."""

    def __init__(self, c, norm):
        super().__init__()
        self.norm = nn.LayerNorm(c) if norm else None

    def forward(self, x):
        return x if self.norm is None else self.norm(x)


class AttenBlocks(nn.Module):
    """``depth`` HABs (every second shifted by half a window) and one OCAB."""

    def __init__(self, c, depth, num_heads, window_size, shift, overlap_ratio, drop_path, use_checkpoint,
                 **hab_kwargs):
        super().__init__()
        self.use_checkpoint = use_checkpoint
        self.blocks = nn.ModuleList(
            HAB(c, num_heads, window_size, shift=shift if i % 2 else 0, drop_path=drop_path[i], **hab_kwargs)
            for i in range(depth))
        self.overlap_attn = OCAB(c, window_size, overlap_ratio, num_heads, hab_kwargs['qkv_bias'],
                                 hab_kwargs['qk_scale'], hab_kwargs['mlp_ratio'])

    def forward(self, x, rpi_sa, rpi_oca, groups, shifted_groups):
        for blk in self.blocks:
            args = (x, rpi_sa, shifted_groups if blk.shift else groups)
            x = checkpoint(blk, *args, use_reentrant=False) if self.use_checkpoint and self.training else blk(*args)
        return self.overlap_attn(x, rpi_oca)


class SFTB(nn.Module):
    """Swin Fourier transformer block (one stage): ``AttenBlocks`` and the residual connection ``conv``."""

    def __init__(self, c, resi_connection, **kwargs):
        super().__init__()
        self.residual_group = AttenBlocks(c, **kwargs)
        self.conv = {'SFB': SFB, '1conv': lambda c: nn.Conv2d(c, c, 3, padding=1),
                     'identity': lambda c: nn.Identity()}[resi_connection](c)

    def forward(self, x, *window_args):
        return _tokens(self.conv(_conv_view(self.residual_group(x, *window_args)))) + x


# ---------------------------------------------------------------------------------------------- the network
def positive_int(arg, value, least=1):
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ArchOptionError(arg, f'expected an integer >= {least}, got {value!r}')


def check_stages(depths, num_heads, embed_dim):
    """The Swin stages' ``depths`` and ``num_heads`` (SwinFIRSSR, SwinFSR): lists of equal length, positive, each
    head count dividing ``embed_dim``."""
    if not isinstance(depths, (list, tuple)) or not isinstance(num_heads, (list, tuple)) \
            or len(depths) != len(num_heads) or not depths:
        raise ArchOptionError('depths', f'expected lists of equal length for depths and num_heads, got '
                              f'{depths!r} and {num_heads!r}')
    for i, (depth, heads) in enumerate(zip(depths, num_heads)):
        positive_int(f'depths[{i}]', depth)
        positive_int(f'num_heads[{i}]', heads)
        if embed_dim % heads:
            raise ArchOptionError(f'num_heads[{i}]', f'{heads} heads do not divide embed_dim {embed_dim}')


def pixel_shuffle_upsample(num_feat, scale):
    """The Swin nets' upsampler (parameter names ``0``, ``2``, ...): 3x3 conv and PixelShuffle(2) per factor 2 of
    ``scale``, or one PixelShuffle(3) for x3."""
    steps = [2] * int(math.log2(scale)) if scale != 3 else [3]
    return nn.Sequential(*[m for r in steps for m in (nn.Conv2d(num_feat, r * r * num_feat, 3, padding=1),
                                                      nn.PixelShuffle(r))])


def init_swin_weights(m):
    """SwinIR's initialisation, applied to every module: truncated-normal (std 0.02) linear weights, zero biases,
    unit LayerNorms."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


@ARCH_REGISTRY.register()
class SwinFIRSSR(nn.Module):
    """SwinFIRSSR stereo super-resolution network. Arguments are the release's (its option files' ``network_g``
    keys work unchanged), but for the scale, which is ``up_scale`` as in every network here:

        up_scale: up-sampling factor s (a power of 2, or 3); ``upscale``: the release's spelling of it, accepted for
            its option files (giving both is refused).
        in_chans: channels per view (3: RGB, from which the release's mean is subtracted).
        img_size, patch_size: training patch side and patch size (1); blocks shift their windows only when
            img_size / patch_size > window_size (the release's rule).
        embed_dim, depths, num_heads: feature channels, HABs per stage and heads per stage.
        window_size: side of the attention windows; overlap_ratio: how much larger OCAB's key windows are.
        compress_ratio, squeeze_factor, conv_scale: CAB's channel reduction, its channel attention's squeeze and
            the weight of the CAB branch.
        mlp_ratio: hidden width of the MLPs relative to embed_dim.
        qkv_bias, qk_scale: bias of the qkv projections; logit scale (default head_dim ** -0.5).
        drop_rate, attn_drop_rate, drop_path_rate: dropout after projections and MLPs (0 in the release),
            attention dropout (must be 0), stochastic depth rising linearly to drop_path_rate over all HABs
            (the release's default 0.1, which its option files keep).
        ape: absolute position embedding (refused: it fixes the input size; no released model uses it).
        patch_norm: LayerNorm after the first conv.
        use_checkpoint: recompute each HAB in the backward pass (less memory; the release accepts and ignores it).
        img_range: the input is multiplied by it after the mean subtraction.
        upsampler: 'pixelshuffle' (the only one of the released models).
        resi_connection: 'SFB', '1conv' or 'identity'.
    """

    def __init__(self, img_size=64, patch_size=1, in_chans=3, embed_dim=96, depths=(6, 6, 6, 6),
                 num_heads=(6, 6, 6, 6), window_size=7, compress_ratio=3, squeeze_factor=30, conv_scale=0.01,
                 overlap_ratio=0.5, mlp_ratio=4., qkv_bias=True, qk_scale=None, drop_rate=0., attn_drop_rate=0.,
                 drop_path_rate=0.1, ape=False, patch_norm=True, use_checkpoint=False, up_scale=None, img_range=1.,
                 upsampler='pixelshuffle', resi_connection='1conv', upscale=None):
        super().__init__()
        if up_scale is not None and upscale is not None:
            raise ArchOptionError('upscale', f'the release\'s spelling of up_scale: give one of them, got up_scale '
                                  f'{up_scale!r} and upscale {upscale!r}')
        scale_arg, up_scale = ('up_scale', up_scale) if upscale is None else ('upscale', upscale)
        up_scale = 2 if up_scale is None else up_scale  # the release's default
        for arg, value, least in ((scale_arg, up_scale, 1), ('in_chans', in_chans, 1), ('embed_dim', embed_dim, 1),
                                  ('window_size', window_size, 2), ('img_size', img_size, 1),
                                  ('patch_size', patch_size, 1)):
            positive_int(arg, value, least)
        check_stages(depths, num_heads, embed_dim)
        if upsampler != 'pixelshuffle':
            raise ArchOptionError('upsampler', f"expected 'pixelshuffle' (the released models'), got {upsampler!r}")
        if up_scale & (up_scale - 1) and up_scale != 3:
            raise ArchOptionError(scale_arg, f'expected a power of 2 or 3, got {up_scale}')
        if resi_connection not in ('SFB', '1conv', 'identity'):
            raise ArchOptionError('resi_connection', f"expected 'SFB', '1conv' or 'identity', got {resi_connection!r}")
        if ape:
            raise ArchOptionError('ape', 'absolute position embedding fixes the input size; not supported')
        if img_size // patch_size < window_size:
            raise ArchOptionError('img_size', f'img_size / patch_size ({img_size // patch_size}) is smaller than '
                                  f'window_size ({window_size}): the release cannot run this configuration')
        overlap_win = int(window_size * overlap_ratio) + window_size
        if (overlap_win - window_size) % 2:
            raise ArchOptionError('overlap_ratio', f'window_size * overlap_ratio = {overlap_win - window_size} '
                                  'must be even (the overlapping windows are centred)')
        self.up_scale = up_scale
        self.img_range = img_range
        self.window_size = window_size
        # the release shifts windows only when the training patch is larger than a window
        self.shift_size = window_size // 2 if img_size // patch_size > window_size else 0
        self.in_channels = 2 * in_chans
        mean = RGB_MEAN if in_chans == 3 else (0.,) * in_chans
        self.register_buffer('mean', torch.tensor(mean).view(1, in_chans, 1, 1), persistent=False)
        self.register_buffer('relative_position_index_SA', window_relative_index(window_size))
        self.register_buffer('relative_position_index_OCA', overlap_relative_index(window_size, overlap_win))

        num_feat = 64
        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, padding=1)
        self.patch_embed = _TokenEmbed(embed_dim, patch_norm)
        self.pos_drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        dpr = torch.linspace(0, drop_path_rate, sum(depths), device='cpu').tolist()  # the release's rates
        self.layers = nn.ModuleList()
        self.scam_layer = nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            start = sum(depths[:i])
            self.layers.append(SFTB(
                embed_dim, resi_connection, depth=depth, num_heads=heads, window_size=window_size,
                shift=self.shift_size, overlap_ratio=overlap_ratio, drop_path=dpr[start:start + depth],
                use_checkpoint=use_checkpoint, compress_ratio=compress_ratio, squeeze_factor=squeeze_factor,
                conv_scale=conv_scale, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale, drop=drop_rate,
                attn_drop=attn_drop_rate))
            self.scam_layer.append(SwinFIRSCAM(embed_dim))
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, padding=1)
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, padding=1),
                                                  nn.LeakyReLU(inplace=True))
        self.upsample = pixel_shuffle_upsample(num_feat, up_scale)
        self.conv_last = nn.Conv2d(num_feat, in_chans, 3, padding=1)
        self.apply(init_swin_weights)
        # conv weights channels-last in memory (values and names unchanged): the convs see channels-last tokens
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                module.to(memory_format=torch.channels_last)

    def padding(self, h, w):
        """Rows and columns added below and right of an (h, w) input: in eval mode the release's test rule
        (up to the next multiple of window_size strictly above, i.e. 1..window_size more), in training only
        what whole windows need (the release trains on multiples, unpadded)."""
        ws = self.window_size
        if self.training:
            return -h % ws, -w % ws
        return ws - h % ws, ws - w % ws

    def forward(self, inp):
        if inp.dim() != 4 or inp.shape[1] != self.in_channels:
            raise ValueError(f'{type(self).__name__} expects (N, {self.in_channels}, h, w) = left and right views '
                             f'on channels, got {tuple(inp.shape)}')
        n, _, h, w = inp.shape
        x = mirror_pad(inp, *self.padding(h, w))
        x = torch.cat(x.chunk(2, dim=1), dim=0)  # the views as one batch: (2N, in_chans, H, W)
        x = ((x - self.mean) * self.img_range).contiguous(memory_format=torch.channels_last)
        x_first = self.conv_first(x)
        x = self.conv_after_body(_conv_view(self.features(_tokens(x_first)))) + x_first
        x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
        x = x / self.img_range + self.mean
        s = self.up_scale
        return torch.cat(x.chunk(2, dim=0), dim=1)[:, :, :h * s, :w * s].contiguous()

    def features(self, x):
        """Tokens (2N, H, W, C), H and W multiples of window_size -> the same after the stages and ``norm``."""
        _, h, w, _ = x.shape
        groups = shifted_window_groups(h, w, self.window_size, 0, x.device)
        shifted = shifted_window_groups(h, w, self.window_size, self.shift_size, x.device)
        window_args = (self.relative_position_index_SA, self.relative_position_index_OCA, groups, shifted)
        x = self.pos_drop(self.patch_embed(x))
        for layer, scam in zip(self.layers, self.scam_layer):
            x = scam.tokens(layer(x, *window_args))
        return self.norm(x)


@BLOCK_REGISTRY.register()
class SwinHAB(nn.Module):
    """SwinFIRSSR's hybrid attention block as an intra-view block, (N, c, H, W) -> same: mirror padding to whole
    windows, ``HAB`` (window attention of ``num_heads`` heads in ``window_size`` windows, shifted by half a
    window when ``shift``, plus the conv branch), crop. A channel attention hidden width of c // squeeze_factor,
    at least 1."""
    block_kind = 'intra'

    def __init__(self, c, num_heads=6, window_size=8, shift=False, compress_ratio=3, squeeze_factor=30,
                 conv_scale=0.01, mlp_ratio=2.):
        super().__init__()
        positive_int('window_size', window_size, 2)
        if not isinstance(num_heads, int) or num_heads < 1 or c % num_heads:
            raise ValueError(f'num_heads: expected a positive divisor of the channels ({c}), got {num_heads!r}')
        if c < compress_ratio:
            raise ValueError(f'compress_ratio {compress_ratio} leaves no channels of {c}')
        self.window_size = window_size
        self.shift = window_size // 2 if shift else 0
        self.hab = HAB(c, num_heads, window_size, self.shift, compress_ratio, squeeze_factor, conv_scale, mlp_ratio)
        self.register_buffer('rpi', window_relative_index(window_size), persistent=False)

    def forward(self, x):
        h, w = x.shape[-2:]
        ws = self.window_size
        t = _tokens(mirror_pad(x, -h % ws, -w % ws))
        groups = shifted_window_groups(t.shape[1], t.shape[2], ws, self.shift, x.device)
        return _conv_view(self.hab(t, self.rpi, groups))[:, :, :h, :w]
