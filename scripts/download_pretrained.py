"""Download released stereo SR weights into experiments/pretrained_models/, under the names the option files expect.

    python scripts/download_pretrained.py CVHSSR-T_x4 EHFSSR_S_x2     # the named models
    python scripts/download_pretrained.py --all                       # every model with a direct link
    python scripts/download_pretrained.py --list                      # the zoo, and what is here already

The models, links and checks are the table of ``basicsr/zoo.py``. Each file is written atomically: it is
downloaded to a hidden temporary name in the same folder, checked (byte count against the server's
Content-Length, then size, sha256 and git blob id where the zoo knows them) and only then renamed to its final
name; a failed download leaves nothing behind. The partial file of a download that was killed
(``.<file>.part<pid>``, its process gone) is removed by the next run, which says so. A file already there that passes
the checks is skipped; one that fails them is downloaded again. NAFSSR's and SwinFIRSSR's weights are on Google
Drive and Baidu only: for them the script prints the link and where to put the file.

``--mirror URL`` fetches every file that has a direct link as ``URL/<file name>`` instead (a server or ``file://``
folder holding the files under their release names); the checks are the same. Downloads use the standard
library's ``urllib`` only.
"""
import argparse
import hashlib
import http.client
import os
import re
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request

from basicsr import zoo
from basicsr.toolbox import zoo_models
from basicsr.utils.errors import UserError, run_main
from basicsr.utils.misc import process_gone

DEFAULT_DEST = os.path.join('experiments', 'pretrained_models')
CHUNK = 1 << 20
TIMEOUT_S = 60


class DownloadError(UserError, OSError):
    """A download that could not be done or did not verify; the message names the model, the link or the file."""


def digests(path):
    """``(size, sha256 hex, git blob id)`` of the file at ``path``, read once."""
    size = os.path.getsize(path)
    sha256, blob = hashlib.sha256(), hashlib.sha1(f'blob {size}\0'.encode())
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(CHUNK), b''):
            sha256.update(chunk)
            blob.update(chunk)
    return size, sha256.hexdigest(), blob.hexdigest()


def checks(weights):
    """The names of the checks the zoo knows for ``weights`` (empty: nothing to check a file against)."""
    return [name for name, value in (('size', weights.size), ('sha256', weights.sha256),
                                     ('git blob', weights.git_blob)) if value is not None]


def mismatches(path, weights):
    """What in the file at ``path`` differs from the zoo's size, sha256 and git blob id (empty list: it passes)."""
    size, sha256, blob = digests(path)
    found = []
    if weights.size is not None and size != weights.size:
        found.append(f'{size} bytes, expected {weights.size}')
    if weights.sha256 is not None and sha256 != weights.sha256:
        found.append(f'sha256 {sha256}, expected {weights.sha256}')
    if weights.git_blob is not None and blob != weights.git_blob:
        found.append(f'git blob {blob}, expected {weights.git_blob}')
    return found


def source_url(weights, mirror=None):
    """Where ``weights`` are fetched from: ``<mirror>/<file>`` when a mirror is given, else the release's link;
    ``None`` for weights without a direct link (manual downloads)."""
    if weights.url and mirror:
        return f"{mirror.rstrip('/')}/{urllib.parse.quote(weights.file)}"
    return weights.url


def _fetch_to(url, tmp, name, timeout):
    """Stream ``url`` into the new file ``tmp``; return ``(bytes written, Content-Length or None)``."""
    host = urllib.parse.urlsplit(url).netloc or url
    try:
        response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310  (http(s) or file URLs of the zoo)
    except urllib.error.HTTPError as err:
        gone = ' (the link is gone: the file was moved or deleted)' if err.code in (404, 410) else ''
        raise DownloadError(f'{name}: {url}: HTTP {err.code} {err.reason}{gone}; nothing was written') from None
    except urllib.error.URLError as err:
        if isinstance(err.reason, FileNotFoundError):  # a file:// mirror without the file
            raise DownloadError(f'{name}: {url}: no such file; nothing was written') from None
        reason = getattr(err.reason, 'strerror', None) or err.reason
        raise DownloadError(f'{name}: cannot reach {host} ({reason}); are you offline? nothing was written') from None
    except (TimeoutError, socket.timeout):
        raise DownloadError(f'{name}: {host} did not answer within {timeout} s; nothing was written') from None
    with response:
        length = response.headers.get('Content-Length')
        length = int(length) if length and length.isdigit() else None
        written = 0
        try:
            with open(tmp, 'xb') as f:
                for chunk in iter(lambda: response.read(CHUNK), b''):
                    f.write(chunk)
                    written += len(chunk)
                f.flush()
                os.fsync(f.fileno())
        except http.client.IncompleteRead as err:
            written += len(err.partial)
        except (TimeoutError, socket.timeout):
            raise DownloadError(f'{name}: {url}: the transfer stalled for {timeout} s after {written} bytes; '
                                'the partial file was removed') from None
        except (ConnectionError, http.client.HTTPException) as err:
            raise DownloadError(f'{name}: {url}: the transfer broke after {written} bytes ({err}); the partial file '
                                'was removed') from None
    return written, length


def part_name(file):
    """The hidden name a download of ``file`` is written to by this process, in the same folder."""
    return f'.{file}.part{os.getpid()}'


