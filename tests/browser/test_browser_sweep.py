"""A sweep in a real Chromium against the fake fal server: the X axis follows the LoRA list,
every cell shows its state from the start ("running · seed 1") and its values once done, the
captions fit, the zip's files are named by their values, a picked cell becomes the input or
gives back its settings, and the sweep is one History card. Screenshots: tests/screenshots/."""

from __future__ import annotations

import re
import zipfile

from PIL import Image
from playwright.sync_api import expect

from tests.helpers.browser import (
    DRAWN,
    error_pills_seen,
    fill_local_form,
    loaded_width,
    no_error_pill,
    open_app,
    open_panel,
    reload_the_moment_status_says,
    watch_error_pills,
)

CELLS = "#sweep-cells .thumbnail-item"
# Every sweep cell caption whose text is cut (wider or taller than its box).
CUT_CAPTIONS = """() => [...document.querySelectorAll("#sweep-cells .caption-label")]
  .filter((c) => c.scrollWidth > c.clientWidth + 1 || c.scrollHeight > c.clientHeight + 1)
  .map((c) => c.innerText)"""


def test_the_sweep_axis_follows_the_lora_list(browser, app, screenshot):
    page = open_app(browser, app, width=1440, height=1000, accept_downloads=True)
    page.get_by_text("Sweep", exact=True).click()
    expect(page.locator("#sweep-x input")).to_have_value("Seed")
    expect(page.locator("#sweep-x-values textarea, #sweep-x-values input")).to_have_value("1, 2, 3, 4")
    page.locator("#add-lora").click()
    page.get_by_label("LoRA 1", exact=True).fill("owner/style-a")
    page.get_by_label("LoRA 1", exact=True).blur()
    expect(page.locator("#sweep-x input")).to_have_value("LoRA 1 scale", timeout=15_000)
    expect(page.locator("#sweep-x-values textarea, #sweep-x-values input")).to_have_value("0.4, 0.7, 1.0, 1.3")
    screenshot(page)
    page.locator("#lora-remove-1").click()
    expect(page.locator("#sweep-x input")).to_have_value("Seed", timeout=15_000)
    page.close()


def test_a_refused_sweep_says_why_on_the_status_line_without_red_pills(browser, app, fake, screenshot):
    page = open_app(browser, app, width=1440, height=1000, accept_downloads=True)
    open_panel(page, "Sweep")
    page.locator("#sweep-button").click()  # no image, no instruction
    status = page.locator("#status")
    expect(status).to_contain_text("Please check the form", timeout=15_000)
    expect(status).to_contain_text("Reference images")
    expect(status).to_be_in_viewport()  # brought up from the foot of the form, where Run sweep is
    no_error_pill(page)
    expect(page.locator("#run-button")).to_have_text("Run")  # the run bar is free again
    assert not fake.jobs
    screenshot(page)
    page.close()


