"""The designer's tools in a real Chromium: compare, chain, downloads, history, recipes, presets, examples."""

from __future__ import annotations

import base64
import io
import json
import re
import time
import zipfile

from PIL import Image
from playwright.sync_api import expect

from backend.recipes import read_recipe
from tests.helpers.app import launch_app, stop_app
from tests.helpers.browser import (
    DROP_ADDRESS,
    fill_local_form,
    no_error_pill,
    open_panel,
    reload_the_moment_status_says,
    run_once,
)

# `browser` (one Chromium per module) and `screenshot` (tests/screenshots/<test name>.png) are
# conftest's fixtures.


def open_page(browser, app):
    page = browser.new_page(viewport={"width": 1400, "height": 1400}, accept_downloads=True)
    page.goto(app.url)
    return page


def drag_compare_handle(page, to: float) -> None:
    """Drag the compare slider's handle to `to` (0..1) of the image's width; the top image's
    clip follows it."""
    top = page.locator("#compare img").nth(1)
    expect(top).to_have_attribute("style", re.compile(r"inset\(0px 0px 0px 50%\)"))
    page.locator("#compare").scroll_into_view_if_needed()
    handle = page.locator("#compare [data-testid=slider]").bounding_box()
    image = page.locator("#compare img").nth(0).bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(image["x"] + image["width"] * to, handle["y"] + handle["height"] / 2, steps=10)
    page.mouse.up()
    expect(top).not_to_have_attribute("style", re.compile(r"inset\(0px 0px 0px 50%\)"))
    split = float(re.search(r"inset\(0px 0px 0px ([\d.]+)%\)", top.get_attribute("style")).group(1))
    assert abs(split - to * 100) < 10, f"the split is at {split}%, not near {to * 100}%"


def test_compare_chain_and_downloads(browser, app, fake, images, tmp_path, screenshot):
    page = open_page(browser, app)
    run_once(page, images["red"], images=2)
    # Before/after: the slider shows image 1 and the selected result, split in the middle;
    # dragging its handle moves the split.
    expect(page.locator("#compare img")).to_have_count(2, timeout=10_000)
    label = page.locator("#compare [data-testid=block-label]")  # names the slider's two sides
    expect(label).to_have_text("Left: image 1 · right: result 1")
    drag_compare_handle(page, to=0.2)
    # All results as one zip.
    expect(page.locator("#download-zip")).to_be_enabled()
    with page.expect_download() as download:
        page.locator("#download-zip").click()
    archive = tmp_path / "results.zip"
    download.value.save_as(archive)
    # Named for the run: instruction, seed, and each image's place (ui/results.py download_name).
    seed = next(iter(fake.jobs.values())).output["seed"]
    assert sorted(zipfile.ZipFile(archive).namelist()) == [f"make-it-glow_seed-{seed}_{i}.png" for i in (1, 2)]
    # A / B between the two results.
    page.get_by_label("A / B").check()
    expect(page.locator("#compare-a")).to_be_visible()
    expect(page.locator("#compare img")).to_have_count(2)
    expect(label).to_have_text("Left: result 1 (A) · right: result 2 (B)")
    screenshot(page)
    # The selected result as a PNG.
    page.locator("#results .thumbnail-item").nth(0).click()
    expect(page.locator("#download-png")).to_be_enabled()
    with page.expect_download() as single:
        page.locator("#download-png").click()
    assert single.value.suggested_filename.endswith(".png")
    # Chain: add the first result as a second reference.
    page.locator("#add-as-reference").click()
    expect(page.locator("#reference-2 img")).to_be_visible(timeout=10_000)
    page.locator("#add-as-reference").click()
    expect(page.locator("#reference-3 img")).to_be_visible(timeout=10_000)
    # Every slot full: a warning (not a red "Error" notice: nothing failed) says what to do; the slots stay.
    page.locator("#add-as-reference").click()
    notice = page.locator(".toast-body", has_text="This backend takes at most 3 reference images: remove one first.")
    expect(notice).to_be_visible(timeout=10_000)
    expect(notice).to_have_class(re.compile(r"\bwarning\b"))
    no_error_pill(page)
    expect(page.locator("#reference-3 img")).to_be_visible()
    # Chain: the second result becomes the only reference, then is sent.
    page.locator("#results .thumbnail-item").nth(1).click()
    page.locator("#use-as-input").click()
    expect(page.locator("#reference-2 img")).to_be_hidden(timeout=10_000)
    expect(page.locator("#reference-1 img")).to_be_visible()
    page.wait_for_timeout(500)
    page.locator("#run-button").click()
    assert fake.wait_for(lambda: len(fake.jobs) == 2 and all(j.state == "COMPLETED" for j in fake.jobs.values()))
    first, second = sorted(fake.jobs.values(), key=lambda j: j.created)
    assert len(second.input["image_urls"]) == 1
    assert second.input["image_urls"][0] != first.input["image_urls"][0]
    page.close()


