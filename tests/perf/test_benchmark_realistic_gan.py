"""scripts/benchmark.py --mode train on the realistic GAN recipe (NAFSSR-T_x4_realistic_gan.yml: the discriminator's
real input is the plain HR, ``gt_plain``; a synthetic batch has one HR and gives it as both), a tiny generator and
discriminator, no VGG file. (--data hands the loader's ``gt_plain`` over; one worker process per row, so one row.)"""
import os

import pytest

from helpers import ROOT, load_script

RECIPE = os.path.join(ROOT, 'options', 'train', 'NAFSSR', 'NAFSSR-T_x4_realistic_gan.yml')
TINY = ['network_g:width=8', 'network_g:num_blks=1', 'network_g:train_size=[1,6,8,24]', 'network_d:num_feat=4',
        'path:pretrain_network_g=~', 'train:perceptual_opt=~',
        f"datasets:train:dataroot_gt={os.path.join(ROOT, 'datasets', 'sample', 'patches_x4')}",
        f"datasets:train:degradation={os.path.join(ROOT, 'options', 'degradations', 'realistic_x4.yml')}",
        'datasets:train:gt_size_h=32', 'datasets:train:gt_size_w=96', 'datasets:train:num_worker_per_gpu=0']


@pytest.fixture(scope='module')
def benchmark():
    return load_script('scripts/benchmark.py')


def test_the_realistic_gan_step_is_measured(benchmark):
    rows = benchmark.main(['-opt', RECIPE, '--mode', 'train', '--batch', '2', '--size', '8x24', '--threads', '1',
                           '--warmup', '0', '--repeats', '1', '--no_macs', '--json', '--force_yml', *TINY])
    assert (rows[0]['model'], rows[0]['mode'], rows[0]['size']) == ('NAFSSR-T_x4_realistic_gan', 'train', '8x24')
