"""The queue of runs in a real Chromium (issue 14): five variants queued, one failing and one
cancelled, the rest finishing into History, across a reload of the page; a finished one opened."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.helpers.app import launch_app, stop_app
from tests.helpers.browser import no_error_pill, open_app

CARDS = "#jobs .thumbnail-item"


@pytest.fixture(scope="module")
def paired_app(fake, tmp_path_factory):
    """The app with two runs at once per visitor (the session's app has no such limit)."""
    launched = launch_app(tmp_path_factory.mktemp("paired-app"), fake, STUDIO_VISITOR_CONCURRENCY="2")
    yield launched
    stop_app(launched)


def card(page, text):
    return page.locator(CARDS).filter(has_text=text)


def test_five_queued_variants_one_failing_one_cancelled_the_rest_in_history_across_a_reload(
        browser, paired_app, fake, images, screenshot):
    # Two at a time (the visitor's concurrency), 10 s each: variant 5 waits long enough to be cancelled in line.
    fake.job_seconds = 10
    fake.fail = {"status": 500, "on": "stream", "times": 1, "detail": "the runner fell over"}  # one run fails
    page = open_app(browser, paired_app, height=900)
    page.locator("#reference-1 input[type=file]").set_input_files(str(images["red"]))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    expect(page.locator("#jobs-clear")).to_be_disabled()  # nothing queued: nothing to clear
    for n in range(1, 6):
        page.locator("#prompt textarea").fill(f"variant {n}")
        page.locator("#queue-button").click()
        expect(page.locator(CARDS)).to_have_count(n, timeout=15_000)
    expect(page.locator("#job-detail")).to_contain_text("Queued “variant 5”")
    expect(card(page, "variant 5")).to_contain_text("queued")
    screenshot(page, "five-queued")

    card(page, "variant 5").click()  # still in line: cancelled on its own
    expect(page.locator("#job-cancel")).to_be_enabled()
    expect(page.locator("#job-open")).to_be_disabled()
    page.locator("#job-cancel").click()
    expect(card(page, "variant 5")).to_contain_text("⏹", timeout=10_000)
    expect(page.locator("#jobs-clear")).to_be_enabled()

    page.reload()  # the queue is kept on the server, found again by this browser's token
    expect(page.locator(CARDS)).to_have_count(5, timeout=30_000)
    expect(page.locator(CARDS).filter(has_text="✅")).to_have_count(3, timeout=60_000)
    expect(page.locator(CARDS).filter(has_text="❌ failed")).to_have_count(1)
    expect(card(page, "variant 5")).to_contain_text("⏹ stopped")
    page.locator(CARDS).filter(has_text="❌").click()  # why it failed, in full
    expect(page.locator("#job-detail")).to_contain_text("the runner fell over")
    expect(page.locator("#job-open")).to_be_disabled()
    screenshot(page, "after-reload")

    # Each finished run is in History once; the failed and the cancelled one are not.
    history = page.locator("#history .thumbnail-item")
    expect(history).to_have_count(3, timeout=15_000)
    failed = page.locator(CARDS).filter(has_text="❌").inner_text()
    variants = {f"variant {n}" for n in range(1, 5)} - {m.group(0) for m in re.finditer(r"variant \d", failed)}
    for variant in variants:
        expect(history.filter(has_text=variant)).to_have_count(1)
    expect(history.filter(has_text="variant 5")).to_have_count(0)
    cancelled_jobs = [j for j in fake.jobs.values() if j.input.get("prompt") == "variant 5"]
    assert all(j.cancelled for j in cancelled_jobs)  # it never reached fal (or, on a slow machine, was cancelled there)

    # A finished one opens as the page's run: its result, its details, compare and downloads.
    done = sorted(variants)[0]
    card(page, done).click()
    expect(page.locator("#job-open")).to_be_enabled()
    page.locator("#job-open").click()
    expect(page.locator("#status")).to_contain_text(f"Opened the queued run “{done}”")
    expect(page.locator("#details")).to_contain_text(done)
    expect(page.locator("#results img").first).to_be_visible()
    expect(page.locator("#download-zip")).to_be_enabled(timeout=15_000)
    expect(page.locator("#compare img").first).to_be_visible(timeout=15_000)
    no_error_pill(page)
    screenshot(page, "opened")

    # Clear finished empties the panel; History keeps the three.
    page.locator("#jobs-clear").click()
    expect(page.locator(CARDS)).to_have_count(0, timeout=10_000)
    expect(page.locator("#jobs-clear")).to_be_disabled()
    expect(history).to_have_count(3)
    no_error_pill(page)
    page.close()


HISTORY_CARDS = "#history .thumbnail-item"


def test_a_run_picked_in_history_stays_picked_as_runs_land_on_top(browser, app, fake, images, screenshot):
    """A designer picks an older run in History; a queued run and then a run of their own land
    on top of it: the highlight and Restore stay with the run they picked (they used to stay
    with its place, the second card, which is now another run)."""
    fake.job_seconds = 0.5
    page = open_app(browser, app, height=900)
    page.locator("#reference-1 input[type=file]").set_input_files(str(images["red"]))
    for prompt in ("first prompt", "second prompt"):
        page.locator("#prompt textarea").fill(prompt)
        page.locator("#run-button").click()
        expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    cards = page.locator(HISTORY_CARDS)
    expect(cards).to_have_count(2, timeout=15_000)

    fake.job_seconds = 4
    page.locator("#prompt textarea").fill("queued prompt")
    page.locator("#queue-button").click()
    cards.filter(has_text="first prompt").click()
    expect(page.locator("#history-restore")).to_be_enabled()
    expect(cards).to_have_count(3, timeout=60_000)  # the queued run landed on top
    fake.job_seconds = 0.5
    page.locator("#prompt textarea").fill("latest prompt")
    page.locator("#run-button").click()
    expect(cards).to_have_count(4, timeout=60_000)
    expect(page.locator(f"{HISTORY_CARDS}.selected")).to_have_count(1)
    expect(page.locator(f"{HISTORY_CARDS}.selected")).to_contain_text("first prompt")
    expect(page.locator("#history-restore")).to_be_enabled()
    screenshot(page)
    page.locator("#history-restore").click()
    expect(page.locator("#status")).to_contain_text("Restored the run", timeout=15_000)
    expect(page.locator("#prompt textarea")).to_have_value("first prompt")
    no_error_pill(page)
    page.close()
