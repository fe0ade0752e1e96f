"""Two-minute CPU runs of the non-bicubic tracks on the built-in sample (docs/tracks.md).

    python scripts/track_demo.py realistic    # NTIRE 2023 track 3 style: realistic degradation on the fly
    python scripts/track_demo.py perceptual   # track 2 style: GAN fine-tuning of the realistic model

``realistic`` builds the sample (``make_sample.py``) and a fixed realistic LR of its held-out pair
(``prepare_test_sets.py prepared ... --degradation options/degradations/realistic_x4.yml --seed 0``), trains
``options/train/NAFSSR/sample_realistic_x4.yml``, and scores the network and bicubic up-sampling on that LR, and on
average over ``--draws`` draws of the degradation of the same pair.
``perceptual`` runs ``realistic`` first (a finished run is only tested again), fine-tunes its network with
``options/train/NAFSSR/sample_perceptual_x4.yml`` (L1 + 0.1 x GAN, U-Net discriminator), and scores bicubic, the
fidelity and the perceptual networks and the HR pair itself with PSNR, SSIM and the stereo consistency (and LPIPS
and the NTIRE 2023 perceptual score when LPIPS' AlexNet weights file is here, docs/evaluation.md). Each draws
its picture with ``scripts/plot_results.py compare`` into ``--figures`` (default ``results/track_demo``). Rerunning
resumes an interrupted training or only tests a finished one; the last line printed is ``track_demo <track>: ...``.
Everything is written under ``--workdir`` (default: the repository): ``datasets/sample``, ``experiments/``,
``results/``; the option files' data paths (``datasets/...``) resolve there, the repository's own files
(``options/...``) in the repository.

Each training step records what it is made from in ``experiments/<name>/track_demo.json`` (its option file, the
degradation file, ``--force_yml`` and, for the perceptual step, the fidelity network it starts from). A rerun with
the same inputs resumes or only tests; a step whose inputs changed (another ``--realistic_force_yml``, hence another
fidelity network for the GAN) has its earlier run moved aside (``<name>_archived_<time>``) and is trained again,
so a table never compares networks made from different bases. A step that fails stops the demo with its one-line
error (exit 2).
"""
import argparse
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __name__ == '__main__':
    # One thread (set before torch is imported; train.py inherits it): on a 2-core machine shared with other work,
    # two OpenMP threads made a step ~10x slower, spinning while waiting for each other; the loader's worker
    # degrades the next batch on the other core.
    os.environ.setdefault('OMP_NUM_THREADS', '1')

from basicsr.utils.errors import UserError, run_main  # noqa: E402

REALISTIC_OPT = 'options/train/NAFSSR/sample_realistic_x4.yml'
PERCEPTUAL_OPT = 'options/train/NAFSSR/sample_perceptual_x4.yml'
DEGRADATION = 'options/degradations/realistic_x4.yml'
TEST_SET = 'datasets/sample/test/Motorcycle'
TEST_PAIR = 'motorcycle_bottom'  # its one pair (index 0)
SEED = 0
METRICS = {
    'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False},
    'ssim': {'type': 'calculate_skimage_ssim'},
}
CONSISTENCY = {'stereo_consistency': {'type': 'calculate_stereo_consistency'}}
FLOOR_METRICS = ('stereo_consistency', 'lpips', 'ntire23')  # the HR pair scored against itself: their floor
COLUMNS = [('psnr', 'PSNR (dB)', 9, '{:.2f}'), ('ssim', 'SSIM', 7, '{:.4f}'),  # key, title, width, format
           ('stereo_consistency', 'consistency', 11, '{:.2f}'), ('lpips', 'LPIPS', 7, '{:.4f}'),
           ('ntire23', 'NTIRE23', 7, '{:.4f}')]
CROP, DPI = 64, 64  # the picture: a 64-pixel HR window, 256 pixels per panel (under 300 KB for five panels)


