"""Weights & Biases logging with BasicSR's keys (``logger:wandb:project``, ``resume_id``, plus ``entity``, ``mode``).

Everything runs offline (``WANDB_MODE=offline`` as well as ``mode: offline``, wandb's folders in tmp_path): the run
folder that wandb writes is read back from its ``.wandb`` file (wandb's record log: a 7-byte header, then 32 KiB
blocks of chunks ``crc32 (4) | length (2) | kind (1) | data``; each record is a ``wandb_internal_pb2.Record``).
"""
import json
import os
import re
import struct
import sys
import time

import pytest

from helpers import kill_tree, load_script, reaped
from train_helpers import base_options, run_train, start_train, with_val, write_options

from basicsr.option_checks import OPTION_CHECKS
from basicsr.utils.errors import USER_ERROR_EXIT, run_main
from basicsr.utils.logger import WANDB_ID_FILE, ExperimentLogger, WandbError, wandb_run_id, wandb_settings
from basicsr.utils.options import OptionError, parse_options

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAIN_FILE = os.path.join(ROOT, 'options', 'train', 'NAFSSR', 'quickstart_x4.yml')


def wandb_records(path):
    """The records of a ``.wandb`` file, in order; a file cut short (a killed run) gives those complete before."""
    from wandb.proto import wandb_internal_pb2

    with open(path, 'rb') as f:
        data = f.read()
    assert data[:4] == b':W&B', f'{path} is not a wandb record log'
    block, pos, pending = 32768, 7, b''
    while True:
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
        if pos + 7 > len(data):
            return
        _, length, kind = struct.unpack('<IHB', data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0 or len(chunk) < length:
            return
        pending = chunk if kind in (1, 2) else pending + chunk  # 1 full, 2 first, 3 middle, 4 last
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def read_run(folder):
    """``{'id', 'project', 'config', 'rows', 'files'}`` of one offline run folder; a row maps each logged key
    (``'losses/l_pix'``, or ``'val/x/path'`` for a field of an image) to its value."""
    wandb_file = [n for n in os.listdir(folder) if n.endswith('.wandb')]
    assert len(wandb_file) == 1, os.listdir(folder)
    run = {'rows': [], 'files': []}
    for record in wandb_records(os.path.join(folder, wandb_file[0])):
        kind = record.WhichOneof('record_type')
        if kind == 'run':
            run.update(id=record.run.run_id, project=record.run.project,
                       config={u.key: json.loads(u.value_json) for u in record.run.config.update})
        elif kind == 'history':
            run['rows'].append({'/'.join(i.nested_key) or i.key: json.loads(i.value_json) for i in record.history.item})
        elif kind == 'files':
            run['files'] += [f.path for f in record.files.files]
    return run


def run_folders(experiment):
    root = os.path.join(experiment, 'wandb')
    return sorted(os.path.join(root, n) for n in os.listdir(root) if n.startswith('offline-run-')) \
        if os.path.isdir(root) else []


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """wandb offline and silent, its own folders (settings, cache, artifacts) in tmp_path: no network, no home."""
    for key in ('WANDB_DIR', 'WANDB_API_KEY', 'WANDB_ENTITY', 'WANDB_PROJECT', 'WANDB_RUN_ID', 'WANDB_RESUME'):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv('WANDB_MODE', 'offline')
    monkeypatch.setenv('WANDB_SILENT', 'true')
    for key in ('WANDB_CONFIG_DIR', 'WANDB_CACHE_DIR', 'WANDB_DATA_DIR', 'WANDB_ARTIFACT_DIR'):
        monkeypatch.setenv(key, str(tmp_path / 'wandb_home' / key.lower()))


def logged_losses(text):
    """``{iter: l_pix}`` from the training lines of a log (4 significant digits)."""
    return {int(i.replace(',', '')): float(v) for i, v in re.findall(r'\[iter ([\d,]+)/.*?l_pix: (\S+)', text)}


def test_two_processes_log_once_and_a_rerun_after_sigkill_continues_the_same_run(tiny_data, tmp_path, offline):
    """torchrun with 2 processes: only rank 0 opens a wandb run; SIGKILL after a checkpoint, then the same command
    again: a second offline folder of the same run id, holding the losses, lr, validation metrics and image of the
    iterations it trained, the option file and the options as config."""
    opt = with_val(base_options(tiny_data, 'wb', total_iter=8), tiny_data, val_freq=4)
    opt['logger']['wandb'] = {'project': 'stereo_sr_tests', 'mode': 'offline', 'resume_id': None}
    opt['val']['tb_images'] = 1
    opt_path = write_options(tmp_path, opt)
    experiment = os.path.join(tmp_path, 'experiments', 'wb')
    states = os.path.join(experiment, 'training_states')
    with reaped(start_train(opt_path, tmp_path, nproc=2, launcher='torchrun')) as (proc,):
        while not os.path.exists(os.path.join(states, '2.state')):
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            time.sleep(0.01)
        kill_tree(proc)
        proc.wait(timeout=30)
    killed_at = max(int(n.split('.')[0]) for n in os.listdir(states) if n.endswith('.state'))
    assert killed_at < 8, 'the run finished before it could be killed: nothing was tested'
    with open(os.path.join(experiment, WANDB_ID_FILE)) as f:
        run_id = f.read().strip()
    first = run_folders(experiment)
    assert len(first) == 1 and first[0].endswith('-' + run_id), first  # rank 1 opened no run

    result = run_train(opt_path, tmp_path, nproc=2, launcher='torchrun')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    folders = run_folders(experiment)
    assert len(folders) == 2 and all(f.endswith('-' + run_id) for f in folders), folders
    rerun_folder = next(f for f in folders if f not in first)
    rerun = read_run(rerun_folder)
    assert rerun['id'] == run_id and rerun['project'] == 'stereo_sr_tests'
    assert rerun['config']['name'] == 'wb' and rerun['config']['train']['total_iter'] == 8
    assert 'wb.yml' in rerun['files']
    with open(opt_path, 'rb') as a, open(os.path.join(rerun_folder, 'files', 'wb.yml'), 'rb') as b:
        assert a.read() == b.read()

    log = result.stdout + result.stderr
    losses = {row['iter']: row['losses/l_pix'] for row in rerun['rows'] if 'losses/l_pix' in row}
    expected = logged_losses(log)
    assert sorted(losses) == sorted(expected) == list(range(killed_at + 1, 9))  # logger:print_freq 1
    for it, value in losses.items():
        assert value == pytest.approx(expected[it], rel=1e-3)  # the log prints 4 significant digits
    assert all('train/lr' in row for row in rerun['rows'] if 'losses/l_pix' in row)
    psnr = {row['iter']: row['metrics/Tiny/psnr'] for row in rerun['rows'] if 'metrics/Tiny/psnr' in row}
    validated = {int(i): float(v) for i, v in re.findall(r'validation Tiny @ iter (\d+): psnr: (\S+)', log)}
    assert sorted(psnr) == sorted(validated) == [i for i in (4, 8) if i > killed_at]  # val:val_freq 4
    for it, value in psnr.items():
        assert value == pytest.approx(validated[it], abs=1e-4)  # the log prints 4 decimals
    images = [row for row in rerun['rows'] if 'val/Tiny/pair1_sr_gt/path' in row]
    assert [row['iter'] for row in images] == sorted(psnr)  # val:tb_images 1: the first pair at each validation
    assert os.path.isfile(os.path.join(rerun_folder, 'files', images[0]['val/Tiny/pair1_sr_gt/path']))
    assert (images[0]['val/Tiny/pair1_sr_gt/width'], images[0]['val/Tiny/pair1_sr_gt/height']) == (2 * 48, 24)


def parse_train(*overrides):
    argv = ['-opt', PLAIN_FILE] + (['--force_yml', *overrides] if overrides else [])
    return parse_options(True, argv, registries=OPTION_CHECKS)[0]


def refusal(*overrides):
    with pytest.raises(OptionError) as info:
        parse_train(*overrides)
    message = str(info.value)
    assert '\n' not in message and message.startswith(f'{PLAIN_FILE}: '), message
    return message[len(PLAIN_FILE) + 2:]


@pytest.mark.parametrize('override, expected', [
    ('logger:wandb=true', 'logger:wandb must be a mapping with project (and resume_id, entity, mode), got True'),
    ('logger:wandb:project=3', 'logger:wandb:project must be a wandb project name (at most 128 characters, none of '
                               '/ \\ # ? % :) or ~, got 3'),
    ('logger:wandb:project=a/b', "logger:wandb:project must be a wandb project name (at most 128 characters, none "
                                 "of / \\ # ? % :) or ~, got 'a/b'"),
    ('logger:wandb:entity=[me]', "logger:wandb:entity must be a wandb user or team name, or ~, got ['me']"),
    ('logger:wandb:resume_id=12345678', "logger:wandb:resume_id must be the id of a wandb run (a quoted string, "
                                        "none of : ; , # ? / ') or ~, got 12345678"),
    ('logger:wandb:resume_id=a:b', "logger:wandb:resume_id must be the id of a wandb run (a quoted string, none of "
                                   ": ; , # ? / ') or ~, got 'a:b'"),
    ('logger:wandb:mode=offlne', "logger:wandb:mode must be online, offline or disabled (or ~), got 'offlne'"),
])
def test_bad_wandb_options_are_one_line_naming_the_key(override, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert refusal('logger:wandb:project=stereo', override) == expected
    assert os.listdir(tmp_path) == []


def test_wandb_options_in_use(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('WANDB_MODE', raising=False)
    assert wandb_settings(parse_train('logger:wandb={project: ~, resume_id: ~}')) is None  # the released files
    opt = parse_train('logger:wandb={project: stereo, entity: lab, mode: offline, resume_id: "0123abcd"}')
    settings = wandb_settings(opt)
    assert (settings.project, settings.entity, settings.mode, settings.resume_id) == ('stereo', 'lab', 'offline',
                                                                                       '0123abcd')
    assert settings.name == opt['name'] and settings.option_file == PLAIN_FILE
    assert settings.experiment_root == str(tmp_path / 'experiments' / opt['name'])
    assert settings.config['train'] == opt['train']
    assert wandb_settings(parse_train('logger:wandb={project: stereo, mode: disabled}')) is None
    monkeypatch.setenv('WANDB_MODE', 'disabled')
    assert wandb_settings(parse_train('logger:wandb:project=stereo')) is None
    monkeypatch.delenv('WANDB_MODE')
    debug = parse_options(True, ['-opt', PLAIN_FILE, '--debug', '--force_yml', 'logger:wandb:project=stereo'],
                          registries=OPTION_CHECKS)[0]
    assert wandb_settings(debug) is None  # BasicSR leaves debug runs out of wandb too


def test_a_misspelt_wandb_key_is_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    parse_train('logger:wandb={project: ~, resume_di: abc}')
    assert capsys.readouterr().err.strip() == (f'{PLAIN_FILE}: warning: unknown option logger:wandb:resume_di (did '
                                               'you mean resume_id?); ignored')


def test_without_the_wandb_package_train_py_refuses_in_one_line_before_writing(tmp_path, monkeypatch, capsys):
    """BasicSR stops at start with an ImportError when wandb is asked for and missing; here it is one line, exit 2,
    nothing written. mode: disabled needs no package."""
    monkeypatch.setitem(sys.modules, 'wandb', None)  # `import wandb` fails and find_spec finds nothing
    monkeypatch.delenv('WANDB_MODE', raising=False)
    monkeypatch.chdir(tmp_path)
    train = load_script('train.py')
    code = run_main('train.py', train.run, ['-opt', PLAIN_FILE, '--force_yml', 'logger:wandb:project=stereo'])
    err = capsys.readouterr().err.strip()
    assert code == USER_ERROR_EXIT
    assert err == (f"train.py: error: {PLAIN_FILE}: logger:wandb:project is 'stereo', but the wandb package is not "
                   'installed: pip install wandb (or pip install -e ".[wandb]"), or set logger:wandb:project to ~ to '
                   'train without Weights & Biases')
    assert os.listdir(tmp_path) == []
    parse_train('logger:wandb={project: stereo, mode: disabled}')
    monkeypatch.setenv('WANDB_MODE', 'disabled')
    parse_train('logger:wandb:project=stereo')


def test_run_id_kept_for_a_resume_new_for_a_fresh_start_resume_id_wins(tmp_path):
    first = wandb_run_id(str(tmp_path))
    assert re.fullmatch('[a-z0-9]{8}', first)
    assert (tmp_path / WANDB_ID_FILE).read_text() == first + '\n'
    assert wandb_run_id(str(tmp_path), resuming=True) == first
    fresh = wandb_run_id(str(tmp_path))
    assert fresh != first and wandb_run_id(str(tmp_path), resuming=True) == fresh
    assert wandb_run_id(str(tmp_path), resume_id='basicsr1', resuming=True) == 'basicsr1'
    assert wandb_run_id(str(tmp_path), resuming=True) == 'basicsr1'
    assert sorted(os.listdir(tmp_path)) == [WANDB_ID_FILE]  # no temporary file left


def test_wandb_refusing_to_start_is_one_line(tmp_path, monkeypatch, offline):
    import wandb

    def refuse(**kwargs):
        raise wandb.errors.UsageError('api_key not configured (no-tty). call wandb.login(key=[your_api_key])')

    monkeypatch.setattr(wandb, 'init', refuse)
    monkeypatch.chdir(tmp_path)
    opt = parse_train('logger:wandb={project: stereo, mode: online}')
    settings = wandb_settings(opt)
    os.makedirs(settings.experiment_root)
    with pytest.raises(WandbError) as info:
        ExperimentLogger(wandb=settings)
    run_id = (tmp_path / 'experiments' / opt['name'] / WANDB_ID_FILE).read_text().strip()
    assert str(info.value) == (f'logger:wandb: wandb could not start run {run_id} of project stereo: api_key not '
                               'configured (no-tty). call wandb.login(key=[your_api_key]) (log in with `wandb login`, '
                               'or set logger:wandb:mode: offline and upload later with `wandb sync`)')
