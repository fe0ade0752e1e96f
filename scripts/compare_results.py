"""Put the results of several test.py runs side by side in one HTML page: the table of every run with the best of
each column in bold, and for each pair the same crop of every model (bicubic | models | HR, both views).

    python scripts/compare_results.py results/NAFSSR-T_x4 results/NAFSSR-S_x4 --out compare.html

The runs must be on the same test sets, scales and pairs. The crops need the runs' images (``val:save_img: true``
in their option files). The page references the images of the results folders by relative URLs: keep it where
it was written relative to them (or copy the folders along). An existing --out is kept unless --overwrite.
Exit codes: 0 written, 2 a bad input (one line, nothing written).
"""
import argparse
import sys

from basicsr.report_html import write_compare
from basicsr.utils.errors import run_main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('runs', nargs='+', metavar='RUN', help='results folders of test.py (results/<name>), two or more')
    p.add_argument('--out', required=True, help='the HTML page to write (e.g. compare.html)')
    p.add_argument('--labels', nargs='+', help="the models' names in the page, one per RUN (default: the runs' names)")
    p.add_argument('--overwrite', action='store_true', help='replace an existing --out')
    return p.parse_args(argv)


def run(argv=None):
    args = parse_args(argv)
    out = write_compare(args.runs, args.out, labels=args.labels, overwrite=args.overwrite)
    print(f'{out}: {len(args.runs)} runs compared', flush=True)
    return out


def main(argv=None):
    result = run_main('compare_results.py', run, argv)
    return result if isinstance(result, int) else 0


if __name__ == '__main__':
    sys.exit(main())
