"""A finished run says everything, in a real Chromium: its details name the recipe, "Use this run
from code" gives a gradio_client call of `edit` (never the key), the downloads are named for the
instruction and seed, and a run restored from History gets all of it back."""

from __future__ import annotations

import zipfile

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.helpers.app import SERVER_KEY
from tests.helpers.browser import COVERING_COMPARE, DRAWN, loaded_width, open_app, start_run

PROMPT = "Make this donut realistic"
SLUG = "make-this-donut-realistic"
SKIPPED = "LoRA row 2 is switched on but has no path: not sent"


def download(page, button: str):
    expect(page.locator(button)).to_be_enabled(timeout=15_000)
    with page.expect_download() as caught:
        page.locator(button).click()
    return caught.value


def check_results(page, seed: int, tmp_path) -> None:
    """What a finished run (fresh or restored) shows: the details, both downloads named for it."""
    details = page.locator("#details")
    for text in ("owner/watercolor", "0.7", "Guidance:", "4.5", "Steps:", "12", f"Seed: {seed}",
                 "Size:", "match image 1", "Endpoint:", "fal-ai/flux-2/lora/edit", "Time taken:",
                 "Backend: fal", "Estimated cost on fal: $", SKIPPED):
        expect(details).to_contain_text(text, timeout=15_000)
    expect(page.locator("#results .thumbnail-item").first).to_contain_text("image 1")  # captioned as it was made
    png = download(page, "#download-png")
    assert png.suggested_filename == f"{SLUG}_seed-{seed}_1.png"
    archive = download(page, "#download-zip")
    assert archive.suggested_filename == f"{SLUG}_seed-{seed}.zip"
    archive.save_as(tmp_path / "run.zip")
    assert zipfile.ZipFile(tmp_path / "run.zip").namelist() == [f"{SLUG}_seed-{seed}_1.png"]
    expect(page.locator("#compare img")).to_have_count(2, timeout=15_000)  # before / after


def test_a_run_and_its_restore_say_everything_and_name_their_downloads(browser, app, fake, images, tmp_path,
                                                                      screenshot):
    page = browser.new_page(viewport={"width": 1400, "height": 1600}, accept_downloads=True)
    page.goto(app.url)
    seed_used = page.locator("#seed-used input, #seed-used textarea").first
    expect(seed_used).to_have_value("", timeout=30_000)  # no run yet: empty, not 0
    page.locator("#reference-1 input[type=file]").set_input_files(str(images["red"]))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    # One LoRA at 0.7, and a second row switched on with no path.
    page.locator("#add-lora").click()
    expect(page.get_by_label("LoRA 1", exact=True)).to_be_visible(timeout=30_000)
    page.get_by_label("LoRA 1", exact=True).fill("owner/watercolor")
    page.locator("#add-lora").click()
    expect(page.get_by_label("LoRA 2", exact=True)).to_be_visible(timeout=30_000)
    expect(page.get_by_label("LoRA 1", exact=True)).to_have_value("owner/watercolor")
    scale = page.locator("#lora-scale-1 input[type=number]")
    scale.fill("0.7")
    scale.press("Tab")
    expect(scale).to_have_value("0.7")
    for label, value in (("number input for Guidance", "4.5"), ("number input for Steps", "12")):
        page.get_by_label(label).fill(value)
        page.keyboard.press("Tab")
    page.locator("#prompt textarea").fill(PROMPT)
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    expect(page.locator("#status")).to_contain_text(SKIPPED)
    [job] = fake.jobs.values()
    assert job.input["loras"] == [{"path": "owner/watercolor", "scale": 0.7}]
    seed = job.output["seed"]
    expect(seed_used).to_have_value(str(seed))
    check_results(page, seed, tmp_path)

    # The run as code: this app's `edit` endpoint, and never the key.
    page.get_by_text("Use this run from code").click()
    code = page.locator("#code-client")
    expect(code).to_contain_text("client.predict(", timeout=10_000)
    expect(code).to_contain_text('api_name="/edit"')
    expect(code).to_contain_text(f"client = Client('{app.url}')")  # where this page is, not a default
    expect(code).to_contain_text("owner/watercolor")
    expect(page.locator("#code-fal")).to_contain_text("fal_client.subscribe(")
    recipe = page.locator("#code-recipe")  # the recipe as JSON
    expect(recipe).to_contain_text(f'"seed": {seed}')
    expect(recipe).to_contain_text('"path": "owner/watercolor"')
    expect(page.locator("#code-client button[aria-label*='opy'], #code-client button[title*='opy']").first
           ).to_be_visible()  # Gradio's own copy button
    assert SERVER_KEY not in page.content()
    # History's card names the LoRA and its scale.
    expect(page.locator("#history .thumbnail-item").first).to_contain_text("watercolor 0.7", timeout=15_000)
    screenshot(page, "run")

    # A fresh page, then the run restored from History: the same details, compare and downloads.
    page.reload()
    expect(page.locator("#history img").first).to_be_visible(timeout=15_000)
    expect(page.locator("#details")).not_to_contain_text("owner/watercolor")
    expect(page.locator("#download-png")).to_be_disabled()
    page.locator("#history .thumbnail-item").first.click()
    page.locator("#history-restore").click()
    expect(page.locator("#prompt textarea")).to_have_value(PROMPT, timeout=10_000)
    check_results(page, seed, tmp_path)
    expect(seed_used).to_have_value(str(seed))  # the restored run's seed (back in the form too)
    page.get_by_text("Use this run from code").click()
    expect(page.locator("#code-client")).to_contain_text("owner/watercolor", timeout=10_000)
    screenshot(page, "restored")
    page.close()


