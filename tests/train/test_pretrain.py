"""Fine-tuning from ``path:pretrain_network_g`` (BasicSR's keys): which weights of the file are loaded
(``param_key_g``), loading the matching part of another architecture (``strict_load_g: false``), and a resumed run
that takes its weights from the training state, never from the pretrain file again."""
import os

import pytest
import torch

from basicsr.models import build_model
from basicsr.utils.checkpoint import CheckpointError, save_atomic
from basicsr.utils.options import parse
from train_helpers import base_options, run_train, write_options


def _random_state(cfg, seed):
    """The state dict of a NAFSSR of ``cfg`` with every tensor random (so that two files never agree anywhere)."""
    from basicsr.models.archs import define_network

    torch.manual_seed(seed)
    net = define_network(dict(cfg))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _opt(data, name, path_opt, total_iter=4):
    opt = base_options(data, name, total_iter=total_iter)
    opt['path'] = path_opt
    return opt


def _build(data, tmp_path, name, path_opt):
    opt = _opt(data, name, path_opt)
    torch.manual_seed(0)
    return build_model(parse(write_options(tmp_path, opt), is_train=True, root_path=str(tmp_path)))


def _assert_state(net, expected):
    own = net.state_dict()
    assert set(expected) <= set(own)
    for key, value in expected.items():
        assert torch.equal(own[key], value), key


@pytest.fixture()
def two_sets_of_weights(tiny_data, tmp_path):
    """A release-style file holding different ``params`` and ``params_ema`` for the tiny network."""
    cfg = base_options(tiny_data, 'x')['network_g']
    params, ema = _random_state(cfg, 1), _random_state(cfg, 2)
    assert not any(torch.equal(params[k], ema[k]) for k in params)
    path = tmp_path / 'pretrained.pth'
    save_atomic({'params': params, 'params_ema': ema}, path)
    return path, params, ema


def test_param_key_g_selects_the_weights_of_the_file(tiny_data, tmp_path, two_sets_of_weights):
    path, params, ema = two_sets_of_weights
    model = _build(tiny_data, tmp_path, 'ft_ema', {'pretrain_network_g': str(path), 'param_key_g': 'params_ema'})
    _assert_state(model.net_g, ema)
    model = _build(tiny_data, tmp_path, 'ft_default', {'pretrain_network_g': str(path)})  # BasicSR's default key
    _assert_state(model.net_g, params)
    model = _build(tiny_data, tmp_path, 'ft_params', {'pretrain_network_g': str(path), 'param_key_g': 'params'})
    _assert_state(model.net_g, params)


def test_strict_load_g_false_loads_the_matching_part_of_another_architecture(tiny_data, tmp_path):
    """A file of the same network with 1 block instead of 2: strict loading refuses it, naming the missing keys;
    ``strict_load_g: false`` loads intro, up and block 0 from it and leaves block 1 as initialised."""
    cfg = dict(base_options(tiny_data, 'x')['network_g'])
    one_block = _random_state({**cfg, 'num_blks': 1}, 3)
    path = tmp_path / 'one_block.pth'
    save_atomic({'params': one_block}, path)
    with pytest.raises(CheckpointError, match=r'one_block\.pth.*body\.1\.'):
        _build(tiny_data, tmp_path, 'strict', {'pretrain_network_g': str(path)})

    fresh = _build(tiny_data, tmp_path, 'fresh', {}).net_g.state_dict()  # same seed: the initial weights
    model = _build(tiny_data, tmp_path, 'partial', {'pretrain_network_g': str(path), 'strict_load_g': False})
    _assert_state(model.net_g, one_block)
    second_block = {k: v for k, v in fresh.items() if k.startswith('body.1.')}
    assert second_block and not any(k.startswith('body.1.') for k in one_block)
    _assert_state(model.net_g, second_block)


def _weights(cwd, name, it):
    return torch.load(os.path.join(cwd, 'experiments', name, 'models', f'net_g_{it}.pth'), weights_only=True)


def test_resume_takes_the_weights_of_the_state_not_the_pretrain_file(tiny_data, tmp_path):
    """A run fine-tuned from a file, stopped after 2 iterations and resumed twice, once after the file was replaced
    by other weights and once after it was deleted, ends with the weights of the uninterrupted run."""
    cfg = base_options(tiny_data, 'x')['network_g']
    pretrained = tmp_path / 'pretrained.pth'
    save_atomic({'params': _random_state(cfg, 4)}, pretrained)
    opt = write_options(tmp_path, _opt(tiny_data, 'ft', {'pretrain_network_g': str(pretrained)}))
    ref_dir, run_dir = tmp_path / 'ref', tmp_path / 'run'
    ref_dir.mkdir()
    run_dir.mkdir()

    def ok(result):
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result

    ok(run_train(opt, ref_dir))
    ok(run_train(opt, run_dir, extra=['--force_yml', 'train:total_iter=2']))
    save_atomic({'params': _random_state(cfg, 5)}, pretrained)  # the file changes under the stopped run
    assert 'resumed from' in ok(run_train(opt, run_dir, extra=['--force_yml', 'train:total_iter=3'])).stdout
    os.remove(pretrained)  # and then disappears
    assert 'resumed from' in ok(run_train(opt, run_dir)).stdout
    for it in (3, 4):
        ref, run = _weights(ref_dir, 'ft', it), _weights(run_dir, 'ft', it)
        for key in ref['params']:
            assert torch.equal(ref['params'][key], run['params'][key]), f'iter {it}: {key}'


