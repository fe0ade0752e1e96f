"""ONNX export of the stereo SR networks, checked against PyTorch with onnxruntime before anything is written, and
``OnnxStereoNetwork``, an exported file run by onnxruntime behind the interface of the PyTorch network.

The exporter is torch.onnx's dynamo exporter: ``torch.export`` traces the network with symbolic sizes, so a Python
branch or loop on the input size either stays general or becomes a recorded range of sizes; it is never a size
silently baked into the graph (the TorchScript exporter, ``dynamo=False``, bakes them in, and fails outright on the
channel LayerNorm, SwinFIR's unfold and EHFSSR). Batch, height and width are dynamic unless the network fixes them:
the sizes torch.export allows are printed, stored in the file (``stereo_sr.input_sizes``) and checked by the runner.

TLSC's local average pool (``tlsc.LocalAvgPool2d``) picks the global mean or the window mean by the input size; a
copy of the network gets ``ExportLocalAvgPool2d`` instead, one formula for every size (the same values), so the
graph is right on both sides of the training-patch window. The release's approximate ``fast_imp`` pools are kept.

The check runs the ONNX file in onnxruntime (CPU provider) against the original network on two input sizes that
are not the traced one; above ``TOLERANCE`` (max abs difference) the file is not written. It is written to a
temporary name in the output's folder, checked there, then renamed, so a failed export leaves nothing behind.
"""
import json
import os
import re
import time
from copy import deepcopy
from dataclasses import dataclass, field

import numpy as np
import sympy
import torch
import torch.nn.functional as F
from torch import nn

from basicsr.models.archs.tlsc import LocalAvgPool2d
from basicsr.utils.errors import UserError, shorten

OPSET = 18  # LayerNormalization (17+) and the reductions with axes as inputs (18) are single ops
TOLERANCE = 1e-4  # largest max abs difference to PyTorch (images in [0, 1]) for which a file is written
INPUT_NAME, OUTPUT_NAME = 'lq', 'sr'
DIM_NAMES = ('N', 'C', 'H', 'W')
TRACE_SHAPE = (2, 23, 41)  # (N, H, W) traced: no dim equal to another or to the channels (torch.export unifies
#                           equal sizes), none 0 or 1 (specialised), no window size divides H or W
CHECK_SHAPES = ((1, 27, 50), (2, 19, 33))  # (N, H, W) compared with PyTorch, both unlike the traced one
METADATA_PREFIX = 'stereo_sr.'


class ExportError(UserError, RuntimeError):
    """A network that cannot be exported, or an exported file that differs from PyTorch; nothing was written."""


class OnnxModelError(UserError, ValueError):
    """An ONNX file that cannot stand in for the network (not ONNX, another input) or an input it does not take."""


def _require(module):
    try:
        return __import__(module)
    except ImportError:
        raise ExportError(f'{module} is not installed; the ONNX export and runner need the optional packages: '
                          "pip install -c constraints.txt -e '.[onnx]'") from None


