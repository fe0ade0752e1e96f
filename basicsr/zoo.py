"""The model zoo: one card per released model (its network, scale, colour order, option files, weights, published
figures and MACs), the one place that names a released model.

Plain data (no torch), read by ``basicsr.models.archs.arch_util`` (``build_named``, ``NAMED_SIZES``), the scripts
(``download_pretrained.py``, ``reproduce_tables.py``, ``benchmark.py``, ``model_complexity.py``, ``plot_results.py
zoo``, ``zoo_table.py``, ``--arch`` of ``inference_stereo.py`` and ``export_onnx.py``), the demo and ``identify``:

- ``MODELS``: ``name -> ZooModel`` (``'CVHSSR-T_x4'``), the cards; ``card(name)`` finds a card or a named size
  (``'NAFSSR-T'``), ``sizes()`` lists the sizes;
- ``PUBLISHED``: ``(name, test set) -> Published``: (Left+Right)/2 and Left PSNR/SSIM as published, with the source
  of each (``SOURCES``). A figure that was not published is ``None``: nothing here is estimated or copied across.

Protocol of every figure: RGB, no border crop, PSNR/SSIM (scikit-image's default 7x7 SSIM) of each view, averaged
over the two views ("(Left+Right)/2") or taken on the left view without its 64 leftmost columns ("Left"), then
averaged over the pairs of the set.

Released weights in git are pinned to a commit (``url``) and checked by size and sha256, computed from the files
of that commit; for files in git whose bytes we have not had, git's own blob id (``git_blob``, from the commit's
tree) is the check. NAFSSR's and SwinFIRSSR's weights are on Google Drive and Baidu only, SCGLANet's on Baidu only,
SwinFSR's on Google Drive only: manual downloads.
"""
from dataclasses import dataclass, field

TEST_SETS = ('KITTI2012', 'KITTI2015', 'Middlebury', 'Flickr1024')
# LR training patch (H, W) of the protocol: iPASSR's MATLAB script cuts 30x90 LR patches from Flickr1024 and
# Middlebury (basicsr/data/preparation.py); the released networks train on it (TLSC's train_size, SwinFSR's img_size)
LR_PATCH = (30, 90)

SOURCES = {
    'O': 'The-Learning-And-Vision-Atelier-LAVA/Stereo-Image-SR, README (benchmark kept by the iPASSR authors / '
         'NTIRE organisers)',
    'S': 'kbr19-thu/Awesome-Stereo-Super-Resolution, psnr_ssim_results.md (community list)',
    'NAFSSR paper': 'Chu, Chen, Yu, "NAFSSR: Stereo Image Super-Resolution Using NAFNet", CVPRW 2022, Table of '
                    'results (Left figures)',
    'NAFNet README': 'megvii-research/NAFNet, docs/StereoSR.md at 2b4af71 (Flickr1024 test figures of the released '
                     'weights)',
    'iPASSR README': 'YingqianWang/iPASSR at e1ffe06, README: Figs/Quantitative.png (the paper\'s table)',
    'SwinFIR README': 'Zdafeng/SwinFIR at d08db64, README, "Stereo Image Super-Resolution" table (PSNR only)',
}

CVHSSR_COMMIT = '252cd388265ab90cc29cc6c39727514d9f98be93'  # AlexZou14/CVHSSR, 5 Apr 2024
EHFSSR_COMMIT = '66d96aa41c77cb1571d33ca6d3110aafa7fb6bc3'  # jianwensong/EHFSSR, 23 Dec 2024
IPASSR_COMMIT = 'e1ffe066f6c21b0ed402e64ed7b8c2f70c477a6f'  # YingqianWang/iPASSR, its HEAD on 30 Nov 2026
SWINFIR_DRIVE = ('https://drive.google.com/drive/folders/1wiJcFJA4DxIISB7b_qz4u-kA1WE6EJOk?usp=sharing',
                 'https://pan.baidu.com/s/1zBVNAqXLMld44G5t0rBG2Q?pwd=8i4g')  # Zdafeng/SwinFIR README (d08db64)