def test_history_survives_a_reload_and_restores_every_input(browser, app, fake, images, screenshot):
    page = open_page(browser, app)
    run_once(page, images["blue"], prompt="turn the sky pink")
    expect(page.locator("#history img").first).to_be_visible(timeout=15_000)  # saved in the browser
    page.reload()
    expect(page.locator("#history img").first).to_be_visible(timeout=15_000)
    expect(page.locator("#prompt textarea")).to_have_value("")
    page.locator("#history .thumbnail-item").first.click()
    page.locator("#history-restore").click()
    expect(page.locator("#prompt textarea")).to_have_value("turn the sky pink", timeout=10_000)
    expect(page.locator("#reference-1 img")).to_be_visible()
    expect(page.locator("#results img").first).to_be_visible()
    seed = [j.output["seed"] for j in fake.jobs.values()][0]
    expect(page.locator("#seed input, input[aria-label='Seed']").first).to_have_value(str(seed))
    # Starred runs survive "clear".
    page.locator("#history .thumbnail-item").first.click()
    page.locator("#history-star").click()
    expect(page.locator("#history")).to_contain_text("★")
    # The page stars the run on the server too, with the token its history got with the result.
    run_folder = next(p.parent for p in app.outputs.rglob("recipe.json")
                      if json.loads(p.read_text())["request"]["prompt"] == "turn the sky pink")
    deadline = time.monotonic() + 10
    while not (run_folder / ".starred").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (run_folder / ".starred").exists()
    page.locator("#history-clear").click()  # Clear asks first: a second click clears
    expect(page.locator("#history-clear")).to_have_text("Click again to clear")
    page.locator("#history-clear").click()
    expect(page.locator("#history img")).to_have_count(1)
    screenshot(page)
    page.close()


# Each answer to a call with the page's History (one with runs), presets and backend as its inputs
# (the load's, showing what the browser kept: History's cards and the LoRA library; the library's
# refreshes) comes 2 s late, as it can from a busy server. `__keptAnswers`: how many came, `__keptOut`:
# how many are still to come.
SLOW_KEPT = """(() => {
  const fetch = window.fetch;
  window.__keptAnswers = 0;
  window.__keptOut = 0;
  window.fetch = async (resource, options) => {
    let data = null;
    try { data = JSON.parse(options.body).data; } catch (error) {}
    const kept = Array.isArray(data) && data.length === 3 && Array.isArray(data[0]) && data[0].length
      && data[0].every((entry) => entry && entry.thumbs) && data[1] && typeof data[1] === "object"
      && !Array.isArray(data[1]) && typeof data[2] === "string";
    if (!kept) return fetch(resource, options);
    window.__keptOut += 1;
    const response = await fetch(resource, options);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    setTimeout(() => { window.__keptOut -= 1; window.__keptAnswers += 1; }, 100);
    return response;
  };
})()"""


