"""The run bar and the status line in a real Chromium (issue 12): the status is true at every
moment (no flicker back to "waiting", "Failed: <reason>", the form's problems, "Stopped" only
after a run), Run reads "Running · step i/n" while it runs, Stop is enabled only then, a second
click on Run queues the run and says so, and the bar stays in view on desktop and on a phone."""

from __future__ import annotations

import re

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from tests.helpers.app import SERVER_KEY
from tests.helpers.browser import COVERING_COMPARE, error_pills_seen, no_error_pill, open_panel, watch_error_pills

WAITING = "waiting for the first update"
QUEUE_CARDS = "#jobs .thumbnail-item"
# Every status text the page showed, and what Run read with it (its ::after: the step).
RECORD_STATUSES = """
window.__statuses = [];
new MutationObserver(() => {
  const status = document.querySelector("#status");
  const run = document.querySelector("#run-button");
  if (!status || !run) return;
  const after = getComputedStyle(run, "::after").content;
  const state = {status: status.innerText.trim(), run: run.innerText.trim() + (after === "none" ? "" : after)};
  const seen = window.__statuses;
  if (!seen.length || JSON.stringify(seen[seen.length - 1]) !== JSON.stringify(state)) seen.push(state);
}).observe(document, {childList: true, subtree: true, characterData: true, attributes: true});
"""


def open_page(browser, app, **viewport):
    page = browser.new_page(viewport=viewport or {"width": 1400, "height": 900})
    page.add_init_script(RECORD_STATUSES)
    page.goto(app.url)
    expect(page.locator("#run-button")).to_be_visible(timeout=60_000)
    return page


def cancel_queued(page, fake) -> None:
    """Cancel the one queued run in the Queue panel; then every fal job has been cancelled."""
    page.locator(QUEUE_CARDS).first.click()
    expect(page.locator("#job-cancel")).to_be_enabled(timeout=10_000)
    page.locator("#job-cancel").click()
    expect(page.locator(QUEUE_CARDS).first).to_contain_text("stopped", timeout=30_000)
    assert fake.wait_for(lambda: all(j.cancelled for j in fake.jobs.values()), timeout=30)


def fill_form(page, image, prompt="make it glow"):
    page.locator("#reference-1 input[type=file]").set_input_files(str(image))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.locator("#prompt textarea").fill(prompt)


def viewport_shot(page, screenshot, moment: str) -> None:
    """What the screen shows now, then the whole page (conftest's `screenshot`, which scrolls)."""
    screenshot(page, moment + "-viewport", full_page=False)
    screenshot(page, moment)


WHOLE_ON_SCREEN = ("(el) => { const r = el.getBoundingClientRect();"  # (layout in fractions of a pixel)
                   " return r.height > 0 && r.top >= -0.5 && r.bottom <= window.innerHeight + 0.5; }")


def in_viewport(page, selector: str) -> bool:
    return page.locator(selector).evaluate(WHOLE_ON_SCREEN)


def comes_into_view(page, selector: str) -> None:
    """`selector` is whole on the screen within 10 s (a busy machine scrolls and lays out late)."""
    try:
        page.wait_for_function(f"() => ({WHOLE_ON_SCREEN})(document.querySelector({selector!r}))", timeout=10_000)
    except PlaywrightTimeout:
        box = page.locator(selector).bounding_box()
        raise AssertionError(f"{selector} is not whole on the screen: {box}") from None