NAFSSR_PAGE = 'https://github.com/megvii-research/NAFNet/blob/main/docs/StereoSR.md'
SCGLANET_COMMIT = '3ad03227ef18f7f6253f01a3e7e88fd96f51a9f6'  # fzuzyb/SCGLANet, 7 Jun 2023
# fzuzyb/SCGLANet README at 3ad0322: one Baidu share for the NTIRE 2023 models of all three tracks (file names of its
# test option files: scglanet_x4_Track1.pth, scglagan_x4_Track2.pth, scglanet_x4_Track3.pth)
SCGLANET_BAIDU = ('https://pan.baidu.com/s/1ELaFEP2dzOR6q9suxjDLWg?pwd=rrhy',)
# GoKerrChen/SwinFSR README at 04dd212: one Google Drive folder for its three NTIRE 2023 models (perceptual_loss,
# slowftcam, scam) and their results
SWINFSR_DRIVE = ('https://drive.google.com/drive/folders/10N-ctXAUbJ4bfQJZmMJDSSa9odL3fj_S?usp=sharing',)


@dataclass(frozen=True)
class Weights:
    """A released weight file. ``file``: its name in the release, which the option files expect under
    ``experiments/pretrained_models/``; ``url``: a direct download (``None``: manual download only, see
    ``manual``); ``size`` (bytes), ``sha256``, ``git_blob`` (sha1 of ``b'blob <size>\\0' + bytes``): the checks
    known for it."""
    file: str
    url: str | None = None
    size: int | None = None
    sha256: str | None = None
    git_blob: str | None = None
    manual: tuple = ()


@dataclass(frozen=True)
class ZooModel:
    """The card of one released model at one scale (``NAFSSR-T_x4``): everything that names it, in one place.

    ``name`` is the stem of ``option``, its test option file (relative to the repository), which loads
    ``experiments/pretrained_models/<weights.file>``; ``params_m``: parameters in millions as published (``None``:
    not published); ``code``: the authors' repository. ``arch`` (an ``ARCH_REGISTRY`` type) and ``kwargs`` (its
    constructor keywords besides ``up_scale``, which is ``scale``) are the network, equal to the ``network_g`` of the
    test option file; ``size`` names that network at any scale (``NAFSSR-T``: ``build_named('NAFSSR-T', 3)``).
    ``color_order``: the channel order the weights were trained with (``'bgr'`` or ``'rgb'``); ``train``: its
    training option files, stages in order; ``macs_g``: GMACs of one 320x180 LR stereo pair (``None``: not counted).
    """
    name: str
    family: str
    scale: int
    params_m: float | None
    weights: Weights
    code: str
    option: str
    arch: str | None = None
    kwargs: dict = field(default_factory=dict, hash=False)
    size: str | None = None
    color_order: str = 'bgr'
    train: tuple = ()
    macs_g: float | None = None


@dataclass(frozen=True)
class Published:
    """Published figures of one model on one test set; ``None`` where not published. ``source`` names the
    (Left+Right)/2 figures' origin, ``left_source`` the Left figures' (keys of ``SOURCES``)."""
    psnr: float | None = None
    ssim: float | None = None
    psnr_left: float | None = None
    ssim_left: float | None = None
    source: str | None = None
    left_source: str | None = None
    notes: tuple = field(default=())


def _github(repo, commit, path, size=None, sha256=None, git_blob=None):
    return Weights(file=path.rsplit('/', 1)[-1], url=f'https://github.com/{repo}/raw/{commit}/{path}', size=size,
                   sha256=sha256, git_blob=git_blob)


def _nafssr(file, gdrive, baidu):
    return Weights(file=file, manual=(f'https://drive.google.com/file/d/{gdrive}/view?usp=sharing',
                                      f'https://pan.baidu.com/s/{baidu}'))