def test_a_reload_the_moment_the_run_says_done_keeps_it_in_history_and_its_lora_in_the_library(
        browser, app, fake, images, screenshot):
    """A designer reloads as soon as the run says Done: the run is in History after the reload,
    with the run before it, and its LoRA is in the library. (The browser kept it about half a
    second after Done, two server calls later, and a reload in that half second lost it from
    History. Then what the page read at the load, shown after the run was merged in, hid the run's
    card, and its LoRA, on a busy server.)"""
    page = open_page(browser, app)
    cards = page.locator("#history .thumbnail-item")
    run_once(page, images["blue"], prompt="the run before")
    expect(cards).to_have_count(1, timeout=15_000)
    page.wait_for_timeout(1000)  # kept in the browser
    page.locator("#prompt textarea").fill("kept the moment it is done")
    page.locator("#add-lora").click()
    page.get_by_label("LoRA 1", exact=True).fill("studio-test/reload-ink")
    page.add_init_script(SLOW_KEPT)  # as on a busy server
    reload_the_moment_status_says(page, "Done", page.locator("#run-button").click)
    newest_first = [re.compile("kept the moment it is done"), re.compile("the run before")]
    expect(cards).to_have_text(newest_first, timeout=15_000)
    page.wait_for_function("() => window.__keptAnswers && !window.__keptOut", timeout=15_000)
    page.wait_for_timeout(500)  # nothing brings an older History, or a second copy of the run, later
    expect(cards).to_have_count(2)
    page.get_by_role("button", name=re.compile("^LoRA library")).click()
    expect(page.locator("#lora-library").get_by_text("reload-ink · 1 · History")).to_be_visible(timeout=15_000)
    page.reload()  # and the browser keeps both (once)
    expect(cards).to_have_text(newest_first, timeout=15_000)
    screenshot(page)
    page.close()


FILL_STORAGE = """() => {  // what this site may still keep, taken: less than 1,000 characters are left
  let lo = 0, hi = 12e6;
  while (hi - lo > 1000) {
    const mid = Math.floor((lo + hi) / 2);
    try { localStorage.setItem("another-page-of-the-site", "a".repeat(mid)); lo = mid; } catch (e) { hi = mid; }
  }
  localStorage.setItem("another-page-of-the-site", "a".repeat(lo));
}"""


def test_when_the_browser_keeps_no_more_the_page_says_so_and_the_run_stays(browser, app, fake, images, screenshot):
    """The site's storage is full (another page of it used it up, or the browser's own limit):
    Gradio only logs the refused write to the console, and History lost the run at the next
    reload without a word. The page says it was not kept; the run is still shown."""
    page = open_page(browser, app)
    not_kept = page.locator(".toast-body").filter(has_text="did not keep the latest change to History")
    run_once(page, images["blue"], prompt="kept")
    expect(page.locator("#history .thumbnail-item")).to_have_count(1, timeout=15_000)
    # A write that went through says nothing, nor does the page's load where the site may keep data.
    expect(page.locator(".toast-body").filter(has_text=re.compile("did not keep|keep nothing"))).to_have_count(0)
    page.evaluate(FILL_STORAGE)
    run_once(page, images["red"], prompt="not kept")
    expect(not_kept).to_be_visible(timeout=15_000)
    expect(page.locator("#history .thumbnail-item")).to_have_count(2)
    expect(page.locator("#results img").first).to_be_visible()
    screenshot(page)
    page.evaluate("() => localStorage.removeItem('another-page-of-the-site')")
    page.reload()  # a reload shows what the browser kept
    expect(page.locator("#history .thumbnail-item")).to_have_count(1, timeout=15_000)
    expect(page.locator("#history")).to_contain_text("kept")
    page.close()


def test_a_browser_that_lets_the_site_keep_nothing_still_has_history_for_the_page_and_says_so(
        browser, app, fake, images, screenshot):
    """Cookies and site data blocked for the site: touching localStorage throws (as Chromium's does,
    a configurable property of the window), and Gradio's History broke with it: its panel stayed
    empty, with "Loading..." over the page. History and presets now live in the page, which says so."""
    context = browser.new_context(viewport={"width": 1400, "height": 1400})
    context.add_init_script("Object.defineProperty(window, 'localStorage', {configurable: true, get() {"
                            " throw new DOMException('The operation is insecure.', 'SecurityError'); }})")
    page = context.new_page()
    page.goto(app.url)
    expect(page.locator(".toast-body").filter(has_text="lets this site keep nothing")).to_be_visible(timeout=30_000)
    run_once(page, images["blue"], prompt="kept in the page")
    cards = page.locator("#history .thumbnail-item")
    expect(cards).to_have_count(1, timeout=15_000)
    cards.first.click()
    page.locator("#history-star").click()
    expect(cards.first).to_contain_text("★ kept in the page")
    screenshot(page)
    context.close()


