"""Bad input through the page, in Chromium: the message a person sees names the field (or
the image) and the limit, nothing reaches fal, and the next run from the same page works."""

from __future__ import annotations

import os
import time

import httpx
from playwright.sync_api import expect

from tests.helpers.app import launch_app, stop_app
from tests.helpers.browser import choose_file, drop_zone, intercept_file_choosers

ERROR_TOAST = ".toast-body"


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    intercept_file_choosers(page)
    page.goto(url)
    expect(page.locator("#run-button")).to_be_visible(timeout=60_000)
    return page


def run_and_expect_error(page, message: str) -> None:
    page.locator("#run-button").click()
    expect(page.locator(ERROR_TOAST).filter(has_text=message)).to_be_visible(timeout=60_000)


def test_a_file_that_is_not_an_image_and_a_prompt_too_long_are_named(browser, app, fake, images, tmp_path, screenshot):
    page = open_page(browser, app.url)
    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"this is a text file with an image's name")
    with page.expect_file_chooser() as chooser:
        page.locator("#reference-1").get_by_role("button", name=drop_zone(1), exact=True).click()
    chooser.value.set_files(str(bad))
    # Checked as it is uploaded (ui/field_checks.py): named, and taken out of the slot.
    expect(page.locator(ERROR_TOAST).filter(has_text="Image 1: is not an image file this app can read")).to_be_visible(
        timeout=60_000)
    expect(page.locator("#reference-1 img")).to_have_count(0)
    screenshot(page, "not-an-image")
    assert not fake.jobs and not fake.uploads

    # A real image; now the instruction is too long.
    choose_file(page, 1, images["red"])
    page.locator("#prompt textarea").fill("x" * 6000)
    run_and_expect_error(page, "Instruction: must be at most 5000 characters (got 6000)")
    assert not fake.jobs

    # Fixed, the same page runs.
    page.locator("#prompt textarea").fill("make it blue")
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    assert len(fake.jobs) == 1
    screenshot(page)
    page.close()


def test_a_lora_path_outside_the_lora_folder_is_named_on_the_local_page(browser, local_app, images, screenshot):
    page = open_page(browser, local_app.url)
    choose_file(page, 1, images["red"])
    page.locator("#prompt textarea").fill("make it blue")
    page.locator("#add-lora").click()
    expect(page.get_by_label("LoRA 1", exact=True)).to_be_visible(timeout=30_000)
    page.get_by_label("LoRA 1", exact=True).fill("../../etc/secrets.safetensors")
    page.get_by_label("LoRA 1", exact=True).blur()
    run_and_expect_error(page, "is outside the LoRA folder")
    expect(page.locator(ERROR_TOAST).first).to_contain_text("LoRA 1")
    screenshot(page)
    page.close()


def settled_size(folder) -> int:
    """The folder's size once it stopped changing (two reads a second apart agree)."""
    def size() -> int:
        return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    before, now = -1, size()
    while now != before:
        time.sleep(1)
        before, now = now, size()
    return now


def test_an_upload_when_the_servers_cache_is_full_says_so_and_the_page_goes_on(browser, fake, images, tmp_path):
    """A stranger filled Gradio's cache to its cap (STUDIO_CACHE_MAX_MB) a minute ago: a visitor's
    upload is refused with a message that says why and for how long, and the page stays usable."""
    cache = tmp_path / "gradio-cache"
    app = launch_app(tmp_path, fake, GRADIO_TEMP_DIR=str(cache), STUDIO_CACHE_MAX_MB="100")
    try:
        page = open_page(browser, app.url)
        used = settled_size(cache)  # with what the page's first visit wrote there
        half = (100 * 2**20 - used - 1_000) // 2  # leaves less room than image 1 (2 KB) needs
        filler = [("files", (f"{n}.bin", os.urandom(half))) for n in range(2)]  # 64 MB a file at most
        assert httpx.post(app.url + "gradio_api/upload", files=filler, timeout=120).status_code == 200
        page.locator("#reference-1 input[type=file]").set_input_files(str(images["red"]))
        expect(page.locator(ERROR_TOAST).filter(
            has_text="no room for uploads right now: its cache is at its 100 MB cap")).to_be_visible(timeout=30_000)
        expect(page.locator("#reference-1 img")).to_have_count(0)
        page.locator("#prompt textarea").fill("make it glow")
        run_and_expect_error(page, "add at least one image")  # the page still answers
        assert not fake.jobs
        page.close()
    finally:
        stop_app(app)
