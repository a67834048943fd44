"""axe-core (through axe-playwright-python) on the page's main states, in light and dark mode, on a
desktop and a phone: no serious or critical violation (text contrast at WCAG AA included). And what
a first visit looks like: a keyless visitor sees the key box before anything else and no operator
setup text; a phone shows each LoRA row on one line, without horizontal scrolling, and its image
slots on one line with the examples on the first screen (a tablet its image slots on one line too).
"""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.helpers.browser import run_once

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
BLOCKING = ("serious", "critical")
# Every progress overlay (Gradio's timer, "0.2s") that shows over a component, as "<id>: <text>",
# recorded from the first paint on. A hidden overlay keeps the class "hide".
RECORD_TIMERS = """
window.studioTimers = [];
new MutationObserver(() => {
  for (const text of document.querySelectorAll('.progress-text')) {
    const overlay = text.closest('.wrap');
    if (text.innerText.trim() && overlay && !overlay.classList.contains('hide'))
      window.studioTimers.push((text.closest('[id]') || {}).id + ': ' + text.innerText.trim());
  }
}).observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
"""
SETTLED = """() => ![...document.querySelectorAll('.progress-text')].some(
  text => !text.closest('.wrap').classList.contains('hide'))"""


def open_page(browser, app, viewport, scheme):
    """The page as a visitor finds it once it has loaded: nothing pending, nothing fading."""
    page = browser.new_page(viewport=viewport, color_scheme=scheme)
    page.add_init_script(RECORD_TIMERS)
    # Gradio follows ?__theme=dark (and the system's scheme); both are set.
    page.goto(app.url.rstrip("/") + ("/?__theme=dark" if scheme == "dark" else "/"))
    expect(page.locator("#run-button")).to_be_visible(timeout=60_000)
    expect(page.locator("#reference-1")).to_be_visible(timeout=60_000)
    page.wait_for_function(SETTLED, timeout=30_000)
    return page


