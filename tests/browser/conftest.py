"""Fixtures of the browser layer: a headless Chromium per test module, and a screenshot per test.

Chromium is Debian's package at /usr/bin/chromium, or the executable that STUDIO_CHROMIUM
names (e.g. /snap/bin/chromium on Ubuntu).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.helpers.app import ROOT

CHROMIUM = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = ROOT / "tests" / "screenshots"
# The README's pictures are these tests' screenshots, copied into assets/ only when
# STUDIO_UPDATE_SCREENSHOTS=1 (so an ordinary test run leaves the tree as it was).
README_SCREENSHOTS = {
    "test_upload_run_and_see_the_result": "screenshot.png",
    "test_compare_chain_and_downloads": "screenshot-compare.png",
    "test_switching_to_the_local_backend_shows_its_controls_and_disables_fal_only_ones": "screenshot-local.png",
    "test_the_run_bar_stays_in_view_on_desktop_and_phone-phone-done-viewport": "screenshot-phone.png",
    "test_a_page_with_results_loras_and_panels_open_has_no_serious_violation[dark]": "screenshot-dark.png",
    "test_five_queued_variants_one_failing_one_cancelled_the_rest_in_history_across_a_reload-after-reload":
        "screenshot-queue.png",
}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed browser test's report carries what the page and the app said: each open page's
    console errors and warnings, its uncaught errors and its last requests to the app, and the
    tail of each launched app's log (a flake in CI can then be read, not guessed)."""
    report = yield
    if report.when == "call" and report.failed:
        for title, text in _what_they_said(item.funcargs):
            report.sections.append((title, text))
    return report


def _request_line(request) -> str:
    """A request to the app: its route, and for an event which one (never its data: a key)."""
    line = f"{request.method} {request.url.split('?')[0][-60:]}"
    if request.method == "POST" and ("/queue/join" in request.url or "/run/predict" in request.url):
        try:
            body = json.loads(request.post_data or "{}")
            line += f" fn_index={body.get('fn_index')} trigger_id={body.get('trigger_id')}"
        except ValueError:
            pass
    return line + (f" FAILED {request.failure}" if request.failure else "")


def _what_they_said(funcargs: dict) -> list[tuple[str, str]]:
    said = []
    browser = funcargs.get("browser")
    for context in getattr(browser, "contexts", []):
        for number, page in enumerate(context.pages, start=1):
            try:
                console = [f"{m.type}: {m.text}" for m in page.console_messages() if m.type in ("error", "warning")]
                errors = [str(e) for e in page.page_errors()]
                requests = [_request_line(r) for r in page.requests() if "/gradio_api/" in r.url]
            except Exception as error:  # a page closed meanwhile
                said.append((f"page {number}", f"not readable: {error}"))
                continue
            said.append((f"page {number}: console, errors, last requests",
                         "\n".join(console[-40:] + errors[-10:] + requests[-40:])))
    for name, value in funcargs.items():
        log_path = getattr(value, "log_path", None)
        if isinstance(log_path, Path) and log_path.exists():
            said.append((f"{name}: app log (last 60 lines)",
                         "\n".join(log_path.read_text(errors="replace").splitlines()[-60:])))
    return said


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module (Playwright driving the Chromium at CHROMIUM)."""
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium, or set STUDIO_CHROMIUM "
                    "to the path of a Chromium executable (e.g. /snap/bin/chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def screenshot(request):
    """`screenshot(page)` saves tests/screenshots/<test name>.png (`screenshot(page, "moment")`:
    <test name>-moment.png, for a test that shows more than one state; `full_page=False`: only
    what the screen shows); returns its path."""

    def save(page, moment: str = "", full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{request.node.name}{'-' + moment if moment else ''}.png"
        page.screenshot(path=str(path), full_page=full_page)
        asset = README_SCREENSHOTS.get(path.stem)
        if asset and os.environ.get("STUDIO_UPDATE_SCREENSHOTS") == "1":
            shutil.copyfile(path, ROOT / "assets" / asset)
        return path

    return save
