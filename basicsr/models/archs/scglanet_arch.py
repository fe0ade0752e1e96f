"""SCGLANet: the Stereo Cross Global Learnable Attention network.

Zhou, Xue, Deng, Nie, Zhang, Pu, Gao, Lan, Tong, "Stereo Cross Global Learnable Attention Module for Stereo Image
Super-Resolution", CVPR Workshops 2023 (NTIRE 2023 stereo SR, all three tracks); extended as "RealSCGLAGAN" (ESWA
2024, arXiv:2312.07934). Released code: github.com/fzuzyb/SCGLANet (``basicsr/archs/scglanet_arch.py``).

NAFSSR's skeleton (``nafssr_arch.py``): input (N, 6, h, w), the left and right LR views on channels in [0, 1]; a 3x3
conv per view (``intro``), five groups of stereo blocks (``body1`` .. ``body5``, ``num_blks[i]`` blocks each: a
NAFBlock per view, then ``SCATM``, SCAM with a temperature), a global cross-view attention (``SCGLA1`` ..
``SCGLA4``) between consecutive groups, a 3x3 conv with PixelShuffle (``up``) plus the bilinear up-sampling of the
input; output (N, 6, s*h, s*w). Both blocks are registered in BLOCK_REGISTRY (``cross_block: SCATM`` or ``SCGLA``
in NAFSSR).

``SCGLA`` lets every pixel of both views attend to the pixels of both views whose features hash to the same bucket
(super-bit locality-sensitive hashing of a 1/4-width embedding by random orthogonal rotations, ``n_hashes`` rounds),
in chunks of ``chunk_size`` sorted tokens that also see their two neighbouring chunks; the logits are the dot
products with the L2-normalised keys plus a learnt score of each key for each slot of the chunk (``fc``); the rounds
are combined by the softmax of their log-sum-exp. As in the release, the rotations are drawn from torch's default
(CPU) generator at every forward, so two forwards of the same input differ slightly unless the generator is seeded
(the release's test script seeds it with ``manual_seed``).

Parameter names and shapes are the release's (``intro.*``, ``body{g}.{i}.module.blk.*`` (NAFBlock),
``body{g}.{i}.module.fusion.*`` (SCATM), ``SCGLA{g}.0.{conv_match, conv_assembly, conv_assembly_fc, fc.0, fc.2}``,
``up.0.*``), so its ``{'params': ...}`` checkpoints load with ``strict=True``.
"""
import torch
import torch.nn.functional as F
from torch import nn

from basicsr.models.archs.arch_util import ArchOptionError
from basicsr.models.archs.nafnet_arch import NAFBlock
from basicsr.models.archs.drop_path import DropPath
from basicsr.models.archs.nafssr_arch import StereoBlock, stereo_forward
from basicsr.models.archs.scam import SCAM
from basicsr.models.archs.tlsc import (STEREO_TRAIN_SIZE, check_train_size, convert_global_pools, fast_max_reduction,
                                      tlsc_kernel_size)
from basicsr.utils.registry import ARCH_REGISTRY, BLOCK_REGISTRY

MAX_HASH_BUCKETS = 128  # the release's cap on the buckets per hashing round


@BLOCK_REGISTRY.register()
class SCATM(SCAM):
    """Stereo cross-attention with temperature: SCAM (``scam.py``) with its logits multiplied by ``temperature``
    (the release's option files use 2; 1 is SCAM). (x_l, x_r), each (N, c, H, W) -> the same; SCAM's names."""
    block_kind = 'cross'

    def __init__(self, c, temperature=1.5):
        super().__init__(c)
        if not temperature > 0:
            raise ValueError(f'temperature: expected a positive number, got {temperature!r}')
        self.temperature = temperature
        self.scale = c ** -0.5 * temperature

    def extra_repr(self):
        return f'temperature={self.temperature}'


def _with_neighbours(chunks, dim):
    """Each chunk followed by the chunk before it and the chunk after it (cyclically), along ``dim`` + 1."""
    return torch.cat([chunks, chunks.roll(1, dim), chunks.roll(-1, dim)], dim=dim + 1)