def violations(page) -> list[str]:
    """axe's serious and critical violations, each with the elements it found them on, once no
    progress overlay is fading in or out and the notices are closed (Gradio's toasts: their header
    is a role=button holding the close button, which axe calls nested-interactive, and they fade)."""
    page.wait_for_function(SETTLED, timeout=30_000)
    # Notices fade in and out: the page is what is checked. Closed in the page at once (one closing
    # as a click reached it was detached under the click, which then waited for it in vain).
    page.locator(".toast-close").evaluate_all("buttons => buttons.forEach((button) => button.click())")
    expect(page.locator(".toast-body")).to_have_count(0, timeout=10_000)
    found = Axe().run(page).response["violations"]
    return [
        f"{v['impact']} {v['id']} ({v['help']}): " + "; ".join(
            f"{node['target']} {(node.get('any') or [{}])[0].get('message', '')[:120]}" for node in v["nodes"][:5])
        for v in found if v["impact"] in BLOCKING
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_first_visit_has_no_serious_accessibility_violation(browser, keyless_app, scheme, viewport, screenshot):
    page = open_page(browser, keyless_app, viewport, scheme)
    found = violations(page)
    screenshot(page)
    assert not found, "\n".join(found)
    page.close()


def test_a_first_visit_flashes_no_timer_over_the_page(browser, keyless_app):
    # What the page works out on load (the cost text, History, presets) is quick and quiet: no
    # "0.2s" fading in and out over the cost line or History on every visit.
    page = open_page(browser, keyless_app, DESKTOP, "light")
    page.get_by_label("Your fal API key").fill("not-a-real-key")  # a change that works out the cost again
    page.wait_for_timeout(1000)
    page.wait_for_function(SETTLED, timeout=30_000)
    assert page.evaluate("window.studioTimers") == []
    page.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_page_with_results_loras_and_panels_open_has_no_serious_violation(browser, app, images, scheme,
                                                                              screenshot):
    page = open_page(browser, app, DESKTOP, scheme)
    page.locator("#add-lora").click()
    expect(page.get_by_label("LoRA 1", exact=True)).to_be_visible(timeout=30_000)
    run_once(page, images["red"])
    for panel in ("Advanced", "Presets", "Sweep"):
        page.get_by_role("button", name=re.compile("^" + panel)).first.click()
    expect(page.locator("#sweep-button")).to_be_visible(timeout=30_000)
    found = violations(page)
    screenshot(page)
    assert not found, "\n".join(found)
    page.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_form_errors_and_the_queue_have_no_serious_violation(browser, app, images, scheme, screenshot):
    page = open_page(browser, app, DESKTOP, scheme)
    page.locator("#run-button").click()  # nothing in the form: the fields at fault are marked, in red
    expect(page.locator(".field-error")).to_have_count(2, timeout=30_000)
    found = violations(page)
    screenshot(page, "form-errors")
    page.locator("#reference-1 input[type=file]").set_input_files(str(images["red"]))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.locator("#prompt textarea").fill("make it teal")
    page.locator("#queue-button").click()
    expect(page.locator("#jobs .thumbnail-item").first).to_contain_text("done", timeout=60_000)
    page.locator("#jobs .thumbnail-item").first.click()
    expect(page.locator("#job-open")).to_be_enabled()
    found += violations(page)
    screenshot(page, "queue")
    assert not found, "\n".join(found)
    page.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_keyless_visitor_sees_the_key_box_first_and_no_setup_text(browser, keyless_app, viewport, screenshot):
    page = open_page(browser, keyless_app, viewport, "light")
    key = page.get_by_label("Your fal API key")
    expect(key).to_be_visible()
    # Above the reference images, the instruction, Run and the examples: in reading order, first.
    key_top = key.bounding_box()["y"]
    for below in ("#reference-1", "#prompt", "#run-button", "text=Examples"):
        assert page.locator(below).first.bounding_box()["y"] > key_top, below
    text = page.locator("body").inner_text()
    for operator_text in ("requirements-local", "pip install", "README"):
        assert operator_text not in text
    screenshot(page)
    page.close()


@pytest.mark.parametrize("width", [PHONE["width"], 820, DESKTOP["width"]])
def test_each_lora_row_is_on_one_line_with_its_placeholder_whole(browser, app, screenshot, width):
    """A phone, a tablet held upright (the remove button took a line of its own from 769 to
    1023 px) and a desktop; an empty row's placeholder wrapped to a second line cut in half."""
    page = open_page(browser, app, {"width": width, "height": 900}, "light")
    for row in (1, 2):
        page.locator("#add-lora").click()
        expect(page.get_by_label(f"LoRA {row}", exact=True)).to_be_visible(timeout=30_000)
    empty = page.get_by_label("LoRA 2", exact=True)
    assert empty.evaluate("e => e.value === '' && e.scrollHeight <= e.clientHeight + 2"), empty.evaluate(
        "e => [e.scrollHeight, e.clientHeight]")
    assert empty.evaluate("""e => {
        const c = document.createElement('canvas').getContext('2d');
        c.font = getComputedStyle(e).font;
        return c.measureText(e.placeholder).width <= e.clientWidth;
    }"""), "the placeholder is cut"
    page.get_by_label("LoRA 1", exact=True).fill("https://huggingface.co/owner/repo/resolve/main/style.safetensors")
    for row in (1, 2):
        path = page.get_by_label(f"LoRA {row}", exact=True).bounding_box()
        scale = page.locator(f"#lora-scale-{row} input[type=number]").bounding_box()
        switch = page.get_by_role("checkbox", name=f"LoRA {row} on").bounding_box()
        remove = page.get_by_role("button", name=f"Remove LoRA {row}").bounding_box()
        # Side by side, left to right, their tops within one line's height of each other.
        lefts = [box["x"] for box in (path, scale, switch, remove)]
        assert lefts == sorted(lefts), lefts
        tops = [box["y"] for box in (path, scale, switch, remove)]
        assert max(tops) - min(tops) < 60, tops
        assert path["width"] >= 120  # room to see what was typed
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.get_by_label("LoRA 1", exact=True).scroll_into_view_if_needed()
    screenshot(page)
    page.close()


TOPS = "ids => Object.fromEntries(ids.map(id => [id, document.getElementById(id).getBoundingClientRect().top]))"


def test_a_phone_shows_the_presets_buttons_two_to_a_line(browser, app, screenshot):
    """Each of the Presets panel's six buttons took a line of its own on a phone."""
    page = open_page(browser, app, PHONE, "light")
    page.get_by_text("Presets", exact=True).first.click()
    expect(page.locator("#preset-save")).to_be_visible(timeout=10_000)
    top = page.evaluate(TOPS, ["preset-name", "preset-save", "preset-pick", "preset-load", "preset-rename",
                               "preset-delete", "preset-export", "preset-import"])
    for left, right in (("preset-name", "preset-save"), ("preset-pick", "preset-load"),
                        ("preset-rename", "preset-delete"), ("preset-export", "preset-import")):
        assert abs(top[left] - top[right]) < 4, (left, right, top)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.locator("#preset-import").scroll_into_view_if_needed()
    screenshot(page)
    page.close()


def test_a_phone_history_card_shows_its_runs_time_and_the_buttons_are_two_to_a_line(browser, app, images, screenshot):
    """Four 100 px cards to a line: a long instruction's three caption lines cut off the run's time
    (half a line of it showing through the caption's foot); and each button took a line."""
    page = open_page(browser, app, PHONE, "light")
    run_once(page, images["red"], prompt="make this donut realistic, studio photo, soft light from the left")
    caption = page.locator("#history .caption-label").first
    expect(caption).to_be_visible(timeout=15_000)
    assert caption.evaluate("c => c.scrollHeight <= c.clientHeight"), caption.inner_text()  # time and all
    # Read in one frame: the result's and the compare's images still arriving move the panel down
    # between one button's reading and the next (restore read 223 px above star, once in three).
    top = page.evaluate(TOPS, ["history-restore", "history-star", "history-compare", "history-clear", "job-open",
                               "job-cancel"])
    for left, right in (("history-restore", "history-star"), ("history-compare", "history-clear"),
                        ("job-open", "job-cancel")):
        assert abs(top[left] - top[right]) < 4, (left, right, top)
    page.locator("#history-panel").scroll_into_view_if_needed()
    screenshot(page)
    page.close()


# Each image slot of a phone's first visit: its top, and whether its upload prompt (icon and words)
# lies whole inside the slot's upload area, below its label (Gradio's four lines of "Drop Image Here
# - or - Click to Upload" ran past a narrow slot's top and foot, its icon under the label).
SLOTS = """() => [1, 2, 3].map(i => {
  const area = document.querySelector(`#reference-${i} button.upload-container`).getBoundingClientRect();
  const label = document.querySelector(`#reference-${i} [data-testid=block-label]`).getBoundingClientRect();
  const wrap = document.querySelector(`#reference-${i} button.upload-container .wrap`);
  const range = document.createRange();
  range.selectNodeContents(wrap);
  const drawn = [...range.getClientRects()].filter(r => r.width > 0 && r.height > 0);
  return {top: Math.round(area.top), whole: drawn.every(r => r.top >= label.bottom - 1 && r.bottom <= area.bottom + 1),
          says: getComputedStyle(wrap, '::after').content};
})"""


@pytest.mark.parametrize("viewport", [PHONE, {"width": 320, "height": 700}, {"width": 820, "height": 1180}],
                         ids=["390", "320", "820"])
def test_a_phone_or_tablet_shows_the_image_slots_on_one_line_and_on_390_px_the_examples_on_the_first_screen(
    browser, app, images, viewport, screenshot,
):
    """Image 3 took a line of its own and each slot four lines of words, which pushed the examples,
    a newcomer's way in, below a phone's first screen. A tablet's form column (820 px: beside the
    results) is as narrow, and image 3 went under the other two there too."""
    page = open_page(browser, app, viewport, "light")
    slots = page.evaluate(SLOTS)
    assert len({slot["top"] for slot in slots}) == 1, slots
    assert all(slot["whole"] and slot["says"] == '"Add image"' for slot in slots), slots
    if viewport == PHONE:
        example = page.get_by_role("button", name="Donut, made real").bounding_box()
        assert example["y"] + example["height"] <= page.locator("#run-bar").bounding_box()["y"]
    screenshot(page, f"{viewport['width']}-first")
    # After its clipboard button a slot waits for a paste, and says so (not "Add image").
    page.locator("#reference-2").get_by_role("button", name="Paste from clipboard").click()
    page.wait_for_function("""() => getComputedStyle(document.querySelector(
      '#reference-2 button.upload-container .wrap'), '::after').content === '"Paste image"'""", timeout=10_000)
    expect(page.locator("#reference-2 button.upload-container")).to_have_attribute("aria-label", "Paste image 2")
    expect(page.locator("#reference-3 button.upload-container")).to_have_attribute("aria-label", "Upload image 3")
    # With a picture in it, the slot's label still says which image it is, clear of its remove button.
    page.locator("#reference-1 input[type=file]").set_input_files(images["red"])
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    label = page.locator("#reference-1 [data-testid=block-label]")
    expect(label).to_have_text("image 1")
    remove = page.locator("#reference-1 .icon-button-wrapper button").last.bounding_box()
    shown = label.bounding_box()
    assert shown["x"] + shown["width"] <= remove["x"] + 1, (shown, remove)
    assert label.evaluate("e => e.scrollWidth <= e.clientWidth")
    screenshot(page, f"{viewport['width']}-image")
    page.close()


LAPTOP = {"width": 1366, "height": 657}  # a 1366x768 laptop's browser window, its bars taken off


def test_a_laptops_first_screen_shows_the_examples_and_without_a_server_key_where_to_type(
    browser, app, keyless_app, screenshot,
):
    """On the commonest laptop screen the examples (a newcomer's way in) were under the first screen
    (at 713 px), and with no server key the key's panel (230 px) put the instruction under it too."""
    page = open_page(browser, app, LAPTOP, "light")
    example = page.get_by_role("button", name="Donut, made real").bounding_box()
    assert example["y"] + example["height"] <= LAPTOP["height"], example
    screenshot(page, "server-key")
    page.close()
    page = open_page(browser, keyless_app, LAPTOP, "light")
    run_bar = page.locator("#run-bar").bounding_box()
    assert run_bar["y"] + run_bar["height"] <= LAPTOP["height"], run_bar
    for above in ("#fal-key input", "#reference-1"):
        box = page.locator(above).bounding_box()
        assert box["y"] + box["height"] <= run_bar["y"], (above, box, run_bar)
    # The instruction's box shows at least a line (its placeholder) above the run bar.
    box = page.locator("#prompt textarea").bounding_box()
    assert box["y"] + 30 <= run_bar["y"], (box, run_bar)
    expect(page.locator("#prompt textarea")).to_have_attribute("placeholder", re.compile("Type what to change"))
    screenshot(page, "keyless")
    page.close()
