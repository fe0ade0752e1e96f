"""iPASSR: the released implementation's outputs, attention maps, validity masks, losses and gradients for the same
weights (fixture made with the release), the released parameter counts and checkpoint layout, and its blocks."""
import importlib.util
import pickle
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from basicsr.losses.parallax_loss import ConsistencyLoss, CycleLoss, PhotometricLoss, SmoothnessLoss, lr_residual
from basicsr.models.archs import define_network
from basicsr.models.archs.arch_util import build_named
from basicsr.models.archs.ipassr_arch import BiPAM, ResidualDenseBlock, iPASSR
from basicsr.utils.checkpoint import CheckpointError, load_network

DATA = Path(__file__).parent / 'data'
FIXTURE = DATA / 'release_ipassr_tiny.pt'

# Parameter counts of the released networks, counted by instantiating the release's own model.py (Net(2), Net(4);
# YingqianWang/iPASSR, code of Dec 2021); they round to the paper's 1.37M / 1.42M (PEERS.md).
RELEASED_COUNTS = {2: 1_377_931, 4: 1_427_851}


def _generator():
    spec = importlib.util.spec_from_file_location('make_release_ipassr_tiny', DATA / 'make_release_ipassr_tiny.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _generator()


@pytest.fixture(scope='module')
def fixture():
    return torch.load(FIXTURE, weights_only=True)


def released_net(fixture, scale, **kwargs):
    """Our iPASSR with the fixture's weights (re-made from their names; the checksums prove they are the same)."""
    net = iPASSR(up_scale=scale, **kwargs)
    weights = GENERATOR.fixture_weights(net.state_dict())
    torch.testing.assert_close(GENERATOR.checksums(weights), fixture[f'x{scale}']['checksums'], rtol=1e-12, atol=0)
    net.load_state_dict(weights)  # strict: the release's names and shapes
    return net


@pytest.mark.parametrize('channels_last', [True, False])
@pytest.mark.parametrize('scale', [2, 4])
def test_outputs_equal_the_release(fixture, scale, channels_last):
    entry = fixture[f'x{scale}']
    net = released_net(fixture, scale, channels_last=channels_last).eval()
    with torch.no_grad():
        for lq, sr in zip(entry['inputs'], entry['eval']):
            out = net(lq)
            assert out.shape == sr.shape == (1, 6, scale * lq.shape[2], scale * lq.shape[3])
            # float32 rounding only: the release itself is within 3e-7 of its float64 outputs here, and the
            # network's residual over bicubic is ~0.15, so a real difference is orders of magnitude larger
            torch.testing.assert_close(out, sr, rtol=0, atol=1e-5)


@pytest.mark.parametrize('channels_last', [True, False])
@pytest.mark.parametrize('scale', [2, 4])
def test_training_outputs_maps_and_masks_equal_the_release(fixture, scale, channels_last):
    entry = fixture[f'x{scale}']
    net = released_net(fixture, scale, channels_last=channels_last).train()  # BatchNorm over the batch of 2, as the release's training
    with torch.no_grad():
        out, maps, masks = net(entry['train_input'], return_attention=True)
    expected = entry['train']
    torch.testing.assert_close(out, expected['output'], rtol=0, atol=1e-5)
    for ours, theirs in zip(maps + masks, expected['maps'] + expected['masks']):
        assert ours.shape == theirs.shape
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
    assert expected['maps'][0].shape == (2, 5, 12, 12) and expected['masks'][1].shape == (2, 1, 5, 12)


def test_running_statistics_on_request_equal_the_release_in_eval_mode(fixture):
    entry = fixture['x2']
    with torch.no_grad():
        running = released_net(fixture, 2, test_bn_stats='running').eval()(entry['inputs'][0])
        default = released_net(fixture, 2).eval()(entry['inputs'][0])
    torch.testing.assert_close(running, entry['running'], rtol=0, atol=1e-5)
    assert (default - entry['running']).abs().max() > 1e-3  # the two BatchNorm modes really differ here


def test_eval_is_per_image_so_batching_test_pairs_changes_nothing(fixture):
    net = released_net(fixture, 2).eval()
    a, b = fixture['x2']['inputs'][0], torch.rand(1, 6, 6, 10)
    with torch.no_grad():
        both = net(torch.cat((a, b)))
    torch.testing.assert_close(both[:1], fixture['x2']['eval'][0], rtol=0, atol=1e-5)


def _release_step_terms(net, step):
    """Our losses on the fixture's batch, grouped as the release's total: SR + 0.1 cons + 0.1 (photo + smooth +
    cycle), with the release's weights (SR: L1 of each view, summed = 2 x the 6-channel mean)."""
    out, maps, masks = net(step['lq'], return_attention=True)
    res = lr_residual(step['lq'], step['gt'], 2)
    return {'sr': 2 * F.l1_loss(out, step['gt']), 'photo': PhotometricLoss()(res, maps, masks),
            'smooth': SmoothnessLoss()(maps), 'cycle': CycleLoss()(res, maps, masks),
            'cons': ConsistencyLoss()(out, step['gt'], maps, masks, 2)}


def test_losses_and_gradients_equal_one_step_of_the_release_train_py(fixture):
    step = fixture['x2']['step']
    net = released_net(fixture, 2).train()
    ours = _release_step_terms(net, step)
    t = step['l1_terms']  # the release's twelve L1 terms, in its order
    release = {'sr': t[0] + t[1], 'photo': 0.1 * (t[2] + t[3]), 'smooth': 0.1 * (t[4] + t[5] + t[6] + t[7]),
               'cycle': 0.1 * (t[8] + t[9]), 'cons': 0.1 * (t[10] + t[11])}
    for name in release:
        torch.testing.assert_close(ours[name], release[name], rtol=1e-5, atol=1e-7, msg=name)
    sum(ours.values()).backward()
    params = dict(net.named_parameters())
    for name, grad in step['grads'].items():
        torch.testing.assert_close(params[name].grad, grad, rtol=0, atol=1e-5 * grad.abs().max().item(), msg=name)


@pytest.mark.parametrize('scale', sorted(RELEASED_COUNTS))
def test_parameter_counts_of_the_released_sizes(scale):
    with torch.device('meta'):  # no memory, no initialisation: counting only
        net = build_named('iPASSR', scale)
    assert sum(p.numel() for p in net.parameters()) == RELEASED_COUNTS[scale]
    # the release's 119 state-dict names (its BatchNorm's running averages included)
    assert len(net.state_dict()) == 119 and 'pam.bn.num_batches_tracked' in net.state_dict()


def _release_file(path, net, epoch=80, prefix='', legacy=True):
    """A file in the release's layout: ``{'epoch', 'state_dict'}``, written as its torch 1.3 did (legacy format)."""
    state = {prefix + k: v for k, v in net.state_dict().items()}
    torch.save({'epoch': epoch, 'state_dict': state}, path, _use_new_zipfile_serialization=not legacy)


@pytest.mark.parametrize('prefix,legacy', [('', True), ('', False), ('module.', True)])
def test_a_released_pth_tar_loads_directly(tmp_path, prefix, legacy):
    torch.manual_seed(0)
    source = iPASSR(up_scale=2, width=8, growth=4, num_rdb=2, dense_layers=2, fusion_growth=4)
    path = tmp_path / 'iPASSR_2xSR.pth.tar'
    _release_file(path, source, prefix=prefix, legacy=legacy)
    net = iPASSR(up_scale=2, width=8, growth=4, num_rdb=2, dense_layers=2, fusion_growth=4)
    load_network(net, str(path), param_key='state_dict')  # strict
    for k, v in source.state_dict().items():
        assert torch.equal(net.state_dict()[k], v), k


def test_a_bad_release_file_is_one_line_naming_it(tmp_path):
    path = tmp_path / 'iPASSR_4xSR.pth.tar'
    with torch.device('meta'):
        x4 = build_named('iPASSR', 4)
    torch.save({'epoch': 80, 'state_dict': {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in
                                            x4.state_dict().items()}}, path)
    with pytest.raises(CheckpointError) as excinfo:
        load_network(build_named('iPASSR', 2), str(path), param_key='state_dict')
    text = str(excinfo.value)
    assert '\n' not in text and str(path) in text
    assert 'upscale.0.weight (1024, 64, 1, 1) (network: (256, 64, 1, 1))' in text  # a x4 file into the x2 network
    evil = tmp_path / 'evil.pth.tar'
    with open(evil, 'wb') as f:
        pickle.dump({'epoch': 1, 'state_dict': {'x': Path('/')}}, f)  # an object: loading would run code
    with pytest.raises(CheckpointError, match='evil.pth.tar') as excinfo:
        load_network(build_named('iPASSR', 2), str(evil), param_key='state_dict')
    assert '\n' not in str(excinfo.value)


def test_blocks_of_the_nafssr_skeleton():
    net = define_network({'type': 'NAFSSR', 'up_scale': 2, 'width': 12, 'num_blks': 2,
                          'intra_block': 'ResidualDenseBlock', 'intra_kwargs': {'growth': 6},
                          'cross_block': 'BiPAM', 'cross_kwargs': {'groups': 3}})
    layer = net.body[1].module
    assert isinstance(layer.blk, ResidualDenseBlock) and isinstance(layer.fusion, BiPAM)
    assert layer.fusion.bq.groups == 3 and layer.blk.conv[3].conv.in_channels == 12 + 3 * 6
    with pytest.raises(ValueError, match=r'^network_g: building NAFSSR failed: groups: 12 and 12 channels are not '
                                         r'divisible by 5 groups$'):
        define_network({'type': 'NAFSSR', 'width': 12, 'num_blks': 1, 'cross_block': 'BiPAM',
                        'cross_kwargs': {'groups': 5}})


def test_bipam_gathers_the_other_view_where_valid():
    """Random 64-channel keys whose right view is the left one shifted by 3 pixels, and identity projections, so
    that each pixel's scores peak at its match: the left view receives the right view's values from 3 pixels to the
    left where that pixel exists and its own match leads back (valid), and keeps its own values where the match is
    out of the image."""
    pam = BiPAM(64, groups=1).eval()
    torch.manual_seed(0)
    key_l = torch.randn(1, 64, 16, 20)
    key_r = torch.roll(key_l, -3, dims=-1)  # right(x) = left(x + 3): disparity 3 (wrapping at the border)
    key_r[..., 17:] = torch.randn(1, 64, 16, 3)  # no wrap: the left view's first 3 columns have no match
    x_l, x_r = torch.zeros(1, 64, 16, 20), torch.rand(1, 64, 16, 20)
    with torch.no_grad():
        for conv in (pam.bq, pam.bs):  # queries/keys: the normalised keys themselves
            conv.weight.copy_(torch.eye(64).view(64, 64, 1, 1))
            conv.bias.zero_()
        pam.rb.body[2].weight.zero_()  # the residual block passes its input through
        pam.rb.body[2].bias.zero_()
        out_l, _, (m_r2l, _), (v_l, _) = pam.attend(x_l, x_r, key_l, key_r)
    assert torch.equal(m_r2l[0].argmax(dim=-1)[:, 3:], torch.arange(17).expand(16, 17))  # left x sees right x - 3
    # valid where matched; the first 3 columns are occluded: mostly invalid (a random key there may still be the
    # mutual best match of a random right pixel, which the release's cycle test cannot tell from a true match)
    assert v_l[0, 0, :, 3:].min() > 0.99 and v_l[0, 0, :, :3].mean() < 0.5
    torch.testing.assert_close(out_l[..., 3:], x_r[..., :17], rtol=0, atol=1e-3)
    gathered = out_l[..., :3].abs().mean() / x_r.abs().mean()
    assert gathered < 0.5  # mostly its own (zero) values


def test_bad_options_and_inputs_are_named():
    with pytest.raises(ValueError, match=r'^network_g:test_bn_stats: expected input or running'):
        define_network({'type': 'iPASSR', 'test_bn_stats': 'batch'})
    with pytest.raises(ValueError, match=r'^network_g:up_scale: expected an integer >= 1'):
        define_network({'type': 'iPASSR', 'up_scale': 0})
    with pytest.raises(ValueError, match=r'iPASSR expects \(N, 6, h, w\)'):
        iPASSR(up_scale=2, width=8)(torch.rand(1, 3, 8, 8))


OPTION_FILES = sorted((Path(__file__).resolve().parents[2] / 'options').glob('*/iPASSR/iPASSR_x*.yml'))


@pytest.mark.parametrize('path', OPTION_FILES, ids=[f'{p.parent.parent.name}/{p.name}' for p in OPTION_FILES])
def test_option_files_parse_and_build_the_released_sizes(path, tmp_path):
    from basicsr.option_checks import OPTION_CHECKS
    from basicsr.utils.options import parse, unknown_keys

    opt = parse(path, is_train=path.parent.parent.name == 'train', root_path=tmp_path, registries=OPTION_CHECKS)
    assert unknown_keys(opt) == []
    scale = int(path.stem.split('_x')[1])
    assert opt['scale'] == opt['network_g']['up_scale'] == scale
    with torch.device('meta'):
        net = define_network(opt['network_g'])
    assert sum(p.numel() for p in net.parameters()) == RELEASED_COUNTS[scale]
    datasets = [d for d in opt['datasets'].values()]
    assert datasets and all(d['color_order'] == 'rgb' for d in datasets)  # the release reads its images with PIL
    if 'train' in opt:  # the release's recipe (its train.py defaults)
        train = opt['train']
        assert opt['model_type'] == 'IPASSRModel'
        assert train['optim_g'] == {'type': 'Adam', 'lr': 2e-4}
        assert train['pixel_opt'] == {'type': 'L1Loss', 'loss_weight': 2.0, 'reduction': 'mean'}
        assert {train[k]['loss_weight'] for k in ('photometric_opt', 'cycle_opt', 'smoothness_opt',
                                                  'consistency_opt')} == {0.1}
        assert train['use_grad_clip'] is False
        assert opt['datasets']['train']['batch_size_per_gpu'] == 36
    else:
        assert opt['path']['pretrain_network_g'].endswith(f'experiments/pretrained_models/iPASSR_{scale}xSR.pth.tar')
        assert opt['path']['param_key_g'] == 'state_dict'


def test_converter_writes_our_layout_and_refuses_other_files(tmp_path, capsys):
    from helpers import load_script

    convert = load_script('scripts/convert_ipassr.py')
    torch.manual_seed(0)
    with torch.device('meta'):
        shapes = build_named('iPASSR', 4).state_dict()
    source = {k: torch.randn(v.shape) if v.is_floating_point() else torch.zeros((), dtype=v.dtype)
              for k, v in shapes.items()}
    torch.save({'epoch': 80, 'state_dict': source}, tmp_path / 'iPASSR_4xSR.pth.tar',
               _use_new_zipfile_serialization=False)  # the release's torch 1.3 format
    target = tmp_path / 'iPASSR_x4.pth'
    assert convert.main([str(tmp_path / 'iPASSR_4xSR.pth.tar'), str(target)]) == 0
    assert 'iPASSR x4 weights' in capsys.readouterr().out
    params = torch.load(target, weights_only=True)['params']
    assert params.keys() == source.keys() and all(torch.equal(params[k], v) for k, v in source.items())
    load_network(build_named('iPASSR', 4), str(target))  # our layout, default key 'params', strict
    torch.save({'epoch': 1, 'state_dict': {'intro.weight': torch.zeros(3)}}, tmp_path / 'other.pth.tar')
    assert convert.main([str(tmp_path / 'other.pth.tar'), str(tmp_path / 'x.pth')]) == 2
    assert 'other.pth.tar: not an iPASSR checkpoint' in capsys.readouterr().err
    assert not (tmp_path / 'x.pth').exists()