def remove_stale_parts(dest, out=None):
    """Remove the partial files (``.<file>.part<pid>``) that downloads killed before their own clean-up left in
    ``dest``, where their process is gone; a download still running keeps its file. Returns the removed paths."""
    out = out or sys.stdout
    try:
        names = sorted(os.listdir(dest))
    except FileNotFoundError:
        return []
    removed = []
    for name in names:
        match = re.fullmatch(r'\.(.+)\.part(\d+)', name)
        path = os.path.join(dest, name)
        if match and os.path.isfile(path) and process_gone(int(match.group(2))):
            os.remove(path)
            removed.append(path)
            print(f'removed {path}: the partial file of a download that was stopped (process {match.group(2)} is '
                  'gone)', file=out, flush=True)
    return removed


def download(model, dest=DEFAULT_DEST, mirror=None, timeout=TIMEOUT_S, out=None):
    """Put the weights of ``model`` (a ``zoo.ZooModel``) into ``dest`` under their release name; return what was
    done: ``'downloaded'``, ``'skipped'`` (already there and verified, or kept when nothing can verify it) or
    ``'manual'`` (no direct link: the link and the target path are printed)."""
    out = out or sys.stdout
    weights = model.weights
    target = os.path.join(dest, weights.file)
    known = checks(weights)
    if os.path.isfile(target):
        wrong = mismatches(target, weights)
        if not wrong:
            state = f"{', '.join(known)} verified" if known else 'nothing to verify it against'
            print(f'{model.name}: {target} is here ({state}); skipped', file=out, flush=True)
            return 'skipped'
        print(f"{model.name}: {target} does not match the release ({'; '.join(wrong)}); downloading it again",
              file=out, flush=True)
    url = source_url(weights, mirror)
    if url is None:
        links = ' or '.join(weights.manual)
        print(f'{model.name}: manual download from {links}; save it as {target}', file=out, flush=True)
        return 'manual'
    try:
        os.makedirs(dest, exist_ok=True)
    except OSError as err:
        raise DownloadError(f'{model.name}: cannot create the folder {dest} ({err.strerror})') from None
    tmp = os.path.join(dest, part_name(weights.file))
    print(f'{model.name}: downloading {url}', file=out, flush=True)
    try:
        written, length = _fetch_to(url, tmp, model.name, timeout)
        if length is not None and written != length:
            raise DownloadError(f'{model.name}: {url}: the connection closed after {written} of {length} bytes; '
                                'the partial file was removed')
        wrong = mismatches(tmp, weights)
        if wrong:
            raise DownloadError(f"{model.name}: {url}: the file does not match the release ({'; '.join(wrong)}); "
                                'it was removed')
        os.replace(tmp, target)
    except OSError as err:
        if isinstance(err, DownloadError):
            raise
        raise DownloadError(f'{model.name}: cannot write {tmp} ({err.strerror or err}); nothing was kept') from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    state = f"{', '.join(known)} verified" if known else 'not verified: the zoo knows no checksum for it'
    print(f'{model.name}: {target} ({written / 1e6:.1f} MB, {state})', file=out, flush=True)
    return 'downloaded'


def list_models(dest=DEFAULT_DEST, out=None):
    """Print the zoo: model, file, size, checks, whether it is in ``dest`` (and verified), where it comes from."""
    out = out or sys.stdout
    rows = []
    for model in zoo.MODELS.values():
        w = model.weights
        path = os.path.join(dest, w.file)
        if not os.path.isfile(path):
            here = 'missing'
        elif checks(w):
            here = 'verified' if not mismatches(path, w) else 'MISMATCH'
        else:
            here = 'present'
        size = f'{w.size / 1e6:.1f} MB' if w.size else '?'
        where = w.url or f'manual: {w.manual[0]}'
        rows.append((model.name, w.file, size, ', '.join(checks(w)) or '-', here, where))
    header = ('model', 'file', 'size', 'checks', dest, 'from')
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print('  '.join(f'{v:<{w}}' for v, w in zip(row, widths)) + '  ' + row[-1], file=out)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('models', nargs='*', metavar='MODEL', help='zoo names, e.g. CVHSSR-T_x4 (see --list)')
    parser.add_argument('--all', action='store_true', help='every model of the zoo')
    parser.add_argument('--list', action='store_true', help='list the zoo and what is in --dest')
    parser.add_argument('--dest', default=DEFAULT_DEST, help=f'target folder (default {DEFAULT_DEST})')
    parser.add_argument('--mirror', help='fetch <MIRROR>/<file name> instead of the release links '
                                         '(http://, https:// or file://)')
    parser.add_argument('--timeout', type=float, default=TIMEOUT_S, help='seconds without data before giving up')
    args = parser.parse_args(argv)
    if not (args.models or args.all or args.list):
        parser.error('name models, or give --all or --list')
    if args.mirror and urllib.parse.urlsplit(args.mirror).scheme not in ('http', 'https', 'file'):
        parser.error(f'--mirror {args.mirror}: expected an http://, https:// or file:// URL')
    return args


def run(args):
    if args.list:
        list_models(args.dest)
        if not (args.models or args.all):
            return 0
    models = zoo_models([] if args.all else args.models, 'MODEL')
    remove_stale_parts(args.dest)
    for model in models:
        download(model, args.dest, mirror=args.mirror, timeout=args.timeout)
    return 0


def main(argv=None):
    return run_main('download_pretrained.py', run, parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
