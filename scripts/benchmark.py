"""Time what train.py and test.py run: one training step, or inference on one stereo pair.

    python scripts/benchmark.py --model NAFSSR-T_x4 --mode train            # batch 4, LR patches 30x90
    python scripts/benchmark.py --model NAFSSR-T_x4 --mode infer            # KITTI 93x310 and 128x192 pairs
    python scripts/benchmark.py --model NAFSSR-T_x4 --mode train --impl release --release_path /tmp/release_nafssr
    python scripts/benchmark.py --model NAFSSR-T_x4 --mode train --nproc 2  # gloo scaling, 1 thread per process

Every measurement runs in its own fresh process, so that its peak resident memory (``VmHWM`` of
/proc/self/status, reset after warm-up through /proc/self/clear_refs) belongs to that measurement alone; on CUDA
the peak is ``torch.cuda.max_memory_allocated``. Times are the median and the inter-quartile range of
``--repeats`` runs after ``--warmup`` runs. GFLOP/s counts 2 FLOPs per multiply-accumulate from ptflops' aten
backend (convolutions and matrix products, SCAM's attention included) and, for a training step, 3x the forward
count (forward + the two products of the backward pass). ``cpu_ms`` is the median CPU time of the process
(all its threads) per run: on a machine shared with other work it moves less than the wall time, and with one
thread it approximates the wall time of an idle machine.

``--impl ours`` (default) runs the project's own code paths exactly as the entry scripts do: the training step is
``ImageRestorationModel.optimize_parameters`` built from the train option file of the model (``-opt`` to pick
another, ``--force_yml`` to change real options such as ``train:compile=true``), inference is the forward that
test.py runs (``basicsr.evaluation.forward_stereo``: eval mode, ``torch.inference_mode``) on ``network_g`` of the
test option file, with its ``val:amp_dtype`` and ``val:self_ensemble`` (``--force_yml val:amp_dtype=bf16``).
``images_per_s`` counts both views of every pair (2 x batch x processes per step).

``--model`` is a name of the zoo (``basicsr/zoo.py``: ``NAFSSR-T_x4``, ``CVHSSR-T_x4``, ``EHFSSR_S_x4``, ...): its test
option file (``options/test/<family>/<name>.yml``) for inference and its training option file
(its card's first training stage, ``options/train/<family>/<name>.yml`` or ``<name>_s1.yml``) for a training step.
``-opt`` picks any other option file; the rows are then labelled by ``--model`` or, without it, by the file's name.

``--impl release`` times the released architecture, imported unmodified from a checkout of the authors' code
outside the repository (``--release_path``; for NAFSSR also a folder holding ``release_nafssr.py`` or
``NAFSSR_arch.py`` with its imports), built with the same
``network_g`` keys as ours (the constructor keys are the release's; iPASSR's ``Net(upscale_factor)``), called as its
own code calls it, and trained with the release's model step (``basicsr/release_adapters.py``: iPASSR's two views,
SwinFIR's test padding; the losses and the optimizer of the same option file, the optimizer's own defaults, no
``foreach`` forced); inference is ``torch.no_grad()``. The same inputs are fed to both, so the two
can be compared side by side. Checkouts: megvii-research/NAFNet, AlexZou14/CVHSSR, jianwensong/EHFSSR,
YingqianWang/iPASSR, Zdafeng/SwinFIR, fzuzyb/SCGLANet, GoKerrChen/SwinFSR (their own dependencies, e.g. einops, on
the Python path; timm and SCGLANet's BasicSR are stood in for).

A bad input (an unknown ``--model``, a missing or empty ``--release_path``, an option a worker refuses) is one line
``benchmark.py: error: ...`` and exit status 2, checked before any worker starts where it can be.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist

from basicsr import release_adapters
from basicsr.data import build_loaders
from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher
from basicsr.evaluation import forward_stereo
from basicsr.models import build_model
from basicsr.models.archs import define_network
from basicsr.models.archs.complexity import count_macs
from basicsr.release_adapters import ReleaseTrainStep, build_release_net, check_release_path, release_infer_fn
from basicsr.toolbox import REPO, size_type, zoo_model, zoo_option_file
from basicsr.utils.errors import USER_ERROR_EXIT, UserError, run_main
from basicsr.utils.misc import tune_cpu_allocator
from basicsr.utils.options import get_path, parse
from basicsr.zoo import LR_PATCH

ROOT = Path(REPO)
INFER_SIZES = ((93, 310), (128, 192))  # KITTI at x4 (375x1242 / 4) and a Flickr1024-like pair
TRAIN_SIZE = LR_PATCH  # LR training patch of the releases


class BenchmarkError(UserError, ValueError):
    """A bad option of benchmark.py, or a worker's one-line refusal passed on."""