def _tiny_net(data):
    from basicsr.models.archs import define_network

    return define_network(dict(base_options(data, 'x')['network_g']))


def test_non_strict_load_needs_half_of_the_network_or_of_the_file(tiny_data, tmp_path, caplog):
    """``strict_load_g: false`` loads a part of a file only when that part is at least half of the network's
    tensors or half of the file's: a file holding only the network's first and last layers is a real partial
    initialisation; the same two layers among ten foreign tensors, or a file of another family, are not."""
    from basicsr.utils.checkpoint import load_network

    full = _random_state(base_options(tiny_data, 'x')['network_g'], 6)
    ends = {k: v for k, v in full.items() if k.startswith(('intro.', 'up.'))}
    assert len(ends) == 4 and len(full) == 68  # counted from the network: intro and up, weight and bias each
    save_atomic({'params': ends}, tmp_path / 'ends.pth')
    save_atomic({'params': {**ends, **{f'head.{i}.weight': torch.zeros(3) for i in range(10)}}}, tmp_path / 'few.pth')

    net = _tiny_net(tiny_data)
    with caplog.at_level('INFO', logger='basicsr'):
        load_network(net, tmp_path / 'ends.pth', strict=False)
    _assert_state(net, ends)
    assert "ends.pth: loaded non-strictly: 4 of the network's 68 tensors loaded, 64 missing, 0 unexpected" \
        in caplog.text
    with pytest.raises(CheckpointError, match=r"^path:pretrain_network_g: .*few\.pth: shares only 4 of the "
                                              r"network's 68 tensors and of the file's 14; a non-strict load "
                                              r"\(path:strict_load_g false\) needs at least half of either$"):
        load_network(net, tmp_path / 'few.pth', strict=False)
    with pytest.raises(CheckpointError, match=r'few\.pth: does not fit the network: 64 missing \(e\.g\. body\.0\..*, '
                                              r'10 unexpected \(e\.g\. head\.0\.weight\) parameters$'):  # no hint
        load_network(net, tmp_path / 'few.pth')

    caplog.clear()
    save_atomic({'params': full}, tmp_path / 'full.pth')
    with caplog.at_level('INFO', logger='basicsr'):
        load_network(net, tmp_path / 'full.pth')
    assert "(params): 68 of the network's 68 tensors loaded, 0 missing, 0 unexpected" in caplog.text


def test_weights_of_another_family_are_refused_naming_it(tiny_data, tmp_path):
    """iPASSR's weights share no tensor with NAFSSR: loading them non-strictly would test an untrained network."""
    from basicsr.models.archs.arch_util import build_named
    from basicsr.utils.checkpoint import load_network

    save_atomic({'params': build_named('iPASSR', 2).state_dict()}, tmp_path / 'ipassr.pth')
    expected = (r'^path:pretrain_network_g: .*ipassr\.pth: holds a stereo SR network \(iPASSR x2\), not NAFSSR '
                r'\(network_g:type\): set network_g:type to iPASSR; the zoo tests iPASSR x2 with '
                r'options/test/iPASSR/iPASSR_x2\.yml \(')
    for strict in (True, False):
        with pytest.raises(CheckpointError, match=expected):
            load_network(_tiny_net(tiny_data), tmp_path / 'ipassr.pth', strict=strict)


def test_train_refuses_a_pretrain_file_of_another_family_before_writing(tiny_data, tmp_path):
    from basicsr.models.archs.arch_util import build_named

    save_atomic({'params': build_named('iPASSR', 2).state_dict()}, tmp_path / 'ipassr.pth')
    opt = _opt(tiny_data, 'other_family', {'pretrain_network_g': str(tmp_path / 'ipassr.pth'), 'strict_load_g': False})
    result = run_train(write_options(tmp_path, opt), tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    line, = result.stderr.strip().splitlines()
    assert line.startswith('train.py: error: path:pretrain_network_g: ') and 'holds a stereo SR network (iPASSR x2), ' \
        'not NAFSSR (network_g:type)' in line, line
    assert not (tmp_path / 'experiments' / 'other_family').exists()
