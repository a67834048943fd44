"""In Chromium: a picture dragged from another site onto an image slot. The browser's drag carries
its address, not a file; the server fetches it as it fetches an API caller's image URL (https, a
public address, an upload's limits) and the page puts it into the slot it was dropped on. What is
not a picture, or not at a public https address, is refused saying why, and the slot keeps its own.
A local TLS server stands for the other site (tests/helpers/stand_ins/public_name).
"""

from __future__ import annotations

import io

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.helpers.api import sent_image
from tests.helpers.app import launch_app, stop_app
from tests.helpers.browser import DROP_ADDRESS, ERROR_PILL, open_app
from tests.helpers.tls_site import Site

SKY = (30, 140, 200)

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    server = Site(tmp_path_factory.mktemp("picture-site"), name="pictures.test")
    picture = io.BytesIO()
    Image.new("RGB", (320, 240), SKY).save(picture, format="PNG")
    # A picture behind an address that does not say its format, as image hosts' often do not.
    server.files = {"/render?id=3": picture.getvalue(), "/gallery.html": b"<!doctype html><p>a gallery</p>"}
    yield server
    server.close()


@pytest.fixture(scope="module")
def drop_app(fake, site, tmp_path_factory):
    launched = launch_app(tmp_path_factory.mktemp("drop-app"), fake, **site.app_env())
    yield launched
    stop_app(launched)


def test_a_picture_dragged_from_another_site_goes_into_the_slot_it_was_dropped_on(
        browser, drop_app, site, fake, images, screenshot):
    page = open_app(browser, drop_app)
    page.locator("#reference-1 input[type=file]").set_input_files(str(images["red"]))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.evaluate(DROP_ADDRESS, ["#reference-2", "https://pictures.test/render?id=3"])
    expect(page.locator("#reference-2 img")).to_be_visible(timeout=30_000)
    expect(page.locator("#image-note")).to_have_count(0)
    screenshot(page, "fetched")

    # A page, not a picture; an http address; an address on the server's own network: each refused
    # saying why, and image 2 keeps the picture it holds.
    held = page.locator("#reference-2 img").get_attribute("src")
    toasts = page.locator(".toast-body")
    for address, why in (("https://pictures.test/gallery.html", "image 2: https://pictures.test/gallery.html is "
                          "not a picture (PNG, JPEG, WebP, AVIF, GIF (still), BMP or TIFF are taken)"),
                         ("http://pictures.test/render?id=3", "only https:// URLs are read"),
                         ("https://10.0.0.8/render.png", "only public addresses are fetched")):
        page.evaluate(DROP_ADDRESS, ["#reference-2 img", address])
        expect(toasts.filter(has_text=why)).to_be_visible(timeout=30_000)
        # The note under the slots names the slot and the site (the toast may name only the address).
        site_name = address.split("/")[2]
        expect(page.locator("#image-note")).to_contain_text(
            f"Image 2: the picture from {site_name} could not be fetched")
    page.wait_for_timeout(1000)
    expect(page.locator("#reference-2 img")).to_have_attribute("src", held)
    expect(page.locator("#reference-3 img")).to_have_count(0)
    screenshot(page, "refused")

    page.locator("#prompt textarea").fill("put the sky in it")
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    # No red "Error" on anything shown (the refused fetches' are on the page's hidden parts).
    expect(page.locator(f"{ERROR_PILL}:visible")).to_have_count(0)
    [job] = fake.jobs.values()
    first, second = (sent_image(url, fake).convert("RGB") for url in job.input["image_urls"])
    assert first.size == (640, 480) and second.size == (320, 240)
    assert second.getpixel((10, 10)) == SKY
    page.close()