def default_option_file(name, mode):
    """The option file of zoo model ``name`` for ``mode``: its card's test file, or its first training stage."""
    model = zoo_model(name)
    if mode == 'infer':
        return zoo_option_file(model)
    if not model.train:
        raise BenchmarkError(f'--model {name}: the zoo has no training option file for it; give one with -opt')
    return str(ROOT / model.train[0])


# ----------------------------------------------------------------------------------------------- measuring
def _proc_status_mb(key):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) / 1024
    return float('nan')


def _reset_peak_rss():
    """Make VmHWM restart from the current RSS (Linux >= 4.0); harmless where not allowed."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def option_file(spec):
    """The option file of the measurement: ``-opt``, or the zoo model's file for the mode."""
    return spec.get('opt') or default_option_file(spec['model'], spec['mode'])


def parse_options(spec):
    """The option file with ``--force_yml`` applied, as train.py or test.py reads it."""
    return parse(option_file(spec), is_train=spec['mode'] == 'train', force_yml=spec.get('force_yml'),
                 root_path=spec['scratch'])


class OursTrainStep:
    """The project's training step: the training model's optimize_parameters, built from the option file."""

    def __init__(self, spec, device):
        opt = parse_options(spec)
        opt['num_gpu'] = 1 if device.type == 'cuda' else 0
        opt['dist'] = spec['world_size'] > 1
        self.model = build_model(opt)
        self.net = self.model.net_g
        self.iter = 0
        self.prefetcher = None
        self.data_ms = []
        if spec.get('data'):  # the option file's training set through train.py's loaders (basicsr.data)
            self.train_opt = opt['datasets']['train']
            train_only = dict(opt, datasets={'train': self.train_opt})
            loader, self.sampler, _ = build_loaders(train_only, int(opt.get('manual_seed') or 0), spec['rank'],
                                                    spec['world_size'], opt['num_gpu'])
            cuda_prefetch = opt['datasets']['train'].get('prefetch_mode') == 'cuda' and device.type == 'cuda'
            self.prefetcher = CUDAPrefetcher(loader, device) if cuda_prefetch else CPUPrefetcher(loader)
            self.epoch = 0

    def __call__(self, lq, gt, gt_plain=None):
        self.iter += 1
        self.model.update_learning_rate(self.iter)  # as train.py does before every step
        # gt_plain: the unsharpened HR a GAN loss may read (train:gan_gt_usm false); a synthetic batch has one HR
        self.model.feed_data({'lq': lq, 'gt': gt, 'gt_plain': gt if gt_plain is None else gt_plain})
        self.model.optimize_parameters(self.iter)

    def step_from_loader(self):
        """Wait for the next batch of the loader (timed into ``data_ms``), then train on it."""
        t0 = time.perf_counter()
        data = self.prefetcher.next()
        if data is None:  # a new epoch, as in train.py
            self.epoch += 1
            self.sampler.set_epoch(self.epoch)
            self.prefetcher.reset()
            data = self.prefetcher.next()
        self.data_ms.append((time.perf_counter() - t0) * 1000)
        self(data['lq'], data['gt'], data.get('gt_plain'))


def build_our_net(spec):
    """``network_g`` of the option file, as test.py builds it."""
    return define_network(parse_options(spec)['network_g'], key_path='network_g')


def our_infer_fn(net, spec):
    """The forward test.py runs: basicsr.evaluation.forward_stereo (eval mode, torch.inference_mode), with the
    file's ``val:amp_dtype`` and ``val:self_ensemble``."""
    opt = parse_options(spec)
    amp, ensemble = get_path(opt, 'val:amp_dtype'), bool(get_path(opt, 'val:self_ensemble', False))
    return lambda lq: forward_stereo(net, lq, ensemble, amp)