RECORD = 'track_demo.json'  # in experiments/<name>/: what the run there is made from


class TrackDemoError(UserError, RuntimeError):
    """A step of the demo failed, or an input of a step cannot be read."""


def step_error(script, returncode, stderr_tail):
    """The one-line error of a failed step: its own ``<prog>: error: ...`` line when it printed one, else the last
    line of its output (the exception of a traceback)."""
    lines = [line.strip() for line in stderr_tail.replace('\r', '\n').splitlines() if line.strip()]
    own = next((line for line in reversed(lines) if re.match(r'\S+: error\b', line)), None)
    said = own or (lines[-1] if lines else 'no error message')
    return TrackDemoError(f'{script} failed (exit code {returncode}): {said}')


def run(script, *args):
    """Run a script of the repository (path relative to it) in the work folder, printing the command first; its
    output is shown as it comes. A failure stops the demo with the step's own error line (exit 2)."""
    cmd = [sys.executable, os.path.join(ROOT, script), *args]
    print('running: python', shlex.join([script, *args]), flush=True)
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    tail = b''
    with proc.stderr:
        for chunk in iter(lambda: proc.stderr.read1(65536), b''):
            sys.stderr.buffer.write(chunk)
            sys.stderr.flush()
            tail = (tail + chunk)[-16384:]
    if proc.wait() != 0:
        raise step_error(script, proc.returncode, tail.decode('utf-8', 'replace'))


def prepare():
    """The built-in sample and the fixed realistic LR of its test pair (both skip what is already there)."""
    run('scripts/data_preparation/make_sample.py', '--out', 'datasets/sample')
    run('scripts/data_preparation/prepare_test_sets.py', 'prepared', '--src', TEST_SET, '--degradation',
        os.path.join(ROOT, DEGRADATION), '--seed', str(SEED))


def _sha256(path, what):
    try:
        with open(path, 'rb') as f:
            return hashlib.file_digest(f, 'sha256').hexdigest()
    except OSError as err:
        raise TrackDemoError(f'{path}: cannot read {what} ({err.strerror or err})') from None


def made_from(opt_path, force_yml, pretrain=None):
    """What a training step is made from: its option file, the degradation file of its data, the overrides given
    to the demo, and the network it starts from (contents, not paths: a moved work folder is the same run)."""
    return {'option_file': _sha256(os.path.join(ROOT, opt_path), 'the option file'),
            'degradation': _sha256(os.path.join(ROOT, DEGRADATION), 'the degradation file'),
            'force_yml': list(force_yml or []),
            'pretrain_network_g': _sha256(pretrain, 'the network to start from') if pretrain else None}


def _recorded(experiment_root):
    """The inputs recorded for the run in ``experiment_root``, or None (no record, or an unreadable one)."""
    try:
        with open(os.path.join(experiment_root, RECORD), encoding='utf-8') as f:
            return json.load(f)['made_from']
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextmanager
def claimed_step(experiment_root, inputs):
    """``with claimed_step(root, inputs): <train.py>``. A run in ``root`` made from other ``inputs`` (or from unknown
    ones) is moved aside first, so that train.py trains afresh instead of resuming it or finding it finished; then
    ``inputs`` are recorded (under the experiment's lock: a live run there refuses). When the block fails before
    train.py wrote anything (it refused), all is put back as it was: the record removed, the earlier run moved back.
    """
    from basicsr.utils.experiment import ExperimentLock, move_aside

    made = [d for d in (experiment_root, os.path.dirname(experiment_root)) if not os.path.isdir(d)]
    archived, record = None, os.path.join(experiment_root, RECORD)
    with ExperimentLock(experiment_root):
        earlier = _recorded(experiment_root)
        if os.path.isdir(experiment_root) and earlier != inputs and any(
                n != RECORD for n in os.listdir(experiment_root)):
            changed = ', '.join(k for k in inputs if earlier.get(k) != inputs[k]) if earlier else 'not recorded'
            archived = move_aside(experiment_root)
            made.insert(0, experiment_root)
            print(f'note: {experiment_root} was made from other inputs ({changed}): moved to {archived}; training '
                  'it again', flush=True)
        os.makedirs(experiment_root, exist_ok=True)
        tmp = os.path.join(experiment_root, f'.{RECORD}.tmp{os.getpid()}')
        try:
            with open(tmp, 'w', encoding='utf-8') as f:
                json.dump({'made_from': inputs}, f, indent=2)
            os.replace(tmp, record)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
    try:
        yield
    except BaseException:
        # train.py refused before writing anything: nothing of this run to keep
        if os.path.isdir(experiment_root) and os.listdir(experiment_root) == [RECORD]:
            os.remove(record)
            for folder in made:
                if os.path.isdir(folder) and not os.listdir(folder):
                    os.rmdir(folder)
            if archived:
                os.rename(archived, experiment_root)
                print(f'note: {archived} moved back to {experiment_root}', flush=True)
        raise