@pytest.mark.parametrize("width", [1400, 390])
def test_a_wide_or_a_tall_result_is_shown_whole(browser, app, fake, tmp_path, width, screenshot):
    """Gradio's gallery drew each result cropped to a square ("cover"): a wide result lost its
    sides, a tall one its top and foot, and a lone square one ran past the frame's bottom, so a
    person judged a composition they were not shown. Now each is drawn whole, in a frame no
    taller than it needs; and the compare slider's label and buttons sit above its pictures, not
    over their corners."""
    for name, size in (("wide", (1200, 600)), ("tall", (600, 1000))):
        path = tmp_path / f"{name}.png"
        Image.new("RGB", size, (90, 140, 200)).save(path)
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(app.url)
        start_run(page, path)
        expect(page.locator("#status")).to_contain_text("Done", timeout=30_000)
        result = page.locator("#results img").first
        assert loaded_width(result) > 0
        drawn = result.evaluate(DRAWN)
        assert abs(drawn["shownW"] - drawn["w"]) < 1 and abs(drawn["shownH"] - drawn["h"]) < 1, (name, drawn)
        assert not drawn["underLabel"], (name, drawn)
        assert drawn["frameH"] <= drawn["h"] + 60, (name, drawn)  # no blank frame below it
        before = page.locator("#compare img").first  # image 1 against the result, below the results
        assert loaded_width(before) > 0
        assert before.evaluate(COVERING_COMPARE) == [], name
        screenshot(page, f"{name}-{width}", full_page=False)
        page.close()


def test_a_result_picked_while_the_run_goes_is_the_one_the_tools_take(browser, app, fake, images, screenshot):
    """A designer picked image 2 among the previews; the gallery still showed it picked when the
    run ended, but the page had gone back to image 1: "Selected as PNG" saved image 1 and the
    compare slider showed it. And a new run starts with nothing picked, as its gallery does, its
    tools waiting for its results."""
    fake.steps, fake.job_seconds = 8, 8
    page = open_app(browser, app, accept_downloads=True)
    start_run(page, images["red"], images=2)
    expect(page.locator("#status")).to_contain_text("Intermediate", timeout=30_000)
    page.locator("#results .thumbnail-item").nth(1).click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=30_000)
    expect(page.locator("#results .preview .caption")).to_have_text("image 2")
    label = page.locator("#compare [data-testid=block-label]")
    expect(label).to_have_text("Left: image 1 · right: result 2", timeout=10_000)
    assert download(page, "#download-png").suggested_filename.endswith("_2.png")
    screenshot(page)
    # The next run: its gallery starts empty, the picked image with it.
    fake.steps, fake.job_seconds = 4, 4
    page.locator("#run-button").click()
    # While it goes, the tools wait: they would act on, or download, the last run's results.
    for tool in ("#use-as-input", "#add-as-reference", "#download-png", "#download-zip"):
        expect(page.locator(tool)).to_be_disabled()
    expect(page.locator("#status")).to_contain_text("Done", timeout=30_000)
    expect(page.locator("#results .preview .caption")).to_have_text("image 1")
    expect(label).to_have_text("Left: image 1 · right: result 1", timeout=10_000)
    page.close()
