"""Expected conditions in a real Chromium: buttons wait until they can act, a bad file gets a
message, and no field ever shows Gradio's red "Error" pill (which a raised gr.Error puts on
every output of the event). Presets can be renamed and deleted."""

from __future__ import annotations

import io
import json
import re

from PIL import Image
from playwright.sync_api import expect

from tests.helpers.browser import no_error_pill, open_app, run_once
from ui.png_restore import NO_RECIPE

EMPTY_FRAMES = {
    "results": "No results yet",
    "compare": "Nothing to compare yet",
    "history": "No past runs yet",
    "lora-library": "No LoRAs yet",
    "code-client": "After a run: the Python that runs it again through this app",
    "code-fal": "After a run: the Python that runs it on fal directly",
    "code-recipe": "After a run: its recipe",
}


def test_on_a_first_visit_each_empty_frame_is_short_and_says_what_comes_there(browser, app, screenshot):
    """Gradio draws an empty gallery as a tall blank box with an icon (the LoRA library's: 240 px
    of nothing) and names it "Empty value" for a screen reader."""
    page = open_app(browser, app, width=390, height=844)
    page.get_by_text("LoRA library", exact=True).first.click()
    page.get_by_text("Use this run from code", exact=True).first.click()  # three tall boxes with only a </>
    for frame, says in EMPTY_FRAMES.items():
        empty = page.locator(f"#{frame} > .empty")
        expect(empty).to_have_attribute("aria-label", re.compile(f"^{says}"), timeout=10_000)
        assert page.locator(f"#{frame}").bounding_box()["height"] < 120, frame
    page.locator("#lora-library").scroll_into_view_if_needed()
    screenshot(page)
    page.close()


def test_nothing_picked_and_bad_files_never_raise(browser, app, images, tmp_path, screenshot):
    page = open_app(browser, app, accept_downloads=True)
    # First visit: nothing in the history is picked, so Restore and Star wait.
    expect(page.locator("#history-restore")).to_be_disabled()
    expect(page.locator("#history-star")).to_be_disabled()
    # Nothing to clear either, in History or in the Queue.
    expect(page.locator("#history-clear")).to_be_disabled()
    expect(page.locator("#jobs-clear")).to_be_disabled()
    # No seed to reuse before a run; no two images to swap before two uploads.
    expect(page.locator("#reuse-seed")).to_be_disabled()
    expect(page.locator("#swap-1")).to_be_disabled()
    expect(page.locator("#swap-2")).to_be_disabled()
    page.locator("#reference-1 input[type=file]").set_input_files(str(images["red"]))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.wait_for_timeout(500)
    expect(page.locator("#swap-1")).to_be_disabled()  # one image: nothing to swap it with
    page.locator("#reference-2 input[type=file]").set_input_files(str(images["blue"]))
    expect(page.locator("#swap-1")).to_be_enabled(timeout=10_000)
    expect(page.locator("#swap-2")).to_be_disabled()
    page.locator("#reference-2").get_by_role("button", name="Remove Image").click()
    expect(page.locator("#swap-1")).to_be_disabled(timeout=10_000)
    # Presets: Save waits for a name (spaces are none), Load for a picked preset, Export for a preset.
    page.get_by_text("Presets", exact=True).click()
    expect(page.locator("#preset-save")).to_be_disabled()
    expect(page.locator("#preset-load")).to_be_disabled()
    expect(page.locator("#preset-export")).to_be_disabled()
    page.locator("#preset-name textarea, #preset-name input").first.fill("   ")
    page.wait_for_timeout(500)
    expect(page.locator("#preset-save")).to_be_disabled()
    page.locator("#preset-name textarea, #preset-name input").first.fill("mine")
    expect(page.locator("#preset-save")).to_be_enabled(timeout=10_000)
    no_error_pill(page)
    # A bad presets file: a message, the presets as they were.
    bad = tmp_path / "presets.json"
    bad.write_text("this is not json")
    with page.expect_file_chooser() as chooser:
        page.locator("#preset-import").click()
    chooser.value.set_files(str(bad))
    expect(page.get_by_text("This file is not JSON exported from this studio.")).to_be_visible(timeout=10_000)
    no_error_pill(page)
    # A PNG without a recipe: the panel says so, Apply stays off, nothing is restored.
    page.get_by_text("Restore settings from a PNG made here").click()
    page.locator("#recipe-drop input[type=file]").set_input_files(str(images["red"]))
    expect(page.locator("#recipe-preview")).to_contain_text(NO_RECIPE, timeout=10_000)
    expect(page.locator("#recipe-apply")).to_be_disabled()
    expect(page.locator("#prompt textarea")).to_have_value("")
    no_error_pill(page)
    screenshot(page)
    page.close()