class ExportLocalAvgPool2d(nn.Module):
    """``tlsc.LocalAvgPool2d`` (exact window mean) as one formula for every input size, for export.

    Output pixel ``i`` of a dimension of size ``n`` is the mean over the rows ``j .. j + k - 1`` with
    ``k = min(n, window)`` and ``j = clamp(i - (k - 1) // 2, 0, n - k)``: the release's valid-window mean padded by
    replicating its border, which is the global mean where the window covers the input. Read from an integral image
    with gathers, so a traced graph holds no choice made at the traced size.
    """

    def __init__(self, kernel_size):
        super().__init__()
        self.kernel_size = tuple(kernel_size)

    def forward(self, x):
        s = F.pad(x.cumsum(dim=-1).cumsum(dim=-2), (1, 0, 1, 0))
        count = 1
        for dim, window in ((2, self.kernel_size[0]), (3, self.kernel_size[1])):
            size = x.shape[dim]
            k = torch.sym_min(size, window)
            start = (torch.arange(size, device=x.device) - (k - 1) // 2).clamp(0, size - k)
            s = s.index_select(dim, start + k) - s.index_select(dim, start)
            count = count * k
        return s / count


def exportable_copy(net):
    """A CPU float32 copy of ``net`` in eval mode whose size-dependent pools are replaced by export forms."""
    net = deepcopy(net).cpu().float().eval()

    def swap(module):
        for name, child in module.named_children():
            if isinstance(child, LocalAvgPool2d) and not child.fast_imp:
                setattr(module, name, ExportLocalAvgPool2d(child.kernel_size))
            else:
                swap(child)
    swap(net)
    return net


@dataclass
class ExportReport:
    """What ``export_onnx`` wrote: the file, opset, the sizes the graph takes per input dim (``N``, ``H``, ``W``:
    an int when fixed, else ``(least, most or None)``), the up-scaling, and the checks ``[(shape, max abs diff)]``."""
    path: str
    opset: int
    sizes: dict
    scale: int
    checks: list = field(default_factory=list)
    seconds: float = 0.0

    def describe_sizes(self):
        parts = []
        for name, size in self.sizes.items():
            if isinstance(size, int):
                parts.append(f'{name} fixed at {size}')
            else:
                parts.append(f'{name} dynamic ({size[0]}..{size[1] if size[1] is not None else "any"})')
        return ', '.join(parts)


def _op_of(err):
    """The ATen op that a torch.export / torch.onnx error names, or None."""
    match = re.search(r'\baten(?:::|\.)([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)?)', f'{err} {err.__cause__ or ""}')
    return f'aten.{match.group(1)}' if match else None


def _input_sizes(program):
    """``{'N': ..., 'H': ..., 'W': ...}`` of the exported program's input: an int where torch.export fixed the dim,
    else the ``(least, most or None)`` range it allows."""
    placeholder = next(n for n in program.graph.nodes if n.op == 'placeholder'
                       and n.name in program.graph_signature.user_inputs)
    sizes = {}
    for name, dim in zip(DIM_NAMES, placeholder.meta['val'].shape):
        if name == 'C':
            continue
        if isinstance(dim, int):
            sizes[name] = dim
            continue
        expr = dim.node.expr
        bounds = program.range_constraints.get(expr)
        if bounds is None:  # a size tied to another by an expression (say 2 * s0): not one free dim
            raise ExportError(f'the traced input dim {name} is constrained to {expr}; expected a free or fixed size')
        lower = int(bounds.lower)
        if lower <= 2:  # torch's least size of a free dim, 0 or 2 by convention (sizes 0 and 1 are not traced)
            lower = 1 if name == 'N' else 2  # N = 1 is checked before a file is written
        upper = int(bounds.upper) if isinstance(bounds.upper, sympy.Integer) else None  # else torch's int_oo
        sizes[name] = (lower, upper)
    return sizes


def _size_in(size, allowed):
    """``size`` moved into ``allowed`` (an int, or a (least, most) range)."""
    if isinstance(allowed, int):
        return allowed
    least, most = allowed
    return max(least, size) if most is None else min(max(least, size), most)


def smooth_input(shape, channels, seed=0):
    """A seeded (N, channels, H, W) image-like input in [0, 1] (bicubic up-sampled noise)."""
    n, h, w = shape
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, channels, max(2, h // 3), max(2, w // 3), generator=g)
    return F.interpolate(coarse, size=(h, w), mode='bicubic', align_corners=False).clamp(0, 1)


def _session(source, threads=None):
    ort = _require('onnxruntime')
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its warnings about unused initialisers are noise here
    return ort.InferenceSession(source, options, providers=['CPUExecutionProvider'])


@dataclass
class OnnxGraph:
    """A traced, not yet checked ONNX model (``onnx.ModelProto`` with the metadata), what it was traced from
    (``family``: the class name), its input channels, the sizes it takes (see ``ExportReport``) and its scale."""
    model: object
    family: str
    channels: int
    sizes: dict
    scale: int
    opset: int


def to_onnx(net, *, in_channels=None, opset=OPSET, metadata=None):
    """Trace ``net`` ((N, C, H, W) -> (N, C, sH, sW)) into an ``OnnxGraph`` (nothing is written or checked here).

    ``in_channels``: C (default the network's ``in_channels``, else its first convolution's). ``metadata``: more
    ``key: value`` strings stored in the file (``color_order``, ``name``). A network that cannot be traced, or has an
    op without an ONNX form, is one ``ExportError`` line naming the network class and the op.
    """
    _require('onnx')
    _require('onnxscript')  # what torch.onnx's dynamo exporter is built on
    import onnx

    family = type(net).__name__
    net = deepcopy(net).cpu().float().eval()
    channels = in_channels or getattr(net, 'in_channels', None) or next(
        m for m in net.modules() if isinstance(m, nn.Conv2d)).in_channels
    sample = smooth_input(TRACE_SHAPE, channels, seed=1)
    auto = torch.export.Dim.AUTO
    try:
        # size-oblivious tracing, as torch.onnx.export traces a module: a size is not compared with 0 and 1 at every
        # op, which spares most of the symbolic-shape work of the windowed networks (SwinFSR's tiny export: 61 s of
        # CPU -> 17 s, SwinFIR's 32 -> 19; the others as before); the least sizes are set in _input_sizes
        with torch.fx.experimental._config.patch(backed_size_oblivious=True):
            program = torch.export.export(exportable_copy(net), (sample,),
                                          dynamic_shapes=({0: auto, 2: auto, 3: auto},), strict=False)
        onnx_program = torch.onnx.export(program, (sample,), dynamo=True, opset_version=opset,
                                         input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], optimize=False,
                                         verbose=False)
    except Exception as err:  # torch raises many classes here; each becomes the one line below, with the cause
        op = _op_of(err)
        what = f'{op} has no ONNX form here' if op else shorten(str(err).strip().splitlines()[0], 200)
        raise ExportError(f'{family} cannot be exported to ONNX (torch {torch.__version__}, opset {opset}): {what}'
                          ) from err
    sizes = _input_sizes(program)
    with torch.inference_mode():
        scale = net(sample[:1]).shape[-1] // sample.shape[-1]
    props = {'scale': str(scale), 'input_sizes': json.dumps(sizes), 'network': family, **(metadata or {})}
    # unique value names: SwinFIR's buffer ``mean`` and an op output of the same name make an invalid model
    from onnx_ir.passes.common import NameFixPass
    NameFixPass()(onnx_program.model)
    model = onnx_program.model_proto
    onnx.helper.set_model_props(model, {METADATA_PREFIX + k: str(v) for k, v in props.items()})
    return OnnxGraph(model=model, family=family, channels=channels, sizes=sizes, scale=scale, opset=opset)


def write_checked(graph, net, path, *, tolerance=TOLERANCE, log=print):
    """Write the ``OnnxGraph`` ``graph`` to ``path`` if onnxruntime (CPU) runs it within ``tolerance`` (max abs
    difference) of ``net`` on the two ``CHECK_SHAPES`` (moved into the sizes the graph takes); returns an
    ``ExportReport``. Otherwise one ``ExportError`` line, and ``path`` (a file already there included) is untouched:
    the graph is written to a temporary file in the same folder, checked, and renamed only when it passes.
    """
    import onnx

    started = time.perf_counter()
    net = deepcopy(net).cpu().float().eval()
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f'.{os.path.basename(path)}.{os.getpid()}.tmp')
    report = ExportReport(path=path, opset=graph.opset, sizes=graph.sizes, scale=graph.scale)
    try:
        onnx.save_model(graph.model, tmp)
        try:
            session = _session(tmp)
        except Exception as err:  # onnxruntime's Fail, NotImplemented, ...: an op or type it does not run
            raise ExportError(f'{graph.family}: onnxruntime cannot load the exported graph ({shorten(str(err), 200)}); '
                              f'{path} not written') from err
        for i, (n, h, w) in enumerate(CHECK_SHAPES):
            shape = tuple(_size_in(v, graph.sizes[k]) for k, v in zip('NHW', (n, h, w)))
            x = smooth_input(shape, graph.channels, seed=10 + i)
            with torch.inference_mode():
                expected = net(x).numpy()
            got = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
            if got.shape != expected.shape:
                raise ExportError(f'{graph.family}: the ONNX graph gives {got.shape} for a {tuple(x.shape)} input, '
                                  f'PyTorch {expected.shape}; {path} not written')
            diff = float(np.abs(got - expected).max())
            report.checks.append((tuple(x.shape), diff))
            log(f'check {tuple(x.shape)}: max abs difference to PyTorch {diff:.3g}')
            if not diff <= tolerance:
                raise ExportError(f'{graph.family}: the ONNX graph differs from PyTorch by {diff:.3g} (max abs) on a '
                                  f'{tuple(x.shape)} input, above the tolerance {tolerance:g}; {path} not written')
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    report.seconds = time.perf_counter() - started
    return report


