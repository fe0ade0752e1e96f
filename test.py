"""Test a stereo SR network on every ``test*`` dataset of an option file and print the papers' table.

    python test.py -opt options/test/NAFSSR/NAFSSR-T_x4.yml
    torchrun --nproc_per_node=2 test.py -opt options/test/NAFSSR/NAFSSR-T_x4.yml --launcher pytorch

Writes results/<name>/{metrics.json, metrics_per_pair.json, metrics.csv, metrics.txt} and, with ``val:save_img``,
the SR views as results/<name>/visualization/<dataset>/<pair>_L.png and _R.png.
"""
import os
import sys

import torch

from basicsr.data import build_dataloader, build_dataset
from basicsr.evaluation import (evaluate, format_table, load_network, table_columns, with_left_variants,
                                write_results)
from basicsr.models.archs import define_network
from basicsr.utils.dist_util import LauncherError, get_dist_info, init_dist
from basicsr.utils.misc import get_time_str
from basicsr.utils.options import OptionError, get_path, parse_options


def run_test(argv=None):
    opt, _ = parse_options(is_train=False, argv=argv)
    distributed = opt['launcher'] != 'none'
    use_cuda = torch.cuda.is_available() and opt.get('num_gpu', 1) != 0
    if distributed:
        init_dist(opt['launcher'], get_path(opt, 'dist_params:backend'), use_cuda=use_cuda,
                  port=get_path(opt, 'dist_params:port'))
    rank, world = get_dist_info()
    device = torch.device('cuda', torch.cuda.current_device()) if use_cuda else torch.device('cpu')

    root = opt['path']['results_root']
    if rank == 0 and os.path.isdir(root) and os.listdir(root):  # never mix two runs' files, never delete one
        archived = f'{root}_archived_{get_time_str()}'
        os.rename(root, archived)
        print(f'test.py: {root} held an earlier run: moved to {archived}', flush=True)
    if distributed:
        torch.distributed.barrier()  # no process writes before the old results are out of the way

    weights = get_path(opt, 'path:pretrain_network_g')
    if not weights:
        raise OptionError(f"{opt['opt_path']}: path:pretrain_network_g must name the checkpoint to test")
    net = define_network(opt['network_g'], key_path='network_g')
    load_network(net, weights, get_path(opt, 'path:param_key_g', 'params'), get_path(opt, 'path:strict_load_g', True))
    net.to(device)

    metrics_opt = with_left_variants(get_path(opt, 'val:metrics'))
    phases = [p for p in opt['datasets'] if p.startswith('test')] or list(opt['datasets'])
    entries = []
    for phase in phases:
        ds_opt = opt['datasets'][phase]
        loader = build_dataloader(build_dataset(ds_opt, key_path=f'datasets:{phase}'), ds_opt,
                                  num_gpu=opt.get('num_gpu', 1) if use_cuda else 0, dist=distributed)
        save_dir = (os.path.join(opt['path']['visualization'], ds_opt['name'])
                    if get_path(opt, 'val:save_img', False) else None)
        result = evaluate(net, loader, metrics_opt, device=device, save_dir=save_dir,
                          self_ensemble=bool(get_path(opt, 'val:self_ensemble', False)),
                          color_order=ds_opt.get('color_order', 'bgr'), amp_dtype=get_path(opt, 'val:amp_dtype'),
                          desc=f"{ds_opt['name']} x{ds_opt['scale']}")
        entries.append((ds_opt['name'], ds_opt['scale'], result))

    if rank == 0:
        columns = table_columns(metrics_opt)
        tables = []
        for scale in dict.fromkeys(s for _, s, _ in entries):
            rows = [(name, r.num_pairs, r.pairs_per_s, r) for name, s, r in entries if s == scale]
            tables.append(format_table(f"{opt['name']}  x{scale}  ({world} process{'es' if world > 1 else ''}, "
                                       f'{device.type})', rows, columns))
        text = '\n\n'.join(tables)
        pairs = sum(r.num_pairs for _, _, r in entries)
        seconds = sum(r.seconds for _, _, r in entries)
        text += (f'\n{pairs} stereo pairs ({2 * pairs} images) in {seconds:.1f} s: '
                 f'{2 * pairs / max(seconds, 1e-9):.2f} images/s')
        print(text, flush=True)
        write_results(root, entries)
        with open(os.path.join(root, 'metrics.txt'), 'w', encoding='utf-8') as f:
            f.write(text + '\n')
        print(f'results written to {root}', flush=True)
    if distributed:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return entries


def main():
    """Run ``run_test``; a bad option, file or checkpoint ends with one line, no traceback
    (set STEREO_SR_TRACEBACK=1 to see it)."""
    from basicsr.utils.checkpoint import CheckpointError
    from basicsr.utils.misc import tune_cpu_allocator

    tune_cpu_allocator()
    from basicsr.utils.img_util import ImageReadError

    try:
        run_test()
    except (OptionError, CheckpointError, ImageReadError, LauncherError, KeyError, TypeError, ValueError,
            OSError) as err:
        if os.environ.get('STEREO_SR_TRACEBACK'):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f'test.py: error: {message}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