def test_presets_can_be_renamed_and_deleted(browser, app, tmp_path, screenshot):
    page = open_app(browser, app, accept_downloads=True)
    page.get_by_text("Presets", exact=True).click()
    name = page.locator("#preset-name textarea, #preset-name input").first
    for preset in ("first", "second"):
        name.fill(preset)
        page.locator("#preset-save").click()
        expect(page.locator("#preset-pick input")).to_have_value(preset, timeout=10_000)
    # Rename the picked preset ("second") to what Name holds.
    expect(page.locator("#preset-rename")).to_be_enabled()
    name.fill("renamed")
    page.locator("#preset-rename").click()
    expect(page.locator("#preset-pick input")).to_have_value("renamed", timeout=10_000)
    # Delete "first".
    page.locator("#preset-pick input").click()
    page.get_by_role("option", name="first").click()
    page.locator("#preset-delete").click()
    expect(page.locator("#preset-pick input")).to_have_value("", timeout=10_000)
    expect(page.locator("#preset-export")).to_be_enabled()  # "renamed" is still there
    expect(page.locator("#preset-load")).to_be_disabled()
    page.locator("#preset-pick input").click()
    expect(page.get_by_role("option")).to_have_text([re.compile(r"^\W*renamed$")])
    page.keyboard.press("Escape")
    page.wait_for_timeout(500)  # the export file follows the presets
    with page.expect_download() as download:
        page.locator("#preset-export").click()
    exported = tmp_path / "presets.json"
    download.value.save_as(exported)
    assert list(json.loads(exported.read_text())) == ["renamed"]
    no_error_pill(page)
    screenshot(page)
    page.close()


def test_history_cards_and_clear_that_asks_and_can_be_undone(browser, app, fake, images, screenshot):
    page = open_app(browser, app, accept_downloads=True)
    page.locator("#reference-1 input[type=file]").set_input_files(str(images["red"]))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.locator("#prompt textarea").fill("make it teal")
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=30_000)
    card = page.locator("#history .thumbnail-item").first
    expect(card).to_be_visible(timeout=15_000)
    # The card leads with the instruction, and ends with the time.
    expect(card).to_contain_text(re.compile(r"^\s*make it teal · \d\d:\d\d\s*$"))
    card.click()
    expect(page.locator("#history-restore")).to_be_enabled()
    page.locator("#history-star").click()
    expect(page.locator("#history .thumbnail-item").first).to_contain_text(re.compile(r"^\s*★ make it teal"))
    screenshot(page, "cards")
    page.locator("#history-star").click()  # unstarred again, so that Clear removes it
    expect(page.locator("#history .thumbnail-item").first).not_to_contain_text("★")
    count = page.locator("#history img").count()
    # Clear asks first: one click only arms it.
    page.locator("#history-clear").click()
    expect(page.locator("#history-clear")).to_have_text("Click again to clear")
    page.wait_for_timeout(500)
    expect(page.locator("#history img")).to_have_count(count)
    page.locator("#history-clear").click()
    expect(page.locator("#history img")).to_have_count(0, timeout=10_000)
    expect(page.locator("#history-undo")).to_be_visible()
    expect(page.locator("#history-clear")).to_be_disabled()  # nothing left to clear
    screenshot(page, "cleared")
    page.locator("#history-undo").click()
    expect(page.locator("#history img")).to_have_count(count, timeout=10_000)
    expect(page.locator("#history-clear")).to_be_enabled()
    expect(page.locator("#history-undo")).to_be_hidden()
    expect(page.locator("#history-clear")).to_have_text("Clear (keeps starred)")
    # Unconfirmed, Clear disarms by itself (the page's timer ticks; when an unused Undo goes away
    # is tests/unit/test_history.py's).
    page.locator("#history-clear").click()
    expect(page.locator("#history-clear")).to_have_text("Clear (keeps starred)", timeout=10_000)
    no_error_pill(page)
    screenshot(page)
    page.close()


