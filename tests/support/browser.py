"""A real browser for page tests: headless Chromium from Debian's packages, driven by
Playwright for Python (`browser` yields one per module; each test opens its own context,
so cookies never leak between tests).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
SCREENSHOTS_ENV = "NXS_SCREENSHOTS"  # a folder: page tests save their screenshots there


def chromium_path() -> str:
    """Debian's Chromium (scripts/setup installs it); a clear error when it is missing."""
    for path in CHROMIUM_PATHS:
        if shutil.which(path):
            return path
    raise RuntimeError("Chromium not found: run scripts/setup (apt-get install chromium)")


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            yield browser
        finally:
            browser.close()


def screenshot_folder() -> Path | None:
    """Where to save screenshots (`NXS_SCREENSHOTS=docs/screenshots`), or None: not saved."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    return Path(folder) if folder else None
