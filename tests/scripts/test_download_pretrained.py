"""scripts/download_pretrained.py against a local HTTP server (127.0.0.1, a free port) serving files made here.

The zoo's table is replaced by two tiny entries whose size and sha256 are those of the files generated below, and
the links are pointed at the local server with ``--mirror`` (the same switch a user's own mirror uses). Every
failure must end in one line, exit code 2, and leave no file behind; success leaves exactly the final file.
"""
import ast
import errno
import hashlib
import http.server
import os
import re
import socket
import subprocess
import sys
import threading

import pytest

from basicsr import zoo
from helpers import ROOT, load_script

script = load_script('scripts/download_pretrained.py')

GOOD = bytes(range(256)) * 40  # 10,240 bytes: the "released" file
OTHER = GOOD[::-1]  # same size, other bytes


def _weights(file, data, url='https://example.invalid/release/'):
    return zoo.Weights(file=file, url=url + file, size=len(data), sha256=hashlib.sha256(data).hexdigest())


@pytest.fixture
def tiny_zoo(monkeypatch):
    """The zoo reduced to one downloadable model (TINY-T_x4, file tiny_x4.pth) and one manual one."""
    models = {
        'TINY-T_x4': zoo.ZooModel('TINY-T_x4', 'TINY', 4, None, _weights('tiny_x4.pth', GOOD), 'nobody/tiny',
                                    'options/test/TINY/TINY-T_x4.yml'),
        'NAFSSR-T_x4': zoo.MODELS['NAFSSR-T_x4'],
    }
    monkeypatch.setattr(zoo, 'MODELS', models)
    return models