def test_a_streamed_run_never_flips_back_to_waiting_and_run_shows_its_step(browser, app, fake, images,
                                                                              screenshot):
    fake.steps, fake.job_seconds = 10, 9.5  # the run: 10 steps in about 9.5 s
    page = open_page(browser, app)
    expect(page.locator("#stop-button")).to_be_disabled()  # nothing runs yet
    fill_form(page, images["red"])
    page.locator("#run-button").click()
    expect(page.locator("#stop-button")).to_be_enabled(timeout=10_000)
    expect(page.locator("#run-note")).to_have_count(0)  # a first click runs: no note about the queue
    expect(page.locator("#status")).to_contain_text("Intermediate result", timeout=60_000)
    expect(page.locator("#run-button")).to_have_attribute("data-step", re.compile(r"step \d+/10"), timeout=10_000)
    expect(page.locator("#run-button")).to_contain_text("Running")
    # Run's progress bar follows the step: --progress is step / steps, drawn as Run's background.
    step, progress, background = page.locator("#run-button").evaluate(
        "el => [el.dataset.step, el.style.getPropertyValue('--progress'), getComputedStyle(el).backgroundImage]")
    done, total = map(int, re.findall(r"\d+", step))
    assert progress == f"{round(100 * done / total)}%" and "linear-gradient" in background, (step, progress)
    expect(page.locator("#stop-button")).to_have_class(re.compile(r"\bsecondary\b"))  # Run is the big one
    screenshot(page, "running")
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    expect(page.locator("#run-button")).to_have_text("Run")
    expect(page.locator("#stop-button")).to_be_disabled()
    screenshot(page)

    statuses = [s["status"] for s in page.evaluate("window.__statuses")]
    texts = [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]]
    first_step = next(i for i, s in enumerate(texts) if "step" in s.lower())
    assert not any(WAITING in s for s in texts[first_step:]), texts
    # Ready, starting, sent, at most one per step, downloading, done: no flicker (the issue saw 22 changes).
    assert len(texts) <= 10 + 5, texts
    assert len(set(texts)) == len(texts), texts  # none comes back
    assert texts[-1].startswith("✅ Done"), texts
    # While it ran, Run read "Running · step i/10", with the step the status line showed.
    runs = [s["run"] for s in page.evaluate("window.__statuses")]
    assert any(r.startswith("Running") and "step" in r and "/10" in r for r in runs), runs
    page.close()


def test_a_fal_error_says_failed_with_the_reason(browser, app, fake, images, screenshot):
    fake.keys = {"another-key"}  # fal refuses the server's key
    page = open_page(browser, app)
    fill_form(page, images["red"])
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Failed: fal refused the API key", timeout=60_000)
    expect(page.locator("#run-button")).to_have_text("Run")
    expect(page.locator("#stop-button")).to_be_disabled()
    no_error_pill(page)  # a failed run is said, not a red pill
    screenshot(page)
    fake.keys = {SERVER_KEY}
    page.close()


def test_a_form_error_is_on_the_status_line(browser, app, fake, screenshot):
    page = open_page(browser, app)
    page.locator("#prompt textarea").fill("no image")
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Please check the form", timeout=30_000)
    expect(page.locator("#status")).to_contain_text("Reference images: add at least one image")
    expect(page.locator("#status")).not_to_contain_text("Ready")
    assert not fake.jobs
    no_error_pill(page)
    screenshot(page)
    page.close()


def test_stop_only_while_running_and_a_second_click_on_run_queues_it(browser, app, fake, images, screenshot):
    fake.job_seconds = 60
    page = open_page(browser, app)
    # Idle: Stop is disabled, so "Stopped" is never said with nothing running (Escape neither).
    expect(page.locator("#stop-button")).to_be_disabled()
    page.keyboard.press("Escape")
    expect(page.locator("#status")).to_have_text("Ready.")
    fill_form(page, images["red"])
    page.locator("#run-button").click()
    assert fake.wait_for(lambda: any(j.state == "IN_PROGRESS" for j in fake.jobs.values()), timeout=30)
    expect(page.locator("#stop-button")).to_be_enabled()
    first_job = next(iter(fake.jobs))
    page.locator("#run-button").click()  # a second click: the page says it queues this one
    expect(page.locator("#run-note")).to_contain_text("adds this one to the Queue", timeout=10_000)
    expect(page.locator(QUEUE_CARDS)).to_have_count(1, timeout=15_000)
    screenshot(page, "second-click")
    page.locator("#stop-button").click()  # stops the page's run, not the queued one
    expect(page.locator("#status")).to_contain_text("Stopped", timeout=30_000)
    expect(page.locator("#run-button")).to_have_text("Run")
    expect(page.locator("#stop-button")).to_be_disabled()
    assert fake.wait_for(lambda: fake.jobs[first_job].cancelled, timeout=30)
    cancel_queued(page, fake)
    screenshot(page)
    page.close()


