"""A smoke test in a real Chromium (Debian's package) driven by Playwright.

Each test saves a screenshot to tests/screenshots/<test name>.png (conftest's `browser` and
`screenshot` fixtures); README's pictures are copied from there.
"""

from __future__ import annotations

import base64
import io

from PIL import Image
from playwright.sync_api import expect

from tests.helpers.browser import loaded_width, open_app, run_once


def test_upload_run_and_see_the_result(browser, app, fake, images, screenshot):
    fake.job_seconds = 1.0
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app.url)
    page.locator("#reference-1 input[type=file]").set_input_files(str(images["red"]))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.locator("#prompt textarea").fill("make this donut realistic")
    page.locator("#run-button").click()

    expect(page.locator("#status")).to_contain_text("Done", timeout=30_000)
    result = page.locator("#results img").first
    expect(result).to_be_visible()
    assert loaded_width(result) > 0
    [job] = fake.jobs.values()
    assert job.input["prompt"] == "make this donut realistic"
    screenshot(page)
    page.close()


def test_ctrl_enter_runs_and_the_key_field_is_hidden_when_the_server_has_one(
    browser, app, fake, images, screenshot,
):
    # Once the form is there: before it, a key field not yet drawn would pass for a hidden one.
    page = open_app(browser, app, 1280, 720, permissions=["clipboard-read", "clipboard-write"])
    expect(page.locator("#fal-key")).to_be_hidden()
    page.locator("#reference-1 input[type=file]").set_input_files(str(images["blue"]))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.locator("#prompt textarea").fill("turn it green")
    page.locator("#prompt textarea").press("Control+Enter")
    expect(page.locator("#status")).to_contain_text("Done", timeout=30_000)
    [job] = fake.jobs.values()
    assert job.input["prompt"] == "turn it green"
    # The seed used is one click from the clipboard.
    page.locator("#seed-used").get_by_role("button", name="Copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == str(job.output["seed"])
    screenshot(page)
    page.close()


def test_lora_rows_the_fourth_is_added_switched_off_and_the_rest_reach_fal(browser, app, fake, images, screenshot):
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(app.url)
    page.locator("#reference-1 input[type=file]").set_input_files(str(images["red"]))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.locator("#prompt textarea").fill("in watercolor")
    for row in range(1, 5):
        page.locator("#add-lora").click()
        expect(page.get_by_label(f"LoRA {row}", exact=True)).to_be_visible()
    expect(page.get_by_text("At most 3 LoRAs can be on at once").first).to_be_visible()
    expect(page.get_by_label("LoRA 4 on", exact=True)).not_to_be_checked()
    for index, path in enumerate(["owner/style-a", "owner/style-b", "", "owner/style-d"], start=1):
        if path:
            page.get_by_label(f"LoRA {index}", exact=True).fill(path)
    page.get_by_label("LoRA 2 on", exact=True).uncheck()  # row 2 stays in the list, switched off
    page.locator("#run-button").click()  # at once: the rows as on screen are sent, however busy the server
    expect(page.locator("#status")).to_contain_text("Done", timeout=30_000)
    [job] = fake.jobs.values()
    assert job.input["loras"] == [{"path": "owner/style-a", "scale": 1.0}]
    screenshot(page)
    page.close()


def test_closing_the_tab_cancels_the_fal_job(browser, app, fake, images, screenshot):
    fake.job_seconds = 300  # far longer than Gradio takes to notice the closed tab
    page = browser.new_page()
    page.goto(app.url)
    page.locator("#reference-1 input[type=file]").set_input_files(str(images["red"]))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.locator("#prompt textarea").fill("slow one")
    page.locator("#run-button").click()
    assert fake.wait_for(lambda: any(j.state == "IN_PROGRESS" for j in fake.jobs.values()), timeout=15)
    screenshot(page)  # the run in progress, just before the tab closes
    page.close()
    assert fake.wait_for(lambda: all(j.cancelled for j in fake.jobs.values()), timeout=90)


def test_images_stay_numbered_in_the_order_they_are_sent(browser, app, fake, images, screenshot):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app.url)
    page.locator("#reference-3 input[type=file]").set_input_files(str(images["blue"]))
    # Dropped into the third slot with the first two empty: it becomes image 1.
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.locator("#reference-2 input[type=file]").set_input_files(str(images["red"]))
    expect(page.locator("#reference-2 img")).to_be_visible(timeout=15_000)
    page.locator("#swap-1").click()
    page.wait_for_timeout(500)
    page.locator("#prompt textarea").fill("combine them")
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=30_000)
    [job] = fake.jobs.values()
    sizes = [Image.open(io.BytesIO(base64.b64decode(u.split(",", 1)[1]))).size for u in job.input["image_urls"]]
    assert sizes == [(640, 480), (512, 512)]  # red (swapped to first), then blue
    screenshot(page)
    page.close()