def test_a_history_card_shows_the_time_of_the_visitors_clock_not_the_servers(browser, app, fake, images, screenshot):
    """A Space's server keeps UTC: a designer in New York saw "14:32" on a card made at 09:32.
    The card, the restore's note and the run's order follow the browser's clock."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    context = browser.new_context(viewport={"width": 1400, "height": 1400}, timezone_id="America/New_York")
    page = context.new_page()
    page.goto(app.url)
    before = datetime.now(ZoneInfo("America/New_York"))
    run_once(page, images["blue"], prompt="first in New York")
    run_once(page, images["red"], prompt="second in New York")
    after = datetime.now(ZoneInfo("America/New_York"))
    minutes = {(before + timedelta(minutes=m)).strftime("%H:%M") for m in range((after - before).seconds // 60 + 2)}
    cards = page.locator("#history .thumbnail-item")
    expect(cards).to_have_count(2, timeout=15_000)
    expect(cards.first).to_contain_text("second in New York")  # the newest first
    shown = cards.first.inner_text().rsplit("·", 1)[-1].strip()
    assert shown in minutes, f"the card says {shown}, New York's clock {sorted(minutes)}"
    cards.last.click()
    page.locator("#history-restore").click()
    days = "|".join({f"{before:%Y-%m-%d}", f"{after:%Y-%m-%d}"})  # the runs may straddle New York's midnight
    expect(page.locator("#status")).to_contain_text(re.compile(f"Restored the run of ({days})"), timeout=10_000)
    screenshot(page)
    context.close()


def test_dropping_a_png_restores_its_recipe(browser, app, fake, images, screenshot):
    page = open_page(browser, app)
    run_once(page, images["red"], prompt="make it a watercolor")
    saved = next(p for p in app.outputs.rglob("image-1.png") if read_recipe(p.read_bytes())["request"]["prompt"]
                 == "make it a watercolor")
    page.reload()
    page.get_by_text("Restore settings from a PNG made here").click()
    page.locator("#recipe-drop input[type=file]").set_input_files(str(saved))
    # The recipe is shown first, with the references to add again; nothing changes before Apply.
    preview = page.locator("#recipe-preview")
    expect(preview).to_contain_text("make it a watercolor", timeout=10_000)
    expect(preview).to_contain_text("Add the reference image again")
    expect(preview).to_contain_text("red.png")
    expect(page.locator("#prompt textarea")).to_have_value("")
    page.locator("#recipe-apply").click()
    expect(page.locator("#prompt textarea")).to_have_value("make it a watercolor", timeout=10_000)
    expect(page.locator("#status")).to_contain_text("Restored")
    expect(page.locator("#status")).to_contain_text("Add the 1 reference image again")
    screenshot(page)
    page.close()


def test_presets_save_load_and_export(browser, app, tmp_path, screenshot):
    page = open_page(browser, app)
    page.get_by_text("Presets", exact=True).click()
    page.get_by_label("number input for Guidance").fill("7.5")
    page.keyboard.press("Tab")
    page.locator("#preset-name textarea, #preset-name input").first.fill("strong")
    page.locator("#preset-save").click()
    page.get_by_label("number input for Guidance").fill("1")
    page.keyboard.press("Tab")
    page.locator("#preset-pick input").click()
    page.get_by_role("option", name="strong").click()
    page.locator("#preset-load").click()
    expect(page.get_by_label("number input for Guidance")).to_have_value("7.5", timeout=10_000)
    with page.expect_download() as download:
        page.locator("#preset-export").click()
    exported = tmp_path / "presets.json"
    download.value.save_as(exported)
    assert json.loads(exported.read_text())["strong"]["guidance_scale"] == 7.5
    # Deleted, then imported from that file: back in the list, loadable, exportable.
    page.locator("#preset-delete").click()
    expect(page.locator("#preset-export")).to_be_disabled(timeout=10_000)  # no preset left
    with page.expect_file_chooser() as chooser:
        page.locator("#preset-import").click()
    chooser.value.set_files(str(exported))
    expect(page.locator("#preset-export")).to_be_enabled(timeout=10_000)
    page.locator("#preset-pick input").click()
    page.get_by_role("option", name="strong").click()
    page.get_by_label("number input for Guidance").fill("1")
    page.keyboard.press("Tab")
    page.locator("#preset-load").click()
    expect(page.get_by_label("number input for Guidance")).to_have_value("7.5", timeout=10_000)
    page.reload()  # the browser kept it
    page.get_by_text("Presets", exact=True).click()
    expect(page.locator("#preset-export")).to_be_enabled(timeout=30_000)
    screenshot(page)
    page.close()


def test_an_example_fills_the_form_and_runs_only_on_run(browser, app, fake, screenshot):
    # Issue 12: an example no longer runs on click (it spent the operator's money on a keyed
    # Space and skipped History, compare and downloads): it fills the form; Run runs it.
    page = open_page(browser, app)
    page.locator("#run-button").click()  # a newcomer's first try: nothing in the form
    expect(page.locator(".toast-body.warning")).to_contain_text("add at least one image", timeout=30_000)
    page.get_by_label("number input for Guidance").fill("7")
    page.keyboard.press("Tab")
    page.get_by_text("Pattern on a mug").click()
    expect(page.locator(".toast-body")).to_have_count(0, timeout=5_000)  # its warning no longer holds
    expect(page.locator("#prompt textarea")).to_have_value(re.compile("^put the lemon pattern from image 2"),
                                                           timeout=10_000)
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=10_000)
    expect(page.locator("#reference-2 img")).to_be_visible()
    expect(page.get_by_label("number input for Guidance")).to_have_value("2.5")  # the example's settings
    expect(page.locator("#status")).to_contain_text("press Run")
    page.wait_for_timeout(1500)
    assert not fake.jobs  # nothing ran
    screenshot(page, "filled")
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=30_000)
    [job] = fake.jobs.values()
    assert job.input["prompt"].startswith("put the lemon pattern from image 2 on the mug")
    assert len(job.input["image_urls"]) == 2
    # The same path as any run: compare, downloads and History.
    expect(page.locator("#compare img")).to_have_count(2, timeout=10_000)
    expect(page.locator("#download-zip")).to_be_enabled()
    expect(page.locator("#history-panel img").first).to_be_visible(timeout=15_000)
    screenshot(page)
    page.close()


def test_escape_stops_a_run_and_cancels_the_fal_job(browser, app, fake, images, screenshot):
    # Escape lands while fal has the job but has not answered yet (as on a busy fal or server):
    # the reply must not keep the job alive until its first update, a minute away.
    fake.job_seconds, fake.reply_delay = 300, 3.0
    page = open_page(browser, app)
    page.locator("#reference-1 input[type=file]").set_input_files(str(images["red"]))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.locator("#prompt textarea").fill("slow")
    page.locator("#run-button").click()
    assert fake.wait_for(lambda: any(j.state == "IN_PROGRESS" for j in fake.jobs.values()), timeout=15)
    page.keyboard.press("Escape")
    assert fake.wait_for(lambda: all(j.cancelled for j in fake.jobs.values()), timeout=30)
    expect(page.locator("#status")).to_contain_text("Stopped")
    screenshot(page)
    page.close()



def test_a_stop_before_the_page_has_heard_back_from_run_still_cancels_the_fal_job(browser, app, fake, images):
    # The page learns a run's event id from the answer to its /queue/join; Gradio's Stop sends
    # that id to cancel the run. Here the answer is held back (as on a busy page or network)
    # while the server, which got the join, already has the job at fal: Escape then comes
    # before the page knows the id, and must still end the job once the answer is in.
    fake.job_seconds = 300
    page = open_page(browser, app)
    held = []

    def hold_the_run(route):
        if route.request.post_data and route.request.post_data.startswith('{"data":["slow"'):
            held.append((route, route.fetch()))  # the server has the join; the page waits
        else:
            route.continue_()

    page.route("**/gradio_api/queue/join*", hold_the_run)
    page.locator("#reference-1 input[type=file]").set_input_files(str(images["red"]))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.locator("#prompt textarea").fill("slow")
    page.locator("#run-button").click()
    # Waited for through the page: Playwright hands the join to the route only while it is called.
    assert while_page(page, lambda: any(j.state == "IN_PROGRESS" for j in fake.jobs.values()), seconds=15)
    expect(page.locator("#stop-button")).to_be_enabled()
    page.keyboard.press("Escape")
    page.wait_for_timeout(500)  # Stop's cancel is on its way, without the run's event id
    assert len(held) == 1
    route, answer = held[0]
    route.fulfill(response=answer)
    assert fake.wait_for(lambda: all(j.cancelled for j in fake.jobs.values()), timeout=20), [
        (j.state, j.cancelled) for j in fake.jobs.values()]
    expect(page.locator("#status")).to_contain_text("Stopped")
    expect(page.locator("#run-button")).to_have_text("Run")
    page.close()


def while_page(page, condition, seconds: float) -> bool:
    """Wait for `condition()` while the page's events (its routes) keep being handled."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        page.wait_for_timeout(100)
    return True