def test_the_run_bar_stays_in_view_on_desktop_and_phone(browser, app, fake, images, screenshot):
    fake.job_seconds = 3
    page = open_page(browser, app)
    page.locator("#add-lora").scroll_into_view_if_needed()
    page.mouse.wheel(0, 3000)
    page.wait_for_function("window.scrollY > 300", timeout=10_000)  # the wheel has scrolled the page
    assert in_viewport(page, "#run-bar"), "desktop: scrolled down, the run bar left the screen"
    viewport_shot(page, screenshot, "desktop-scrolled")
    page.close()

    fake.job_seconds = 8  # long enough to click Run again while it goes
    phone = open_page(browser, app, width=390, height=844)
    fill_form(phone, images["red"])
    assert in_viewport(phone, "#run-bar")
    bar = phone.locator("#run-bar").bounding_box()
    assert bar["y"] + bar["height"] >= 844 - 2, bar  # at the bottom of the screen
    phone.locator("#run-button").click()
    # The run starts with the status line (and the results below it) in view.
    comes_into_view(phone, "#status")
    expect(phone.locator("#run-note")).to_have_count(0)  # a first click runs: no note about the queue
    viewport_shot(phone, screenshot, "phone-running")
    expect(phone.locator("#run-button")).to_have_text(re.compile(r"^\s*Running"), timeout=30_000)
    # Run again while it goes: the note about the queue takes a line of its own; Run, Stop and
    # + Queue stay side by side, each wide enough to press.
    phone.locator("#run-button").click()
    expect(phone.locator("#run-note")).to_be_visible(timeout=10_000)
    boxes = [phone.locator(f"#{name}").bounding_box() for name in ("run-button", "stop-button", "queue-button")]
    assert all(box["width"] >= 60 for box in boxes), boxes
    assert max(b["y"] for b in boxes) - min(b["y"] for b in boxes) < 2, boxes
    assert phone.locator("#run-note").bounding_box()["y"] >= boxes[0]["y"] + boxes[0]["height"] - 1
    viewport_shot(phone, screenshot, "phone-second-click")
    expect(phone.locator("#status")).to_contain_text("Done", timeout=60_000)
    expect(phone.locator("#run-button")).to_have_text("Run")
    phone.locator("#status").scroll_into_view_if_needed()
    viewport_shot(phone, screenshot, "phone-done")
    # With results, compare, History and a queued run on it, the page still fits the phone's width.
    phone.locator("#queue-button").click()
    expect(phone.locator(QUEUE_CARDS)).to_have_count(2, timeout=15_000)
    expect(phone.locator(QUEUE_CARDS).filter(has_text="done")).to_have_count(2, timeout=60_000)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.close()


# Scrolled to the end: how far the page (everything Gradio draws, its footer included) runs under
# the run bar, in px (0 or less: none of it), and where the Log panel is then.
AT_THE_END = """() => {
  window.scrollTo(0, document.documentElement.scrollHeight);
  const bar = document.getElementById('run-bar').getBoundingClientRect();
  const log = document.getElementById('log-panel').getBoundingClientRect();
  const under = document.querySelector('.gradio-container').getBoundingClientRect().bottom - bar.top;
  return {under, logTop: log.top, logBottom: log.bottom, barTop: bar.top, screen: window.innerHeight};
}"""


