"""Test a stereo SR network on every ``test*`` dataset of an option file and print the papers' table.

    python test.py -opt options/test/NAFSSR/NAFSSR-T_x4.yml
    torchrun --nproc_per_node=2 test.py -opt options/test/NAFSSR/NAFSSR-T_x4.yml --launcher pytorch

Writes results/<name>/{metrics.json, metrics_per_pair.json, metrics.csv, metrics.txt}, the HTML report
report.html (with its data, report.json) and, with ``val:save_img``, the SR views as
results/<name>/visualization/<dataset>/<pair>_L.png and _R.png, with the bicubic and HR views under
results/<name>/references/ for the report's crops.

One run per name at a time: results/.<name>.lock (``ExperimentLock``, as train.py's experiments/) makes a second
run refuse in one line naming the first; an earlier run's folder is moved aside, never mixed with this one. The
metrics files and the report are written whole or not at all. Exit codes: 0 done, 2 a bad input (one line), 130 Ctrl-C.
"""
import functools
import os
import shutil
import sys

import torch

from basicsr.data import build_dataloader, build_dataset
from basicsr.evaluation import evaluate
from basicsr.inference import network_from_options
from basicsr.metrics import metric_better
from basicsr.option_checks import OPTION_CHECKS
from basicsr.report_html import REPORT_FILE, write_run_report
from basicsr.reports import format_report, result_keys, table_columns, with_left_variants, write_results
from basicsr.utils.dist_util import env_rank, get_dist_info, init_dist, on_rank0
from basicsr.utils.errors import UserError, run_main
from basicsr.utils.experiment import ExperimentLock, move_aside
from basicsr.utils.misc import tune_cpu_allocator
from basicsr.utils.options import OptionError, get_path, parse_options

INTERRUPTED_EXIT = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C


class ResultsWriteError(UserError, OSError):
    """The results folder cannot be written (a full disk, a quota, a read-only folder)."""


def claim_results(root):
    """Rank 0, holding the results lock: move an earlier run's folder aside (never mix two runs' files, never
    delete one). Returns the line to print, or None."""
    if not (os.path.isdir(root) and os.listdir(root)):
        return None
    try:
        return f'test.py: {root} held an earlier run: moved to {move_aside(root)}'
    except OSError as err:
        raise ResultsWriteError(f'{root}: cannot move the earlier run aside ({err.strerror or err}); '
                                'nothing was written') from None


