"""Headless Chromium for the tests that render a page: its DOM and its console lines."""

import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=20000",
]


def chromium(page: str, profile: Path, *flags: str) -> tuple[str, list[str]]:
    """Run headless Chromium on ``page``; returns stdout and the page's console lines (errors included)."""
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium (make test does it)")
    proc = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *flags, page], capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
