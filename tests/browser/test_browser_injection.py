"""Nothing injected, in a real Chromium: markup in a prompt fal echoes, in fal's error text and in a
crafted recipe PNG shows as text; the page gets no link or image of it and never asks for one."""

from __future__ import annotations

import io

from PIL import Image
from playwright.sync_api import expect

from backend.recipes import embed_recipe
from tests.helpers.injection import EVIL, crafted_recipe

LIVE = 'a[href*="evil.example"], img[src*="evil.example"], iframe, script[src*="evil.example"]'


def open_page(browser, app, asked: list[str]):
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.on("request", lambda request: asked.append(request.url) if "evil.example" in request.url else None)
    page.goto(app.url)
    return page


def test_markup_from_fal_a_prompt_and_a_recipe_png_stays_text(browser, app, fake, images, tmp_path, screenshot):
    fake.job_seconds, fake.steps = 0.1, 2
    asked: list[str] = []
    page = open_page(browser, app, asked)
    # fal echoes the prompt: the details show it as text.
    page.locator("#reference-1 input[type=file]").set_input_files(str(images["red"]))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.locator("#prompt textarea").fill(EVIL)
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=30_000)
    expect(page.locator("#details")).to_contain_text("[link](https://evil.example) <img src=https://evil.example/t.png>")
    # fal's error text in the notice. (Run reads "Run" again a moment after "Done": a click before
    # that queues the run instead, as a click on "Running" does.)
    expect(page.locator("#run-button")).to_have_text("Run")
    fake.fail = {"status": 500, "on": "stream", "times": 1, "detail": EVIL}
    page.locator("#run-button").click()
    expect(page.get_by_test_id("toast-body")).to_contain_text("<img src=https://evil.example/t.png>",
                                                              timeout=30_000)
    # A crafted recipe PNG: its backend and seed in the status line, its prompt in the text box.
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 20, 30)).save(buffer, format="PNG")
    crafted = tmp_path / "crafted.png"
    crafted.write_bytes(embed_recipe(buffer.getvalue(), crafted_recipe()))
    page.get_by_text("Restore settings from a PNG made here").click()
    page.locator("#recipe-drop input[type=file]").set_input_files(str(crafted))
    expect(page.locator("#recipe-preview")).to_contain_text(EVIL, timeout=10_000)  # shown as text
    page.locator("#recipe-apply").click()
    expect(page.locator("#status")).to_contain_text("Restored the settings of a [link](https://evil.example)",
                                                    timeout=10_000)
    expect(page.locator("#prompt textarea")).to_have_value(EVIL)
    screenshot(page)
    assert page.locator(LIVE).count() == 0
    assert asked == []
    page.close()