def train(opt_path, force_yml, pretrain=None):
    """train.py on ``opt_path`` (relative to the repository), starting from the network ``pretrain`` if given,
    after ``claimed_step``; returns the parsed options and the final network."""
    from basicsr.utils.options import parse

    # the degradation file is the repository's; the data paths of the option file are the work folder's
    overrides = [f'datasets:train:degradation={os.path.join(ROOT, DEGRADATION)}',
                 *([f'path:pretrain_network_g={pretrain}'] if pretrain else []), *(force_yml or [])]
    opt = parse(os.path.join(ROOT, opt_path), is_train=True, force_yml=overrides, root_path=os.getcwd())
    in_repo = os.path.abspath(os.getcwd()) == os.path.abspath(ROOT)
    with claimed_step(opt['path']['experiments_root'], made_from(opt_path, force_yml, pretrain)):
        run('train.py', '-opt', opt_path if in_repo else os.path.join(ROOT, opt_path), '--force_yml', *overrides)
    return opt, os.path.join(opt['path']['models'], f"net_g_{int(opt['train']['total_iter'])}.pth")


def held_out_set(opt):
    """The validation set of ``opt`` (the fixed realistic LR of the held-out pair) and its loader."""
    from basicsr.data import build_dataloader, build_dataset

    ds_opt = dict(opt['datasets']['val'], phase='test')
    dataset = build_dataset(ds_opt, key_path='datasets:val')
    return dataset, build_dataloader(dataset, ds_opt, 0, False)


def score_network(opt, weights, loader, metrics):
    """Scores of the trained ``network_g`` of ``opt``; its SR views are saved in results/<name>/visualization."""
    import torch

    from basicsr.evaluation import evaluate
    from basicsr.inference import network_from_options

    net = network_from_options(opt, weights)
    save_dir = os.path.join('results', opt['name'], 'visualization')
    result = evaluate(net, loader, metrics, device=torch.device('cpu'), save_dir=save_dir, show_progress=False)
    return {name: float(result[name]) for name in metrics}, save_dir


def score_images(dataset, metrics):
    """Scores of MATLAB-bicubic up-sampling of the LR pair and of the HR pair itself (the floor of the stereo
    consistency), on the first pair of ``dataset``."""
    from basicsr.metrics import calculate_metric
    from basicsr.utils.img_util import tensor2img
    from basicsr.utils.matlab_functions import imresize

    sample = dataset[0]
    lq, gt = tensor2img(sample['lq']), tensor2img(sample['gt'])
    scale = gt.shape[0] // lq.shape[0]
    bicubic = np.concatenate([imresize(lq[..., :3], scale), imresize(lq[..., 3:], scale)], axis=2)
    scores = {'bicubic': {}, 'HR': {}}
    for name, opt in metrics.items():
        scores['bicubic'][name] = float(calculate_metric({'img': bicubic, 'img2': gt}, opt))
        if name in FLOOR_METRICS:
            scores['HR'][name] = float(calculate_metric({'img': gt, 'img2': gt}, opt))
    return scores, sample['name'], scale