def end_of_page_clears_the_bar(page) -> None:
    """Scrolled to the end, nothing runs under the bar and the Log panel shows whole above it. Read in
    one frame, again until it holds or 10 s pass (the page's room follows the bar's height a frame or
    more later, and a busy machine lays out late)."""
    clear = ("() => { const at = (" + AT_THE_END + ")();"
             " return at.under <= 0.5 && at.logTop >= -0.5 && at.logBottom <= at.barTop + 0.5; }")
    try:
        page.wait_for_function(clear, timeout=10_000)
    except PlaywrightTimeout:
        at = page.evaluate(AT_THE_END)
        raise AssertionError(f"the end of the page does not clear the run bar: {at}") from None


# True once the element's box has not moved for five frames in a row (a toast slides in).
TOAST_AT_REST = """(toast) => {
  const box = toast.getBoundingClientRect();
  const where = `${box.top},${box.height}`;
  window.__restFrames = window.__restWhere === where ? (window.__restFrames || 0) + 1 : 0;
  window.__restWhere = where;
  return window.__restFrames >= 5;
}"""


def test_on_a_phone_the_end_of_the_page_scrolls_clear_of_the_run_bar(browser, app, fake, images, screenshot):
    """The bar is fixed at the foot of a phone's screen: the page's last lines (the Log, Gradio's
    footer) scroll up above it, also while the bar is a line taller with its note (they lay under
    it), and a toast sits above it."""
    fake.job_seconds = 8  # long enough to click Run again while it goes
    phone = open_page(browser, app, width=390, height=844)
    phone.get_by_role("button", name=re.compile("^Log")).click()
    expect(phone.locator("#logs")).to_be_visible()
    end_of_page_clears_the_bar(phone)
    viewport_shot(phone, screenshot, "end-of-page")
    fill_form(phone, images["red"])
    phone.locator("#run-button").click()
    expect(phone.locator("#run-button")).to_have_text(re.compile(r"^\s*Running"), timeout=30_000)
    phone.locator("#run-button").click()  # a second click queues it: the bar's note takes a line
    expect(phone.locator("#run-note")).to_be_visible(timeout=10_000)
    # The page's room follows the bar's new height (a frame or more later on a busy machine).
    end_of_page_clears_the_bar(phone)
    # The toast that says the run was queued comes to rest above the taller bar, not over Run and
    # Stop (it slides in: its box is read once it has stopped moving).
    toast = phone.locator(".toast-body").filter(has_text="Queued").first
    expect(toast).to_be_visible(timeout=10_000)
    phone.wait_for_function(TOAST_AT_REST, arg=toast.element_handle(), timeout=10_000)
    toast_box, bar = toast.bounding_box(), phone.locator("#run-bar").bounding_box()
    assert toast_box["y"] + toast_box["height"] <= bar["y"] + 0.5, (toast_box, bar)
    viewport_shot(phone, screenshot, "end-of-page-with-note")
    expect(phone.locator("#status")).to_contain_text("Done", timeout=60_000)
    phone.close()