def test_compare_the_selected_result_with_any_past_run(browser, app, fake, images, screenshot):
    page = open_app(browser, app, accept_downloads=True)
    run_once(page, images["red"], prompt="make it amber")
    run_once(page, images["blue"], prompt="make it violet")
    older = next(p.parent for p in app.outputs.rglob("recipe.json")
                 if json.loads(p.read_text())["request"]["prompt"] == "make it amber")
    # The run's follow-up events (history, compare, downloads) end before the visitor acts.
    expect(page.locator("#history .thumbnail-item")).to_have_count(2, timeout=15_000)
    expect(page.locator("#download-zip")).to_be_enabled(timeout=15_000)
    page.wait_for_timeout(1000)
    expect(page.locator("#history-compare")).to_be_disabled()
    card = page.locator("#history .thumbnail-item").filter(has_text="make it amber").first
    card.click()
    page.locator("#history-compare").click()
    slider = page.locator("#compare img")
    expect(slider).to_have_count(2, timeout=10_000)
    # A is the selected result of this run, B the past run's first image.
    page.wait_for_timeout(500)

    def shown(index: int) -> bytes:
        data = page.request.get(slider.nth(index).get_attribute("src")).body()
        return Image.open(io.BytesIO(data)).convert("RGB").tobytes()

    with Image.open(older / "image-1.png") as image:
        past = image.convert("RGB").tobytes()
    assert shown(1) == past and shown(0) != past
    # The slider says so: the A/B picks beside it still name this run's images.
    expect(page.locator("#compare [data-testid=block-label]")).to_have_text(
        re.compile(r"Left: result 1 · right: past run of \d\d:\d\d$"))
    no_error_pill(page)
    screenshot(page)
    page.close()


def test_a_typed_seed_is_the_seed_the_run_uses(browser, app, fake, images, screenshot):
    """Random seed is ticked on a first visit: a seed typed into the box was silently ignored,
    and a designer who typed 42 to pin a look got a new random one each run."""
    page = open_app(browser, app)
    random_seed = page.get_by_label("Random seed")
    expect(random_seed).to_be_checked()
    page.locator("#seed input").fill("42")
    expect(random_seed).not_to_be_checked(timeout=5_000)
    run_once(page, images["red"])
    [job] = fake.jobs.values()
    assert job.input["seed"] == 42
    expect(page.locator("#seed-used input, #seed-used textarea").first).to_have_value("42")
    random_seed.check()  # ticked again: random again, the typed seed left in its box
    page.locator("#run-button").click()
    assert fake.wait_for(lambda: len(fake.jobs) == 2, timeout=60)
    assert "seed" not in list(fake.jobs.values())[1].input
    expect(page.locator("#seed-used input, #seed-used textarea").first).not_to_have_value("42", timeout=30_000)
    screenshot(page)
    page.close()


def test_a_hand_edited_preset_loads_what_it_can_and_names_the_rest(browser, app, tmp_path, screenshot):
    """A colleague's presets file, edited by hand: the values the form cannot take stay as they
    were (named in a warning), the others load, and no slider shows a red "Error"."""
    page = open_app(browser, app)
    page.get_by_text("Presets", exact=True).click()
    edited = tmp_path / "presets.json"
    edited.write_text(json.dumps({"colleague": {
        "guidance_scale": "high", "num_inference_steps": 1000, "loras": "not a list", "size": "custom",
        "width": 99999, "height": 768, "output_format": "gif"}}))
    with page.expect_file_chooser() as chooser:
        page.locator("#preset-import").click()
    chooser.value.set_files(str(edited))
    page.locator("#preset-pick input").click()
    page.get_by_role("option", name="colleague").click()
    page.locator("#preset-load").click()
    warning = page.locator(".toast-body").filter(has_text="Some settings were left as they were")
    expect(warning).to_contain_text("Guidance: must be a number", timeout=10_000)
    expect(warning).to_contain_text("Steps: must be at most 50 (got 1000)")
    expect(warning).to_contain_text("Output format: must be one of")
    expect(page.get_by_label("number input for Height")).to_have_value("768")  # a good value still loads
    expect(page.get_by_label("number input for Guidance")).to_have_value("2.5")  # as it was
    expect(page.get_by_label("number input for Steps")).to_have_value("28")
    no_error_pill(page)
    screenshot(page)
    page.close()
