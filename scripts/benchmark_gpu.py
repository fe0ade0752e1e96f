"""The CUDA table of docs/benchmarks.md: NAFSSR T/S/B/L, training step and inference, in the settings a user picks.

    python scripts/benchmark_gpu.py --out bench_gpu.jsonl                       # all sizes, x4
    python scripts/benchmark_gpu.py --models T_x4 --release_path /tmp/release_nafssr --budget 300

Every row is one ``scripts/benchmark.py --device cuda --json`` measurement (its own process, so compilation
caches, the allocator and the peak-memory counter start fresh), with the settings given as real option overrides:

    fp32            the option file as it is (channels-last features: ``network_g:channels_last`` defaults to true)
    bf16            train: ``train:use_amp=true train:amp_dtype=bf16``; infer: ``val:amp_dtype=bf16``
    fp32-nchw       ``network_g:channels_last=false``
    compile         ``train:compile=true`` (training only; the first steps, compilation included, are warm-up)
    compile-cg      ``train:compile=true train:compile_mode=reduce-overhead`` (CUDA graphs; first compile model only)
    release         the released architecture and training step (``--release_path``, a scratch copy)

Rows are written to ``--out`` as they finish (JSON lines); a markdown table is printed at the end. ``--budget``
stops starting new measurements after that many seconds, so a time-limited machine still returns the rows it
finished; rows run in order of importance (fp32 and the release first).
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from basicsr.utils.errors import run_main

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {
    'train': {'fp32': [], 'bf16': ['train:use_amp=true', 'train:amp_dtype=bf16'],
              'fp32-nchw': ['network_g:channels_last=false'], 'compile': ['train:compile=true'],
              'compile-cg': ['train:compile=true', 'train:compile_mode=reduce-overhead']},
    'infer': {'fp32': [], 'bf16': ['val:amp_dtype=bf16'], 'fp32-nchw': ['network_g:channels_last=false']},
}


def plan(models, release_path, compile_models):
    """(setting, benchmark.py arguments) in the order they run: the fp32 and release rows of every model first,
    then bf16, then compilation of the first compile model (default mode and CUDA graphs), then the channels-first
    rows, then the other compilations."""
    def job(model, mode, setting):
        args = ['--model', f'NAFSSR-{model}', '--mode', mode, '--device', 'cuda', '--json']
        if setting == 'release':
            args += ['--impl', 'release', '--release_path', release_path]
        elif setting.startswith('compile'):
            args += ['--warmup', '5']  # compilation happens in the first steps
        if SETTINGS[mode].get(setting):
            args += ['--force_yml', *SETTINGS[mode][setting]]
        return setting, args

    jobs = []
    first = ['fp32'] + (['release'] if release_path else [])  # side by side, model by model
    jobs += [job(m, mode, setting) for m in models for mode in ('train', 'infer') for setting in first]
    jobs += [job(m, mode, 'bf16') for m in models for mode in ('train', 'infer')]
    jobs += [job(m, 'train', setting) for m in compile_models[:1] for setting in ('compile', 'compile-cg')]
    jobs += [job(m, mode, 'fp32-nchw') for m in models for mode in ('train', 'infer')]
    jobs += [job(m, 'train', 'compile') for m in compile_models[1:]]
    return jobs


def table(rows):
    head = ('| model | mode | setting | size | batch | ms (median) | IQR ms | it/s | images/s | peak MB | '
            'GFLOP/s |\n|---|---|---|---|---|---|---|---|---|---|---|')
    lines = [head]
    for r in rows:
        lines.append(f"| {r['model']} | {r['mode']} | {r['setting']} | {r['size']} | {r['batch']} | {r['ms']:.2f} | "
                     f"{r['p25']:.2f}-{r['p75']:.2f} | {r['it_per_s']:.1f} | {r['images_per_s']:.1f} | "
                     f"{r['peak_mb']:.0f} | {r['gflops_per_s']:.0f} |")
    return '\n'.join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--models', default='T_x4,S_x4,B_x4,L_x4', help='comma list of {T,S,B,L}_x{2,4}')
    p.add_argument('--compile_models', default='T_x4,S_x4', help='models also timed with train:compile=true')
    p.add_argument('--release_path', default=None, help='scratch folder with the released arch (optional)')
    p.add_argument('--out', default='benchmark_gpu.jsonl')
    p.add_argument('--budget', type=float, default=None, help='seconds after which no new measurement starts')
    p.add_argument('--timeout', type=float, default=600, help='seconds one measurement may take')
    args = p.parse_args(argv)
    models = [m for m in args.models.split(',') if m]
    compile_models = [m for m in args.compile_models.split(',') if m]
    start = time.monotonic()
    rows = []
    with open(args.out, 'a', encoding='utf-8') as out:
        for setting, bench_args in plan(models, args.release_path, compile_models):
            if args.budget is not None and time.monotonic() - start > args.budget:
                print(f'budget of {args.budget:.0f} s spent: skipped {setting} {" ".join(bench_args[:4])}',
                      flush=True)
                continue
            t0 = time.monotonic()
            try:
                proc = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'benchmark.py'), *bench_args],
                                      capture_output=True, text=True, cwd=ROOT, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                print(f'TIMEOUT ({args.timeout:.0f} s) {setting} {" ".join(bench_args)}', flush=True)
                continue
            if proc.returncode != 0:
                err = (proc.stderr or proc.stdout).strip().splitlines()
                print(f'FAILED {setting} {" ".join(bench_args)}: {" | ".join(err[-3:])}', flush=True)
                continue
            for line in proc.stdout.splitlines():
                if line.startswith('{'):
                    r = dict(json.loads(line), setting=setting, wall_s=round(time.monotonic() - t0, 1))
                    rows.append(r)
                    out.write(json.dumps(r) + '\n')
                    out.flush()
                    print(f"{r['model']:<12} {r['mode']:<5} {setting:<9} {r['size']:>7} {r['ms']:9.2f} ms "
                          f"peak {r['peak_mb']:8.0f} MB  ({r['wall_s']:.0f} s)", flush=True)
    print(table(rows))
    return 0


if __name__ == '__main__':
    sys.exit(run_main('benchmark_gpu.py', main))
