"""Build the built-in real stereo sample (nothing to download): ``python scripts/data_preparation/make_sample.py``.

scikit-image's Motorcycle pair becomes training patches and a held-out test pair in ``datasets/sample``
(``basicsr/data/sample.py`` says how).
"""
import argparse
import os
import sys
import time

from basicsr.data.sample import make_sample
from basicsr.toolbox import REPO
from basicsr.utils.errors import run_main


def run():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=os.path.join(REPO, 'datasets', 'sample'), help='output folder')
    parser.add_argument('--workers', type=int, default=1, help='processes (one pair: 1 is fastest)')
    args = parser.parse_args()
    start = time.time()
    counts = make_sample(args.out, workers=args.workers)
    summary = ', '.join(f'{k}: {v}' for k, v in counts.items())
    print(f'Sample ready in {args.out} ({time.time() - start:.1f} s): {summary}')
    return 0


if __name__ == '__main__':
    sys.exit(run_main('make_sample.py', run))
