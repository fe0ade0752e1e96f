"""define_network: building networks from YAML mappings, and one-line errors that name the key path."""
import pytest
import yaml

from basicsr.models.archs import define_network
from basicsr.models.archs.nafssr_arch import NAFSSR
from basicsr.utils.registry import ARCH_REGISTRY, BLOCK_REGISTRY


def message(excinfo):
    return str(excinfo.value.args[0])


def test_registered_names():
    for name in ('NAFSSR', 'NAFNet', 'NAFNetLocal', 'Baseline', 'BaselineLocal'):
        assert name in ARCH_REGISTRY
    for name in ('NAFBlock', 'BaselineBlock', 'MultiDirBlock', 'SCAM', 'MultiScaleSCAM'):
        assert name in BLOCK_REGISTRY


def test_builds_from_a_release_style_yaml_mapping():
    opt = yaml.safe_load("""
network_g:
  type: NAFSSR
  up_scale: 4
  width: 16
  num_blks: 2
  drop_path_rate: 0.
  train_size: [1, 6, 30, 90]
  drop_out_rate: 0.
""")
    net = define_network(opt['network_g'])
    assert isinstance(net, NAFSSR) and net.up_scale == 4 and len(net.body) == 2


def test_unknown_type_names_key_path_and_close_matches():
    with pytest.raises(KeyError) as excinfo:
        define_network({'type': 'NAFSR', 'up_scale': 4})
    text = message(excinfo)
    assert text.startswith('network_g:type: unknown arch type')
    assert 'NAFSSR' in text.split('Did you mean')[1].split('?')[0]
    assert '\n' not in text


def test_unknown_keyword_names_key_path():
    with pytest.raises(TypeError) as excinfo:
        define_network({'type': 'NAFSSR', 'widht': 16}, key_path='network_g')
    text = message(excinfo)
    assert 'network_g:widht' in text and 'did you mean width' in text


def test_bad_value_names_key_path():
    with pytest.raises(ValueError) as excinfo:
        define_network({'type': 'NAFSSR', 'train_size': [30, 90]})
    assert message(excinfo).startswith('network_g:train_size: expected [N, C, H, W]')
    with pytest.raises(ValueError) as excinfo:
        define_network({'type': 'NAFSSR', 'train_size': [1, 3, 30, 90]})
    assert message(excinfo).startswith('network_g:train_size: expected 6 channels')
    with pytest.raises(ValueError) as excinfo:
        define_network({'type': 'NAFSSR', 'drop_path_rate': 1.0})
    assert message(excinfo).startswith('network_g:drop_path_rate:')


def test_missing_type():
    with pytest.raises(KeyError) as excinfo:
        define_network({'width': 16}, key_path='network_g')
    assert message(excinfo).startswith('network_g: expected a mapping with a "type" key')


def test_unknown_block_and_block_keyword_name_key_paths():
    with pytest.raises(KeyError) as excinfo:
        define_network({'type': 'NAFSSR', 'intra_block': 'MultiDirBlok'})
    assert message(excinfo).startswith('network_g:intra_block: unknown block type')
    assert 'MultiDirBlock' in message(excinfo)
    with pytest.raises(TypeError) as excinfo:
        define_network({'type': 'NAFSSR', 'intra_block': 'MultiDirBlock', 'intra_kwargs': {'kernal_size': 5}})
    assert 'network_g:intra_kwargs:kernal_size (did you mean kernel_size?)' in message(excinfo)
    with pytest.raises(TypeError) as excinfo:
        define_network({'type': 'NAFSSR', 'cross_kwargs': {'pool': 2}})
    assert 'network_g:cross_kwargs:pool' in message(excinfo)


def test_block_of_the_wrong_kind_is_refused():
    with pytest.raises(ValueError) as excinfo:
        define_network({'type': 'NAFSSR', 'intra_block': 'SCAM'})
    assert message(excinfo).startswith('network_g:intra_block: SCAM is a cross-view block')


def test_other_key_path():
    with pytest.raises(TypeError) as excinfo:
        define_network({'type': 'NAFNet', 'num_blks': 3}, key_path='network_d')
    assert 'network_d:num_blks' in message(excinfo)
