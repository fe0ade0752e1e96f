"""SwinFSR: SwinIR with rectangular windows, a fast Fourier convolution and stereo cross-attention after every stage.

Chen, Li, Ma, Yang, Li, "SwinFSR: Stereo Image Super-Resolution using SwinIR and Frequency Domain Knowledge", CVPR
Workshops 2023 (NTIRE 2023 stereo SR, track 1); released code: github.com/GoKerrChen/SwinFSR (``swin_cam_ffc.py``,
the network its ``train.py`` and ``inference.py`` build; ``swin_scam_ffc.py``, the same with NAFSSR's plain SCAM).

Input (N, 6, h, w): the left and right LR views concatenated on channels, RGB in [0, 1] (the release reads with PIL).
Output (N, 6, s*h, s*w). Both views go through the same weights as one batch of 2N, padded by reflection to whole
``window_size_h`` x ``window_size_w`` windows; a 3x3 conv (``conv_first``), then ``len(depths)`` stages
(``layers.{i}``), each of them

* the tokens LayerNorm'd by the network's ``patch_embed.norm`` (before every stage, as in the release);
* ``depths[i]`` Swin blocks (``blk.residual_group.blocks.{j}``): window self-attention with a relative position bias,
  the windows of every second block shifted cyclically by half a window, then an MLP;
* a residual connection through ``FFB`` (``blk.conv``: a conv pair beside a spectral transform, fused by a 1x1
  conv), a LayerNorm (``norm``), a 1x1 conv (``conv``);
* a stereo cross-attention along rows (``fusion``): ``SwinFSRSCAM`` (``scam='centred'``, the network of the
  release's ``train.py``: SCAM with a grouped residual block in front of its query projections and mean-centred
  queries) or NAFSSR's ``SCAM`` (``scam='plain'``, ``swin_scam_ffc.py``).

Then ``conv_after_body`` (an ``FFB``) with a residual from the last stage (not from ``conv_first``), a 3x3 conv to 64
channels, pixel shuffle, dropout of whole channels (p = 0.1, in training), a 3x3 conv, plus the mean, plus the
bilinear up-sampling of the input.

Kept from the release because its weights were trained with them: its relative position index multiplies the row
offset by ``wh + ww - 1`` instead of ``2 ww - 1`` (some offsets share a bias), its cyclic shift rolls the columns
by the *row* shift ``wh // 2`` while its attention mask assumes ``ww // 2``, and the left queries of
``SwinFSRSCAM`` are centred over the channels, the right ones over the row. The release also holds parameters its
forward never uses (``conv_feature``, ``conv``, ``norm`` and each stage's ``patch_embed.norm``); they are here too,
with the same names and shapes, as are its buffers (``relative_position_index`` of every block, ``attn_mask`` of
every shifted block, for an ``img_size`` input), so the release's ``state_dict`` loads strictly.

The released size, SwinFSR-L (width 180, 12 stages of 6 blocks, 6 heads, 6 x 15 windows, 30 x 90 training patches,
drop-path 0.2; 26,754,672 parameters at x4), is the zoo card ``SwinFSR-L_x4`` (basicsr/zoo.py):
``build_named('SwinFSR-L', scale)``. ``FFB`` (intra-view) and ``SwinFSRSCAM`` (cross-view) are in BLOCK_REGISTRY for
the NAFSSR skeleton.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from basicsr.models.archs.arch_util import ArchOptionError
from basicsr.models.archs.drop_path import drop_path as stochastic_depth
from basicsr.models.archs.scam import SCAM, explicit_attention_requested, row_cross_attention
from basicsr.models.archs.swinfirssr_arch import (Mlp, check_stages, init_swin_weights, pixel_shuffle_upsample,
                                                   positive_int)
from basicsr.models.archs.tlsc import STEREO_TRAIN_SIZE
from basicsr.utils.registry import ARCH_REGISTRY, BLOCK_REGISTRY

RGB_MEAN = (0.4488, 0.4371, 0.4040)  # the release's (DIV2K) mean, subtracted from 3-channel input
SHIFT_MASK = -100.0  # the release's logit for token pairs from different regions of a shifted window


# ---------------------------------------------------------------------------------------------- window helpers
def relative_index(wh, ww):
    """(wh*ww, wh*ww) index into the (2wh-1)(2ww-1) bias table, as the release computes it: row offset times
    ``wh + ww - 1`` plus column offset (not ``2 ww - 1``; offsets that collide share a bias)."""
    coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing='ij')).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :]
    return (rel[0] + wh - 1) * (wh + ww - 1) + rel[1] + ww - 1


def shifted_window_mask(h, w, wh, ww, sh, sw, device=None):
    """(windows, wh*ww, wh*ww) additive mask of the shifted windows of an (h, w) map: 0 between tokens of the same
    region of the cyclically shifted map, ``SHIFT_MASK`` otherwise; regions cut at ``wh``/``sh`` rows and
    ``ww``/``sw`` columns from the end (the release's ``calculate_mask``)."""
    def labels(size, win, shift):
        lab = torch.zeros(size, dtype=torch.long, device=device)
        lab[size - win:size - shift] = 1
        lab[size - shift:] = 2
        return lab
    region = labels(h, wh, sh)[:, None] * 3 + labels(w, ww, sw)[None, :]
    region = region.view(h // wh, wh, w // ww, ww).permute(0, 2, 1, 3).reshape(-1, wh * ww)
    return torch.zeros(region.shape + (wh * ww,), device=device).masked_fill_(
        region[:, None, :] != region[:, :, None], SHIFT_MASK)


# window-attention scores computed at once without autograd (1 MiB in float32): cache-sized, and far below glibc's
# mmap threshold, so their temporaries are reused heap pages
ATTENTION_CHUNK_ELEMENTS = 1 << 18


def window_attention(q, k, v, bias, scale):
    """softmax(q k^T * scale + bias) v for (B, windows, heads, n, d) inputs and ``bias`` ((windows,) heads, n, n):
    the explicit products, as the release computes them; without autograd over a few windows at a time
    (``ATTENTION_CHUNK_ELEMENTS``; the windows are independent). Faster on the CPU than torch's fused kernel with
    a mask (SwinFSR with 4 stages at 30x90, one thread, 6 interleaved runs: 2347 against 2509 ms)."""
    if explicit_attention_requested() or (torch.is_grad_enabled() and q.requires_grad):
        return torch.matmul(torch.softmax(torch.matmul(q * scale, k.transpose(-2, -1)) + bias, dim=-1), v)
    b, nw, heads, n, _ = q.shape
    step = max(1, ATTENTION_CHUNK_ELEMENTS // (b * heads * n * n))
    q, k, v = (t.transpose(0, 1) for t in (q, k, v))  # windows first: contiguous chunks for a window-major input
    out = v.new_empty(v.shape)  # each chunk's products written into it (no concatenation)
    for i in range(0, nw, step):
        w = slice(i, i + step)
        scores = torch.matmul(q[w] * scale, k[w].transpose(-2, -1))
        scores.add_((bias[w, None] if bias.dim() == 4 else bias).to(scores.dtype))
        torch.matmul(torch.softmax(scores, dim=-1).to(out.dtype), v[w], out=out[w])  # (autocast: float32 softmax)
    return out.transpose(0, 1)


def reflect_pad(x, pad_h, pad_w):
    """Pad (N, C, H, W) at the bottom and right by reflection (the release's ``F.pad(..., 'reflect')``), reflected
    again as often as needed where the padding reaches the size (numpy's ``reflect``; the release fails there)."""
    if (pad_h and x.shape[2] < 2) or (pad_w and x.shape[3] < 2):
        raise ValueError(f'SwinFSR needs at least 2 rows and 2 columns per view, got {tuple(x.shape[-2:])}')
    for dim, pad in ((2, pad_h), (3, pad_w)):
        while pad:
            step = min(pad, x.shape[dim] - 1)
            x = F.pad(x, (0, step, 0, 0) if dim == 3 else (0, 0, 0, step), mode='reflect')
            pad -= step
    return x


def drop_path(x, rate, training):
    """Per-sample stochastic depth drawn as the release draws it (timm's ``DropPath``: ``bernoulli_``)."""
    return stochastic_depth(x, rate, training, draw='bernoulli')


def _image(tokens, h, w):
    """(B, h*w, C) tokens -> (B, C, h, w)."""
    return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, h, w)


def _inference(module, x):
    """True when ``module`` runs without training and without autograd through ``x`` (a pure forward)."""
    return not module.training and not (torch.is_grad_enabled() and x.requires_grad)


def _tokens(x):
    """(B, C, h, w) -> (B, h*w, C) tokens."""
    return x.flatten(2).transpose(1, 2)


# ---------------------------------------------------------------------------------------------- blocks
class WindowAttention(nn.Module):
    """The parameters of the window attention (``qkv``, ``proj``, ``relative_position_bias_table``) and its
    ``relative_position_index``; ``SwinBlock`` does the windowing."""

    def __init__(self, c, wh, ww, num_heads, qkv_bias=True, qk_scale=None, proj_drop=0.):
        super().__init__()
        self.num_heads = num_heads
        self.scale = qk_scale or (c // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * wh - 1) * (2 * ww - 1), num_heads))
        self.register_buffer('relative_position_index', relative_index(wh, ww))
        self.qkv = nn.Linear(c, 3 * c, bias=qkv_bias)
        self.proj = nn.Linear(c, c)
        self.proj_drop = nn.Dropout(proj_drop) if proj_drop > 0 else nn.Identity()
        nn.init.trunc_normal_(self.relative_position_bias_table, std=.02)

    def bias(self):
        """(heads, n, n) relative position bias."""
        n = self.relative_position_index.shape[0]
        return self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1).permute(2, 0, 1)


class SwinBlock(nn.Module):
    """Swin transformer block on tokens (B, h*w, C), h and w multiples of the window (wh, ww):
    ``x + attn(norm1(x))``, then ``+ mlp(norm2(.))``. With ``shift``, the map is rolled by (-wh//2, -wh//2) before
    the windows (the release's roll, columns by the row shift) and the mask cuts regions at (wh//2, ww//2)."""

    def __init__(self, c, num_heads, wh, ww, shift, img_size, mlp_ratio=4., qkv_bias=True, qk_scale=None, drop=0.,
                 drop_path=0.):
        super().__init__()
        self.window = (wh, ww)
        self.shift = (wh // 2, ww // 2) if shift else (0, 0)
        self.drop_path = drop_path
        self.norm1 = nn.LayerNorm(c)
        self.attn = WindowAttention(c, wh, ww, num_heads, qkv_bias, qk_scale, drop)
        self.norm2 = nn.LayerNorm(c)
        self.mlp = Mlp(c, int(c * mlp_ratio), drop)
        if self.shift[0]:  # in the release's checkpoints; the forward recomputes the same values for its size
            self.register_buffer('attn_mask', shifted_window_mask(*img_size, wh, ww, *self.shift))

    def forward(self, x, hw, mask):
        """``mask``: ``shifted_window_mask`` for this size (used by shifted blocks only)."""
        (h, w), (wh, ww), (sh, _) = hw, self.window, self.shift
        b, _, c = x.shape
        heads = self.attn.num_heads
        y = self.norm1(x).view(b, h, w, c)
        if sh:
            y = torch.roll(y, (-sh, -sh), dims=(1, 2))
        # the tokens window by window (windows, b, n) before the projection, then (3, windows, b, heads, n, d) in
        # memory, seen as (3, b, windows, ...): two copies of few dimensions (one 8-dimensional copy of the
        # projected map was three times slower) and window_attention's chunks of windows are contiguous
        n, d = wh * ww, c // heads
        y = y.view(b, h // wh, wh, w // ww, ww, c).permute(1, 3, 0, 2, 4, 5).reshape(-1, c)
        qkv = self.attn.qkv(y).view(-1, b, n, 3, heads, d).permute(3, 0, 1, 4, 2, 5).contiguous()
        q, k, v = qkv.transpose(1, 2)
        bias = self.attn.bias()
        out = window_attention(q, k, v, bias + mask[:, None] if sh else bias, self.attn.scale)
        y = out.view(b, h // wh, w // ww, heads, wh, ww, -1).permute(0, 1, 4, 2, 5, 3, 6).reshape(b, h, w, c)
        if sh:
            y = torch.roll(y, (sh, sh), dims=(1, 2))
        y = self.attn.proj_drop(self.attn.proj(y.view(b, h * w, c)))
        x = x + drop_path(y, self.drop_path, self.training)
        if not _inference(self, x):
            return x + drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)
        # inference: the same operations with the GELU and the residual in place (x is this block's own sum), so
        # the two views' (2N, h*w, 2C) hidden map is not allocated twice (fresh pages cost more than the GELU)
        mlp = self.mlp
        return x.add_(mlp.drop(mlp.fc2(mlp.drop(torch._C._nn.gelu_(mlp.fc1(self.norm2(x)))))))


class SpectralUnit(nn.Module):
    """Fast Fourier convolution's spectral unit, (N, c, H, W) -> same: orthonormal 2-D real FFT, a bias-free 1x1
    conv over the real parts of all channels followed by their imaginary parts, LeakyReLU(0.2), inverse FFT."""

    def __init__(self, c):
        super().__init__()
        self.conv_layer = nn.Sequential(nn.Conv2d(2 * c, 2 * c, 1, bias=False), nn.LeakyReLU(0.2, inplace=True))

    def forward(self, x):
        if torch.is_autocast_enabled(x.device.type):  # the FFT, its conv and torch.complex in float32 (as SwinFIR's)
            with torch.autocast(x.device.type, enabled=False):
                return self.forward(x.float()).to(x.dtype)
        h, w = x.shape[-2:]
        spec = torch.fft.rfft2(x, norm='ortho')
        re, im = self.conv_layer(torch.cat([spec.real, spec.imag], dim=1)).chunk(2, dim=1)
        return torch.fft.irfft2(torch.complex(re, im), s=(h, w), norm='ortho')


class SpectralTransform(nn.Module):
    """Bias-free 1x1 conv to c/4 with LeakyReLU(0.2), plus its ``SpectralUnit`` (``fu``), bias-free 1x1 conv back."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(c, c // 4, 1, bias=False), nn.LeakyReLU(0.2, inplace=True))
        self.fu = SpectralUnit(c // 4)
        self.conv3 = nn.Conv2d(c // 4, c, 1, bias=False)

    def forward(self, x):
        x = self.conv1(x)
        return self.conv3(x + self.fu(x))


@BLOCK_REGISTRY.register()
class FFB(nn.Module):
    """SwinFSR's fast Fourier block, (N, c, H, W) -> same: ``leftbranch`` (3x3 conv to c/4, LeakyReLU(0.2), 3x3
    conv back) plus the input, beside ``rightbranch`` (a ``SpectralTransform``), concatenated and fused by a 1x1
    conv (``last_conv``). No outer residual (SwinFSR adds it around the stage). c: a multiple of 4."""
    block_kind = 'intra'

    def __init__(self, c):
        super().__init__()
        if c < 4 or c % 4:
            raise ValueError(f'FFB: channels must be a multiple of 4 (its branches use c / 4), got {c}')
        self.leftbranch = nn.Sequential(nn.Conv2d(c, c // 4, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
                                        nn.Conv2d(c // 4, c, 3, padding=1))
        self.rightbranch = SpectralTransform(c)
        self.last_conv = nn.Conv2d(2 * c, c, 1)

    def forward(self, x):
        return self.last_conv(torch.cat([self.leftbranch(x) + x, self.rightbranch(x)], dim=1))


class GroupedResB(nn.Module):
    """3x3 conv in 4 groups, LeakyReLU(0.1), 3x3 conv in 4 groups, plus the input."""

    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=4), nn.LeakyReLU(0.1, inplace=True),
                                  nn.Conv2d(c, c, 3, padding=1, groups=4))

    def forward(self, x):
        return self.body(x) + x


@BLOCK_REGISTRY.register()
class SwinFSRSCAM(SCAM):
    """SCAM (``scam.py``) whose query projections see the LayerNorm'd views through one shared ``GroupedResB``
    (``rb``), with the left queries centred over the channels and the right ones over each row before the
    logits. (x_l, x_r), each (N, c, H, W) -> the same; SCAM's names plus ``rb.body.{0,2}``. c: a multiple of 4."""
    block_kind = 'cross'

    def __init__(self, c):
        if c < 4 or c % 4:
            raise ValueError(f'SwinFSRSCAM: channels must be a multiple of 4 (grouped convs), got {c}')
        super().__init__(c)
        self.rb = GroupedResB(c)

    def attend(self, x_l, x_r):
        q_l = self.l_proj1(self.rb(self.norm_l(x_l)))
        q_r = self.r_proj1(self.rb(self.norm_r(x_r)))
        return row_cross_attention(q_l - q_l.mean(dim=1, keepdim=True), q_r - q_r.mean(dim=3, keepdim=True),
                                   self.l_proj2(x_l), self.r_proj2(x_r), self.scale)


class _TokenNorm(nn.Module):
    """The release's ``PatchEmbed`` with patch size 1: only its LayerNorm (``norm``) over the tokens."""

    def __init__(self, c, norm=True):
        super().__init__()
        self.norm = nn.LayerNorm(c) if norm else nn.Identity()

    def forward(self, x):
        return self.norm(x)


class _ResidualGroup(nn.Module):
    """The Swin blocks of a stage (``blocks``), every second one shifted."""

    def __init__(self, c, depth, drop_path, use_checkpoint, **block_kwargs):
        super().__init__()
        self.use_checkpoint = use_checkpoint
        self.blocks = nn.ModuleList(SwinBlock(c, shift=bool(i % 2), drop_path=drop_path[i], **block_kwargs)
                                    for i in range(depth))

    def forward(self, x, hw, mask):
        if not _inference(self, x):
            for blk in self.blocks:
                x = checkpoint(blk, x, hw, mask, use_reentrant=False) if self.use_checkpoint and self.training \
                    else blk(x, hw, mask)
            return x
        # inference: the blocks see the left views, then the right ones (the release's batches; the views meet in
        # the stage's cross-view attention only), so their largest temporaries are half the size
        out, n = torch.empty_like(x), x.shape[0] // 2
        for views in (slice(0, n), slice(n, None)):
            y = x[views]
            for blk in self.blocks:
                y = blk(y, hw, mask)
            out[views] = y
        return out


class _RSTB(nn.Module):
    """Residual Swin transformer block: ``residual_group``, then ``FFB`` (``conv``) on the image, plus the input."""

    def __init__(self, c, **kwargs):
        super().__init__()
        self.residual_group = _ResidualGroup(c, **kwargs)
        self.conv = FFB(c)

    def forward(self, x, hw, mask):
        return _tokens(self.conv(_image(self.residual_group(x, hw, mask), *hw))) + x


class SwinFSRStage(nn.Module):
    """One stage on tokens (2N, h*w, C), left views first -> the images (2N, C, h, w): ``blk`` (RSTB), ``norm``,
    a 1x1 conv (``conv``) and the cross-view attention ``fusion``. ``patch_embed.norm``: unused (the release's)."""

    def __init__(self, c, scam, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 1)
        self.patch_embed = _TokenNorm(c)
        self.norm = nn.LayerNorm(c)
        self.blk = _RSTB(c, **kwargs)
        self.fusion = SwinFSRSCAM(c) if scam == 'centred' else SCAM(c)

    def forward(self, x, hw, mask):
        x = self.conv(_image(self.norm(self.blk(x, hw, mask)), *hw))
        return torch.cat(self.fusion(*x.chunk(2, dim=0)), dim=0)


# ---------------------------------------------------------------------------------------------- the network
@ARCH_REGISTRY.register()
class SwinFSR(nn.Module):
    """SwinFSR stereo super-resolution network. Arguments are the release's ``SwinIR`` arguments (as its
    ``train.py`` passes them), plus ``scam``, but for the scale, which is ``up_scale`` as in every network here:

        up_scale: up-sampling factor s (a power of 2, or 3; default 4); ``upscale``: the release's spelling of it
            (giving both is refused).
        img_size: (H, W) of the training patches; the ``attn_mask`` buffers are made for it, and it must exceed
            the window in both dimensions (else the release silently uses one window of img_size, which its own
            padding does not support).
        patch_size: 1 (the release's only working value).
        in_chans: channels per view (3: RGB, from which the release's mean is subtracted).
        embed_dim, depths, num_heads: feature channels (a multiple of 4), Swin blocks per stage, heads per stage.
        window_size_h, window_size_w: window rows and columns.
        mlp_ratio: hidden width of the MLPs relative to embed_dim.
        qkv_bias, qk_scale: bias of the qkv projections; logit scale (default head_dim ** -0.5).
        drop_rate: dropout after the attention projections and MLPs (0 in the release); drop_path_rate:
            stochastic depth rising linearly to it over all blocks (0.2 in the release's train.py).
        patch_norm: LayerNorm of the tokens before every stage.
        use_checkpoint: recompute each Swin block in the backward pass (less memory, same results).
        img_range: the input is multiplied by it after the mean subtraction.
        upsampler: 'pixelshuffle' (the release's); resi_connection: '1conv' (an FFB, the release's).
        scam: 'centred' (``SwinFSRSCAM``, swin_cam_ffc.py, the network of the release's train.py) or 'plain'
            (NAFSSR's ``SCAM``, swin_scam_ffc.py).
    """

    def __init__(self, up_scale=None, img_size=STEREO_TRAIN_SIZE[2:], patch_size=1, in_chans=3, embed_dim=180,
                 depths=(6,) * 12, num_heads=(6,) * 12, window_size_h=6, window_size_w=15, mlp_ratio=2., qkv_bias=True,
                 qk_scale=None, drop_rate=0., drop_path_rate=0.2, patch_norm=True, use_checkpoint=False,
                 img_range=1., upsampler='pixelshuffle', resi_connection='1conv', scam='centred', upscale=None):
        super().__init__()
        if up_scale is not None and upscale is not None:
            raise ArchOptionError('upscale', f"the release's spelling of up_scale: give one of them, got up_scale "
                                  f'{up_scale!r} and upscale {upscale!r}')
        scale_arg, upscale = ('up_scale', up_scale) if upscale is None else ('upscale', upscale)
        upscale = 4 if upscale is None else upscale  # the scale of the release's train.py
        for arg, value, least in ((scale_arg, upscale, 1), ('in_chans', in_chans, 1), ('embed_dim', embed_dim, 4),
                                  ('window_size_h', window_size_h, 2), ('window_size_w', window_size_w, 2)):
            positive_int(arg, value, least)
        if embed_dim % 4:
            raise ArchOptionError('embed_dim', f'expected a multiple of 4 (FFB and the grouped convs), got {embed_dim}')
        if patch_size != 1:
            raise ArchOptionError('patch_size', f'expected 1 (the release works with no other), got {patch_size!r}')
        if (not isinstance(img_size, (list, tuple)) or len(img_size) != 2
                or not all(isinstance(v, int) and v > 0 for v in img_size)):
            raise ArchOptionError('img_size', f'expected [H, W] of the training patches, got {img_size!r}')
        if img_size[0] <= window_size_h or img_size[1] <= window_size_w:
            raise ArchOptionError('img_size', f'{list(img_size)} must exceed the window ({window_size_h} x '
                                  f'{window_size_w}) in both dimensions')
        if img_size[0] % window_size_h or img_size[1] % window_size_w:
            raise ArchOptionError('img_size', f'{list(img_size)} must be whole windows of {window_size_h} x '
                                  f'{window_size_w}')
        check_stages(depths, num_heads, embed_dim)
        if upsampler != 'pixelshuffle':
            raise ArchOptionError('upsampler', f"expected 'pixelshuffle' (the release's), got {upsampler!r}")
        if resi_connection != '1conv':
            raise ArchOptionError('resi_connection', f"expected '1conv' (an FFB, the release's), got "
                                  f'{resi_connection!r}')
        if upscale & (upscale - 1) and upscale != 3:
            raise ArchOptionError(scale_arg, f'expected a power of 2 or 3, got {upscale}')
        if scam not in ('centred', 'plain'):
            raise ArchOptionError('scam', f"expected 'centred' or 'plain', got {scam!r}")
        self.upscale = upscale
        self.img_range = img_range
        self.img_size = tuple(img_size)
        self.window = (window_size_h, window_size_w)
        self.shift = (window_size_h // 2, window_size_w // 2)
        self.in_channels = 2 * in_chans
        mean = RGB_MEAN if in_chans == 3 else (0.,) * in_chans
        self.register_buffer('mean', torch.tensor(mean).view(1, in_chans, 1, 1), persistent=False)

        num_feat = 64
        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, padding=1)
        self.conv_feature = nn.Conv2d(2 * embed_dim, embed_dim, 3, padding=1)  # unused (the release's)
        self.conv = nn.Conv2d(embed_dim, embed_dim, 1)  # unused (the release's)
        self.patch_embed = _TokenNorm(embed_dim, patch_norm)
        self.pos_drop = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        dpr = torch.linspace(0, drop_path_rate, sum(depths), device='cpu').tolist()  # the release's rates
        self.layers = nn.ModuleList(
            SwinFSRStage(embed_dim, scam, depth=depth, num_heads=heads, wh=window_size_h, ww=window_size_w,
                         img_size=self.img_size, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale,
                         drop=drop_rate, drop_path=dpr[sum(depths[:i]):sum(depths[:i + 1])],
                         use_checkpoint=use_checkpoint)
            for i, (depth, heads) in enumerate(zip(depths, num_heads)))
        self.norm = nn.LayerNorm(embed_dim)  # unused (the release's)
        self.conv_after_body = FFB(embed_dim)
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, padding=1),
                                                  nn.LeakyReLU(inplace=True))
        self.upsample = pixel_shuffle_upsample(num_feat, upscale)
        self.last_drop = nn.Dropout2d(p=0.1)
        self.conv_last = nn.Conv2d(num_feat, in_chans, 3, padding=1)
        self.apply(init_swin_weights)

    def forward(self, inp):
        if inp.dim() != 4 or inp.shape[1] != self.in_channels:
            raise ValueError(f'{type(self).__name__} expects (N, {self.in_channels}, h, w) = left and right views '
                             f'on channels, got {tuple(inp.shape)}')
        h, w = inp.shape[-2:]
        s = self.upscale
        inp_hr = F.interpolate(inp, scale_factor=s, mode='bilinear', align_corners=False)
        (wh, ww) = self.window
        x = torch.cat(inp.chunk(2, dim=1), dim=0)  # the views as one batch: (2N, in_chans, h, w)
        x = reflect_pad(x, -h % wh, -w % ww)
        x = self.conv_first((x - self.mean) * self.img_range)
        hw = tuple(x.shape[-2:])
        mask = shifted_window_mask(*hw, *self.window, self.shift[0], self.shift[1], device=x.device).to(x.dtype)
        for layer in self.layers:
            x = layer(self.pos_drop(self.patch_embed(_tokens(x))), hw, mask)
        x = self.conv_after_body(x) + x
        if _inference(self, x):  # the up-sampler one view at a time: its high-resolution maps are the largest
            out = torch.empty_like(inp_hr)
            for i, v in enumerate(x.chunk(2, dim=0)):
                v = self.conv_last(self.upsample(self.conv_before_upsample(v))) / self.img_range + self.mean
                views = slice(i * inp.shape[1] // 2, (i + 1) * inp.shape[1] // 2)
                torch.add(v[:, :, :h * s, :w * s], inp_hr[:, views], out=out[:, views])
            return out
        x = self.upsample(self.conv_before_upsample(x))
        # whole channels dropped in training, each view on its own (the release's order of random draws)
        x = self.conv_last(torch.cat([self.last_drop(v) for v in x.chunk(2, dim=0)], dim=0))
        x = x / self.img_range + self.mean
        return torch.cat(x.chunk(2, dim=0), dim=1)[:, :, :h * s, :w * s] + inp_hr
