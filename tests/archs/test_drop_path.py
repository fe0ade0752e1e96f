"""Drop-path draws from torch's default generator: the same seed (or restored RNG state) gives the same drops."""
import torch

from basicsr.models.archs import define_network

CFG = {'type': 'NAFSSR', 'up_scale': 2, 'width': 8, 'num_blks': 6, 'drop_path_rate': 0.5}


def make_net():
    torch.manual_seed(0)
    net = define_network(CFG).train()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return net


def run(net, x, seed):
    torch.manual_seed(seed)
    return [net(x) for _ in range(3)]


def test_same_seed_same_drops():
    net, x = make_net(), torch.rand(1, 6, 4, 6)
    with torch.no_grad():
        first, second = run(net, x, 123), run(net, x, 123)
        other = run(net, x, 7)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


def test_restoring_rng_state_replays_the_drops():
    net, x = make_net(), torch.rand(1, 6, 4, 6)
    torch.manual_seed(5)
    with torch.no_grad():
        net(x)
        state = torch.get_rng_state()
        expected = net(x)
        torch.set_rng_state(state)
        assert torch.equal(net(x), expected)


def test_kept_block_update_is_rescaled_and_eval_is_deterministic():
    net, x = make_net(), torch.rand(1, 6, 4, 6)
    layer = net.body[0]
    feats = (torch.rand(1, 8, 4, 6), torch.rand(1, 8, 4, 6))
    with torch.no_grad():
        full = layer.module(*feats)
        outs = set()
        for seed in range(20):
            torch.manual_seed(seed)
            out = layer(*feats)
            if torch.equal(out[0], feats[0]):
                outs.add('dropped')
            else:
                # a kept block's update is scaled by 1 / (1 - drop_rate) = 2 (the release's DropPath)
                torch.testing.assert_close(out[0], feats[0] + 2.0 * (full[0] - feats[0]))
                outs.add('kept')
        assert outs == {'dropped', 'kept'}
        net.eval()
        assert torch.equal(net(x), net(x))


def test_one_drop_path_module():
    """The two released forms of stochastic depth live in one module (basicsr/models/archs/drop_path.py): NAFSSR's
    whole-block DropPath (NAFSSR, CVHSSR, SCGLANet) and the per-sample drop_path of SwinFIR's residual branches."""
    from basicsr.models.archs import drop_path, nafssr_arch, scglanet_arch, swinfirssr_arch

    assert nafssr_arch.DropPath is scglanet_arch.DropPath is drop_path.DropPath
    assert swinfirssr_arch.drop_path is drop_path.drop_path


def test_per_sample_drop_path_replays_and_keeps_the_expectation():
    from basicsr.models.archs.drop_path import drop_path

    x = torch.ones(4000, 2, 3)
    torch.manual_seed(3)
    a = drop_path(x, 0.25, True)
    torch.manual_seed(3)
    assert torch.equal(a, drop_path(x, 0.25, True)) and torch.equal(drop_path(x, 0.25, False), x)
    kept = a[:, 0, 0]
    assert torch.equal(kept.unique(), torch.tensor([0.0, 1 / 0.75])) and (a == a[:, :1, :1]).all()  # per sample
    assert abs(kept.mean().item() - 1.0) < 0.05  # 1/(1 - rate) keeps the expectation (sd 0.009 at 4000 samples)
