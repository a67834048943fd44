"""Inputs checked when they are given, and problems kept on the field at fault, in Chromium:
a refused run marks every field it names (until that field changes) without Gradio's red
"Error" pills, an over-limit upload leaves its slot at once, LoRA links are checked as typed,
and a run that fails at fal leaves the previous result in the gallery. An instruction near its
limit shows its length as it is typed, and how far over it is past it."""

from __future__ import annotations

import pytest
from PIL import Image
from playwright.sync_api import expect

from backend.request import MAX_PROMPT_CHARS
from tests.helpers.app import VISITOR_KEY, launch_app, stop_app
from tests.helpers.browser import no_error_pill, open_app, open_panel, run_once, start_run

FIELD_ERROR = ".field-error"


@pytest.fixture(scope="module")
def small_app(fake, tmp_path_factory):
    """The app taking images of at most 1 MP (STUDIO_MAX_IMAGE_MP), so that a test image is over it."""
    launched = launch_app(tmp_path_factory.mktemp("small-app"), fake, STUDIO_MAX_IMAGE_MP="1")
    yield launched
    stop_app(launched)


def test_run_with_nothing_marks_the_image_and_the_instruction(browser, small_app, fake, screenshot):
    page = open_app(browser, small_app)
    page.locator("#run-button").click()
    status = page.locator("#status")
    expect(status).to_contain_text("Please check the form", timeout=30_000)
    expect(status).to_contain_text("Reference images: add at least one image")
    expect(status).to_contain_text("Instruction: must not be empty")
    expect(page.locator(f"#prompt{FIELD_ERROR}")).to_be_visible(timeout=10_000)
    expect(page.locator(f"#reference-1{FIELD_ERROR}")).to_be_visible()
    expect(page.locator("#prompt")).to_contain_text("Instruction: must not be empty")  # its help text says it
    expect(page.locator(FIELD_ERROR)).to_have_count(2)
    no_error_pill(page)
    screenshot(page, "marked")
    assert not fake.jobs
    # Typing the instruction takes its mark away; the empty slot keeps its own.
    page.locator("#prompt textarea").fill("make it blue")
    expect(page.locator(f"#prompt{FIELD_ERROR}")).to_have_count(0, timeout=10_000)
    expect(page.locator(f"#reference-1{FIELD_ERROR}")).to_be_visible()
    no_error_pill(page)
    screenshot(page)
    page.close()


def test_run_with_nothing_on_a_keyless_server_names_and_marks_the_key_too(browser, keyless_app, fake, screenshot):
    """A newcomer on a server without a key presses Run first: the image, the instruction and the
    key are named at once (not the key only once the rest is right), each problem on its own line
    of the warning, and all three marked."""
    page = open_app(browser, keyless_app)
    page.locator("#run-button").click()
    status = page.locator("#status")
    expect(status).to_contain_text("Please check the form", timeout=30_000)
    said = ("Reference images: add at least one image", "Instruction: must not be empty",
            "Your fal API key: none given")
    for text in said:
        expect(status).to_contain_text(text)
    for marked in ("#reference-1", "#prompt", "#own-key"):
        expect(page.locator(f"{marked}{FIELD_ERROR}")).to_be_visible(timeout=10_000)
    expect(page.locator(FIELD_ERROR)).to_have_count(3)
    lines = page.locator(".toast-message-text").first.inner_text().splitlines()
    assert [sum(text in line for line in lines) for text in said] == [1, 1, 1] and len(lines) >= 3, lines
    no_error_pill(page)
    screenshot(page)
    assert not fake.requests
    page.close()


def test_an_over_limit_upload_leaves_its_slot(browser, small_app, fake, images, tmp_path, screenshot):
    big = tmp_path / "big.png"
    Image.new("RGB", (1500, 1500), (20, 120, 60)).save(big)
    page = open_app(browser, small_app)
    page.locator("#reference-1 input[type=file]").set_input_files(str(big))
    message = "Image 1: has more than 1 million pixels; at most 1 MP is accepted"
    expect(page.locator("#status")).to_contain_text(message, timeout=30_000)
    expect(page.locator(".toast-body").filter(has_text=message)).to_be_visible()
    expect(page.locator("#reference-1 img")).to_have_count(0, timeout=10_000)
    no_error_pill(page)
    screenshot(page)
    # An image within the limit is taken.
    page.locator("#reference-1 input[type=file]").set_input_files(str(images["red"]))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.close()


