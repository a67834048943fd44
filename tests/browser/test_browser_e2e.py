"""The whole flow in a real Chromium, the way a person does it: two images through the file
chooser, two LoRAs in the editor, Run, an intermediate image and then the final one, then a
second run stopped half way. Screenshots go to tests/screenshots/ (conftest's `screenshot`).
"""

from __future__ import annotations

import base64
import io

from PIL import Image
from playwright.sync_api import expect

from tests.helpers.browser import choose_file, intercept_file_choosers, loaded_width

# Written into the page before it loads: every state the status line and the results went
# through, so the test can tell what the person saw, and in which order, after the fact.
RECORD_STATES = """
window.__studioStates = [];
new MutationObserver(() => {
  const status = document.querySelector("#status");
  if (!status) return;
  const state = {
    status: status.innerText.trim(),
    images: document.querySelectorAll("#results img").length,
    captions: [...document.querySelectorAll("#results .caption-label")].map((c) => c.innerText.trim()),
  };
  const seen = window.__studioStates;
  if (!seen.length || JSON.stringify(seen[seen.length - 1]) !== JSON.stringify(state)) seen.push(state);
}).observe(document, {childList: true, subtree: true, characterData: true});
"""


def sent_image_sizes(fake, job) -> list[tuple[int, int]]:
    """The sizes of the images a fal request carried, in the order it carried them."""
    sizes = []
    for url in job.input["image_urls"]:
        if url.startswith("data:"):
            data = base64.b64decode(url.split(",", 1)[1])
        else:  # uploaded to the fake's CDN first
            data = fake.uploads[url.rsplit("/", 1)[1]]
        sizes.append(Image.open(io.BytesIO(data)).size)
    return sizes


def test_two_images_two_loras_preview_then_final_then_stop(browser, app, fake, images, screenshot):
    # Three intermediate images a few seconds apart, then the result.
    fake.steps, fake.job_seconds = 3, 9
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.add_init_script(RECORD_STATES)
    intercept_file_choosers(page)
    page.goto(app.url)

    # Two references through the file chooser: red (640x480) as image 1, blue (512x512) as image 2.
    choose_file(page, 1, images["red"])
    choose_file(page, 2, images["blue"])

    # Two LoRAs; the second at scale 0.5.
    page.locator("#add-lora").click()
    expect(page.get_by_label("LoRA 1", exact=True)).to_be_visible(timeout=30_000)
    page.get_by_label("LoRA 1", exact=True).fill("owner/style-a")
    page.locator("#add-lora").click()
    expect(page.get_by_label("LoRA 2", exact=True)).to_be_visible(timeout=30_000)
    expect(page.get_by_label("LoRA 1", exact=True)).to_have_value("owner/style-a")
    page.get_by_label("LoRA 2", exact=True).fill("owner/style-b")
    second_scale = page.locator("#lora-scale-2 input[type=number]")
    second_scale.fill("0.5")
    second_scale.press("Tab")
    expect(second_scale).to_have_value("0.5")

    page.locator("#prompt textarea").fill("combine them in watercolor")
    page.locator("#run-button").click()

    # An intermediate image shows while the run goes on: captioned a preview, smaller than the result.
    expect(page.locator("#status")).to_contain_text("Intermediate result", timeout=60_000)
    preview = page.locator("#results img").first
    expect(preview).to_be_visible()
    preview_width = loaded_width(preview)
    screenshot(page, "preview")

    # Then the final image, captioned, at full size.
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    final = page.locator("#results img")
    expect(final).to_have_count(1)
    expect(page.locator("#results .caption-label")).to_have_text(["image 1"])
    final_width = loaded_width(final.first)
    assert 0 < preview_width < final_width
    screenshot(page, "final")

    # What the page went through, in order: intermediate images (captioned "preview · step i of n"
    # since issue 12, uncaptioned before), then the captioned result.
    states = page.evaluate("window.__studioStates")
    previews = [i for i, s in enumerate(states) if "Intermediate result" in s["status"] and s["images"]
                and s["captions"] and all(c.startswith("preview") for c in s["captions"])]
    finals = [i for i, s in enumerate(states) if "Done" in s["status"] and s["captions"] == ["image 1"]]
    assert previews and finals and previews[0] < finals[0], states

    # fal got both images in slot order and both LoRAs with their scales.
    [job] = fake.jobs.values()
    assert job.state == "COMPLETED"
    assert sent_image_sizes(fake, job) == [(640, 480), (512, 512)]
    assert job.input["loras"] == [{"path": "owner/style-a", "scale": 1.0}, {"path": "owner/style-b", "scale": 0.5}]
    assert job.input["prompt"] == "combine them in watercolor"

    # A second run, stopped after its first intermediate image: the fal job is cancelled.
    fake.steps, fake.job_seconds = 20, 60  # a preview every 3 s; Stop comes long before the end
    page.locator("#prompt textarea").fill("now at night")
    page.locator("#run-button").click()
    assert fake.wait_for(lambda: len(fake.jobs) == 2, timeout=60)
    [second] = [j for j in fake.jobs.values() if j is not job]
    expect(page.locator("#status")).to_contain_text("Intermediate result", timeout=60_000)
    page.locator("#stop-button").click()
    expect(page.locator("#status")).to_contain_text("Stopped", timeout=30_000)
    assert fake.wait_for(lambda: second.cancelled, timeout=30)
    assert second.state == "CANCELLED" and second.output is None
    screenshot(page)
    page.close()