class Server:
    """``files``: path -> (bytes, mode); mode 'ok', or 'short' (Content-Length of the whole file, half of it sent,
    then the connection closed). Anything else is a 404."""

    def __init__(self):
        self.files = {}
        files = self.files

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802  (http.server's name)
                if self.path not in files:
                    self.send_error(404)
                    return
                data, mode = files[self.path]
                self.send_response(200)
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data if mode == 'ok' else data[:len(data) // 2])
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}/mirror'
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server():
    srv = Server()
    try:
        yield srv
    finally:
        srv.close()


def _run(capsys, *argv):
    code = script.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith('download_pretrained.py: error: '), err
    return lines[0]


def test_good_download_lands_under_its_release_name_and_a_rerun_skips_it(tiny_zoo, server, tmp_path, capsys):
    server.files['/mirror/tiny_x4.pth'] = (GOOD, 'ok')
    dest = tmp_path / 'pretrained'
    code, out, _ = _run(capsys, 'TINY-T_x4', '--dest', str(dest), '--mirror', server.url, '--timeout', '5')
    assert code == 0
    assert os.listdir(dest) == ['tiny_x4.pth']  # no temporary file left
    assert (dest / 'tiny_x4.pth').read_bytes() == GOOD
    assert 'size, sha256 verified' in out
    stamp = os.stat(dest / 'tiny_x4.pth').st_mtime_ns
    del server.files['/mirror/tiny_x4.pth']  # a rerun must not even ask the server
    code, out, _ = _run(capsys, 'TINY-T_x4', '--dest', str(dest), '--mirror', server.url)
    assert code == 0 and 'is here (size, sha256 verified); skipped' in out
    assert os.stat(dest / 'tiny_x4.pth').st_mtime_ns == stamp


def test_a_file_that_does_not_match_is_downloaded_again(tiny_zoo, server, tmp_path, capsys):
    server.files['/mirror/tiny_x4.pth'] = (GOOD, 'ok')
    (tmp_path / 'tiny_x4.pth').write_bytes(GOOD[:100])  # an earlier, broken copy
    code, out, _ = _run(capsys, 'TINY-T_x4', '--dest', str(tmp_path), '--mirror', server.url)
    assert code == 0 and 'does not match the release (100 bytes, expected 10240' in out
    assert (tmp_path / 'tiny_x4.pth').read_bytes() == GOOD


@pytest.mark.parametrize('served, expected', [
    ((GOOD, 'short'), r'the connection closed after 5120 of 10240 bytes; the partial file was removed'),
    ((GOOD[:-1], 'ok'), r'does not match the release \(10239 bytes, expected 10240; sha256 [0-9a-f]{64}, '
                        r'expected [0-9a-f]{64}\); it was removed'),
    ((OTHER, 'ok'), r'does not match the release \(sha256 [0-9a-f]{64}, expected [0-9a-f]{64}\); it was removed'),
], ids=['truncated-transfer', 'wrong-size', 'wrong-checksum'])
def test_a_bad_download_is_one_line_and_leaves_nothing(tiny_zoo, server, tmp_path, capsys, served, expected):
    server.files['/mirror/tiny_x4.pth'] = served
    code, _, err = _run(capsys, 'TINY-T_x4', '--dest', str(tmp_path), '--mirror', server.url)
    assert code == 2
    line = _error_line(err)
    assert line.startswith(f'download_pretrained.py: error: TINY-T_x4: {server.url}/tiny_x4.pth: '), line
    assert re.search(expected, line), line
    assert os.listdir(tmp_path) == []


def test_an_interrupted_download_leaves_nothing(tiny_zoo, monkeypatch, tmp_path):
    """Ctrl-C (or any exception) in the middle of the transfer: the temporary file goes, the final name never
    appears."""
    def half_then_interrupt(url, tmp, name, timeout):
        with open(tmp, 'xb') as f:
            f.write(GOOD[:100])
        raise KeyboardInterrupt

    monkeypatch.setattr(script, '_fetch_to', half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        script.main(['TINY-T_x4', '--dest', str(tmp_path), '--mirror', 'http://127.0.0.1:9'])
    assert os.listdir(tmp_path) == []


def test_a_link_that_is_gone_is_one_line(tiny_zoo, server, tmp_path, capsys):
    code, _, err = _run(capsys, 'TINY-T_x4', '--dest', str(tmp_path), '--mirror', server.url)
    assert code == 2
    assert _error_line(err) == (f'download_pretrained.py: error: TINY-T_x4: {server.url}/tiny_x4.pth: HTTP 404 '
                                'Not Found (the link is gone: the file was moved or deleted); nothing was written')
    assert os.listdir(tmp_path) == []


def test_offline_is_one_line(tiny_zoo, tmp_path, capsys):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    code, _, err = _run(capsys, 'TINY-T_x4', '--dest', str(tmp_path), '--mirror', f'http://127.0.0.1:{port}')
    assert code == 2
    assert _error_line(err) == (f'download_pretrained.py: error: TINY-T_x4: cannot reach 127.0.0.1:{port} '
                                '(Connection refused); are you offline? nothing was written')
    assert os.listdir(tmp_path) == []


def test_the_release_links_are_the_default_and_the_mirror_keeps_the_file_name(tiny_zoo):
    weights = tiny_zoo['TINY-T_x4'].weights
    assert script.source_url(weights) == 'https://example.invalid/release/tiny_x4.pth'
    assert script.source_url(weights, 'file:///srv/zoo/') == 'file:///srv/zoo/tiny_x4.pth'


def test_nafssr_is_a_manual_download_with_its_link_and_target(tiny_zoo, server, tmp_path, capsys):
    code, out, _ = _run(capsys, 'NAFSSR-T_x4', '--dest', str(tmp_path), '--mirror', server.url)
    assert code == 0
    assert out.strip() == ('NAFSSR-T_x4: manual download from https://drive.google.com/file/d/'
                           '1owfYG1KTXFMl4wHpUZefWAcVlBpLohe5/view?usp=sharing or https://pan.baidu.com/s/'
                           f'1yC5XzJcL5peC1YuW3MkFMA?pwd=5j1u; save it as {tmp_path}/NAFSSR-T_4x.pth')
    assert os.listdir(tmp_path) == []


def test_list_and_unknown_names(tiny_zoo, tmp_path, capsys):
    (tmp_path / 'tiny_x4.pth').write_bytes(GOOD)
    code, out, _ = _run(capsys, '--list', '--dest', str(tmp_path))
    assert code == 0
    tiny = next(line for line in out.splitlines() if line.startswith('TINY-T_x4'))
    assert tiny.split()[:6] == ['TINY-T_x4', 'tiny_x4.pth', '0.0', 'MB', 'size,', 'sha256']
    assert 'verified' in tiny
    nafssr = next(line for line in out.splitlines() if line.startswith('NAFSSR-T_x4'))
    assert 'missing' in nafssr and 'manual: https://drive.google.com/' in nafssr
    code, _, err = _run(capsys, 'TINY_x4')
    assert code == 2
    assert _error_line(err) == ("download_pretrained.py: error: MODEL: unknown model 'TINY_x4'; expected a name of "
                                'the zoo such as NAFSSR-T_x4 (closest: TINY-T_x4)')


# ------------------------------------------------------------------ the zoo's table itself (basicsr/zoo.py)
def test_zoo_is_plain_data_without_torch():
    with open(os.path.join(ROOT, 'basicsr', 'zoo.py'), encoding='utf-8') as f:
        tree = ast.parse(f.read())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {'dataclasses'}


def test_zoo_links_are_pinned_and_checkable():
    for model in zoo.MODELS.values():
        w = model.weights
        if model.family in ('NAFSSR', 'SwinFIRSSR'):  # Google Drive / Baidu only
            assert w.url is None and len(w.manual) == 2, model.name
        elif model.family == 'SCGLANet':  # one Baidu share for all three tracks (its README at 3ad0322)
            assert w.url is None and w.manual == zoo.SCGLANET_BAIDU, model.name
        elif model.family == 'SwinFSR':  # one Google Drive folder for its three models (its README at 04dd212)
            assert w.url is None and w.manual == zoo.SWINFSR_DRIVE, model.name
        else:
            assert re.fullmatch(r'https://github\.com/[\w-]+/[\w-]+/raw/[0-9a-f]{40}/[\w/.-]+', w.url), w.url
            assert w.url.endswith('/' + w.file) and script.checks(w), model.name
        assert model.name.endswith(f'_x{model.scale}')
        assert model.option == f'options/test/{model.family}/{model.name}.yml'  # one name: the option file's


def test_zoo_published_figures_name_their_source():
    # the headline figure of issue 11: CVHSSR-T x4 on KITTI2015, (Left+Right)/2 (PEERS.md, source S)
    assert zoo.published('CVHSSR-T_x4', 'KITTI2015') == zoo.Published(26.78, 0.8218, source='S')
    assert zoo.published('NAFSSR-T_x4', 'KITTI2015').psnr_left == 25.90  # the NAFSSR paper's Left figure
    # EHFSSR: the community list (its README publishes none); our run of the released EHFSSR_S_x4.pth on the real
    # KITTI2015 set gave 26.7892 / 0.8218; the list's KITTI2012 x4 row repeats the KITTI2015 one and is left out
    assert zoo.published('EHFSSR_S_x4', 'KITTI2015') == zoo.Published(26.79, 0.8218, source='S')
    assert zoo.published('EHFSSR_S_x4', 'KITTI2012') is None and zoo.published('EHFSSR_x2', 'KITTI2012').psnr == 31.58
    assert zoo.published('SCGLANet-L_x4', 'KITTI2015') == zoo.Published(27.01, 0.8290, 26.94, 0.8268, 'S', 'S')
    assert zoo.published('iPASSR_x4', 'KITTI2015') == zoo.Published(26.32, 0.8084, source='iPASSR README')  # PEERS
    assert zoo.published('SwinFIRSSR_x2', 'Flickr1024').psnr == 30.14  # PEERS.md, from the SwinFIR README
    for (name, test_set), fig in zoo.PUBLISHED.items():
        assert name in zoo.MODELS and test_set in zoo.TEST_SETS
        assert fig.source in zoo.SOURCES and (fig.psnr_left is None or fig.left_source in zoo.SOURCES)


def _dead_pid():
    """The PID of a process that has exited (and been reaped)."""
    done = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True)
    return int(done.stdout)


def test_the_partial_file_of_a_killed_download_is_removed_by_the_next_run(tiny_zoo, server, tmp_path, capsys):
    """A download killed with SIGKILL cannot clean up: its ``.<file>.part<pid>`` stays. The next run removes it
    (its process is gone) and says so; the partial file of a download still running (a live PID) is kept."""
    server.files['/mirror/tiny_x4.pth'] = (GOOD, 'ok')
    dead, live = _dead_pid(), os.getppid()
    (tmp_path / f'.tiny_x4.pth.part{dead}').write_bytes(GOOD[:100])
    (tmp_path / f'.other.pth.part{dead}').write_bytes(GOOD[:10])
    (tmp_path / f'.tiny_x4.pth.part{live}').write_bytes(GOOD[:200])
    (tmp_path / 'notes.part1').write_text('not a partial download')
    code, out, _ = _run(capsys, 'TINY-T_x4', '--dest', str(tmp_path), '--mirror', server.url)
    assert code == 0
    assert sorted(os.listdir(tmp_path)) == [f'.tiny_x4.pth.part{live}', 'notes.part1', 'tiny_x4.pth']
    removed = [line for line in out.splitlines() if line.startswith('removed ')]
    assert removed == [f'removed {tmp_path / name}: the partial file of a download that was stopped (process {dead} '
                       'is gone)' for name in (f'.other.pth.part{dead}', f'.tiny_x4.pth.part{dead}')]


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(tiny_zoo, server, tmp_path, capsys, monkeypatch):
    server.files['/mirror/tiny_x4.pth'] = (GOOD, 'ok')
    real_open = open

    def full_disk_open(path, mode='r', *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        if 'x' in mode:  # the partial file: the disk fills after its first bytes
            f.write = lambda data: (_ for _ in ()).throw(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        return f

    monkeypatch.setattr(script, 'open', full_disk_open, raising=False)
    code, _, err = _run(capsys, 'TINY-T_x4', '--dest', str(tmp_path), '--mirror', server.url)
    assert code == 2
    part = tmp_path / script.part_name('tiny_x4.pth')
    assert _error_line(err) == (f'download_pretrained.py: error: TINY-T_x4: cannot write {part} (No space left on '
                                'device); nothing was kept')
    assert os.listdir(tmp_path) == []
