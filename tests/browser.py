"""Headless Chromium for the browser tests of the report and the calculator, driven by playwright.

The browser is the system's Chromium (Debian: ``apt-get install chromium``), not one that playwright downloads:
``SCALESWEEP_CHROMIUM`` names its executable, else ``chromium`` or ``chromium-browser`` on the PATH, else
``/usr/bin/chromium``. Without playwright (``pip install playwright``) or without Chromium the tests that use
``browser`` are skipped, and the skip names what is missing.

``watched_page(browser, allowed)`` opens a page that refuses every request whose URL does not start with one of
``allowed`` (the report file itself; the calculator's own server) and records it, and records console errors
and uncaught exceptions: a test asserts both lists are empty.

``SCALESWEEP_SCREENSHOTS=1`` makes ``screenshot`` write ``docs/screenshots/NAME.png`` (the README's pictures);
otherwise it writes nothing, so a normal test run leaves the repository as it was.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def chromium_path() -> str | None:
    """The Chromium executable to drive, or None when there is none."""
    given = os.environ.get("SCALESWEEP_CHROMIUM")
    if given:
        return given if os.access(given, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


_SESSION: dict = {}  # the one playwright and browser of the test session (each test module imports the fixture)


@pytest.fixture(scope="session")
def browser(request):
    """A headless Chromium (playwright Browser), shared by the session; skips with the reason when missing."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("browser tests need playwright: pip install playwright (it drives the system's Chromium)")
    exe = chromium_path()
    if exe is None:
        pytest.skip("browser tests need Chromium: apt-get install chromium (or set SCALESWEEP_CHROMIUM to its path)")
    if "browser" not in _SESSION:
        pw = sync_playwright().start()
        try:
            b = pw.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox", "--disable-gpu"])
        except Error as exc:
            pw.stop()
            pytest.skip(f"Chromium at {exe} does not start under playwright: {str(exc).splitlines()[0]}")
        _SESSION.update(playwright=pw, browser=b)

        def close():
            _SESSION.pop("browser").close()
            _SESSION.pop("playwright").stop()

        request.addfinalizer(close)
    return _SESSION["browser"]


@dataclass
class Watched:
    """A page and what it did that it should not have: requests refused, console errors, exceptions."""

    page: object
    context: object
    refused: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    requests: list = field(default_factory=list)


def watched_page(browser, allowed: tuple[str, ...], *, width: int = 1280, height: int = 900,
                 permissions: tuple[str, ...] = (), origin: str | None = None) -> Watched:
    """A new page (in its own context) whose requests outside ``allowed`` URL prefixes are refused and
    recorded; console errors and page exceptions are recorded too."""
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    if permissions:
        context.grant_permissions(list(permissions), origin=origin)
    page = context.new_page()
    w = Watched(page, context)

    def route(r):
        url = r.request.url
        w.requests.append(url)
        if url.startswith(allowed):
            r.continue_()
        else:
            w.refused.append(url)
            r.abort()

    context.route("**/*", route)
    page.on("console", lambda m: w.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: w.errors.append(f"page error: {e}"))
    return w


def screenshot(page, name: str) -> Path | None:
    """Save a screenshot as docs/screenshots/NAME.png when SCALESWEEP_SCREENSHOTS=1; None otherwise."""
    if os.environ.get("SCALESWEEP_SCREENSHOTS") != "1":
        return None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