def export_onnx(net, path, *, in_channels=None, opset=OPSET, tolerance=TOLERANCE, metadata=None, log=print):
    """``to_onnx`` then ``write_checked``: the ONNX file ``path`` of ``net``, written only when it passes the check;
    returns the ``ExportReport`` (``seconds`` covers both)."""
    started = time.perf_counter()
    try:
        graph = to_onnx(net, in_channels=in_channels, opset=opset, metadata=metadata)
    except ExportError as err:
        raise ExportError(f'{err}; {path} not written') from err.__cause__
    report = write_checked(graph, net, path, tolerance=tolerance, log=log)
    report.seconds = time.perf_counter() - started
    return report


def _metadata(model_meta):
    return {k[len(METADATA_PREFIX):]: v for k, v in (model_meta.custom_metadata_map or {}).items()
            if k.startswith(METADATA_PREFIX)}


class OnnxStereoNetwork(nn.Module):
    """An exported ONNX file run by onnxruntime (CPU provider), called like the PyTorch network: a (N, C, H, W) float
    tensor in, the (N, C, sH, sW) tensor out (on the input's device), so ``forward_stereo`` and ``infer_in_strips``
    take it as they take the network. Holds no parameters.

    Attributes: ``path``; ``in_channels``; ``scale`` and ``color_order`` when the file says (files written by
    ``export_onnx``), else None; ``sizes``: the input sizes the graph takes (see ``ExportReport``). A file that is not
    ONNX, or whose input is not (N, C, H, W), is one ``OnnxModelError`` line; so is an input of another shape.
    """

    def __init__(self, path, threads=None):
        super().__init__()
        if not os.path.isfile(path):
            raise OnnxModelError(f'{path}: no such ONNX file')
        try:
            self._session = _session(path, threads)
        except ExportError:
            raise
        except Exception as err:  # onnxruntime's InvalidProtobuf, Fail, ...: one class per cause, all "not usable"
            raise OnnxModelError(f'{path}: not a usable ONNX model ({shorten(str(err), 160)})') from None
        self.path = path
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0].shape) != 4 or len(outputs[0].shape) != 4:
            shapes = ', '.join(f'{i.name} {i.shape}' for i in inputs)
            raise OnnxModelError(f'{path}: expected one (N, C, H, W) input and one output, the model takes {shapes}')
        self._input, self._output = inputs[0].name, outputs[0].name
        channels = inputs[0].shape[1]
        if not isinstance(channels, int):
            raise OnnxModelError(f'{path}: the channel dim of its input is {channels!r}; expected a fixed number')
        self.in_channels = channels
        meta = _metadata(self._session.get_modelmeta())
        self.scale = int(meta['scale']) if 'scale' in meta else None
        self.color_order = meta.get('color_order')
        self.sizes = {k: (v if isinstance(v, int) else tuple(v)) for k, v in json.loads(meta['input_sizes']).items()
                      } if 'input_sizes' in meta else {
            name: (dim if isinstance(dim, int) else (1, None)) for name, dim in zip('NHW', (
                inputs[0].shape[0], *inputs[0].shape[2:]))}

    def extra_repr(self):
        return f'{self.path}, scale={self.scale}'

    def check_input(self, shape):
        """One ``OnnxModelError`` line when a (N, C, H, W) ``shape`` is not one the graph takes."""
        if len(shape) != 4 or shape[1] != self.in_channels:
            raise OnnxModelError(f'{self.path}: takes (N, {self.in_channels}, H, W) inputs, got {tuple(shape)}')
        for name, size in zip('NHW', (shape[0], *shape[2:])):
            allowed = self.sizes.get(name)
            if isinstance(allowed, int) and size != allowed:
                raise OnnxModelError(f'{self.path}: the exported graph takes {name} = {allowed} only, got {size} '
                                     f'(input {tuple(shape)})')
            if isinstance(allowed, tuple) and not (size >= allowed[0] and (allowed[1] is None or size <= allowed[1])):
                most = allowed[1] if allowed[1] is not None else 'any'
                raise OnnxModelError(f'{self.path}: the exported graph takes {name} in {allowed[0]}..{most}, got '
                                     f'{size} (input {tuple(shape)})')

    def forward(self, x):
        self.check_input(tuple(x.shape))
        array = x.detach().to('cpu', torch.float32).numpy()
        out = self._session.run([self._output], {self._input: array})[0]
        return torch.from_numpy(out).to(x.device)