def test_an_instruction_near_its_limit_shows_its_length_as_it_is_typed(browser, small_app, screenshot):
    """A long paste was only refused at Run: the count comes at 80 % of the limit, says how far
    over it is past it (characters as the server counts them: an emoji is one), and goes when
    the text is short again, typed or set by an example."""
    page = open_app(browser, small_app)
    box, count = page.locator("#prompt textarea"), page.locator("#prompt-count")
    box.fill("a" * (MAX_PROMPT_CHARS * 7 // 10))
    expect(count).to_have_count(0)
    box.fill("a" * (MAX_PROMPT_CHARS - 10) + "🍩" * 5)
    expect(count).to_have_text(f"{MAX_PROMPT_CHARS - 5} of {MAX_PROMPT_CHARS} characters")
    box.fill("make it real " * (MAX_PROMPT_CHARS // 12))
    over = len("make it real " * (MAX_PROMPT_CHARS // 12)) - MAX_PROMPT_CHARS
    expect(count).to_have_text(f"{MAX_PROMPT_CHARS + over} characters: {over} over the {MAX_PROMPT_CHARS} "
                               f"an instruction may have")
    expect(count).to_be_in_viewport()  # above the box, which the long text made taller than the screen
    expect(box).to_have_attribute("aria-describedby", "prompt-count")  # what a screen reader says of the box
    expect(count).not_to_have_attribute("role", "status")  # not read out at every key
    screenshot(page, "over")
    box.fill("make it real")
    expect(count).to_have_count(0)
    expect(box).not_to_have_attribute("aria-describedby", "prompt-count")
    # An example sets the text without typing: the count follows it, never a text that is gone.
    box.fill("a" * (MAX_PROMPT_CHARS + 1))
    expect(count).to_contain_text("1 over")
    page.get_by_role("button", name="Donut, made real").click()
    expect(count).to_have_count(0, timeout=10_000)


def test_lora_links_are_checked_as_typed(browser, small_app, screenshot):
    page = open_app(browser, small_app)
    page.locator("#add-lora").click()
    path = page.get_by_label("LoRA 1", exact=True)
    expect(path).to_be_visible(timeout=10_000)
    path.fill("https://huggingface.co/owner/repo/blob/main/style.safetensors")
    # The note under the rows says which link will be used (the request carries it: tests/unit).
    # The box itself is left as typed: rewriting it raced the row edits behind "+ Add LoRA".
    expect(page.locator("#lora-note")).to_contain_text(
        "the download link will be used: https://huggingface.co/owner/repo/resolve/main/style.safetensors",
        timeout=10_000)
    path.fill("https://civitai.com/models/12345/watercolor")
    expect(page.locator("#lora-note")).to_contain_text("that is a Civitai model page; paste its download link",
                                                       timeout=10_000)
    no_error_pill(page)
    screenshot(page)
    page.close()


def test_a_failed_run_leaves_the_previous_result(browser, small_app, fake, images, screenshot):
    page = open_app(browser, small_app, accept_downloads=True)
    run_once(page, images["red"], prompt="make it teal")
    expect(page.locator("#results .caption-label")).to_have_text(["image 1"], timeout=10_000)
    shown = page.locator("#results .thumbnail-item img").first.get_attribute("src")
    fake.fail = {"status": 500, "on": "any", "times": None, "detail": "the runner fell over"}
    page.locator("#prompt textarea").fill("now at night")
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Failed", timeout=60_000)
    expect(page.locator("#status")).to_contain_text("the runner fell over")
    expect(page.locator("#results .caption-label")).to_have_text(["image 1"], timeout=10_000)
    assert page.locator("#results .thumbnail-item img").first.get_attribute("src") == shown
    expect(page.locator("#run-button")).to_have_text("Run")
    # And with it, what the page said of it: its details, seed, and tools, downloads named for it.
    expect(page.locator("#details")).to_contain_text("make it teal", timeout=10_000)
    expect(page.locator("#seed-used input, #seed-used textarea").first).not_to_have_value("")
    expect(page.locator("#use-as-input")).to_be_enabled(timeout=10_000)
    expect(page.locator("#download-zip")).to_be_enabled()
    with page.expect_download() as saved:
        page.locator("#download-png").click()
    assert saved.value.suggested_filename.startswith("make-it-teal_seed-")
    no_error_pill(page)
    screenshot(page)
    page.close()


def test_a_phone_run_without_a_key_marks_the_key_box_and_brings_it_into_view(browser, keyless_app, fake, images,
                                                                          screenshot):
    """A visitor on a keyless server's page, on a phone, runs without pasting a key: nothing is
    sent, the status says what to do (not "Failed"), and the key box, at the top of the page, is
    marked and brought back into view (clear of the warning, the first try's closed); a pasted key
    takes the mark away and runs."""
    page = open_app(browser, keyless_app, width=390, height=844)
    page.locator("#run-button").click()  # first with nothing: a warning naming three fields
    expect(page.locator(".toast-body.warning")).to_contain_text("Reference images", timeout=30_000)
    page.locator("#reference-1 input[type=file]").set_input_files(str(images["red"]))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.locator("#prompt textarea").fill("make it blue")
    page.locator("#run-button").click()
    status = page.locator("#status")
    expect(status).to_contain_text("Your fal API key: none given", timeout=30_000)
    expect(status).not_to_contain_text("Failed")
    expect(page.locator(f"#own-key{FIELD_ERROR} #fal-key")).to_be_visible(timeout=10_000)
    expect(page.locator("#own-key")).to_be_in_viewport()
    # ... the warning's toast not over it (the last try's warning is closed: stacked, the two
    # covered the box), above the run bar.
    expect(page.locator(".toast-body.warning")).to_have_count(1)
    expect(page.locator(".toast-body.warning")).not_to_contain_text("Reference images")
    key_box_clear_of_the_toast(page)
    no_error_pill(page)
    assert not fake.jobs
    screenshot(page, full_page=False)
    page.get_by_label("Your fal API key").fill(VISITOR_KEY)
    expect(page.locator(FIELD_ERROR)).to_have_count(0, timeout=10_000)
    page.locator("#run-button").click()
    expect(status).to_contain_text("Done", timeout=30_000)
    page.close()


def test_a_key_fal_refuses_marks_the_key_box_and_a_phone_brings_it_into_view(browser, app, fake, images, screenshot):
    """A visitor pastes a key fal does not know (the server has its own): the run fails saying
    so, the key box is marked and brought into view clear of the warning; a change takes the mark away."""
    page = open_app(browser, app, width=390, height=844)
    page.locator("#own-key").get_by_text("Use your own fal key").click()
    box = page.get_by_label("Your fal API key")
    box.fill("not-a-key-fal-knows")
    start_run(page, images["red"], prompt="make it blue")
    expect(page.locator("#status")).to_contain_text("fal refused the API key", timeout=30_000)
    expect(page.locator(f"#own-key{FIELD_ERROR} #fal-key")).to_be_visible(timeout=10_000)
    key_box_clear_of_the_toast(page)
    assert not fake.jobs  # fal refused it: nothing ran
    screenshot(page, full_page=False)
    box.fill("not-a-key-fal-knows-either")
    expect(page.locator(FIELD_ERROR)).to_have_count(0, timeout=10_000)
    page.close()


# Whether `selector`'s box is whole on screen, with no toast over it, above a phone's run bar.
UNCOVERED = """(selector) => {
    const box = document.querySelector(selector).getBoundingClientRect();
    const toasts = [...document.querySelectorAll(".toast-body")].map((t) => t.getBoundingClientRect());
    return toasts.length > 0 && box.top >= 0 && box.bottom <= innerHeight - 120
        && toasts.every((t) => t.bottom <= box.top || t.top >= box.bottom);
}"""


def key_box_clear_of_the_toast(page) -> None:
    """On a phone, the key box brought into view whole, the warning's toast not over it, above the run bar."""
    page.wait_for_function(UNCOVERED, arg="#fal-key", timeout=5_000)


def test_a_phone_run_queue_or_sweep_refused_for_the_form_brings_its_first_marked_field_into_view(
        browser, small_app, fake, screenshot):
    """On a phone the form is a screen or more above the results, where Run takes the page, and
    Run sweep is at its foot: a run, a queued one or a sweep refused for the form brings the first
    field it marks back into view, whole, the warning's toast not over it (at the top of the screen
    a two-line warning covered image 1), instead of leaving the person at an empty result."""
    page = open_app(browser, small_app, width=390, height=844)
    open_panel(page, "Sweep")
    for button in ("#run-button", "#queue-button", "#sweep-button"):
        page.evaluate("window.scrollTo(0, document.body.scrollHeight / 2)")  # as after a look at the results
        page.locator(button).click()
        expect(page.locator(f"#reference-1{FIELD_ERROR}")).to_be_visible(timeout=30_000)
        page.wait_for_function(UNCOVERED, arg="#reference-1", timeout=10_000)
        screenshot(page, button.strip("#"), full_page=False)
        page.locator(".toast-body .toast-close").first.click()
        expect(page.locator(".toast-body")).to_have_count(0, timeout=10_000)
    assert not fake.jobs
    page.close()