def test_after_stop_the_interrupted_preview_is_not_the_result(browser, app, fake, images, screenshot):
    fake.job_seconds = 0.5
    page = open_page(browser, app)
    fill_form(page, images["red"])
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    expect(page.locator("#history-panel img")).to_have_count(1, timeout=15_000)
    expect(page.locator("#download-zip")).to_be_enabled()

    # A second run, stopped at its first preview.
    fake.steps, fake.job_seconds = 20, 60  # a preview every 3 s; Stop comes long before the end
    page.locator("#prompt textarea").fill("now at night")
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Intermediate result", timeout=60_000)
    expect(page.locator("#results .caption-label").first).to_contain_text("preview")
    watch_error_pills(page)
    page.locator("#stop-button").click()
    expect(page.locator("#status")).to_contain_text("Stopped", timeout=30_000)
    # The last finished result is back as it was (details, seed, tools), then the interrupted preview.
    expect(page.locator("#results .caption-label")).to_have_text(["image 1", "interrupted preview"],
                                                                 timeout=10_000)
    expect(page.locator("#status")).to_contain_text("last finished result is shown again")
    expect(page.locator("#details")).to_contain_text("make it glow")
    expect(page.locator("#details")).not_to_contain_text("now at night")
    expect(page.locator("#seed-used input")).not_to_have_value("")
    expect(page.locator("#download-zip")).to_be_enabled(timeout=10_000)
    expect(page.locator("#download-png")).to_be_enabled()
    expect(page.locator("#compare img")).to_have_count(2, timeout=10_000)
    with page.expect_download() as got:  # the zip holds the finished result, not the preview
        page.locator("#download-zip").click()
    assert "make-it-glow" in got.value.suggested_filename
    # History gains nothing: neither the preview nor the previous run again.
    page.wait_for_timeout(1000)
    expect(page.locator("#history-panel img")).to_have_count(1)
    expect(page.locator("#reference-1 img")).to_be_visible()  # image 1 is still the red one
    expect(page.get_by_text("Error", exact=True)).to_have_count(0)  # a message, not an error
    assert error_pills_seen(page) == []  # not even for a moment (Gradio showed one on the results for ~0.1 s)
    screenshot(page)
    page.close()


def test_while_a_sweep_runs_stop_is_enabled_and_run_queues_beside_it(browser, app, fake, images, screenshot):
    fake.job_seconds = 60
    page = open_page(browser, app, width=1400, height=1400)
    fill_form(page, images["red"])
    page.locator("#add-lora").click()
    page.get_by_label("LoRA 1", exact=True).fill("owner/style-a")
    page.get_by_label("LoRA 1", exact=True).blur()
    page.wait_for_timeout(500)
    page.get_by_text("Sweep", exact=True).click()
    expect(page.locator("#stop-button")).to_be_disabled()
    page.locator("#sweep-button").click()
    assert fake.wait_for(lambda: any(j.state == "IN_PROGRESS" for j in fake.jobs.values()), timeout=30)
    expect(page.locator("#stop-button")).to_be_enabled()
    # Run says a sweep is going (no run starts beside it).
    expect(page.locator("#run-button")).to_contain_text("Running")
    page.locator("#run-button").click()  # queued, beside the sweep
    expect(page.locator("#run-note")).to_contain_text("adds this one to the Queue", timeout=10_000)
    expect(page.locator(QUEUE_CARDS)).to_have_count(1, timeout=15_000)
    page.locator("#stop-button").click()
    expect(page.locator("#status")).to_contain_text("Stopped", timeout=30_000)
    expect(page.locator("#stop-button")).to_be_disabled()
    expect(page.locator("#run-button")).to_have_text("Run")
    cancel_queued(page, fake)
    screenshot(page)
    page.close()


# The page's stream of messages, with an event's last message after a cancel ("process_completed"
# with no output) brought 400 ms late, as a busy server sends it: an init script, so that it sits
# under assets/early_stop.js as the network would.
LATE_LAST_MESSAGE = """
const send = window.fetch.bind(window);
window.fetch = async (input, init) => {
  const response = await send(input, init);
  const url = typeof input === "string" ? input : input.url;
  if (!url.includes("/queue/data") || !response.body) return response;
  const reader = response.body.getReader();
  const text = new TextDecoder();
  const late = new ReadableStream({
    async pull(controller) {
      const {done, value} = await reader.read();
      if (done) return controller.close();
      if (text.decode(value).includes('"output":{},')) await new Promise((r) => setTimeout(r, 400));
      controller.enqueue(value);
    },
  });
  return new Response(late, {status: response.status, statusText: response.statusText, headers: response.headers});
};
"""