def test_switching_to_the_local_backend_shows_its_controls_and_disables_fal_only_ones(
    browser, local_app, screenshot,
):
    page = open_app(browser, local_app, 1400, 1200)  # the form drawn (on a loaded machine, more than 5 s)
    # No FAL_KEY and a local backend: local is the default, fal-only controls are off.
    expect(page.locator("#reference-6")).to_be_visible(timeout=30_000)
    page.get_by_text("Advanced").click()
    safety = page.get_by_label("Safety checker")
    expect(safety).to_be_disabled()
    expect(page.get_by_text("fal only: not used by the local backend").first).to_be_visible()
    expect(page.locator("#fal-key")).to_be_hidden()
    # The LoRA rows say what each backend takes (a path fal accepts is no file on this server).
    expect(page.locator("#lora-stack").first).to_contain_text(
        "a path fal accepts (fal) or a file in this server's LoRA folder (local)")
    page.get_by_label("fal (hosted)").check()
    expect(page.locator("#reference-6")).to_be_hidden()
    expect(safety).to_be_enabled()
    expect(page.locator("#fal-key")).to_be_visible()
    page.get_by_label("this machine's GPU (local)").check()
    expect(safety).to_be_disabled()
    # On this CPU only `quality` runs: fast and fastest are shown disabled, and the field says why.
    page.get_by_text("Local model", exact=True).click()
    speed = page.locator("#local-speed")
    expect(speed).to_contain_text("fast and fastest need an NVIDIA GPU with fp8")
    expect(speed.get_by_label("quality", exact=True)).to_be_enabled()
    expect(speed.get_by_label("fast", exact=True)).to_be_disabled()
    expect(speed.get_by_label("fastest", exact=True)).to_be_disabled()
    screenshot(page)
    page.close()


# Each element with text of its own (printable ASCII only: every font the page names has those
# letters), tagged for the DevTools protocol to name the fonts its text is drawn in.
TAG_TEXTS = """() => { let count = 0;
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join('').trim();
    if (own && /^[\\x20-\\x7e]+$/.test(own) && el.getClientRects().length) el.dataset.fontProbe = count++;
  }
  return count; }"""


def test_every_text_is_drawn_in_the_pages_own_fonts(browser, app, fake, images, screenshot):
    """Gradio's bundled semi-bold file holds three letters (' ', 'A', 'B'): every bold label,
    button and heading was drawn in the system's fallback font with those letters from the page's
    own ("LoRA" with a small A in the title). Bold text now comes from a complete file."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app.url)
    run_once(page, images["red"])  # the run's details: bold names before their values
    page.locator("#add-lora").click()
    expect(page.get_by_label("LoRA 1", exact=True)).to_be_visible(timeout=30_000)
    page.get_by_text("Advanced", exact=True).click()
    page.wait_for_timeout(1000)
    devtools = page.context.new_cdp_session(page)
    devtools.send("DOM.enable")
    devtools.send("CSS.enable")
    root = devtools.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    count = page.evaluate(TAG_TEXTS)
    drawn_elsewhere = []
    for index in range(count):
        node = devtools.send("DOM.querySelector", {"nodeId": root, "selector": f'[data-font-probe="{index}"]'})
        fonts = devtools.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})["fonts"]
        system = [font["postScriptName"] for font in fonts if not font["isCustomFont"]]
        if system:
            text = page.locator(f'[data-font-probe="{index}"]').evaluate("e => e.textContent.trim().slice(0, 40)")
            drawn_elsewhere.append((text, system))
    assert count > 50 and not drawn_elsewhere, drawn_elsewhere
    screenshot(page, full_page=False)
    page.close()