_NAFSSR_WEIGHTS = {  # megvii-research/NAFNet docs/StereoSR.md: gdrive id, Baidu link with its password
    ('T', 4): ('1owfYG1KTXFMl4wHpUZefWAcVlBpLohe5', '1yC5XzJcL5peC1YuW3MkFMA?pwd=5j1u'),
    ('S', 4): ('1RpfS2lemsgetIQwBwkZpZwLBJfOTDCU5', '1XvwM5KVhNsKAxWbxU85SFA?pwd=n5au'),
    ('B', 4): ('1Su0OTp66_NsXUbqTAIi1msvsp0G5WVxp', '18tVlH-QIVtvDC1LM2oPatw?pwd=3up5'),
    ('L', 4): ('1TIdQhPtBrZb2wrBdAp9l8NHINLeExOwb', '1P8ioEuI1gwydA2Avr3nUvw?pwd=qs7a'),
    ('T', 2): ('1sBivtt5KaFMjMhBwyajYy1uemIEFQBvW', '1RDW923v0e0G_eYvTF8I7Dg?pwd=utgs'),
    ('S', 2): ('1caVrp3fFSpwiU8RPGXe-zDD1tU110yxA', '1qJmQzv-YV1V9raim57pTIQ?pwd=t2or'),
    ('B', 2): ('1gOfDTfyCaff_xNm86u8sN_3MtAZvnQEk', '1IkadqW1uWx9xM5K2ETJ9-A?pwd=pv1f'),
    ('L', 2): ('1SZ6bQVYTVS_AXedBEr-_mBCC-qGYHLmf', '1GS6YQSSECH8hAKhvzw6GyQ?pwd=2v3v'),
}
_NAFSSR_PARAMS_M = {('T', 4): 0.46, ('S', 4): 1.56, ('B', 4): 6.80, ('L', 4): 23.83,
                    ('T', 2): 0.45, ('S', 2): 1.54, ('B', 2): 6.77, ('L', 2): 23.79}

# The networks of the released sizes: constructor keywords besides up_scale (the paper's Table 1 and the release's
# option files; the train_size of its training patches drives TLSC at test time). A size is the same network at any
# scale: build_named('NAFSSR-T', 3) is NAFSSR-T at x3, with no released weights.
_TLSC = dict(train_size=[1, 6, *LR_PATCH], drop_out_rate=0.0)
_NAFSSR_KWARGS = {'T': dict(width=48, num_blks=16, drop_path_rate=0.0, **_TLSC),
                  'S': dict(width=64, num_blks=32, drop_path_rate=0.1, **_TLSC),
                  'B': dict(width=96, num_blks=64, drop_path_rate=0.2, **_TLSC),
                  'L': dict(width=128, num_blks=128, drop_path_rate=0.3, **_TLSC)}
_SWINFIRSSR_KWARGS = dict(in_chans=3, img_size=64, window_size=16, compress_ratio=3, squeeze_factor=30, conv_scale=0.01,
                          overlap_ratio=0.5, img_range=1.0, depths=[6] * 6, embed_dim=180, num_heads=[6] * 6,
                          mlp_ratio=2, upsampler='pixelshuffle', resi_connection='SFB')
_SWINFSR_KWARGS = dict(img_size=list(LR_PATCH), embed_dim=180, depths=[6] * 12, num_heads=[6] * 12, window_size_h=6,
                       window_size_w=15, mlp_ratio=2.0, drop_path_rate=0.2)
_SCGLANET_KWARGS = dict(width=128, num_blks=[16, 16, 32, 32, 32], drop_path_rate=0.1, temperature=2.0, **_TLSC)

# GMACs of one 320x180 LR stereo pair (basicsr.models.archs.complexity on the network of the card, counted on the
# meta device: `python scripts/model_complexity.py --model <name> --size 180x320`); tests/test_zoo.py recounts some
_MACS_G = {'NAFSSR-T_x4': 85.8, 'NAFSSR-S_x4': 259.4, 'NAFSSR-B_x4': 976.9, 'NAFSSR-L_x4': 3141.8,
           'NAFSSR-T_x2': 84.0, 'NAFSSR-S_x2': 257.0, 'NAFSSR-B_x2': 973.3, 'NAFSSR-L_x2': 3137.0,
           'CVHSSR-T_x2': 102.9, 'CVHSSR-T_x4': 104.7, 'CVHSSR-S_x2': 315.0, 'CVHSSR-S_x4': 317.4,
           'EHFSSR_S_x2': 114.0, 'EHFSSR_S_x4': 115.8, 'EHFSSR_x2': 202.7, 'EHFSSR_x4': 205.1,
           'iPASSR_x2': 162.1, 'iPASSR_x4': 170.2, 'SwinFIRSSR_x2': 3636.5, 'SwinFIRSSR_x4': 3715.4,
           'SCGLANet-L_x4': 3502.1, 'SCGLAGAN-L_x4': 3502.1, 'SCGLANet-L_Track3_x4': 3502.1, 'SwinFSR-L_x4': 3440.9}


