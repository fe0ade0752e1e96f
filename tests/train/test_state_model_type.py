"""A run resumes only the training states of its own model_type. A GAN run started under the name of a finished
fidelity run (its train:total_iter no more than that run's iteration) used to end with "nothing to do", exit 0: it
is one line naming the state, the model type that saved it and the command that works, exit 2, nothing touched."""
import os

import pytest
import torch

from basicsr.models import build_model
from basicsr.utils.checkpoint import load_checkpoint, save_atomic
from basicsr.utils.errors import USER_ERROR_EXIT, run_main
from basicsr.utils.options import parse
from helpers import load_script
from test_gan import gan_options
from train_helpers import base_options, write_options


def _finished_fidelity_run(tiny_data, tmp_path):
    """experiments/fid as a finished 1-iteration ImageRestorationModel run leaves it (the model's own save)."""
    opt = parse(write_options(tmp_path, base_options(tiny_data, 'fid', total_iter=1)), is_train=True,
                root_path=str(tmp_path))
    for key in ('models', 'training_states'):
        os.makedirs(opt['path'][key])
    build_model(opt).save(0, 1, 1, 7)
    return tmp_path / 'experiments' / 'fid'


def _files(folder):
    return {str(p): p.read_bytes() for p in sorted(folder.rglob('*')) if p.is_file()}


@pytest.mark.parametrize('recorded', [True, False])
def test_a_gan_run_under_a_finished_fidelity_run_name_is_refused(tiny_data, tmp_path, monkeypatch, capsys, recorded):
    root = _finished_fidelity_run(tiny_data, tmp_path)
    state_path = root / 'training_states' / '1.state'
    state = load_checkpoint(state_path)
    assert state['model_type'] == 'ImageRestorationModel'  # recorded by the model that saved it
    if not recorded:  # a state saved before the model type was recorded: told by its content (no params_d)
        del state['model_type']
        save_atomic(state, state_path)
    before = _files(tmp_path / 'experiments')
    monkeypatch.chdir(tmp_path)
    code = run_main('train.py', load_script('train.py').run,
                    ['-opt', write_options(tmp_path, gan_options(tiny_data, 'fid', total_iter=1))])
    err = capsys.readouterr().err
    assert code == USER_ERROR_EXIT
    assert err.strip() == (
        f"train.py: error: {state_path}: has no discriminator weights (params_d): it was saved by model_type "
        f"ImageRestorationModel{'' if recorded else ' (by its content)'}, this run is StereoSRGANModel; a run "
        'resumes only its own states: to fine-tune its generator as StereoSRGANModel, run under another name: '
        f"--force_yml name=fid_gan path:pretrain_network_g={root / 'models' / 'net_g_1.pth'}")
    assert _files(tmp_path / 'experiments') == before  # nothing written, the lock released
    assert torch.equal(load_checkpoint(root / 'models' / 'net_g_1.pth')['params']['intro.weight'],
                       state['params']['intro.weight'])  # the hint names the generator of that state