def worker(spec):
    """Run one measurement in this process; return its result dict."""
    torch.set_num_threads(spec['threads'])
    if spec['impl'] == 'ours':  # what train.py, test.py and the inference script do first
        tune_cpu_allocator()
    device = torch.device(spec['device'])
    rank, world = spec['rank'], spec['world_size']
    if world > 1:
        dist.init_process_group('gloo')
    torch.manual_seed(0)
    h, w = spec['size']
    s = spec['scale']
    batch = spec['batch']
    lq = torch.rand(batch, 6, h, w, device=device)
    gt = torch.rand(batch, 6, h * s, w * s, device=device)

    if spec['mode'] == 'train':
        if spec['impl'] == 'release':
            opt = parse_options(spec)
            step = ReleaseTrainStep(build_release_net(opt, spec['release_path']), opt, device, ddp=world > 1)
        else:
            step = OursTrainStep(spec, device)
        net = step.net
        run = step.step_from_loader if spec.get('data') else (lambda: step(lq, gt))
        if spec.get('data'):  # the loader's batch and patch size, for the row and the MAC count
            train_set = step.train_opt
            batch = int(train_set['batch_size_per_gpu'])
            h, w = int(train_set['gt_size_h']) // s, int(train_set['gt_size_w']) // s
    else:
        net = (build_release_net(parse_options(spec), spec['release_path']) if spec['impl'] == 'release'
               else build_our_net(spec)).to(device).eval()
        run_fn = release_infer_fn(net) if spec['impl'] == 'release' else our_infer_fn(net, spec)
        run = lambda: run_fn(lq)  # noqa: E731

    macs = float(count_macs(net, (6, h, w))) * batch if rank == 0 and not spec.get('no_macs') else float('nan')
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    if world > 1:
        sync_all = lambda: (sync(), dist.barrier())  # noqa: E731
    else:
        sync_all = sync
    for _ in range(spec['warmup']):
        run()
    sync_all()
    if spec.get('data'):
        step.data_ms.clear()  # only the timed runs count
    base_mb = _proc_status_mb('VmRSS')
    _reset_peak_rss()
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    times, cpu_times = [], []
    for _ in range(spec['repeats']):
        t0, c0 = time.perf_counter(), time.process_time()
        run()
        sync_all()
        times.append((time.perf_counter() - t0) * 1000)
        cpu_times.append((time.process_time() - c0) * 1000)
    if device.type == 'cuda':
        peak_mb = torch.cuda.max_memory_allocated() / 2 ** 20
    else:
        peak_mb = _proc_status_mb('VmHWM')
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    ms = statistics.median(times)
    flops = 2 * macs * (3 if spec['mode'] == 'train' else 1) * world
    return dict(mode=spec['mode'], model=spec['model'], impl=spec['impl'], device=spec['device'],
                batch=batch, size=f'{h}x{w}', threads=spec['threads'], nproc=world,
                ms=round(ms, 2), cpu_ms=round(statistics.median(cpu_times), 2), p25=round(q[0], 2),
                p75=round(q[2], 2), min=round(min(times), 2),
                spread_pct=round(100 * (q[2] - q[0]) / ms, 1), peak_mb=round(peak_mb, 1),
                base_mb=round(base_mb, 1) if device.type != 'cuda' else None,
                gmacs=round(macs / 1e9, 3), gflops_per_s=round(flops / ms / 1e6, 2),
                it_per_s=round(1000 / ms, 3), images_per_s=round(2 * batch * world * 1000 / ms, 2),
                force_yml=spec.get('force_yml') or [],
                **(dict(data_ms=round(statistics.median(step.data_ms), 2),
                        data_share_pct=round(100 * statistics.median(step.data_ms) / ms, 1))
                   if spec.get('data') else {}),
                repeats=spec['repeats'], torch=torch.__version__)


# ----------------------------------------------------------------------------------------------- driver
WORKER_ERROR = 'benchmark.py: error: '  # how run_main reports a worker's UserError