def test_a_two_cell_sweep_from_queued_to_done_then_zip_cells_and_history(browser, app, fake, images, screenshot):
    fake.job_seconds = 6  # long enough to see the cells before the first one finishes
    page = open_app(browser, app, width=1440, height=1000, accept_downloads=True)
    page.locator("#reference-1 input[type=file]").set_input_files(str(images["red"]))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.locator("#prompt textarea").fill("make it glow")
    open_panel(page, "Sweep")
    values = page.locator("#sweep-x-values textarea, #sweep-x-values input")
    values.fill("1, 2")
    values.blur()
    # A Y axis with one value: two cells, with captions as long as a 2-D sweep's.
    page.locator("#sweep-y input").click()
    page.get_by_role("option", name="Guidance").click()
    page.locator("#sweep-y-values textarea, #sweep-y-values input").fill("2.5")
    page.locator("#sweep-y-values textarea, #sweep-y-values input").blur()
    expect(page.locator("#sweep-cost")).to_contain_text("2 runs")
    page.locator("#sweep-button").click()

    # Before the first cell finishes: both cells there, each saying what it is doing.
    cells = page.locator(CELLS)
    expect(cells).to_have_count(2, timeout=15_000)
    expect(page.locator("#sweep-cells")).to_be_in_viewport()  # in the other column, brought into view
    expect(cells.nth(0)).to_contain_text(re.compile(r"(queued|running) · seed 1 · guidance 2.5"))
    expect(cells.nth(1)).to_contain_text(re.compile(r"(queued|running) · seed 2 · guidance 2.5"))
    expect(page.locator("#status")).to_contain_text(re.compile(r"Sweep: 0 of 2 cells done, cells? 1"))
    assert page.evaluate(CUT_CAPTIONS) == []  # every caption whole at 1440 px
    assert not any(job.finished for job in fake.jobs.values())  # what we saw came before any result
    expect(page.locator("#sweep-zip")).to_be_disabled()  # no zip yet: it offered nothing to a click
    # The cells run at once on fal: their steps count in the sweep's progress, and Run fills to it
    # (it stood at 0% until a cell was done).
    expect(page.locator("#status")).to_contain_text(
        re.compile(r"0 of 2 cells done, cells 1–2 running · [1-9]\d?% of the sweep"), timeout=15_000)
    run = page.locator("#run-button")
    expect(run).to_have_attribute("data-step", "0/2 cells")
    assert run.evaluate("el => el.style.getPropertyValue('--progress')") not in ("", "0%")
    screenshot(page, "running")

    expect(page.locator("#status")).to_contain_text("Sweep done: 2 of 2 cells", timeout=60_000)
    expect(cells.nth(0).locator(".caption-label")).to_have_text("seed 1 · guidance 2.5")
    expect(cells.nth(1).locator(".caption-label")).to_have_text("seed 2 · guidance 2.5")
    assert page.evaluate(CUT_CAPTIONS) == []  # every caption whole at 1440 px

    with page.expect_download() as download:
        page.locator("#sweep-zip").click()
    assert download.value.suggested_filename == "sweep_seed_x_guidance.zip"
    with zipfile.ZipFile(download.value.path()) as archive:
        assert sorted(archive.namelist()) == ["grid.png", "seed-1_guidance-2.5.png", "seed-2_guidance-2.5.png",
                                              "sweep.json"]

    # History: one card for the whole sweep.
    history = page.locator("#history .thumbnail-item")
    expect(history).to_have_count(1, timeout=15_000)
    expect(history.first).to_contain_text("Sweep 2×1: make it glow")

    # Pick cell 2: its buttons wake up; it becomes image 1, then gives back its seed.
    expect(page.locator("#sweep-use-input")).to_be_disabled()
    cells.nth(1).click()
    expect(page.locator("#sweep-use-input")).to_be_enabled()
    page.locator("#sweep-use-input").click()
    expect(page.locator("#reference-1 img")).to_have_attribute("src", re.compile(r"image-1\.png"), timeout=15_000)
    page.locator("#sweep-restore").click()
    expect(page.locator("#status")).to_contain_text("Restored the settings of the sweep cell seed 2 · guidance 2.5")
    expect(page.get_by_label("Seed", exact=True)).to_have_value("2")
    expect(page.get_by_text("Error", exact=True)).to_have_count(0)
    screenshot(page)

    # On a fresh page, the sweep restored from History brings back its own zip.
    page.reload()
    expect(page.locator("#history .thumbnail-item")).to_have_count(1, timeout=15_000)
    page.locator("#history .thumbnail-item").first.click()
    page.locator("#history-restore").click()
    expect(page.locator("#sweep-zip")).to_be_enabled(timeout=15_000)
    with page.expect_download() as again:
        page.locator("#sweep-zip").click()
    assert again.value.suggested_filename == "sweep_seed_x_guidance.zip"
    page.close()


def default_sweep(page, image) -> None:
    """Image 1 and an instruction, then Run sweep with the panel as a first visit finds it (seeds
    1, 2, 3, 4), until all four cells are done."""
    page.locator("#reference-1 input[type=file]").set_input_files(str(image))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.locator("#prompt textarea").fill("make it glow")
    page.get_by_text("Sweep", exact=True).click()
    expect(page.locator("#sweep-x-values textarea, #sweep-x-values input")).to_have_value("1, 2, 3, 4")
    page.locator("#sweep-button").click()
    expect(page.locator("#status")).to_contain_text("Sweep done: 4 of 4 cells", timeout=60_000)