def time_against_pytorch(net, runner, size, *, threads=1, repeats=3):
    """Milliseconds of one (1, C, h, w) forward pass, ``size = (h, w)``, in PyTorch (``net``, inference mode, float32
    on the CPU) and in onnxruntime (``runner``, an ``OnnxStereoNetwork`` made with the same ``threads``), alternating
    the two ``repeats`` times after one warm-up each; returns ``(torch_ms, onnx_ms)`` lists in run order."""
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        net = net.cpu().float().eval()
        x = smooth_input((1, *size), runner.in_channels, seed=3)
        timings = ([], [])
        for i in range(repeats + 1):
            for run, out in ((net, timings[0]), (runner, timings[1])):
                started = time.perf_counter()
                with torch.inference_mode():
                    run(x)
                if i:  # the first pass of each warms caches and allocators
                    out.append(1000 * (time.perf_counter() - started))
        return timings
    finally:
        torch.set_num_threads(torch_threads)


def load_onnx_model(path, scale=None, color_order=None, key='--onnx'):
    """``(OnnxStereoNetwork, scale, color order)`` for inference from the stereo ONNX file ``path``: the scale and
    channel order stored by ``export_onnx``, or ``scale`` / ``color_order`` (which must agree with the file where it
    says). Errors are one line starting with ``key`` (the command-line flag)."""
    try:
        runner = OnnxStereoNetwork(path)
    except OnnxModelError as err:
        raise OnnxModelError(f'{key} {err}') from None
    if runner.in_channels != 6:
        raise OnnxModelError(f'{key} {path}: takes (N, {runner.in_channels}, H, W) inputs; a stereo model takes '
                             '(N, 6, H, W) (left and right views on the channels)')
    if scale and runner.scale and scale != runner.scale:
        raise OnnxModelError(f'--scale {scale}: {path} was exported at x{runner.scale}')
    if not (scale or runner.scale):
        raise OnnxModelError(f'{key} {path}: the file does not say its up-scaling factor; give --scale')
    return runner, scale or runner.scale, color_order or runner.color_order or 'bgr'
