"""stereo_sr: a BasicSR-style framework for stereo image super-resolution (NAFSSR and friends).

Importing the package imports every sub-package, which registers every arch, block, dataset, loss, metric and
model under the name its YAML ``type:`` uses.
"""
from basicsr import data, losses, metrics, models  # noqa: F401  (registration side effects)
from basicsr.models import archs  # noqa: F401

__version__ = '0.1.0'