@BLOCK_REGISTRY.register()
class SCGLA(nn.Module):
    """Stereo cross global learnable attention: (x_l, x_r), each (N, c, H, W) -> the same (module docstring).

    Args:
        c: channels (a multiple of ``reduction``).
        chunk_size: tokens per attention chunk; also the output width of ``fc`` (one learnt score per chunk slot).
        n_hashes: hashing rounds.
        reduction: the hashing embedding has c / reduction channels.
        k_size: kernel of the three embedding convs (odd).
        res_scale: factor of the attention's output before it is added to the input.
    """
    block_kind = 'cross'

    def __init__(self, c, chunk_size=144, n_hashes=4, reduction=4, k_size=3, res_scale=1.):
        super().__init__()
        for arg, value in (('chunk_size', chunk_size), ('n_hashes', n_hashes), ('reduction', reduction),
                           ('k_size', k_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'{arg}: expected an integer >= 1, got {value!r}')
        if c % reduction:
            raise ValueError(f'SCGLA: channels ({c}) must be a multiple of reduction ({reduction})')
        if k_size % 2 == 0:
            raise ValueError(f'k_size: expected an odd kernel size, got {k_size}')
        self.chunk_size = chunk_size
        self.n_hashes = n_hashes
        self.res_scale = res_scale
        self.conv_match = nn.Conv2d(c, c // reduction, k_size, padding=k_size // 2, bias=False)
        self.conv_assembly = nn.Conv2d(c, c, k_size, padding=k_size // 2, bias=False)
        self.conv_assembly_fc = nn.Conv2d(c, c, k_size, padding=k_size // 2, bias=False)
        self.fc = nn.Sequential(nn.Linear(c, chunk_size), nn.ReLU(inplace=True), nn.Linear(chunk_size, chunk_size))

    def extra_repr(self):
        return f'chunk_size={self.chunk_size}, n_hashes={self.n_hashes}, res_scale={self.res_scale}'

    def hash_buckets(self, tokens):
        """Buckets per round for ``tokens`` tokens (both views): about one per chunk, even, at most 128."""
        chunks = tokens // self.chunk_size
        if chunks == 0:
            raise ValueError(f'SCGLA needs at least chunk_size ({self.chunk_size}) tokens in the two views together, '
                             f'got {tokens}')
        return min(chunks + chunks % 2, MAX_HASH_BUCKETS)

    def hash_codes(self, match):
        """Bucket of every token in every round, offset by round: (N, n_hashes * L) from ``match`` (N, L, c_m).

        The rotations are ``n_hashes`` random orthogonal (c_m, buckets) matrices drawn with
        ``nn.init.orthogonal_`` from torch's default generator in the default dtype, in the release's order.
        """
        n, length, _ = match.shape
        buckets = self.hash_buckets(length)
        rotations = torch.cat([nn.init.orthogonal_(torch.empty(match.shape[-1], buckets))
                               for _ in range(self.n_hashes)], dim=-1).to(match)
        codes = torch.matmul(match, rotations).view(n, length, self.n_hashes, buckets).argmax(dim=-1)
        codes = codes + torch.arange(self.n_hashes, device=match.device) * buckets
        return codes.transpose(1, 2).reshape(n, -1)

    def forward(self, x_l, x_r):
        n, c, h, w = x_l.shape
        c_m = self.conv_match.out_channels
        weight = torch.cat([self.conv_match.weight, self.conv_assembly.weight, self.conv_assembly_fc.weight])
        # the three embeddings of both views in one conv; tokens (N, 2HW, c_m + 2c), left view first, row-major
        emb = F.conv2d(torch.cat([x_l, x_r]), weight, padding=self.conv_match.padding)
        emb = emb.permute(0, 2, 3, 1).reshape(2, n, h * w, -1).transpose(0, 1).reshape(n, 2 * h * w, -1)
        length = emb.shape[1]
        with torch.no_grad():
            _, order = self.hash_codes(emb[..., :c_m]).sort(dim=-1)
            undo = torch.empty_like(order).scatter_(
                1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
        # tokens sorted by bucket, round after round: (N, n_hashes, L, c_m + 2c)
        emb = emb.gather(1, (order % length)[..., None].expand(-1, -1, emb.shape[-1]))
        emb = emb.view(n, self.n_hashes, length, -1)
        padding = -length % self.chunk_size
        if padding:  # the last chunk of each round is filled up with the round's last tokens again
            emb = torch.cat([emb, emb[:, :, length - padding:]], dim=2)
        emb = emb.view(n, self.n_hashes, -1, self.chunk_size, emb.shape[-1])  # N, hashes, chunks, chunk, channels
        query, value, learnt = emb.split([c_m, c, c], dim=-1)
        key = _with_neighbours(F.normalize(query, p=2, dim=-1, eps=5e-5), 2)
        # fc scores every key for every query slot of its chunk; it acts per key, so on the chunks before neighbours
        learnt = _with_neighbours(self.fc(learnt), 2).transpose(-1, -2)
        logits = torch.matmul(query, key.transpose(-1, -2)) + learnt  # N, hashes, chunks, chunk, 3 chunk
        log_norm = torch.logsumexp(logits, dim=-1, keepdim=True)
        out = torch.matmul(torch.exp(logits - log_norm), _with_neighbours(value, 2))
        out = out.reshape(n, self.n_hashes, -1, c)[:, :, :length]
        log_norm = log_norm.reshape(n, self.n_hashes, -1)[:, :, :length]
        # back to token order, then the rounds weighted by how much each one's chunk matched
        out = out.reshape(n, -1, c).gather(1, undo[..., None].expand(-1, -1, c)).view(n, self.n_hashes, length, c)
        log_norm = log_norm.reshape(n, -1).gather(1, undo).view(n, self.n_hashes, length, 1)
        out = (out * torch.softmax(log_norm, dim=1)).sum(dim=1)  # N, 2HW, c
        out_l, out_r = (o.view(n, h, w, c).permute(0, 3, 1, 2) for o in out.split(h * w, dim=1))
        return x_l + out_l * self.res_scale, x_r + out_r * self.res_scale


@ARCH_REGISTRY.register()
class SCGLANet(nn.Module):
    """SCGLANet stereo super-resolution network (module docstring).

    Args (the release's option keys, so its ``network_g`` mappings work unchanged, plus ``channels_last``):
        up_scale: up-sampling factor s.
        width: channels of the features (a multiple of 4, SCGLA's reduction).
        num_blks: stereo blocks in each of the five groups.
        chunk_size: SCGLA's chunk (the release's option files leave the default, 144).
        drop_path_rate: probability of skipping a whole stereo block in training.
        drop_out_rate: dropout inside the NAFBlocks.
        train_size: (N, 6, H, W) of the training input; TLSC windows of the channel attention are 1.5x (H, W).
        fast_imp: the release's approximate fast TLSC pooling.
        fusion_from, fusion_to: SCATM follows blocks fusion_from..fusion_to of each group (inclusive; the index
            restarts in every group, as in the release).
        temperature: SCATM's temperature.
        channels_last: features channels-last in memory (same results, faster; names and values unchanged).
    """

    def __init__(self, up_scale=4, width=48, num_blks=(16, 16, 32, 32, 32), chunk_size=144, drop_path_rate=0.,
                 drop_out_rate=0., train_size=STEREO_TRAIN_SIZE, fast_imp=False, fusion_from=-1, fusion_to=1000,
                 temperature=1.5, channels_last=True):
        super().__init__()
        img_channel = 3
        for arg, value in (('up_scale', up_scale), ('width', width)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ArchOptionError(arg, f'expected an integer >= 1, got {value!r}')
        if width % 4:
            raise ArchOptionError('width', f'expected a multiple of 4 (SCGLA embeds width / 4 channels), got {width}')
        if (not isinstance(num_blks, (list, tuple)) or len(num_blks) != 5
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in num_blks)):
            raise ArchOptionError('num_blks', f'expected blocks per group, 5 integers >= 0, got {num_blks!r}')
        if not 0 <= drop_path_rate < 1:
            raise ArchOptionError('drop_path_rate', f'expected a probability in [0, 1), got {drop_path_rate!r}')
        if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
            raise ArchOptionError('chunk_size', f'expected an integer >= 1, got {chunk_size!r}')
        if not temperature > 0:
            raise ArchOptionError('temperature', f'expected a positive number, got {temperature!r}')
        train_size = check_train_size(train_size, 2 * img_channel)

        self.up_scale = up_scale
        self.channels_last = bool(channels_last)
        self.in_channels = 2 * img_channel
        self.train_size = train_size
        self.num_blks = tuple(num_blks)
        self.intro = nn.Conv2d(img_channel, width, 3, padding=1)
        for g, blocks in enumerate(num_blks, start=1):
            setattr(self, f'body{g}', nn.ModuleList(
                DropPath(drop_path_rate, StereoBlock(
                    NAFBlock(width, drop_out_rate=drop_out_rate),
                    SCATM(width, temperature) if fusion_from <= i <= fusion_to else None))
                for i in range(blocks)))
            if g < len(num_blks):
                setattr(self, f'SCGLA{g}', nn.ModuleList([SCGLA(width, chunk_size=chunk_size)]))
        self.up = nn.Sequential(nn.Conv2d(width, img_channel * up_scale ** 2, 3, padding=1),
                                nn.PixelShuffle(up_scale))
        train_hw = train_size[-2:]
        convert_global_pools(self, tlsc_kernel_size(train_hw), fast_imp=fast_imp,
                             max_reduction=fast_max_reduction(train_hw))
        if self.channels_last:
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    module.to(memory_format=torch.channels_last)

    def stages(self):
        """The five groups of stereo blocks with the global attention after each of the first four."""
        for g in range(1, len(self.num_blks) + 1):
            yield getattr(self, f'body{g}')
            if g < len(self.num_blks):
                yield getattr(self, f'SCGLA{g}')

    def forward(self, inp):
        return stereo_forward(self, inp, (layer for stage in self.stages() for layer in stage))