def write_metrics(root, entries, text, report=None):
    """Write the metrics files (``reports.write_results`` and the table as metrics.txt) and the report
    (``report(folder, entries)``) into ``root``, all or none: they are written into a hidden folder first and moved
    in at the end, report.html last; a failure or Ctrl-C removes what was moved in, so that metrics files are never
    half a run's and a report is there only when everything it shows is."""
    staging = os.path.join(root, f'.metrics.tmp{os.getpid()}')
    moved = []
    try:
        write_results(staging, entries)
        with open(os.path.join(staging, 'metrics.txt'), 'w', encoding='utf-8') as f:
            f.write(text + '\n')
        if report is not None:
            report(staging, entries)
        for name in sorted(os.listdir(staging), key=lambda n: (n == REPORT_FILE, n)):
            os.replace(os.path.join(staging, name), os.path.join(root, name))
            moved.append(name)
    except BaseException as err:
        for name in moved:
            path = os.path.join(root, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        if isinstance(err, OSError):  # a full disk: one line; the images written so far stay
            raise ResultsWriteError(f'{root}: cannot write the metrics ({err.strerror or err}); no metrics file '
                                    'was written') from None
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def run_on_test_sets(opt, lock, progress):
    """Test the network of ``opt`` on its test sets; ``progress['stage']`` says how far it got (for Ctrl-C)."""
    distributed = opt['launcher'] != 'none'
    use_cuda = torch.cuda.is_available() and opt.get('num_gpu', 1) != 0
    rank, world = get_dist_info()
    device = torch.device('cuda', torch.cuda.current_device()) if use_cuda else torch.device('cpu')
    on_rank0(lock.acquire)  # a second run of the same name stops here, before reading or writing anything

    net = network_from_options(opt).to(device)

    phases = [p for p in opt['datasets'] if p.startswith('test')] or list(opt['datasets'])
    for phase in phases:  # one network has one up-scaling factor: a set at another scale cannot be scored
        if opt['datasets'][phase]['scale'] != opt['scale']:
            raise OptionError(f"{opt['opt_path']}: datasets:{phase}:scale is {opt['datasets'][phase]['scale']} but "
                              f"the network is x{opt['scale']} (scale); test each scale with its own option file")
    loaders = [(opt['datasets'][phase], build_dataloader(
        build_dataset(opt['datasets'][phase], key_path=f'datasets:{phase}'), opt['datasets'][phase],
        num_gpu=opt.get('num_gpu', 1) if use_cuda else 0, dist=distributed)) for phase in phases]

    root = opt['path']['results_root']
    note = on_rank0(claim_results, root)
    if note:
        print(note, flush=True)
    if distributed:
        torch.distributed.barrier()  # no process writes before the old results are out of the way
    progress['stage'] = 'evaluating'

    metrics_opt = with_left_variants(get_path(opt, 'val:metrics'))
    keys = result_keys([(ds_opt['name'], ds_opt['scale'], None) for ds_opt, _ in loaders])
    entries, images = [], {}
    for key, (ds_opt, loader) in zip(keys, loaders):
        save_dir = os.path.join(opt['path']['visualization'], key) if get_path(opt, 'val:save_img', False) else None
        if save_dir:  # the report's crops: its bicubic and HR views are saved with the report
            images[key] = (loader.dataset, ds_opt.get('color_order', 'bgr'), os.path.relpath(save_dir, root))
        if opt.get('manual_seed') is not None:  # networks that draw at test time (SCGLANet's hashing) repeat
            torch.manual_seed(int(opt['manual_seed']))
        result = evaluate(net, loader, metrics_opt, device=device, save_dir=save_dir,
                          self_ensemble=bool(get_path(opt, 'val:self_ensemble', False)),
                          color_order=ds_opt.get('color_order', 'bgr'), amp_dtype=get_path(opt, 'val:amp_dtype'),
                          desc=f"{ds_opt['name']} x{ds_opt['scale']}")
        entries.append((ds_opt['name'], ds_opt['scale'], result))

    columns = table_columns(metrics_opt)
    text = format_report(opt['name'], entries, columns, world, device.type)
    report = functools.partial(write_run_report, run_name=opt['name'], columns=columns, images=images,
                               better={name: metric_better(m) for name, m in metrics_opt.items()})
    on_rank0(write_metrics, root, entries, text, report)  # every process learns whether the results were written
    progress['stage'] = 'written'
    if rank == 0:
        print(text, flush=True)
        print(f'results written to {root}', flush=True)
    if distributed:
        torch.distributed.barrier()
    return entries


def run_test(argv=None):
    """Parse the options, own ``results/<name>`` (``ExperimentLock``, as training owns ``experiments/<name>``) and
    test. Ctrl-C ends with one line and ``INTERRUPTED_EXIT``; the lock is released on every exit."""
    opt, _ = parse_options(is_train=False, argv=argv, registries=OPTION_CHECKS)
    root = opt['path']['results_root']
    lock = ExperimentLock(root)
    progress = {'stage': 'starting'}
    try:
        if opt['launcher'] != 'none':
            init_dist(opt['launcher'], get_path(opt, 'dist_params:backend'),
                      use_cuda=torch.cuda.is_available() and opt.get('num_gpu', 1) != 0,
                      port=get_path(opt, 'dist_params:port'))
        return run_on_test_sets(opt, lock, progress)
    except KeyboardInterrupt:
        rank = env_rank()
        state = {'starting': 'nothing was written',
                 'evaluating': f'{root} is incomplete (no metrics were written); rerun to test again',
                 'written': f'after the results were written to {root}'}[progress['stage']]
        print(f"test.py: interrupted{f' (rank {rank})' if rank else ''} (Ctrl-C): {state}", file=sys.stderr,
              flush=True)
        return INTERRUPTED_EXIT
    finally:
        lock.release()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def main():
    """Run ``run_test``; a bad option, file or checkpoint ends with one line and exit code 2, no traceback
    (set STEREO_SR_TRACEBACK=1 to see it); anything else is a bug and shows its traceback."""
    tune_cpu_allocator()
    result = run_main('test.py', run_test, rank_fn=env_rank)
    return result if isinstance(result, int) else 0


if __name__ == '__main__':
    sys.exit(main())