def test_a_stopped_sweep_shows_no_error_when_its_last_message_comes_late(browser, app, fake, images, screenshot):
    """Stop during a sweep: "Stopped", each cell "stopped" (they said "running" for good), and no
    red "Error" pill on the cells, the status or the grid, then or for a moment (one stayed about
    1 run in 3 when the cancelled sweep's last message reached the page after its cancel was
    over; here it always comes late; and each showed for ~0.1 s on every Stop)."""
    fake.job_seconds = 30
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.add_init_script(LATE_LAST_MESSAGE)
    page.goto(app.url)
    expect(page.locator("#run-button")).to_be_visible(timeout=60_000)
    fill_form(page, images["red"])
    open_panel(page, "Sweep")
    page.locator("#sweep-x-values textarea, #sweep-x-values input").fill("1, 2, 3")
    expect(page.locator("#sweep-cost")).to_contain_text("3 runs", timeout=10_000)
    page.locator("#sweep-button").click()
    expect(page.locator("#sweep-cells .thumbnail-item")).to_have_count(3, timeout=15_000)
    assert fake.wait_for(lambda: sum(j.state == "IN_PROGRESS" for j in fake.jobs.values()) == 3, timeout=30)
    watch_error_pills(page)
    page.locator("#stop-button").click()
    expect(page.locator("#status")).to_contain_text("Stopped", timeout=30_000)
    assert fake.wait_for(lambda: all(j.cancelled for j in fake.jobs.values()), timeout=30)
    expect(page.locator("#run-button")).to_have_text("Run", timeout=10_000)
    page.wait_for_timeout(1500)  # the late message, then the page's handling of it
    expect(page.locator("#sweep-cells .caption-label")).to_have_text(
        ["stopped · seed 1", "stopped · seed 2", "stopped · seed 3"])
    no_error_pill(page)
    assert error_pills_seen(page) == []  # not even for a moment (Gradio showed them for ~0.1 s every time)
    screenshot(page)
    page.close()


def test_on_a_phone_a_button_whose_effect_is_elsewhere_brings_it_into_view(browser, app, fake, images, screenshot):
    """On a phone the form and the results are a screen or more apart: Use as input, History's
    Compare and Restore scroll to what they changed (image 1, the compare slider, the status)."""
    fake.job_seconds = 0.5
    phone = open_page(browser, app, width=390, height=844)
    phone.get_by_text("Donut, made real", exact=True).click()  # an example fills image 1, a screen up
    expect(phone.locator("#reference-1 img")).to_be_visible(timeout=10_000)
    expect(phone.locator("#reference-1")).to_be_in_viewport()
    fill_form(phone, images["red"])
    phone.locator("#run-button").click()
    expect(phone.locator("#status")).to_contain_text("Done", timeout=60_000)
    expect(phone.locator("#history-panel img")).to_have_count(1, timeout=15_000)

    phone.locator("#results .thumbnail-item").first.click()
    expect(phone.locator("#use-as-input")).to_be_enabled(timeout=10_000)
    phone.locator("#use-as-input").click()
    expect(phone.locator("#reference-1")).to_be_in_viewport()
    expect(phone.locator("#reference-1 img")).to_have_attribute("src", re.compile(r"image-1\.png"), timeout=15_000)

    phone.locator("#reuse-seed").click()
    expect(phone.locator("#seed")).to_be_in_viewport()
    expect(phone.get_by_label("Seed", exact=True)).to_have_value(phone.locator("#seed-used input").input_value())

    phone.locator("#history-panel .thumbnail-item").first.click()
    expect(phone.locator("#history-compare")).to_be_enabled(timeout=10_000)
    phone.locator("#history-compare").click()
    expect(phone.locator("#compare")).to_be_in_viewport()
    expect(phone.locator("#compare img")).to_have_count(2, timeout=10_000)
    expect(phone.locator("#compare [data-testid=block-label]")).to_contain_text("past run of")
    assert phone.locator("#compare img").first.evaluate(COVERING_COMPARE) == []  # its sides named, in the clear
    viewport_shot(phone, screenshot, "compare")

    phone.locator("#history-restore").click()
    expect(phone.locator("#status")).to_contain_text("Restored the run", timeout=15_000)
    expect(phone.locator("#status")).to_be_in_viewport()
    phone.close()