def test_history_and_presets_survive_a_restart_of_the_server(browser, fake, images, tmp_path):
    """A Space restarts (a rebuild, a wake from sleep): a designer's History and presets, kept in
    their browser, are still there after it, and a past run still restores."""
    first = launch_app(tmp_path, fake)
    try:
        page = open_page(browser, first)
        run_once(page, images["blue"], prompt="turn the sky pink")
        expect(page.locator("#history img").first).to_be_visible(timeout=15_000)
        open_panel(page, "Presets")
        page.locator("#preset-name textarea, #preset-name input").first.fill("strong")
        page.locator("#preset-save").click()
        expect(page.locator("#preset-export")).to_be_enabled(timeout=10_000)
    finally:
        stop_app(first)
    again = launch_app(tmp_path, fake, port=int(first.url.rsplit(":", 1)[1].strip("/")))
    try:
        page.reload()
        expect(page.locator("#history .thumbnail-item")).to_have_count(1, timeout=30_000)
        expect(page.locator("#history")).to_contain_text("turn the sky pink")
        page.locator("#history .thumbnail-item").first.click()
        page.locator("#history-restore").click()
        expect(page.locator("#prompt textarea")).to_have_value("turn the sky pink", timeout=10_000)
        expect(page.locator("#reference-1 img")).to_be_visible()
        page.get_by_text("Presets", exact=True).click()
        page.locator("#preset-pick input").click()
        expect(page.get_by_role("option", name="strong")).to_be_visible()
        no_error_pill(page)
        page.close()
    finally:
        stop_app(again)


