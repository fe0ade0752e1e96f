"""The local web demo behind ``demo.py``: upload a stereo pair, super-resolve it, look at it.

The page (Gradio) takes a left and a right view, or one side-by-side image (full-width parallel layout: the left
view is the left half), and one of the models the demo was started with: every zoo entry whose released weights are
under ``experiments/pretrained_models/`` (``scripts/download_pretrained.py``), and a model given on the command
line (``--weights`` with ``-opt`` or ``--arch``/``--scale``, as ``scripts/inference_stereo.py`` takes it). The pair
is super-resolved in full-width strips (``infer_in_strips``, sized by ``--max_memory_gb`` as in
``inference_stereo.py``) with a progress bar; the page shows each view against MATLAB-bicubic enlargement with a
before/after slider, the red-cyan anaglyph of the result, and offers both views as lossless PNGs. With the pair's
HR views uploaded too (two views or one side-by-side image, as the LR ones), it shows PSNR and SSIM per view, their
(Left+Right)/2 mean and the Left figure (64 leftmost columns cropped), scored by ``evaluation.score_pair`` with
``DEMO_METRICS``: the release's protocol, the same numbers as test.py's ``metrics.json`` for the same model.

A bad upload (one view only, views of different sizes, a file that is not an image) is one line in the page's
status box (``UserError``), never a traceback. Nothing is fetched from the network: no analytics, no share link,
system fonts only.
"""
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from basicsr import zoo
from basicsr.evaluation import infer_in_strips, score_pair
from basicsr.inference import DEFAULT_MEMORY_GB, InputError, auto_strip_rows, load_model
from basicsr.utils.errors import UserError
from basicsr.utils.img_util import img2tensor, imread, imwrite
from basicsr.utils.matlab_functions import imresize

REPO = Path(__file__).resolve().parents[1]  # the zoo's option files are relative to it
PRETRAINED_DIR = os.path.join('experiments', 'pretrained_models')
DEFAULT_PORT = 7860
DEFAULT_OVERLAP = 16  # LR context rows above and below each strip, as inference_stereo.py's --overlap
# What the page scores against uploaded HR views: the released NAFSSR option files' val:metrics (RGB, no border
# crop) with their Left variants; the keys are test.py's metric names for an option file that lists the same.
DEMO_METRICS = {'psnr': {'type': 'calculate_psnr', 'crop_border': 0},
                'ssim': {'type': 'calculate_skimage_ssim', 'crop_border': 0},
                'psnr_left': {'type': 'calculate_psnr_left'},
                'ssim_left': {'type': 'calculate_skimage_ssim_left'}}
VIEW_METRICS = {key: DEMO_METRICS[key] for key in ('psnr', 'ssim')}


class UploadError(UserError, ValueError):
    """An upload the demo cannot use; its one-line message is what the page shows."""


@dataclass(frozen=True)
class ModelEntry:
    """A model offered on the page: ``label`` in the menu, its up-scaling ``scale``, and how to load it (an option
    file ``opt_path`` and/or a named size ``arch``, with the checkpoint ``weights``)."""
    label: str
    scale: int
    weights: str
    opt_path: str | None = None
    arch: str | None = None
    param_key: str = 'params'
    color_order: str | None = None

    def load(self):
        """``(network, scale, color order)``, as ``inference_stereo.py`` loads the same files."""
        return load_model(self.opt_path, self.arch, self.scale if self.arch else None, self.weights,
                          self.param_key, self.color_order)


def zoo_entries(pretrained_dir=PRETRAINED_DIR):
    """One ``ModelEntry`` per zoo model whose released weights are in ``pretrained_dir`` (by the file name its
    option file expects), in the zoo's order."""
    entries = []
    for model in zoo.MODELS.values():
        weights = os.path.join(pretrained_dir, model.weights.file)
        option = REPO / model.option
        if os.path.isfile(weights) and option.is_file():
            entries.append(ModelEntry(model.name, model.scale, weights, opt_path=str(option)))
    return entries