def _card(name, family, scale, params_m, weights, code, size, arch, kwargs, color_order='bgr', train=()):
    """The card of released model ``name``: its test option file is ``options/test/<family>/<name>.yml``,
    ``train`` the stems of its training files (stages in order) under ``options/train/<family>/``."""
    return ZooModel(name, family, scale, params_m, weights, code, f'options/test/{family}/{name}.yml', arch=arch,
                    kwargs=kwargs, size=size, color_order=color_order, macs_g=_MACS_G.get(name),
                    train=tuple(f'options/train/{family}/{stem}.yml' for stem in train))


# Weights in git, pinned to a commit: size and sha256 computed from the files we read, git's blob id from the commit's
# tree (the only check of the files larger than the snapshot we read)
_SHA256 = {'CVHSSR-T_x2': (2939321, '29b5b8643274730102baaf1fe83711bd2d3c67a1c2aaa0bfe06c03da33e764c3'),
           'CVHSSR-T_x4': (3001721, 'ae8a06b4c2a9fe5fa295fed210adcdffa9535891f68abfc5442bbcf3e0e5daac'),
           'EHFSSR_S_x2': (2820991, '4be9b0377d77437f3dadcf3b0a55e66dbcc0b84525f221af452405ffae766a12'),
           'EHFSSR_S_x4': (2883391, 'ed43b200c58f93945abb4cc65954e16dbf63f0a3d5c5d6293b53e6e135be7d0b')}
_GIT_BLOBS = {'CVHSSR-T_x2': '2017246d2f8b4bf8d88ed5a1b74ca802d97be165',
              'CVHSSR-T_x4': '0e3cfdd56b2603d0d47768e46bc882dc8ee310dd',
              'CVHSSR-S_x2': 'f313e6014ad013785689a952fdb563917f45b299',
              'CVHSSR-S_x4': 'f4f3b8378b89583319378d787ba9cd5d3bcbfd09',
              'EHFSSR_S_x2': '96cd8e2890b8a0a0fc349619b4fb97d186459415',
              'EHFSSR_S_x4': 'abeeb11bb64ebbb9c140cfe2bea8376f9296cc49',
              'EHFSSR_x2': 'af099822b5f5b5b8df51af567a5eeabf6f4f1cf4',
              'EHFSSR_x4': '9002ac49a3008c336b94ecb8e29e287cc3a23077',
              'iPASSR_x2': 'c1cc0b0add952b3f614922b4a208223678f2d848',
              'iPASSR_x4': 'f25dc7567e5016beaf86cbc0bbac04c747e9d8c6'}


def _github_card(name, family, scale, params_m, repo, commit, path, **card):
    size_bytes, sha256 = _SHA256.get(name, (None, None))
    return _card(name, family, scale, params_m, _github(repo, commit, path, size_bytes, sha256, _GIT_BLOBS[name]),
                 repo, **card)