def score_draws(opt, weights, count):
    """Mean PSNR of the network and of bicubic over ``count`` draws of the degradation of the test pair: draw
    ``k`` is what ``prepare_test_sets.py ... --seed k`` writes for it (``pair_generator(k, pair)``), so draw 0 is the
    fixed test LR. One draw is one camera; the mean says more about the model than the single fixed pair."""
    import torch

    from basicsr.data.degradations import degrade_pair, load_degradation, pair_generator
    from basicsr.data.layout import HR_VIEWS
    from basicsr.inference import network_from_options
    from basicsr.metrics import calculate_psnr
    from basicsr.toolbox import read_views
    from basicsr.utils.img_util import tensor2img
    from basicsr.utils.matlab_functions import imresize

    net = network_from_options(opt, weights).eval()
    hr = read_views(os.path.join(TEST_SET, 'hr', TEST_PAIR), HR_VIEWS)
    degradation, scale = load_degradation(os.path.join(ROOT, DEGRADATION)), int(opt['scale'])
    ours, bicubic = [], []
    for k in range(count):
        lr = degrade_pair(*hr, scale, degradation, pair_generator(k, TEST_PAIR))
        with torch.no_grad():
            x = torch.from_numpy(np.concatenate(lr, axis=2).transpose(2, 0, 1)[None].astype(np.float32) / 255)
            sr = tensor2img(net(x))
        ours.append(np.mean([calculate_psnr(sr[..., 3 * v:3 * v + 3], hr[v]) for v in (0, 1)]))
        bicubic.append(np.mean([calculate_psnr(imresize(lr[v], scale), hr[v]) for v in (0, 1)]))
    return float(np.mean(ours)), float(np.mean(bicubic)), int(np.sum(np.array(ours) > np.array(bicubic)))


def perceptual_metrics():
    """LPIPS and the NTIRE 2023 perceptual score when LPIPS' AlexNet backbone file is here (nothing is downloaded
    unless STEREO_SR_ALLOW_DOWNLOAD=1, docs/evaluation.md); else none, with a note."""
    from basicsr.metrics.perceptual import lpips_weights_file

    try:
        lpips_weights_file('alex')
    except UserError as err:
        print(f'note: LPIPS and the NTIRE 2023 score left out: {err}', flush=True)
        return {}
    return {'lpips': {'type': 'calculate_lpips'}, 'ntire23': {'type': 'calculate_ntire2023_perceptual_score'}}


def figure(sr_dirs, labels, out_dir, tag, scale):
    """bicubic | LR (nearest) | <labels> | HR crops of the left view, by scripts/plot_results.py compare."""
    run('scripts/plot_results.py', 'compare', '--sr_dir', *sr_dirs, '--label', *labels, '--show_lr',
        '--lq_dir', f'{TEST_SET}/lr_x4_realistic_x4', '--gt_dir', f'{TEST_SET}/hr', '--scale', str(scale),
        '--crop_size', str(CROP), '--dpi', str(DPI), '--output', out_dir, '--tag', tag)


def table(rows):
    """``rows``: ``[(label, {metric: value})]`` -> aligned lines, one column per metric any row has ('-': none)."""
    columns = [c for c in COLUMNS if any(c[0] in scores for _, scores in rows)]
    lines = [f"{'':<16}" + ''.join(f' {title:>{width}}' for _, title, width, _ in columns)]
    for label, scores in rows:
        lines.append(f'{label:<16}' + ''.join(f' {fmt.format(scores[key]) if key in scores else "-":>{width}}'
                                              for key, _, width, fmt in columns))
    return '\n'.join(lines)