# Each of Run, Stop and + Queue: [clientWidth, scrollWidth, top, height] (its words fit when
# scrollWidth <= clientWidth; one line when the three tops agree and none is taller than 48 px).
BAR_BOXES = """() => ['run-button', 'stop-button', 'queue-button'].map(id => {
  const b = document.getElementById(id), r = b.getBoundingClientRect();
  return [b.clientWidth, b.scrollWidth, r.top, r.height];
})"""


# The tops of the results' tools, the lines they take (a line: tops within 2 px of each other).
TOOL_TOPS = """() => ['use-as-input', 'add-as-reference', 'download-png', 'download-zip', 'seed-used', 'reuse-seed']
  .map(id => Math.round(document.getElementById(id).getBoundingClientRect().top))"""


def lines(tops: list[int]) -> int:
    ordered = sorted(tops)
    return 1 + sum(1 for above, below in zip(ordered, ordered[1:]) if below - above > 2)


def test_on_the_narrowest_phone_the_run_bar_is_one_line_and_the_results_fit_their_image(
    browser, app, fake, images, screenshot,
):
    """At 320 px "+ Queue" ran past its button and "Running · step 12/28" took two lines; on any
    phone a single result sat in a 560 px frame, a third of it blank; and the result's four tools
    took a line each (with Reuse this seed below the seed, a screen of buttons under the result)."""
    fake.steps, fake.job_seconds = 28, 14
    for width in (320, 390):
        phone = open_page(browser, app, width=width, height=740)
        fill_form(phone, images["red"])
        phone.locator("#run-button").click()
        expect(phone.locator("#run-button")).to_have_attribute("data-step", re.compile(r"\b\d\d/28$"), timeout=30_000)
        boxes = phone.evaluate(BAR_BOXES)
        assert all(scroll <= client for client, scroll, _, _ in boxes), (width, boxes)
        assert max(top for *_, top, _ in boxes) - min(top for *_, top, _ in boxes) < 2, (width, boxes)
        assert all(height <= 48 for *_, height in boxes), (width, boxes)
        viewport_shot(phone, screenshot, f"{width}-running")
        expect(phone.locator("#status")).to_contain_text("Done", timeout=60_000)
        frame = phone.locator("#results").bounding_box()
        image = phone.locator("#results img").first.bounding_box()
        assert frame["height"] <= image["height"] + 60, (width, frame, image)  # room for its label
        # The compare slider below: its label (both sides named) whole, clear of its buttons and pictures.
        expect(phone.locator("#compare [data-testid=block-label]")).to_contain_text("Left: image 1")
        assert phone.locator("#compare img").first.evaluate(COVERING_COMPARE) == [], width
        tops = phone.evaluate(TOOL_TOPS)
        assert lines(tops[:4]) == 2, (width, tops)
        if width == 390:  # beside the seed it copies (at 320 px the seed box needs the line)
            assert lines(tops[4:]) == 1, (width, tops)
        phone.close()


# The visible elements that reach past the screen's right edge (a clipped overflow does not
# widen the page: scrollWidth stays the screen's, and the end of a link is simply cut off).
PAST_THE_EDGE = """() => [...document.querySelectorAll("body *")].filter((e) => {
    const box = e.getBoundingClientRect(), style = getComputedStyle(e);
    return box.width > 0 && box.height > 0 && style.visibility !== "hidden" && box.right > innerWidth + 1;
}).map((e) => e.tagName + "#" + e.id + " " + (e.innerText || "").slice(0, 60))"""