# Puts a PNG on the browser's clipboard, as copying a screenshot or an image in another app does.
COPY_IMAGE = """async (b64) => {
  const blob = await (await fetch('data:image/png;base64,' + b64)).blob();
  await navigator.clipboard.write([new ClipboardItem({'image/png': blob})]);
}"""


def copy_image(page, path) -> None:
    png = io.BytesIO()
    Image.open(path).save(png, "PNG")
    page.evaluate(COPY_IMAGE, base64.b64encode(png.getvalue()).decode())


def test_an_image_pasted_with_ctrl_v_goes_into_the_first_free_slot(browser, app, fake, images, screenshot):
    """A designer copies a screenshot and presses Ctrl+V on the page, or in the instruction box:
    it goes into the first free image slot (before, Ctrl+V did nothing: Gradio pastes only after
    two clicks on a slot), a second paste right after into the next. A paste with text stays the
    field's; with every slot full a note says so and no image is replaced. The pasted images are
    what the run sends, in order."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(app.url)
    expect(page.locator("#run-button")).to_be_visible(timeout=60_000)
    filled = [page.locator(f"#reference-{n} img") for n in (1, 2, 3)]
    copy_image(page, images["red"])
    page.locator("h1").first.click()  # the focus on the page, in no field
    page.keyboard.press("Control+V")
    page.keyboard.press("Control+V")  # at once, before the first is uploaded: the next slot
    expect(filled[0]).to_be_visible(timeout=15_000)
    expect(filled[1]).to_be_visible(timeout=15_000)
    expect(filled[2]).to_have_count(0)
    prompt = page.locator("#prompt textarea")
    page.evaluate("navigator.clipboard.writeText('make it glow')")
    prompt.click()
    page.keyboard.press("Control+V")
    expect(prompt).to_have_value("make it glow")
    page.wait_for_timeout(1000)
    expect(filled[2]).to_have_count(0)  # the text went to the field, to no slot
    copy_image(page, images["blue"])
    prompt.click()
    page.keyboard.press("Control+V")  # an image alone, in the instruction box: to the free slot
    expect(filled[2]).to_be_visible(timeout=15_000)
    expect(prompt).to_have_value("make it glow")
    first = filled[0].get_attribute("src")
    page.keyboard.press("Control+V")  # a fourth: no slot is free
    expect(page.locator("#image-note")).to_have_text(re.compile("Every image slot is full"))
    page.wait_for_timeout(1000)
    assert filled[0].get_attribute("src") == first
    screenshot(page)
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    [job] = fake.jobs.values()
    sizes = [Image.open(io.BytesIO(base64.b64decode(u.split(",", 1)[1]))).size for u in job.input["image_urls"]]
    assert sizes == [(640, 480), (640, 480), (512, 512)]
    context.close()


def test_a_result_dragged_onto_an_image_slot_goes_into_it(browser, app, fake, images, screenshot):
    """A designer drags a result onto an empty slot: it becomes that image (the drop did nothing);
    onto image 1, which holds a picture: it replaces it (the drop removed image 1). An address on
    the server's own network (a stranger's try at reaching it) is not fetched: the page says why,
    and the slot keeps its own (a picture from another site: test_browser_drop.py)."""
    page = open_page(browser, app)
    run_once(page, images["red"])
    result = page.locator("#results .thumbnail-item img, #results .gallery-item img").first
    [first_job] = fake.jobs.values()
    result.drag_to(page.locator("#reference-2"))
    expect(page.locator("#reference-2 img")).to_be_visible(timeout=15_000)
    before = page.locator("#reference-1 img").get_attribute("src")
    result.drag_to(page.locator("#reference-1"))
    expect(page.locator("#reference-1 img")).not_to_have_attribute("src", before, timeout=15_000)
    expect(page.locator("#reference-1 img")).to_be_visible()
    replaced = page.locator("#reference-1 img").get_attribute("src")
    page.evaluate(DROP_ADDRESS, ["#reference-1 img", "https://192.168.1.1/picture.png"])
    expect(page.locator(".toast-body").filter(has_text="only public addresses are fetched")).to_be_visible(
        timeout=30_000)
    expect(page.locator("#image-note")).to_contain_text("Image 1: the picture from 192.168.1.1 could not be fetched")
    page.wait_for_timeout(1000)
    expect(page.locator("#reference-1 img")).to_have_attribute("src", replaced)
    screenshot(page)
    page.locator("#run-button").click()
    expect(page.locator("#history .thumbnail-item")).to_have_count(2, timeout=60_000)  # the second run, done
    second = [job for job in fake.jobs.values() if job is not first_job][0]
    sent = second.input["image_urls"]
    assert len(sent) == 2 and sent[0] == sent[1]  # the result, twice
    assert sent[0] != first_job.input["image_urls"][0]  # not the red picture it was made from
    page.close()


def test_reuse_this_seed_with_image_2_selected_makes_image_2_again(browser, local_app, images, screenshot):
    """A run of two images: the local backend makes image 2 from seed + 1. "Seed used" said the
    run's first seed whichever image was selected, so a designer who liked image 2 and pressed
    "Reuse this seed" got image 1's look again. Now the selected image's own seed is shown (and
    names its PNG), and reusing it makes that image again, pixel for pixel."""
    page = open_page(browser, local_app)
    fill_local_form(page, images["red"], "the second one", Images=2)
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=120_000)
    seed_used = page.locator("#seed-used input, #seed-used textarea").first
    expect(seed_used).to_have_value(re.compile(r"^\d+$"))
    first = int(seed_used.input_value())
    page.locator("#results .thumbnail-item").nth(1).click()
    expect(seed_used).to_have_value(str(first + 1), timeout=10_000)
    # "Selected as PNG" follows the selection a moment after "Seed used" (it writes the PNG first).
    wanted, names = f"the-second-one_seed-{first + 1}_2.png", []
    for _ in range(20):
        with page.expect_download() as single:
            page.locator("#download-png").click()
        names.append(single.value.suggested_filename)
        if names[-1] == wanted:
            break
        page.wait_for_timeout(500)
    assert names[-1] == wanted, names
    page.locator("#results .thumbnail-item").nth(0).click()
    expect(seed_used).to_have_value(str(first), timeout=10_000)
    page.locator("#results .thumbnail-item").nth(1).click()
    expect(seed_used).to_have_value(str(first + 1), timeout=10_000)
    page.get_by_role("button", name="Reuse this seed").click()
    expect(page.locator("#seed input")).to_have_value(str(first + 1))
    page.get_by_label("number input for Images").fill("1")
    page.keyboard.press("Tab")
    page.locator("#run-button").click()
    expect(page.locator("#history .thumbnail-item")).to_have_count(2, timeout=120_000)  # the second run is done
    expect(seed_used).to_have_value(str(first + 1))
    screenshot(page)
    page.close()
    runs = {json.loads(p.read_text())["seed"]: p.parent for p in local_app.outputs.rglob("recipe.json")
            if json.loads(p.read_text())["request"]["prompt"] == "the second one"}
    [liked] = runs[first].glob("image-2.*")
    [again] = runs[first + 1].glob("image-1.*")
    assert list(Image.open(liked).convert("RGB").getdata()) == list(Image.open(again).convert("RGB").getdata())


def test_a_stopped_local_run_leaves_its_seed_to_finish_that_image_later(browser, local_app, images, screenshot):
    """A designer stops a run whose preview looks promising. Its seed was nowhere (the page showed
    it only with a result), so that image could not be finished. Now "Seed used" shows the run's
    seed from its first preview on, the interrupted preview says it, and "Reuse this seed" makes it."""
    page = open_page(browser, local_app)
    fill_local_form(page, images["red"], "finish it later", Steps=50)
    page.locator("#run-button").click()
    expect(page.locator("#results .caption-label").first).to_contain_text("preview ·", timeout=120_000)
    seed_used = page.locator("#seed-used input, #seed-used textarea").first
    expect(seed_used).to_have_value(re.compile(r"^\d+$"), timeout=10_000)  # while it runs
    seed = seed_used.input_value()
    page.keyboard.press("Escape")
    expect(page.locator("#status")).to_contain_text("Stopped", timeout=30_000)
    expect(page.locator("#results .caption-label")).to_have_text([f"interrupted preview · seed {seed}"])
    expect(seed_used).to_have_value(seed)
    page.get_by_role("button", name="Reuse this seed").click()
    expect(page.locator("#seed input")).to_have_value(seed)
    page.locator("#run-button").click()
    expect(page.locator("#history .thumbnail-item")).to_have_count(1, timeout=120_000)
    expect(seed_used).to_have_value(seed)
    screenshot(page)
    page.close()
    made = [json.loads(p.read_text()) for p in local_app.outputs.rglob("recipe.json")]
    assert [r["seed"] for r in made if r["request"]["prompt"] == "finish it later"] == [int(seed)]