def test_a_reload_the_moment_the_sweep_says_done_keeps_its_card_in_history(browser, app, fake, images, screenshot):
    """The sweep's History card reached the browser two server calls after "Sweep done": a reload
    the moment it said so lost the sweep from History. Now it is there after the reload, once."""
    fake.job_seconds = 0
    page = open_app(browser, app, width=1440, height=1000)
    page.locator("#reference-1 input[type=file]").set_input_files(str(images["red"]))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.locator("#prompt textarea").fill("a sweep kept at once")
    open_panel(page, "Sweep")
    page.locator("#sweep-x-values textarea, #sweep-x-values input").fill("1, 2")
    reload_the_moment_status_says(page, "Sweep done", page.locator("#sweep-button").click)
    cards = page.locator("#history .thumbnail-item")
    expect(cards.filter(has_text="Sweep 2×1: a sweep kept at once")).to_have_count(1, timeout=15_000)
    page.wait_for_timeout(1000)  # no second copy comes later
    expect(cards).to_have_count(1)
    screenshot(page)
    page.close()


def test_a_sweep_stopped_after_a_cell_keeps_that_cell_grid_zip_and_history_card(browser, local_app, images,
                                                                               screenshot):
    """A sweep stopped halfway: the cells it made were saved but not kept anywhere a person
    could find them again (no grid, no zip, no History card; the others said "running" for
    good). Now they are kept as a sweep of their own; the cells it did not make say "stopped".
    The local backend runs one cell at a time: Stop comes while cell 2 runs (on a busy machine it
    can finish before the Stop lands: then two cells are kept, and one is not)."""
    page = open_app(browser, local_app, width=1440, height=1000, accept_downloads=True)
    fill_local_form(page, images["red"], "stopped halfway", Steps=50)
    open_panel(page, "Sweep")
    page.locator("#sweep-x-values textarea, #sweep-x-values input").fill("1, 2, 3")
    page.locator("#sweep-button").click()
    cells = page.locator("#sweep-cells .caption-label")
    status = page.locator("#status")
    expect(status).to_contain_text("1 of 3 cells done, cell 2 running · step", timeout=120_000)
    watch_error_pills(page)
    page.locator("#stop-button").click()
    expect(status).to_contain_text(re.compile(r"Stopped\. [12] of 3 cells were done: they are kept"), timeout=30_000)
    done = int(re.search(r"Stopped\. (\d) of 3", status.inner_text())[1])
    seeds = [f"seed {n}" for n in (1, 2, 3)]
    expect(cells).to_have_text([*seeds[:done], *(f"stopped · {s}" for s in seeds[done:])])
    expect(page.locator("#sweep-grid img")).to_have_count(1)
    expect(page.locator("#sweep-zip")).to_be_enabled(timeout=10_000)
    with page.expect_download() as download:
        page.locator("#sweep-zip").click()
    with zipfile.ZipFile(download.value.path()) as archive:
        kept = [f"seed-{n}.png" for n in range(1, done + 1)]
        assert sorted(archive.namelist()) == sorted(["grid.png", "sweep.json", *kept])
    card = page.locator("#history .thumbnail-item").filter(has_text="Sweep 3×1: stopped halfway")
    expect(card).to_have_count(1, timeout=15_000)
    assert error_pills_seen(page) == []
    screenshot(page)
    page.reload()
    expect(card).to_have_count(1, timeout=60_000)  # in History for good
    page.close()


# The status line names the running cell and its step, and Run shows as many cells done, its bar
# moved: read in one frame (on a busy machine the tiny pipeline's cell 1 ended, in CI, while the
# page showed its intermediate image, and the status line already named cell 2).
SWEEP_PROGRESS = """() => {
  const status = document.querySelector("#status").innerText;
  const said = status.match(/(\\d) of 2 cells done, cell (\\d) running · step \\d+ of 50/);
  const run = document.querySelector("#run-button");
  return Boolean(said) && Number(said[2]) === Number(said[1]) + 1 && run.dataset.step === `${said[1]}/2 cells`
    && !["", "0%"].includes(run.style.getPropertyValue("--progress"));
}"""


