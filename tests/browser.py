"""A real casebase server in a subprocess and a real Chromium (Debian's) driven by Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
# Chromium flags for a headless machine with no network beyond localhost.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def server(*args: str):
    """`python -m casebase serve ARGS` on a free port; yields its base URL."""
    with server_process(*args) as (base, _):
        yield base


@contextmanager
def server_process(*args: str, port: int | None = None):
    """`python -m casebase serve ARGS` on ``port`` (a free one if not given); yields
    its base URL and its process (for a test that kills it)."""
    port = port or free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / f"server-{port}-{time.monotonic_ns()}.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "casebase", "serve", "--port", str(port), *args],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(1200):  # up to two minutes for start-up on a busy machine, checked every 0.1 s
                if process.poll() is not None:
                    raise RuntimeError(f"server exited: {log.read_text(errors='replace')}")
                try:
                    urllib.request.urlopen(base + "/-/versions.json", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                raise RuntimeError(f"server did not start: {log.read_text(errors='replace')}")
            yield base, process
        finally:
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=20)


@contextmanager
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium.new_page()
        finally:
            chromium.close()


WIDTHS = (1400, 400)


def screenshots(page, name: str) -> list[Path]:
    """Full-page screenshots of the page as it is now, at a desktop and a phone
    width, into test-artifacts/ (kept by CI for a human look); returns the files.

    The viewport is restored afterwards, so a test can go on where it was."""
    ARTIFACTS.mkdir(exist_ok=True)
    before = page.viewport_size or {"width": 1280, "height": 900}
    files = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        target = ARTIFACTS / f"{name}-{width}.png"
        page.screenshot(path=str(target), full_page=True)
        files.append(target)
    page.set_viewport_size(before)
    return files


def horizontal_overflow(page) -> int:
    """How many CSS pixels the page is wider than its viewport (0 when it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