def run_measurement(spec, nproc=1):
    """Start ``nproc`` fresh worker processes for one measurement; return rank 0's result."""
    env = dict(os.environ, OMP_NUM_THREADS=str(spec['threads']), MKL_NUM_THREADS=str(spec['threads']))
    if nproc > 1:
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            port = sock.getsockname()[1]
        env.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), WORLD_SIZE=str(nproc))
    procs = []
    for rank in range(nproc):
        s = dict(spec, rank=rank, world_size=nproc)
        penv = dict(env, RANK=str(rank), LOCAL_RANK=str(rank))
        procs.append(subprocess.Popen([sys.executable, __file__, '--_worker', json.dumps(s)], env=penv,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outs = [p.communicate() for p in procs]
    finally:  # never leave a worker running behind an interrupted benchmark
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outs):
        refusal = next((line for line in reversed(err.splitlines()) if line.startswith(WORKER_ERROR)), None)
        if p.returncode == USER_ERROR_EXIT and refusal:  # the worker's one line: a bad input, not a crash
            raise BenchmarkError(refusal[len(WORKER_ERROR):])
        if p.returncode != 0:
            raise SystemExit(f'benchmark worker failed ({spec["impl"]} {spec["mode"]} {spec["size"]}):\n{err.strip()}')
    return json.loads(outs[0][0].strip().splitlines()[-1])


def format_row(r):
    return (f"{r['model']:<14} {r['impl']:<8} {r['mode']:<6} {r['size']:>8} b{r['batch']:<3} "
            f"{r['nproc']}x{r['threads']}thr {r['ms']:>10.1f} ms  (IQR {r['p25']:.1f}-{r['p75']:.1f}, "
            f"{r['spread_pct']:.1f}%)  peak {r['peak_mb']:>8.1f} MB  {r['gflops_per_s']:>7.2f} GFLOP/s"
            + (f"  data {r['data_ms']:.1f} ms ({r['data_share_pct']:.1f}% of the step)" if 'data_ms' in r else ''))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', help='a name of the zoo (NAFSSR-T_x4, CVHSSR-T_x4, EHFSSR_S_x4, ...; '
                                   'default NAFSSR-T_x4, or the name of the -opt file)')
    p.add_argument('--mode', choices=('train', 'infer'), default='train')
    p.add_argument('--batch', type=int, help='train: 4 (the release per-GPU batch); infer: 1')
    p.add_argument('--size', type=size_type, action='append', metavar='HxW',
                   help='LR size HxW (repeatable); train: 30x90, infer: 93x310 and 128x192')
    p.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    p.add_argument('--impl', choices=('ours', 'release'), default='ours')
    p.add_argument('--release_path', default=release_adapters.DEFAULT_RELEASE_PATH,
                   help="--impl release: a checkout of the model's released code (default "
                        f'{release_adapters.DEFAULT_RELEASE_PATH})')
    p.add_argument('-opt', help='option file (default: the zoo card\'s test file for infer, its first training '
                                'stage for train)')
    p.add_argument('--force_yml', nargs='+', default=[], help='a:b:c=value overrides of the option file')
    p.add_argument('--threads', type=int, default=None, help='threads per process (default: all, 1 with --nproc)')
    p.add_argument('--nproc', type=int, default=1, help='train only: N gloo processes vs 1, same per-process batch')
    p.add_argument('--data', action='store_true',
                   help="train only: take the batches from the option file's training set through train.py's loader "
                        '(its workers and augmentations) and report the wait for data as a share of the step')
    p.add_argument('--warmup', type=int, default=None)
    p.add_argument('--repeats', type=int, default=None)
    p.add_argument('--json', action='store_true', help='one JSON line per measurement')
    p.add_argument('--no_macs', action='store_true',
                   help='skip the MAC count (GFLOP/s reported as nan): it runs a forward of its own, minutes for the '
                        'L models on a CPU')
    p.add_argument('--_worker', help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args._worker:
        print(json.dumps(worker(json.loads(args._worker))), flush=True)
        return

    if args.model is not None:
        zoo_model(args.model)  # a one-line exit for an unknown name, before any work
    label = args.model or (Path(args.opt).stem if args.opt else 'NAFSSR-T_x4')
    if args.data and (args.mode != 'train' or args.impl != 'ours'):
        raise BenchmarkError('--data: the loader is measured for --mode train --impl ours only')
    if args.data and args.size:
        raise BenchmarkError('--data: the patch size comes from the option file (datasets:train:gt_size_h/w), '
                             'not --size')
    if args.data and args.batch:
        args.force_yml = [*args.force_yml, f'datasets:train:batch_size_per_gpu={args.batch}']
    if args.nproc > 1 and args.mode != 'train':
        raise BenchmarkError('--nproc: scaling is measured for --mode train only')
    sizes = args.size or (
        [TRAIN_SIZE] if args.mode == 'train' else list(INFER_SIZES))
    threads = args.threads or (1 if args.nproc > 1 else (os.cpu_count() or 1))
    base = dict(model=label, mode=args.mode, device=args.device,
                impl=args.impl, release_path=args.release_path, opt=args.opt, force_yml=args.force_yml, data=args.data,
                batch=args.batch or (4 if args.mode == 'train' else 1), threads=threads,
                warmup=args.warmup if args.warmup is not None else (3 if args.mode == 'train' else 2),
                repeats=args.repeats or (10 if args.mode == 'train' else 7), no_macs=args.no_macs)
    results = []
    with tempfile.TemporaryDirectory(prefix='stereo_sr_bench_') as scratch:
        base['scratch'] = scratch  # experiment folders of the training model go here, never into the repo
        opt = parse_options(base)
        base['scale'] = int(opt['scale'])
        if args.impl == 'release':
            check_release_path(opt['network_g']['type'], args.release_path)
        for size in sizes:
            spec = dict(base, size=size)
            runs = [(spec, 1)] if args.nproc == 1 else [(spec, 1), (spec, args.nproc)]
            for s, n in runs:
                r = run_measurement(s, n)
                results.append(r)
                if n > 1:
                    single = results[-2]
                    # same per-process batch: ideal is n times the samples per second of one process
                    r['scaling_efficiency'] = round(single['ms'] / r['ms'], 3)
                print(json.dumps(r) if args.json else format_row(r) + (
                    f"  scaling efficiency {r['scaling_efficiency']:.2f}" if 'scaling_efficiency' in r else ''),
                    flush=True)
    return results


def cli(argv=None):
    main(argv)
    return 0


if __name__ == '__main__':
    sys.exit(run_main('benchmark.py', cli))