def test_on_a_phone_a_long_lora_link_and_instruction_are_shown_whole(browser, app, fake, images, screenshot):
    """A LoRA link of a hundred characters and an instruction without a space: on a phone the
    run's details break them onto more lines rather than cut them off at the screen's edge."""
    link = "https://huggingface.co/some-designer/watercolor-style-flux2/resolve/main/watercolor_v3_rank32.safetensors"
    phone = open_page(browser, app, width=390, height=844)
    phone.locator("#add-lora").click()
    phone.get_by_label("LoRA 1", exact=True).fill(link)
    phone.keyboard.press("Tab")
    fill_form(phone, images["red"], prompt="make_it_look_like_a_watercolor_painting_with_soft_edges_and_paper_texture")
    phone.locator("#run-button").click()
    expect(phone.locator("#status")).to_contain_text("Done", timeout=60_000)
    expect(phone.locator("#details")).to_contain_text("watercolor_v3_rank32.safetensors")
    phone.locator("#details").scroll_into_view_if_needed()
    assert phone.evaluate(PAST_THE_EDGE) == []
    screenshot(phone, "details", full_page=False)
    # The LoRA stack's own words (its header, the LoRA's check) sit inside its frame, not
    # against its left edge.
    expect(phone.locator("#lora-check")).to_contain_text("LoRA 1", timeout=30_000)
    assert phone.evaluate(LORA_WORDS_INSET) >= 8
    phone.close()


# How far the LoRA stack's texts start from its frame's left edge, the least of them, in px.
LORA_WORDS_INSET = """() => {
  const frame = [...document.querySelectorAll('#lora-stack')].pop().getBoundingClientRect();
  const words = [...document.querySelectorAll('#lora-stack p')];
  return Math.min(...words.map(p => p.getBoundingClientRect().left - frame.left));
}"""


def test_the_keyboard_shortcuts_are_offered_only_where_there_is_a_keyboard(browser, app, screenshot):
    """A desktop's hint names Ctrl/Cmd+Enter and Escape; a phone's (a touch screen) only what Queue does."""
    desktop = open_page(browser, app)
    expect(desktop.locator("#run-hint")).to_contain_text("Ctrl/Cmd+Enter runs, Escape stops", use_inner_text=True)
    desktop.close()
    phone_context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = phone_context.new_page()
    phone.goto(app.url)
    hint = phone.locator("#run-hint")
    expect(hint).to_contain_text("Queue (or Run while a run goes) adds a run to the queue.", timeout=60_000)
    expect(hint).not_to_contain_text("Ctrl", use_inner_text=True)  # on the page, not shown
    screenshot(phone, full_page=False)
    phone_context.close()


# Where the form's Run bar and the results' status line are, and the width of the page.
SIDE_BY_SIDE = """() => {
  const bar = [...document.querySelectorAll('#run-bar > button')].map(b => b.getBoundingClientRect());
  const status = document.querySelector('#status').getBoundingClientRect();
  return {barRight: Math.max(...bar.map(b => b.right)), barTops: bar.map(b => Math.round(b.top)),
          statusLeft: status.left, statusTop: status.top, pageWidth: document.documentElement.scrollWidth};
}"""


def test_on_a_tablet_or_a_window_beside_another_the_results_are_beside_the_form(browser, app, fake, images,
                                                                                 screenshot):
    """From 769 to 1024 px (a tablet, a browser window beside another) Gradio narrowed the page to
    704 px: the results went under the whole form, a screen and more below Run, and "+ Queue"
    took a line of its own. Now the results sit beside the form, on screen when Run is clicked."""
    for width in (780, 960):
        page = open_page(browser, app, width=width, height=900)
        fill_form(page, images["red"])
        where = page.evaluate(SIDE_BY_SIDE)
        assert where["statusLeft"] >= where["barRight"] and where["statusTop"] < 300, (width, where)
        assert len(set(where["barTops"])) == 1 and where["pageWidth"] <= width, (width, where)
        page.locator("#run-button").click()
        expect(page.locator("#status")).to_contain_text("Done", timeout=30_000)
        expect(page.locator("#results img").first).to_be_in_viewport()
        screenshot(page, str(width), full_page=False)
        page.close()