_MODELS = [
    *(_card(f'NAFSSR-{size}_x{scale}', 'NAFSSR', scale, _NAFSSR_PARAMS_M[size, scale],
            _nafssr(f'NAFSSR-{size}_{scale}x.pth', *_NAFSSR_WEIGHTS[size, scale]), 'megvii-research/NAFNet',
            f'NAFSSR-{size}', 'NAFSSR', _NAFSSR_KWARGS[size], train=(f'NAFSSR-{size}_x{scale}',))
      for scale in (2, 4) for size in 'TSBL'),
    # CVHSSR's sizes are NAFSSR's (its option files); the S files are in git too, but larger than the snapshot we read
    *(_github_card(f'CVHSSR-{size}_x{scale}', 'CVHSSR', scale, params_m, 'AlexZou14/CVHSSR', CVHSSR_COMMIT,
                   f'ckpt/CVHSSR_{size}x{scale}.pth', size=f'CVHSSR-{size}', arch='CVHSSR',
                   kwargs=_NAFSSR_KWARGS[size], train=(f'CVHSSR-{size}_x{scale}',))
      for size, scale, params_m in (('T', 2, 0.66), ('T', 4, 0.68), ('S', 2, 2.22), ('S', 4, 2.24))),
    # the full-size files are larger than the snapshot we read
    *(_github_card(f'{stem}_x{scale}', 'EHFSSR', scale, params_m, 'jianwensong/EHFSSR', EHFSSR_COMMIT,
                   f'experiments/pretrained_models/{stem}_x{scale}.pth', size=stem.replace('_', '-'), arch=stem,
                   kwargs=dict(dim=48 if stem == 'EHFSSR_S' else 64, groups=5, num=6),
                   train=(f'{stem}_x{scale}_s1', f'{stem}_x{scale}_s2'))
      for stem, scale, params_m in (('EHFSSR_S', 2, 0.63), ('EHFSSR_S', 4, 0.64), ('EHFSSR', 2, 1.19),
                                    ('EHFSSR', 4, 1.21))),
    # in git, larger than the snapshot we read (.pth.tar: {'epoch', 'state_dict'}): only their blob ids are known.
    # RGB views (the release reads with PIL); its test never calls eval(): the attention's BatchNorm uses each test
    # image's statistics (test_bn_stats: input), which training's validation does not
    *(_github_card(f'iPASSR_x{scale}', 'iPASSR', scale, params_m, 'YingqianWang/iPASSR', IPASSR_COMMIT,
                   f'log/iPASSR_{scale}xSR.pth.tar', size='iPASSR', arch='iPASSR',
                   kwargs=dict(test_bn_stats='input'), color_order='rgb', train=(f'iPASSR_x{scale}',))
      for scale, params_m in ((2, 1.37), (4, 1.42))),
    # one Google Drive folder / Baidu share for all SwinFIR weights: manual downloads (names of its test options);
    # RGB views (its dataset converts BGR to RGB)
    *(_card(f'SwinFIRSSR_x{scale}', 'SwinFIRSSR', scale, params_m,
            Weights(file=f'SwinFIRSSR_SSRx{scale}.pth', manual=SWINFIR_DRIVE), 'Zdafeng/SwinFIR', 'SwinFIRSSR',
            'SwinFIRSSR', _SWINFIRSSR_KWARGS, color_order='rgb', train=(f'SwinFIRSSR_x{scale}',))
      for scale, params_m in ((2, 23.94), (4, 24.09))),
    # SCGLANet (NTIRE 2023, all three tracks): Baidu only, manual downloads; one generator size, SCGLANet-L; RGB views
    # (its stereo reader converts BGR to RGB). Track 2 (perceptual) trains with LPIPSLoss and drop-path 0.2
    *(_card(name, 'SCGLANet', 4, params_m, Weights(file=file, manual=SCGLANET_BAIDU), 'fzuzyb/SCGLANet', 'SCGLANet-L',
            'SCGLANet', _SCGLANET_KWARGS, color_order='rgb', train=train)
      for name, params_m, file, train in (
          ('SCGLANet-L_x4', 25.29, 'scglanet_x4_Track1.pth', ('SCGLANet-L_x4_s1', 'SCGLANet-L_x4_s2')),
          ('SCGLAGAN-L_x4', None, 'scglagan_x4_Track2.pth', ('SCGLAGAN-L_x4',)),
          ('SCGLANet-L_Track3_x4', None, 'scglanet_x4_Track3.pth', ('SCGLANet-L_Track3_x4',)))),
    # SwinFSR (NTIRE 2023 track 1): Google Drive only, manual download, saved under the name its test option file
    # loads; the network of its train.py (centred SCAM; its "scam" model adds scam: plain); the release's dicts load
    # with param_key_g state_dict; RGB views (it reads with PIL); 26.75M parameters: the community list (S), the
    # release's own class counts 26,754,672 at x4
    _card('SwinFSR-L_x4', 'SwinFSR', 4, 26.75, Weights(file='SwinFSR-L_x4.pth.tar', manual=SWINFSR_DRIVE),
          'GoKerrChen/SwinFSR', 'SwinFSR-L', 'SwinFSR', _SWINFSR_KWARGS, color_order='rgb', train=('SwinFSR-L_x4',)),
]
MODELS = {m.name: m for m in _MODELS}


