"""A real browser for the tests of the HTML pages: Debian's chromium, headless, driven by selenium through the
system's chromedriver, and a local HTTP server for the pages that read their own pixels back.

Nothing is downloaded at run time: the browser and its driver are the system's (`.ci/run` installs the Debian
packages chromium and chromium-driver when /usr/bin/chromium is missing). Without them the tests fail with one
line saying what to install; they are never skipped.
"""
import functools
import http.server
import json
import os
import tempfile
import threading
from contextlib import contextmanager

import pytest

CHROMIUM = '/usr/bin/chromium'
CHROMEDRIVER = '/usr/bin/chromedriver'
FLAGS = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync', '--window-size=1400,1200')
BROWSER_SCHEMES = ('chrome:', 'chrome-untrusted:', 'devtools:', 'about:')  # the browser's own pages, no network


class Browser:
    """A selenium driver with what the tests check on every page: console errors and the URLs requested."""

    def __init__(self, driver):
        self.driver = driver

    def open(self, url):
        """Load ``url`` with fresh logs (what the browser did before is not the page's)."""
        self.driver.get_log('browser')
        self.driver.get_log('performance')
        self.driver.get(url)
        return self.driver

    def console_errors(self):
        """Messages of the console at level error (uncaught exceptions, failed loads, blocked requests)."""
        return [entry['message'] for entry in self.driver.get_log('browser') if entry['level'] == 'SEVERE']

    def requested_urls(self):
        """Every URL the page asked for since ``open`` (from the DevTools network events)."""
        urls = []
        for entry in self.driver.get_log('performance'):
            message = json.loads(entry['message'])['message']
            if message['method'] == 'Network.requestWillBeSent':
                url = message['params']['request']['url']
                if not url.startswith(BROWSER_SCHEMES):
                    urls.append(url)
        return urls


@contextmanager
def chromium():
    """A headless chromium with a fresh profile, closed at the end."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not found: the browser tests need Debian's chromium and "
                    'chromium-driver (apt-get install -y chromium chromium-driver; .ci/run installs them)',
                    pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix='chromium-profile-') as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM  # with the driver's path, selenium looks nothing up, downloads nothing
        for flag in FLAGS + (f'--user-data-dir={profile}',):
            options.add_argument(flag)
        options.set_capability('goog:loggingPrefs', {'browser': 'ALL', 'performance': 'ALL'})
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            driver.set_page_load_timeout(30)
            yield Browser(driver)
        finally:
            driver.quit()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextmanager
def serve(folder):
    """Serve ``folder`` on 127.0.0.1 (a free port) while in the block; yields the base URL."""
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_QuietHandler, directory=folder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