def test_a_running_sweep_cell_shows_its_intermediate_image_and_run_the_sweeps_progress(browser, local_app, images,
                                                                                       screenshot):
    """On a local GPU a sweep cell takes as long as a run (about half a minute for FLUX.2 [dev]),
    and its grey square said only "running" until it was done. Now the running cell shows its
    intermediate image, the status line says its step, and Run the sweep's progress."""
    page = open_app(browser, local_app, width=1440, height=1000)
    fill_local_form(page, images["red"], "watch it come", Steps=50)
    open_panel(page, "Sweep")
    page.locator("#sweep-x-values textarea, #sweep-x-values input").fill("1, 2")
    expect(page.locator("#sweep-cost")).to_contain_text("2 runs", timeout=10_000)
    page.locator("#sweep-button").click()
    running = page.locator(CELLS).filter(has_text="running · seed 1")
    # The placeholders are PNGs; the cell's intermediate image is a JPEG.
    expect(running.locator("img")).to_have_attribute("src", re.compile(r"\.jpg$"), timeout=120_000)
    expect(page.locator("#status")).to_contain_text(re.compile(r"\d of 2 cells done, cell \d running · step \d+ of 50"))
    page.wait_for_function(SWEEP_PROGRESS, timeout=30_000)
    screenshot(page)
    page.locator("#stop-button").click()
    expect(page.locator("#status")).to_contain_text("Stopped", timeout=30_000)
    expect(page.locator("#run-button")).not_to_have_attribute("data-step", re.compile("."))
    expect(page.locator(CELLS).filter(has_text="running")).to_have_count(0)
    page.close()


# How far the sweep cells' grid is wider than its frame (a cut-off column on a phone), in px.
CELLS_OVERFLOW = """() => {
  const grid = document.querySelector("#sweep-cells .grid-container");
  const frame = document.querySelector("#sweep-cells .grid-wrap");
  return grid && frame ? grid.scrollWidth - frame.clientWidth : null;
}"""


def test_on_a_phone_every_sweep_cell_is_whole_on_screen(browser, app, fake, images, screenshot):
    """Four cells on a 390 px phone: they wrap onto two columns (four columns at Gradio's 100 px
    minimum ran past the screen's edge, the fourth cell out of reach), every caption whole."""
    fake.job_seconds = 0.5
    page = open_app(browser, app, width=390, height=844)
    default_sweep(page, images["red"])
    expect(page.locator(CELLS)).to_have_count(4)
    overflow = page.evaluate(CELLS_OVERFLOW)
    assert overflow is not None and overflow <= 0, f"the cells run {overflow} px past their frame"
    assert page.evaluate(CUT_CAPTIONS) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.locator("#sweep-cells").scroll_into_view_if_needed()
    screenshot(page, full_page=False)
    page.close()


# The bottom of what the sweep grid's frame lays over its picture (its label, its buttons), and
# the picture's top.
GRID_COVER = """() => {
  const frame = document.querySelector('#sweep-grid'), img = frame.querySelector('img');
  const over = [...frame.querySelectorAll('[data-testid=block-label], .icon-button-wrapper')]
    .map(e => e.getBoundingClientRect()).filter(r => r.height > 0);
  return {overBottom: Math.max(...over.map(r => r.bottom)), pictureTop: img.getBoundingClientRect().top};
}"""


def test_a_sweep_of_wide_results_shows_each_cell_whole_and_every_grid_label(browser, app, fake, tmp_path,
                                                                            screenshot):
    """A sweep of 2:1 results: each cell was cropped to a square, the grid image was more white
    band than picture, and the frame's "Sweep grid" label covered the first column's value."""
    fake.job_seconds = 0.3
    wide = tmp_path / "wide.png"
    Image.new("RGB", (1200, 600), (90, 140, 200)).save(wide)
    page = open_app(browser, app, width=1440, height=1000)
    default_sweep(page, wide)
    for index in range(4):
        cell = page.locator(f"{CELLS} img").nth(index)
        assert loaded_width(cell) > 0
        drawn = cell.evaluate(DRAWN)
        assert abs(drawn["shownW"] - drawn["w"]) < 1 and abs(drawn["shownH"] - drawn["h"]) < 1, (index, drawn)
        assert not drawn["underLabel"], (index, drawn)
    grid = page.locator("#sweep-grid img")
    assert loaded_width(grid) > 0
    natural = grid.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert natural[0] > 3 * natural[1], natural  # four 2:1 cells in a row, not four squares
    cover = page.evaluate(GRID_COVER)
    assert cover["pictureTop"] >= cover["overBottom"], cover
    page.locator("#sweep-grid").scroll_into_view_if_needed()
    screenshot(page, full_page=False)
    page.close()
