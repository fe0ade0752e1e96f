"""NaN guard, EMA/AMP paths, keep_last pruning, and one-line errors for bad input (nothing in experiments/ lost)."""
import os
import sys

import pytest
import torch

from train_helpers import ROOT, base_options, run_train, write_options

sys.path.insert(0, ROOT)
import train as train_script  # noqa: E402


def _ok(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_nan_loss_skips_steps_then_stops_keeping_the_last_good_state(tiny_data, tmp_path):
    opt_dict = base_options(tiny_data, 'nan', total_iter=3)
    opt = write_options(tmp_path, opt_dict)
    _ok(run_train(opt, tmp_path))
    states = os.path.join(tmp_path, 'experiments', 'nan', 'training_states')
    assert sorted(os.listdir(states)) == ['1.state', '2.state', '3.state']

    # A NaN loss for 3 steps with a limit of 5: the steps are skipped, the weights do not move.
    skip = ['--force_yml', 'train:total_iter=6', 'train:pixel_opt:loss_weight=.nan', 'train:max_nan_steps=5']
    result = _ok(run_train(opt, tmp_path, extra=skip))
    assert 'skipping this step' in result.stdout
    a = torch.load(os.path.join(tmp_path, 'experiments', 'nan', 'models', 'net_g_3.pth'), weights_only=True)
    b = torch.load(os.path.join(tmp_path, 'experiments', 'nan', 'models', 'net_g_6.pth'), weights_only=True)
    assert all(torch.equal(a['params'][k], b['params'][k]) for k in a['params'])

    # Limit 1: the run stops with one clear line and keeps the last good state.
    stop = ['--force_yml', 'train:total_iter=9', 'train:pixel_opt:loss_weight=.nan', 'train:max_nan_steps=1']
    result = run_train(opt, tmp_path, extra=stop)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('train.py: error:') and 'NaN' in last and 'last good state (iter 6)' in last
    assert sorted(os.listdir(states), key=lambda n: int(n.split('.')[0]))[-1] == '6.state'


def test_amp_bf16_and_keep_last(tiny_data, tmp_path):
    opt_dict = base_options(tiny_data, 'amp', total_iter=4)
    opt_dict['train'].update(use_amp=True, amp_dtype='bf16', channels_last=True)
    opt_dict['logger']['keep_last'] = 2
    opt = write_options(tmp_path, opt_dict)
    _ok(run_train(opt, tmp_path))
    exp = os.path.join(tmp_path, 'experiments', 'amp')
    assert sorted(os.listdir(os.path.join(exp, 'training_states'))) == ['3.state', '4.state']
    assert sorted(os.listdir(os.path.join(exp, 'models'))) == ['net_g_3.pth', 'net_g_4.pth']
    ckpt = torch.load(os.path.join(exp, 'models', 'net_g_4.pth'), weights_only=True)
    assert all(torch.isfinite(v).all() for v in ckpt['params'].values())
    assert all(v.dtype == torch.float32 for v in ckpt['params'].values())


def _main_error(argv, capsys, monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['train.py', *argv])
    with pytest.raises(SystemExit) as exc:
        train_script.main()
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('train.py: error: '), lines
    return lines[0]


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('STEREO_SR_TRACEBACK', raising=False)
    return tmp_path


def test_bad_option_keys(tiny_data, in_tmp, capsys, monkeypatch):
    opt = base_options(tiny_data, 'bad')
    del opt['train']['total_iter']
    line = _main_error(['-opt', write_options(in_tmp, opt)], capsys, monkeypatch)
    assert 'train:total_iter' in line
    opt = base_options(tiny_data, 'bad')
    opt['network_g']['widht'] = 8
    line = _main_error(['-opt', write_options(in_tmp, opt)], capsys, monkeypatch)
    assert 'network_g' in line and 'widht' in line
    opt = base_options(tiny_data, 'bad')
    line = _main_error(['-opt', write_options(in_tmp, opt), '--force_yml', 'train:optim_g:type=Adamax'],
                       capsys, monkeypatch)
    assert 'train:optim_g:type' in line


def test_missing_dataset_and_too_large_batch(tiny_data, in_tmp, capsys, monkeypatch):
    opt = base_options(tiny_data, 'bad')
    opt['datasets']['train']['dataroot_gt'] = str(in_tmp / 'nowhere')
    line = _main_error(['-opt', write_options(in_tmp, opt)], capsys, monkeypatch)
    assert 'nowhere' in line
    opt = base_options(tiny_data, 'bad')
    opt['datasets']['train']['batch_size_per_gpu'] = 13
    line = _main_error(['-opt', write_options(in_tmp, opt)], capsys, monkeypatch)
    assert 'datasets:train:batch_size_per_gpu' in line and '12' in line


def test_bad_pretrained_files(tiny_data, in_tmp, capsys, monkeypatch):
    opt = base_options(tiny_data, 'bad')
    opt['path'] = {'pretrain_network_g': str(in_tmp / 'missing.pth')}
    line = _main_error(['-opt', write_options(in_tmp, opt)], capsys, monkeypatch)
    assert 'path:pretrain_network_g' in line and 'missing.pth' in line
    (in_tmp / 'junk.pth').write_bytes(b'not a checkpoint')
    opt['path'] = {'pretrain_network_g': str(in_tmp / 'junk.pth')}
    line = _main_error(['-opt', write_options(in_tmp, opt)], capsys, monkeypatch)
    assert 'junk.pth' in line and 'unreadable' in line
    from basicsr.models.archs import define_network
    wide = define_network(dict(base_options(tiny_data, 'x')['network_g'], width=16))
    torch.save({'params': wide.state_dict()}, in_tmp / 'wide.pth')
    opt['path'] = {'pretrain_network_g': str(in_tmp / 'wide.pth')}
    line = _main_error(['-opt', write_options(in_tmp, opt)], capsys, monkeypatch)
    assert 'wide.pth' in line and 'do not fit the network, e.g. intro.weight (16, 3, 3, 3) (network: (8,' in line


def test_bad_input_never_touches_an_existing_run(tiny_data, in_tmp, capsys, monkeypatch):
    exp = in_tmp / 'experiments' / 'bad' / 'training_states'
    exp.mkdir(parents=True)
    (exp / '5.state').write_bytes(b'precious')
    opt = base_options(tiny_data, 'bad')
    opt['datasets']['train']['batch_size_per_gpu'] = 13
    _main_error(['-opt', write_options(in_tmp, opt)], capsys, monkeypatch)
    assert (exp / '5.state').read_bytes() == b'precious'
    assert sorted(os.listdir(in_tmp / 'experiments')) == ['bad']


@pytest.mark.parametrize('metric, expected', [
    ({'type': 'calculate_psnrr'}, "val:metrics:psnr:type: unknown metric type 'calculate_psnrr'"),
    ({'type': 'calculate_psnr', 'crop_borderr': 0}, 'val:metrics:psnr:crop_borderr (did you mean crop_border?)'),
    ({'type': 'calculate_psnr', 'better': 'up'}, "val:metrics:psnr:better: expected higher or lower, got 'up'"),
])
def test_bad_validation_metric_stops_before_training(tiny_data, in_tmp, capsys, monkeypatch, metric, expected):
    """A typo in val:metrics is reported when the options are read, not at the first validation (with the release
    file, iteration 20,000), and no experiment folder is made."""
    from train_helpers import with_val
    opt = with_val(base_options(tiny_data, 'bad_metric'), tiny_data)
    opt['val']['metrics'] = {'psnr': metric}
    line = _main_error(['-opt', write_options(in_tmp, opt)], capsys, monkeypatch)
    assert expected in line and line.startswith(f'train.py: error: {in_tmp / "bad_metric.yml"}: ')
    assert not (in_tmp / 'experiments').exists()
