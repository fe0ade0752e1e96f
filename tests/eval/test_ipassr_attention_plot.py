"""plot_results.py attention: iPASSR's attention disparity and validity mask beside SGBM's disparity, for one pair;
and the disparity read from an attention map (hand values)."""
import cv2
import numpy as np
import pytest
import torch

from basicsr.models.archs.arch_util import build_named
from basicsr.models.archs.ipassr_arch import attention_disparity
from basicsr.utils.img_util import imwrite
from helpers import load_script


def test_attention_disparity_hand_values():
    w = 6
    m = torch.zeros(1, 1, w, w)
    for x in range(w):
        m[0, 0, x, max(x - 2, 0)] = 1.0  # left x attends to right x - 2: disparity 2 (clamped at the border)
    assert attention_disparity(m).tolist() == [[[0.0, 1.0, 2.0, 2.0, 2.0, 2.0]]]
    half = torch.zeros(1, 1, 2, 2)
    half[0, 0, 1] = torch.tensor([0.25, 0.75])  # left 1: right 0 (d 1) with 0.25, right 1 (d 0) with 0.75
    half[0, 0, 0, 0] = 1.0
    assert attention_disparity(half).tolist() == [[[0.0, 0.25]]]
    assert attention_disparity(half, 'argmax').tolist() == [[[0.0, 0.0]]]
    with pytest.raises(ValueError, match='mode: expected expectation or argmax'):
        attention_disparity(half, 'mean')


def _pair(folder, disparity=3):
    rng = np.random.default_rng(0)
    left = cv2.GaussianBlur(rng.integers(0, 256, (24, 80, 3), dtype=np.uint8), (3, 3), 1)
    right = np.roll(left, -disparity, axis=1)  # left x matches right x - disparity
    imwrite(left, folder / 'lr0.png')
    imwrite(right, folder / 'lr1.png')


@pytest.mark.parametrize('weights', [None, 'release'])
def test_attention_command_writes_the_figure(tmp_path, weights):
    plot_results = load_script('scripts/plot_results.py')
    _pair(tmp_path / 'pair')
    args = ['attention', '--pair', str(tmp_path / 'pair'), '--scale', '2', '--output', str(tmp_path / 'a.png')]
    if weights:  # a file in the release's layout, as log/iPASSR_2xSR.pth.tar
        torch.manual_seed(0)
        torch.save({'epoch': 80, 'state_dict': build_named('iPASSR', 2).state_dict()}, tmp_path / 'iPASSR_2xSR.pth.tar')
        args += ['--weights', str(tmp_path / 'iPASSR_2xSR.pth.tar'), '--disparity', 'argmax']
    assert plot_results.main(args) == 0
    figure = cv2.imread(str(tmp_path / 'a.png'))
    assert figure is not None and figure.shape[1] > 4 * figure.shape[0]  # four panels side by side


def test_attention_command_names_a_missing_pair_or_bad_weights(tmp_path, capsys):
    plot_results = load_script('scripts/plot_results.py')
    assert plot_results.main(['attention', '--pair', str(tmp_path / 'none'), '--output', str(tmp_path / 'a.png')]) == 2
    assert 'lr0.png not found' in capsys.readouterr().err
    _pair(tmp_path / 'pair')
    torch.save({'epoch': 80, 'state_dict': {'x': torch.zeros(1)}}, tmp_path / 'bad.pth.tar')
    assert plot_results.main(['attention', '--pair', str(tmp_path / 'pair'), '--weights', str(tmp_path / 'bad.pth.tar'),
                              '--output', str(tmp_path / 'a.png')]) == 2
    err = capsys.readouterr().err
    assert '--weights' in err and 'bad.pth.tar' in err
    assert not (tmp_path / 'a.png').exists()