def sizes():
    """The named sizes of the cards, in the zoo's order (``NAFSSR-T``, ..., ``SwinFSR-L``): each one network, built
    at any scale by ``basicsr.models.archs.arch_util.build_named``."""
    return list(dict.fromkeys(model.size for model in MODELS.values()))


def name_key(name):
    """How names are compared: ``_`` for ``-``, any case (``EHFSSR_S`` is ``EHFSSR-S``)."""
    return name.replace('_', '-').upper()


def card(name):
    """The card named ``name`` (``NAFSSR-T_x4``), else the first card of the named size ``name`` (``NAFSSR-T``,
    ``ehfssr_s``), else None; names compared by ``name_key``."""
    by_key = {}
    for model in MODELS.values():
        by_key.setdefault(name_key(model.name), model)
    for model in MODELS.values():
        by_key.setdefault(name_key(model.size or model.name), model)
    return by_key.get(name_key(name))

# (Left+Right)/2 PSNR/SSIM per set, in TEST_SETS order: ((psnr, ssim), ...), with their source.
_STEREO = {
    'NAFSSR-T_x4': ('O', (26.79, .8105), (26.62, .8159), (29.32, .8409), (23.69, .7384)),
    'NAFSSR-S_x4': ('O', (26.93, .8145), (26.76, .8203), (29.72, .8490), (23.88, .7468)),
    'NAFSSR-B_x4': ('O', (27.08, .8181), (26.91, .8245), (30.04, .8568), (24.07, .7551)),
    'NAFSSR-L_x4': ('O', (27.12, .8194), (26.96, .8257), (30.20, .8605), (24.17, .7589)),
    'CVHSSR-T_x4': ('S', (26.98, .8165), (26.78, .8218), (29.74, .8505), (23.89, .7484)),
    'CVHSSR-S_x4': ('S', (27.10, .8199), (26.90, .8258), (30.05, .8584), (24.08, .7570)),
    'iPASSR_x4': ('iPASSR README', (26.56, .8053), (26.32, .8084), (29.16, .8367), (23.44, .7287)),
    'SwinFIRSSR_x4': ('SwinFIR README', (27.16, .8235), (26.89, .8283), (30.44, .8687), (24.30, .7681)),
    'NAFSSR-T_x2': ('O', (31.26, None), (30.99, None), (35.01, None), (28.94, .9128)),
    'NAFSSR-S_x2': ('O', (31.38, None), (31.08, None), (35.30, None), (29.19, .9160)),
    'NAFSSR-B_x2': ('O', (31.55, None), (31.22, None), (35.68, None), (29.54, None)),
    'NAFSSR-L_x2': ('O', (31.60, None), (31.25, None), (35.88, None), (29.68, .9221)),
    'CVHSSR-T_x2': ('S', (31.46, None), (31.13, None), (35.47, None), (29.26, None)),
    'CVHSSR-S_x2': ('S', (31.57, None), (31.22, None), (35.78, None), (29.56, None)),
    'iPASSR_x2': ('iPASSR README', (31.11, None), (30.81, None), (34.51, None), (28.60, None)),
    'SwinFIRSSR_x2': ('SwinFIR README', (31.79, None), (31.45, None), (36.52, None), (30.14, None)),
    'SCGLANet-L_x4': ('S', (27.20, .8230), (27.01, .8290), (30.38, .8642), (24.39, .7679)),
    # EHFSSR (TMM 2024): the community list; its x4 KITTI2012 row repeats its KITTI2015 row, which our run of the
    # released EHFSSR_S_x4.pth on the real KITTI2015 set reproduces (26.7892 / 0.8218): KITTI2012 x4 left out
    'EHFSSR_S_x4': ('S', (None, None), (26.79, .8218), (29.79, .8506), (23.92, .7483)),
    'EHFSSR_x4': ('S', (None, None), (26.82, .8233), (29.87, .8540), (23.99, .7525)),
    'EHFSSR_S_x2': ('S', (31.46, .9279), (31.13, .9377), (35.51, .9530), (29.31, .9182)),
    'EHFSSR_x2': ('S', (31.58, .9296), (31.21, .9390), (35.71, .9545), (29.51, .9210)),
    # SwinFSR (CVPRW 2023): the community list gives PSNR only, and no KITTI2012 figure
    'SwinFSR-L_x4': ('S', (None, None), (27.00, None), (32.73, None), (24.19, None)),
}
# Left PSNR (64 leftmost columns cropped) on KITTI2012, KITTI2015, Middlebury, from the NAFSSR paper.
_LEFT = {
    'NAFSSR-T_x4': (26.69, 25.90, 29.22),
    'NAFSSR-L_x4': (27.04, 26.22, 30.11),
    'SCGLANet-L_x4': (27.10, 26.94, 30.23),  # with their SSIM (_LEFT_SSIM), from the community list
}
_LEFT_SSIM = {'SCGLANet-L_x4': (.8204, .8268, .8628)}
_LEFT_SOURCE = {'SCGLANet-L_x4': 'S'}  # default: the NAFSSR paper
_NOTES = {
    ('SwinFSR-L_x4', 'Middlebury'): ('32.73 dB is 2.3 dB above every other x4 model on Middlebury (30.44 at most): '
                                     'most likely another protocol or another Middlebury set, not comparable',),
    # SwinFIR's only evaluation path (its test option files) crops `scale` border pixels before PSNR/SSIM
    **{(f'SwinFIRSSR_x{scale}', test_set): (
        *(('PSNR from the SwinFIR README; SSIM from the community list (S)',) if scale == 4 else ()),
        f'most likely with a {scale}-pixel border crop (crop_border: {scale} in the release\'s test files), '
        'not the no-crop protocol') for scale in (2, 4) for test_set in TEST_SETS},
    ('NAFSSR-T_x2', 'Flickr1024'): ('SSIM from the NAFNet README',),
    ('NAFSSR-S_x2', 'Flickr1024'): ('SSIM from the NAFNet README',),
    ('NAFSSR-L_x2', 'Flickr1024'): ('SSIM from the NAFNet README',),
    ('NAFSSR-B_x2', 'Flickr1024'): ('the NAFNet README gives SSIM 0.7551, the x4 figure repeated: not recorded',),
}


def _published():
    table = {}
    for name, (source, *per_set) in _STEREO.items():
        lefts, left_ssims = _LEFT.get(name, ()), _LEFT_SSIM.get(name, ())
        for i, (test_set, (psnr, ssim)) in enumerate(zip(TEST_SETS, per_set)):
            left = lefts[i] if i < len(lefts) else None
            if psnr is None and ssim is None and left is None:
                continue  # not published for this set
            table[name, test_set] = Published(psnr=psnr, ssim=ssim, psnr_left=left,
                                              ssim_left=left_ssims[i] if i < len(left_ssims) else None,
                                              source=source,
                                              left_source=_LEFT_SOURCE.get(name, 'NAFSSR paper') if left else None,
                                              notes=_NOTES.get((name, test_set), ()))
    return table


# (model name, test set) -> Published. The EHFSSR README (66d96aa) publishes no figures; EHFSSR's are the community
# list's (its paper's table, arXiv:2311.16518, was not at hand to check them).
PUBLISHED = _published()


def published(name, test_set):
    """The published figures of model ``name`` on ``test_set``, or ``None`` when none were published."""
    return PUBLISHED.get((name, test_set))