def realistic(args):
    start = time.perf_counter()
    prepare()
    opt, weights = train(REALISTIC_OPT, args.force_yml)
    dataset, loader = held_out_set(opt)
    ours, sr_dir = score_network(opt, weights, loader, METRICS)
    images, pair, scale = score_images(dataset, METRICS)
    figure([sr_dir], ['Fidelity (L1)'], args.figures, 'realistic', scale)
    print(table([('bicubic', images['bicubic']), ('NAFSSR (L1)', ours)]))
    if args.draws:
        mean_ours, mean_bicubic, wins = score_draws(opt, weights, args.draws)
        print(f'mean over {args.draws} draws of the degradation (seeds 0-{args.draws - 1}): NAFSSR {mean_ours:.2f} dB '
              f'vs bicubic {mean_bicubic:.2f} dB, NAFSSR higher in {wins} of {args.draws}')
    print(f'track_demo realistic: NAFSSR {ours["psnr"]:.2f} dB vs bicubic {images["bicubic"]["psnr"]:.2f} dB on '
          f'{pair} (realistic x{scale}, seed {SEED}) in {time.perf_counter() - start:.0f} s', flush=True)
    return opt, weights, sr_dir


def perceptual(args):
    fidelity_opt, fidelity_weights, fidelity_dir = realistic(argparse.Namespace(
        force_yml=args.realistic_force_yml, figures=args.figures, draws=0))
    start = time.perf_counter()
    opt, weights = train(PERCEPTUAL_OPT, args.force_yml, pretrain=fidelity_weights)
    metrics = {**METRICS, **CONSISTENCY, **perceptual_metrics()}
    dataset, loader = held_out_set(opt)
    gan, gan_dir = score_network(opt, weights, loader, metrics)
    fidelity, _ = score_network(fidelity_opt, fidelity_weights, loader, metrics)
    images, pair, scale = score_images(dataset, metrics)
    figure([fidelity_dir, gan_dir], ['Fidelity (L1)', 'Perceptual (L1+GAN)'], args.figures, 'tracks', scale)
    print(table([('bicubic', images['bicubic']), ('NAFSSR (L1)', fidelity), ('NAFSSR (L1+GAN)', gan),
                 ('HR (floor)', images['HR'])]))
    print('consistency: mean |SR left - SR right warped by the HR disparity|, grey levels, lower is better')
    print(f'track_demo perceptual: NAFSSR+GAN {gan["psnr"]:.2f} dB, consistency {gan["stereo_consistency"]:.2f} vs '
          f'NAFSSR {fidelity["psnr"]:.2f} dB, {fidelity["stereo_consistency"]:.2f} (bicubic '
          f'{images["bicubic"]["psnr"]:.2f} dB, {images["bicubic"]["stereo_consistency"]:.2f}; HR '
          f'{images["HR"]["stereo_consistency"]:.2f}) on {pair} (realistic x{scale}) in '
          f'{time.perf_counter() - start:.0f} s after the realistic step', flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('track', choices=['realistic', 'perceptual'])
    parser.add_argument('--force_yml', nargs='+', help="overrides of this track's training options (train.py)")
    parser.add_argument('--realistic_force_yml', nargs='+',
                        help='perceptual: overrides of the realistic (fidelity) run it starts from')
    parser.add_argument('--figures', default='results/track_demo', help='folder of the pictures')
    parser.add_argument('--draws', type=int, default=12,
                        help='realistic: also the mean PSNR over this many draws of the degradation (0: none)')
    parser.add_argument('--workdir', default=ROOT, help='folder of datasets/, experiments/, results/ (default: '
                        'the repository)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not os.path.isdir(args.workdir):
        raise TrackDemoError(f'--workdir {args.workdir}: not a folder (create it first)')
    os.chdir(args.workdir)
    {'realistic': realistic, 'perceptual': perceptual}[args.track](args)
    return 0


if __name__ == '__main__':
    sys.exit(run_main('track_demo.py', main))
