"""train:compile with no working C++ compiler: the first step warns, falls back to eager and trains exactly as eager."""
import warnings

import torch

from basicsr.models import build_model
from basicsr.utils.options import parse
from train_helpers import base_options, write_options


def _model(data, tmp_path, compile_):
    opt = base_options(data, f'compile_{compile_}')
    opt['network_g']['drop_path_rate'] = 0.  # no random draw inside the traced forward
    opt['train'].update(compile=compile_, mixup=False)
    path = write_options(tmp_path, opt)
    torch.manual_seed(0)
    return build_model(parse(path, is_train=True, root_path=str(tmp_path)))


def test_missing_compiler_falls_back_to_the_eager_step(tiny_data, tmp_path, monkeypatch):
    import torch._dynamo
    import torch._inductor.config as inductor_config

    monkeypatch.setattr(inductor_config.cpp, 'cxx', (str(tmp_path / 'no-such-g++'),))
    torch._dynamo.reset()
    torch.manual_seed(1)
    batch = {'lq': torch.rand(2, 6, 4, 12), 'gt': torch.rand(2, 6, 8, 24)}
    compiled, eager = _model(tiny_data, tmp_path, True), _model(tiny_data, tmp_path, False)
    assert compiled._compiled
    for model in (compiled, eager):
        model.feed_data(batch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        compiled.optimize_parameters(1)
    messages = [str(w.message) for w in caught if 'train:compile' in str(w.message)]
    assert len(messages) == 1 and 'training without compilation' in messages[0]
    assert 'C++ compiler' in messages[0]
    assert not compiled._compiled and compiled.net_train is compiled.net_g
    eager.optimize_parameters(1)
    for (name, a), b in zip(compiled.net_g.state_dict().items(), eager.net_g.state_dict().values()):
        assert torch.equal(a, b), name
    torch._dynamo.reset()


def test_compile_mode_is_checked(tiny_data, tmp_path):
    import pytest
    from basicsr.utils.options import OptionError

    opt = base_options(tiny_data, 'compile_mode')
    opt['train'].update(compile=True, compile_mode='fastest')
    with pytest.raises(OptionError, match="train:compile_mode: expected one of default, reduce-overhead, "
                                          "max-autotune, max-autotune-no-cudagraphs, got 'fastest'"):
        build_model(parse(write_options(tmp_path, opt), is_train=True, root_path=str(tmp_path)))