class Catalog:
    """The models of the page by label. A network is loaded on first use; the command line's stays in memory, of
    the others only the last one used."""

    def __init__(self, entries, device):
        self.entries = {entry.label: entry for entry in entries}
        self.device = torch.device(device)
        self._loaded = {}
        self._kept = set()

    def add_loaded(self, entry, loaded):
        """Offer ``entry`` (first in the menu), already ``loaded``, and keep it in memory."""
        self.entries = {entry.label: entry, **self.entries}
        self._loaded[entry.label] = self._to_device(loaded)
        self._kept.add(entry.label)

    def _to_device(self, loaded):
        net, scale, color_order = loaded
        return net.to(self.device).eval(), scale, color_order

    def get(self, label):
        """``(network, scale, color order)`` of the entry ``label``."""
        if label not in self.entries:
            raise UploadError(f'choose a model (one of: {", ".join(self.entries) or "none"})')
        if label not in self._loaded:
            self._loaded = {k: v for k, v in self._loaded.items() if k in self._kept}
            self._loaded[label] = self._to_device(self.entries[label].load())
        return self._loaded[label]

    def scales(self):
        return sorted({entry.scale for entry in self.entries.values()})

    def labels(self, scale=None):
        return [label for label, entry in self.entries.items() if scale is None or entry.scale == scale]


def command_line_entry(weights, opt_path=None, arch=None, scale=None, param_key='params', color_order=None):
    """``(entry, loaded)`` for the model given with ``--weights`` and ``-opt`` or ``--arch``/``--scale``, loaded now
    so that a wrong file is one line before the page is served."""
    if not weights:
        raise InputError('--weights: give the checkpoint of the model to offer (with -opt or --arch/--scale)')
    if not (opt_path or arch):
        raise InputError('--weights needs -opt <option file> or --arch <named size> with --scale')
    loaded = load_model(opt_path, arch, scale, weights, param_key, color_order)
    label = f'{os.path.basename(weights)} (x{loaded[1]})'
    return ModelEntry(label, loaded[1], weights, opt_path, arch, param_key, loaded[2]), loaded


def read_view(path, what):
    """``uint8`` HWC BGR of the uploaded file ``path``, upright (EXIF orientation applied) by the reader of
    ``inference_stereo.py``; errors name ``what`` (``'left view'``) and the file's name (16-bit images are reduced to
    8 bits, as ``inference_stereo.py`` does)."""
    return imread(path, allow_16bit=True, name=f'{what} ({os.path.basename(path)})')


