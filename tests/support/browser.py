"""Debian's headless Chromium, driven from the command line as a user's browser: a page's DOM once drawn, and
screenshots (tests/e2e/test_mitmweb.py, tests/e2e/test_status_page_browser.py)."""

from __future__ import annotations

import shutil
import subprocess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(*args: str, url: str, timeout: float = 60, budget_ms: int = 8000) -> str:
    """Chromium's stdout for `url` with `args` (--dump-dom, --screenshot=PATH, ...), once `budget_ms` of the page's
    virtual time (its timers; network loads are waited for) has passed."""
    return run(*args, url=url, timeout=timeout, budget_ms=budget_ms).stdout


def run(*args: str, url: str, timeout: float = 60, budget_ms: int = 8000) -> subprocess.CompletedProcess:
    """As `chromium`, with its stderr (where --enable-logging=stderr writes the page's console)."""
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--hide-scrollbars", f"--virtual-time-budget={budget_ms}", *args, url],
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done
