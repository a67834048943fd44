"""In Chromium: a LoRA typed into a row is checked from its header at once, before anything is
spent: the line under the rows says its layout, rank, size and trigger words, or that it was
made for another model; Run with such a LoRA is refused naming it, and no fal job starts.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.helpers.browser import no_error_pill, open_app
from tests.helpers.lora_headers import lora_header_file
from tests.helpers.stand_ins.hub import session_hub

DESKTOP = {"width": 1440, "height": 900}


def test_a_typed_lora_is_described_and_one_for_another_model_is_refused_before_run(browser, app, fake, images,
                                                                                  screenshot):
    hub = session_hub()
    hub.add("studio-test/ink-dev", "ink.safetensors",
            lora_header_file("flux2-dev", "ai-toolkit", rank=32, metadata={"trigger_word": "inkwash"}))
    hub.add("studio-test/flux1-ink", "ink.safetensors", lora_header_file("flux1", "kohya"))
    page = open_app(browser, app, **DESKTOP)
    check = page.locator("#lora-check")
    for row, path in ((1, "studio-test/ink-dev"), (2, "studio-test/flux1-ink")):
        page.locator("#add-lora").click()
        box = page.get_by_label(f"LoRA {row}", exact=True)
        expect(box).to_be_visible(timeout=30_000)
        box.fill(path)
    expect(check).to_contain_text(re.compile(r"✓ LoRA 1: ai-toolkit LoRA, rank 32, \d+ MB, for FLUX.2 \[dev\]; "
                                             r"trigger words: inkwash"), timeout=30_000)
    expect(check).to_contain_text("✗ LoRA 2: was made for FLUX.1, not FLUX.2 [dev]. A run with it is refused",
                                  timeout=30_000)
    screenshot(page)

    page.locator("#reference-1 input[type=file]").set_input_files(str(images["red"]))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.locator("#prompt textarea").fill("ink it")
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("LoRA 2 (studio-test/flux1-ink): was made for FLUX.1",
                                                    timeout=30_000)
    no_error_pill(page)
    assert fake.jobs == {}
    # Switched off, the row is left out of the run: the run goes.
    page.get_by_role("checkbox", name="LoRA 2 on").uncheck()
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=30_000)
    [job] = fake.jobs.values()
    assert job.input["loras"] == [{"path": "studio-test/ink-dev", "scale": 1.0}]
    page.close()


def test_the_library_holds_a_used_lora_with_its_scale_and_a_click_adds_it_back(browser, app, images, screenshot):
    page = open_app(browser, app, **DESKTOP)
    page.locator("#add-lora").click()
    box = page.get_by_label("LoRA 1", exact=True)
    expect(box).to_be_visible(timeout=30_000)
    box.fill("studio-test/library-ink")
    scale = page.locator("#lora-scale-1 input[type=number]")
    scale.fill("0.7")
    scale.press("Tab")
    page.locator("#reference-1 input[type=file]").set_input_files(str(images["red"]))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.locator("#prompt textarea").fill("ink it")
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=30_000)
    page.get_by_role("button", name="Remove LoRA 1").click()
    expect(page.get_by_label("LoRA 1", exact=True)).to_have_count(0, timeout=30_000)

    page.get_by_role("button", name=re.compile("^LoRA library")).click()
    tile = page.locator("#lora-library").get_by_text("library-ink · 0.7 · History")
    expect(tile).to_be_visible(timeout=30_000)
    screenshot(page)
    tile.click()
    expect(page.get_by_label("LoRA 1", exact=True)).to_have_value("studio-test/library-ink", timeout=30_000)
    expect(page.locator("#lora-scale-1 input[type=number]")).to_have_value("0.7")
    page.close()