def split_side_by_side(img, what='side-by-side image'):
    """``(left, right)`` halves of a full-width parallel side-by-side image (left view on the left)."""
    h, w = img.shape[:2]
    if w % 2:
        raise UploadError(f'{what}: {w}x{h} has an odd width; expected two views of the same size side by side '
                          '(left view on the left)')
    return np.ascontiguousarray(img[:, :w // 2]), np.ascontiguousarray(img[:, w // 2:])


def _stem(path, suffix):
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem[:-len(suffix)] if stem.endswith(suffix) and len(stem) > len(suffix) else stem


def read_pair(left_path=None, right_path=None, sbs_path=None):
    """``(left, right, name)`` from two uploaded views or one side-by-side image; one ``UploadError`` line for
    any other combination, views of different sizes, or a file that is not an image."""
    if sbs_path and (left_path or right_path):
        raise UploadError('upload either a left and a right view or one side-by-side image, not both')
    if sbs_path:
        left, right = split_side_by_side(read_view(sbs_path, 'side-by-side image'),
                                         f'side-by-side image ({os.path.basename(sbs_path)})')
        return left, right, _stem(sbs_path, '_SBS')
    if not (left_path or right_path):
        raise UploadError('upload a left and a right view, or one side-by-side image')
    if not (left_path and right_path):
        given, missing = ('left', 'right') if left_path else ('right', 'left')
        raise UploadError(f'only the {given} view was uploaded; upload the {missing} view too (or one side-by-side '
                          'image)')
    left, right = read_view(left_path, 'left view'), read_view(right_path, 'right view')
    if left.shape != right.shape:
        raise UploadError(f'the right view ({os.path.basename(right_path)}) is {right.shape[1]}x{right.shape[0]} '
                          f'but the left view ({os.path.basename(left_path)}) is {left.shape[1]}x{left.shape[0]} '
                          '(width x height); the two views of a rectified pair must have the same size')
    return left, right, _stem(left_path, '_L')


def read_hr_pair(left_path=None, right_path=None, sbs_path=None):
    """``(left, right)`` of the optional HR upload (as ``read_pair`` takes the LR one), or None when there is none;
    a refusal is one ``UploadError`` line starting with ``HR upload:``."""
    if not (left_path or right_path or sbs_path):
        return None
    try:
        left, right, _ = read_pair(left_path, right_path, sbs_path)
    except UserError as err:  # an UploadError, or an unreadable image's ImageReadError
        raise UploadError(f'HR upload: {err}') from None
    return left, right


def check_hr_size(hr, lr_shape, scale):
    """One ``UploadError`` line unless the HR views are ``scale`` times the LR views."""
    h, w = lr_shape[:2]
    hr_h, hr_w = hr[0].shape[:2]
    if (hr_h, hr_w) != (h * scale, w * scale):
        raise UploadError(f'HR upload: the HR views are {hr_w}x{hr_h} but x{scale} of the {w}x{h} LR views is '
                          f'{w * scale}x{h * scale} (width x height); upload the HR views of this pair at the '
                          "model's scale, or none")


def score_views(sr, hr, color_order='bgr'):
    """``{'left': {...}, 'right': {...}, 'pair': {...}}``: ``VIEW_METRICS`` of each view and ``DEMO_METRICS`` of
    the pair (``uint8`` views), by ``evaluation.score_pair`` as test.py scores a pair."""
    pair = score_pair(np.concatenate(sr, axis=2), np.concatenate(hr, axis=2), DEMO_METRICS, color_order)
    views = {side: score_pair(s, h, VIEW_METRICS, color_order) for side, s, h in zip(('left', 'right'), sr, hr)}
    return {**views, 'pair': pair}


def format_scores(scores):
    """The page's text of ``score_views``: 4 decimals, as metrics.txt."""
    pair = scores['pair']
    return '\n'.join(f'{label}: left {scores["left"][key]:.4f}, right {scores["right"][key]:.4f}, '
                     f'(Left+Right)/2 {pair[key]:.4f}, Left (64 columns cropped) {pair[key + "_left"]:.4f}'
                     for label, key in (('PSNR (dB)', 'psnr'), ('SSIM', 'ssim')))


def anaglyph(left, right):
    """Red-cyan anaglyph of two same-size ``uint8`` BGR views: red from the left view, green and blue from the
    right one (BGR, as its inputs)."""
    out = right.copy()
    out[..., 2] = left[..., 2]
    return out


def super_resolve(net, scale, color_order, left, right, *, device, max_memory_gb=DEFAULT_MEMORY_GB,
                  overlap=DEFAULT_OVERLAP, progress=None):
    """``(sr left, sr right, LR rows per strip)``: the pair (``uint8`` BGR) super-resolved in strips as
    ``inference_stereo.py`` does it; ``progress(rows done, rows in all)`` after each strip."""
    if color_order == 'rgb':
        left, right = left[..., ::-1], right[..., ::-1]
    lq = img2tensor(np.concatenate([left, right], axis=2))[None].to(device)
    h, w = left.shape[:2]
    rows = min(h, auto_strip_rows(net, w, scale, overlap, max_memory_gb))
    done = [0]

    def step(n):
        done[0] += n
        if progress is not None:
            progress(done[0], h)

    sr = infer_in_strips(net, lq, scale, strip_rows=rows, overlap=overlap, progress=step)
    views = (sr[..., :3], sr[..., 3:])
    if color_order == 'rgb':
        views = tuple(v[..., ::-1] for v in views)
    return np.ascontiguousarray(views[0]), np.ascontiguousarray(views[1]), rows


@dataclass
class DemoResult:
    """What the page shows for one run: views are ``uint8`` BGR; ``files``: the two PNGs written."""
    name: str
    sr: tuple
    bicubic: tuple
    files: tuple
    status: str
    scores: dict | None = None  # score_views against the uploaded HR views, if any


def run_pair(catalog, label, left_path, right_path, sbs_path, out_dir, *, max_memory_gb=DEFAULT_MEMORY_GB,
             overlap=DEFAULT_OVERLAP, progress=None, hr_paths=(None, None, None)):
    """Read the upload, super-resolve it with the model ``label`` and write ``<name>_L.png``/``<name>_R.png`` in a
    new folder under ``out_dir``; a ``DemoResult``, scored against the HR upload ``hr_paths`` (left, right,
    side-by-side) when there is one. Every refusal is an ``UploadError`` (or another ``UserError``)
    raised before the model runs."""
    left, right, name = read_pair(left_path, right_path, sbs_path)
    hr = read_hr_pair(*hr_paths)
    net, scale, color_order = catalog.get(label)
    if hr is not None:
        check_hr_size(hr, left.shape, scale)
    start = time.perf_counter()
    sr_left, sr_right, rows = super_resolve(net, scale, color_order, left, right, device=catalog.device,
                                            max_memory_gb=max_memory_gb, overlap=overlap, progress=progress)
    seconds = time.perf_counter() - start
    bicubic = tuple(imresize(view, scale) for view in (left, right))  # the tables' baseline
    folder = tempfile.mkdtemp(prefix='run_', dir=out_dir)
    files = tuple(os.path.join(folder, f'{name}_{suffix}.png') for suffix in 'LR')
    for view, path in zip((sr_left, sr_right), files):
        imwrite(view, path)
    h, w = left.shape[:2]
    status = (f'{label}: {w}x{h} -> {w * scale}x{h * scale} (x{scale}) in {seconds:.1f} s on {catalog.device.type}, '
              f'strips of {rows} LR rows + {overlap} overlap')
    scores = score_views((sr_left, sr_right), hr) if hr is not None else None
    return DemoResult(name, (sr_left, sr_right), bicubic, files, status, scores)


def _rgb(img):
    return np.ascontiguousarray(img[..., ::-1])


def build_app(catalog, out_dir, *, max_memory_gb=DEFAULT_MEMORY_GB, overlap=DEFAULT_OVERLAP):
    """The Gradio page (``gr.Blocks``) over ``run_pair``; ``(blocks, theme)`` (Gradio 6 takes the theme at
    launch)."""
    import gradio as gr

    scales = catalog.scales()
    first_scale = scales[0]

    def on_scale(choice):
        labels = catalog.labels(int(choice.lstrip('x')))
        return gr.update(choices=labels, value=labels[0] if labels else None)

    def on_run(left, right, sbs, hr_left, hr_right, hr_sbs, label, progress=gr.Progress()):
        def report(done, total):
            progress((done, total), desc='super-resolving', unit='LR rows')

        try:
            result = run_pair(catalog, label, left, right, sbs, out_dir, max_memory_gb=max_memory_gb,
                              overlap=overlap, progress=report, hr_paths=(hr_left, hr_right, hr_sbs))
        except UserError as err:
            return (str(err), '', None, None, None, None)
        sr, bic = result.sr, result.bicubic
        scores = format_scores(result.scores) if result.scores else 'no HR views uploaded'
        return (result.status, scores, (_rgb(bic[0]), _rgb(sr[0])), (_rgb(bic[1]), _rgb(sr[1])),
                _rgb(anaglyph(*sr)), list(result.files))

    theme = gr.themes.Default(font=('ui-sans-serif', 'system-ui', 'sans-serif'),
                              font_mono=('ui-monospace', 'Consolas', 'monospace'))  # nothing from font servers
    with gr.Blocks(title='stereo_sr demo', analytics_enabled=False) as blocks:
        gr.Markdown('## Stereo super-resolution\nUpload the left and right views of a rectified stereo pair (or one '
                    'side-by-side image, left view on the left), choose a model and run. Each view is shown against '
                    'bicubic enlargement (drag the slider); the anaglyph needs red-cyan glasses.')
        with gr.Row():
            with gr.Column(scale=1):
                with gr.Tab('Two views'):
                    left = gr.File(label='Left view', elem_id='left_view', height=120)
                    right = gr.File(label='Right view', elem_id='right_view', height=120)
                with gr.Tab('Side by side'):
                    sbs = gr.File(label='Side-by-side image (left | right)', elem_id='sbs_image')
                with gr.Accordion('HR views (optional): score the result', open=True):
                    with gr.Tab('Two HR views'):
                        hr_left = gr.File(label='Left HR view', elem_id='hr_left_view', height=120)
                        hr_right = gr.File(label='Right HR view', elem_id='hr_right_view', height=120)
                    with gr.Tab('HR side by side'):
                        hr_sbs = gr.File(label='HR side-by-side image (left | right)', elem_id='hr_sbs_image')
                scale = gr.Radio([f'x{s}' for s in scales], value=f'x{first_scale}', label='Scale',
                                 elem_id='scale')
                labels = catalog.labels(first_scale)
                model = gr.Dropdown(labels, value=labels[0], label='Model', elem_id='model')
                run = gr.Button('Super-resolve', variant='primary', elem_id='run')
                status = gr.Textbox(label='Status', interactive=False, lines=2, elem_id='status')
                metrics = gr.Textbox(label='Against the HR views (as test.py scores them)', interactive=False,
                                     lines=2, elem_id='metrics')
            with gr.Column(scale=2):
                with gr.Tab('Left view'):
                    slider_left = gr.ImageSlider(label='bicubic | super-resolved', format='png',
                                                 elem_id='slider_left')
                with gr.Tab('Right view'):
                    slider_right = gr.ImageSlider(label='bicubic | super-resolved', format='png',
                                                  elem_id='slider_right')
                with gr.Tab('Anaglyph'):
                    anaglyph_view = gr.Image(label='red-cyan anaglyph of the result', format='png',
                                             elem_id='anaglyph')
                downloads = gr.File(label='Download (lossless PNG)', file_count='multiple', elem_id='downloads')
        scale.change(on_scale, scale, model)
        run.click(on_run, [left, right, sbs, hr_left, hr_right, hr_sbs, model],
                  [status, metrics, slider_left, slider_right, anaglyph_view, downloads])
    return blocks, theme


def parse_args(argv=None):
    import argparse

    p = argparse.ArgumentParser(prog='demo.py', description='Local web demo: super-resolve an uploaded stereo pair.')
    p.add_argument('--host', default='127.0.0.1', help='address to serve on (default 127.0.0.1: this machine only)')
    p.add_argument('--port', type=int, default=DEFAULT_PORT, help=f'port (default {DEFAULT_PORT})')
    p.add_argument('--pretrained_dir', default=PRETRAINED_DIR,
                   help='folder of released weights: every zoo model whose file is there is offered '
                        f'(default {PRETRAINED_DIR})')
    model = p.add_argument_group('a model of your own (offered first)')
    model.add_argument('-opt', '--opt', help='its option file (network_g, scale)')
    model.add_argument('--arch', help='or its named size: NAFSSR-T/S/B/L, CVHSSR-T/S, ... (with --scale)')
    model.add_argument('--scale', type=int, help='up-scaling factor of --arch')
    model.add_argument('--weights', help='its checkpoint ({"params": state_dict}), e.g. '
                                         'experiments/<name>/models/net_g_latest.pth')
    model.add_argument('--param_key', default='params', help='key of the state dict in --weights with --arch')
    model.add_argument('--color_order', choices=['bgr', 'rgb'], default=None,
                       help='channel order the model was trained with (default: the option file, else the family)')
    run = p.add_argument_group('run')
    run.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    run.add_argument('--max_memory_gb', type=float, default=DEFAULT_MEMORY_GB,
                     help=f'memory for one strip, sets the strip height (default {DEFAULT_MEMORY_GB:g})')
    run.add_argument('--overlap', type=int, default=DEFAULT_OVERLAP,
                     help=f'LR context rows above and below each strip (default {DEFAULT_OVERLAP})')
    args = p.parse_args(argv)
    if not 0 < args.port < 65536:
        raise InputError(f'--port must be between 1 and 65535, got {args.port}')
    if not 0 < args.max_memory_gb < float('inf'):
        raise InputError(f'--max_memory_gb must be a positive number of GB, got {args.max_memory_gb}')
    if args.overlap < 0:
        raise InputError(f'--overlap must be >= 0 (LR context rows above and below each strip), got {args.overlap}')
    if (args.opt or args.arch or args.scale) and not args.weights:
        raise InputError('-opt/--arch need --weights: the checkpoint of the model to offer')
    return args


def make_catalog(args):
    """The ``Catalog`` of ``args``: the command line's model first (loaded now), then the zoo's present weights."""
    catalog = Catalog(zoo_entries(args.pretrained_dir), args.device)
    if args.weights:
        catalog.add_loaded(*command_line_entry(args.weights, args.opt, args.arch, args.scale, args.param_key,
                                               args.color_order))
    if not catalog.entries:
        raise InputError(f'no model to offer: no released weights in {args.pretrained_dir} (python '
                         'scripts/download_pretrained.py --list) and no --weights with -opt or --arch/--scale')
    return catalog


def serve(argv=None):
    """Serve the page until Ctrl-C."""
    args = parse_args(argv)
    os.environ['GRADIO_ANALYTICS_ENABLED'] = 'False'  # read when gradio is imported
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    check_port(args.host, args.port)
    catalog = make_catalog(args)
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise InputError("demo.py needs gradio: pip install -e '.[demo]' (or make install)") from None
    with tempfile.TemporaryDirectory(prefix='stereo_sr_demo_') as out_dir:
        blocks, theme = build_app(catalog, out_dir, max_memory_gb=args.max_memory_gb, overlap=args.overlap)
        print(f'demo.py: {len(catalog.entries)} model(s): {", ".join(catalog.entries)}; serving on '
              f'http://{args.host}:{args.port} (Ctrl-C to stop)', flush=True)
        blocks.queue().launch(server_name=args.host, server_port=args.port, share=False, theme=theme,
                              ssr_mode=False, quiet=True, footer_links=[], allowed_paths=[out_dir])
    return 0


def check_port(host, port):
    """One line, before the model is loaded, when ``host:port`` cannot be served on (in use, unknown host)."""
    import socket

    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
            sock.bind(address)
    except OSError as err:
        raise InputError(f'--host {host} --port {port}: cannot serve there ({err.strerror or err}); choose another '
                         '--port (or --host)') from None


def main(argv=None):
    """One line and exit code 2 for a bad option, weights file or port; a traceback for anything else."""
    from basicsr.utils.errors import run_main

    return run_main('demo.py', serve, argv)
