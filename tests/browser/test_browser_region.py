"""In Chromium: a region painted on image 1 in the editor reaches the backend, and the result
is image 1 pixel for pixel outside the painted area (beyond the feather); restored from History
or from the result's PNG, the run brings its mask back."""

from __future__ import annotations

import io
import re
import time

import numpy as np
from PIL import Image
from playwright.sync_api import expect


def wait_for_the_picture(canvas, timeout: float = 30.0) -> None:
    """As a person does, wait until the editor shows image 1 (noise) before painting: on a busy
    machine the canvas is there, blank, a while before its picture, and the editor starts its
    layers afresh when the picture arrives (strokes painted before it are gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shot = np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("L"), dtype=float)
        if shot.std() > 30:  # the noise picture; the empty canvas is white
            return
        time.sleep(0.2)
    raise AssertionError("the region editor never showed image 1")


def canvas_gray(canvas) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("L"), dtype=float)


def stroke_shows(canvas, before: np.ndarray) -> bool:
    """The middle of the canvas, where the test paints across the noise picture, is one flat colour
    (the brush's) where it was noise before painting."""
    now = canvas_gray(canvas)
    if now.shape != before.shape:
        return False
    rows, cols = now.shape
    middle = (slice(int(rows * 0.48), int(rows * 0.52)), slice(int(cols * 0.45), int(cols * 0.55)))
    return float(now[middle].std()) < float(before[middle].std()) / 3


def paint_across(page, canvas) -> None:
    """A brush stroke across the middle of the picture, painted again until it shows (as a person
    does: a busy machine can miss one)."""
    page.locator("#region-editor").get_by_role("button", name=re.compile("^Brush")).first.click()
    before, box = canvas_gray(canvas), canvas.bounding_box()
    for _try in range(3):
        page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2, steps=10)
        page.mouse.up()
        page.wait_for_timeout(1000)
        if stroke_shows(canvas, before):
            return
    raise AssertionError("the editor never showed the stroke")


def painted_run_ready(browser, app, tmp_path, seed: int):
    """A page with a noise picture as image 1, a stroke painted across it, "Edit only the painted
    area" ticked and an instruction: one click on Run from a region edit."""
    image_1 = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(image_1)
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(app.url)
    expect(page.locator("#run-button")).to_be_visible(timeout=60_000)
    page.get_by_role("button", name=re.compile("^Edit only a region")).click()
    page.locator("#reference-1 input[type=file]").set_input_files(str(image_1))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    canvas = page.locator("#region-editor canvas").first
    wait_for_the_picture(canvas)
    paint_across(page, canvas)
    page.get_by_label("Edit only the painted area").check()
    page.locator("#prompt textarea").fill("make it blue")
    return page


def test_a_painted_region_is_the_only_part_of_image_1_that_changes(browser, app, fake, tmp_path, screenshot):
    image_1 = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(image_1)
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(app.url)
    expect(page.locator("#run-button")).to_be_visible(timeout=60_000)
    page.locator("#reference-1 input[type=file]").set_input_files(str(image_1))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.get_by_role("button", name=re.compile("^Edit only a region")).click()
    canvas = page.locator("#region-editor canvas").first
    expect(canvas).to_be_visible(timeout=30_000)
    wait_for_the_picture(canvas)
    page.locator("#region-editor").get_by_role("button", name=re.compile("^Brush")).first.click()
    page.wait_for_timeout(500)  # the panel's opening has read the editor once
    uploads = []  # what the page sends: the editor's picture goes up each time the editor is read
    page.on("request", lambda request: uploads.append(request.url) if "/upload" in request.url else None)
    box = canvas.bounding_box()
    # A stroke across the middle of the picture (the picture is centred in the canvas).
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.45, y)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(box["x"] + box["width"] * (0.45 + step * 0.01), y, steps=2)
    page.mouse.up()
    # The stroke undone, the run has nothing painted: refused, naming the mask; redone, it runs.
    editor = page.locator("#region-editor")
    editor.get_by_role("button", name="Undo", exact=True).click()
    page.get_by_label("Edit only the painted area").check()
    feather = page.locator("#mask-feather input[type=number]")
    feather.fill("8")
    feather.press("Tab")
    page.locator("#prompt textarea").fill("make it blue")
    assert not uploads  # painting, undoing, ticking: the editor is read only when a run needs it
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("nothing is painted", timeout=60_000)
    assert not fake.jobs
    editor.get_by_role("button", name="Redo", exact=True).click()
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    screenshot(page)
    copies = len(uploads)
    assert 0 < copies <= 2 * 3, uploads  # once for each run (picture, composite, strokes), not per stroke

    [job] = fake.jobs.values()
    width, height = job.input["image_size"]["width"], job.input["image_size"]["height"]
    assert (width, height) != (640, 480)  # fal was sent the crop around the stroke, not image 1
    saved = sorted(app.outputs.rglob("image-1.png"), key=lambda p: p.stat().st_mtime)[-1]
    mask = np.asarray(Image.open(saved.parent / "mask.png")) > 0
    assert mask.any() and mask.mean() < 0.2  # the stroke, not the picture
    rows, cols = np.nonzero(mask)
    near = np.zeros(mask.shape, dtype=bool)
    near[max(rows.min() - 8, 0):rows.max() + 9, max(cols.min() - 8, 0):cols.max() + 9] = True
    got = np.asarray(Image.open(saved).convert("RGB"))
    original = np.asarray(Image.open(image_1).convert("RGB"))
    assert got.shape == original.shape and np.array_equal(got[~near], original[~near])
    assert np.any(got[mask] != original[mask], axis=-1).mean() > 0.9

    # Restored from History after a reload, the run brings its mask back: shown tinted on image 1,
    # the box ticked, and the same crop goes to fal again.
    page.reload()
    uploads.clear()
    expect(page.locator("#history img").first).to_be_visible(timeout=30_000)
    page.locator("#history .thumbnail-item").first.click()
    page.locator("#history-restore").click()
    expect(page.get_by_label("Edit only the painted area")).to_be_checked(timeout=30_000)  # its panel opened
    expect(page.locator("#region-editor canvas").first).to_be_visible(timeout=30_000)
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    first, again = sorted(fake.jobs.values(), key=lambda job: job.created)
    assert again.input["image_size"] == first.input["image_size"]
    # Restored and run again, nothing painted: the editor's picture went up at most once (when its
    # panel opened), not at every status message of every event (about 250 uploads, a minute).
    assert len(uploads) <= 3, uploads
    screenshot(page, "restored")
    page.close()

    # From the result's PNG on a fresh page (another browser: no History): Apply, then image 1
    # added again brings the mask back, and the same crop goes to fal.
    fresh = browser.new_page(viewport={"width": 1440, "height": 1000})
    fresh.goto(app.url)
    expect(fresh.locator("#run-button")).to_be_visible(timeout=60_000)
    fresh.get_by_text("Restore settings from a PNG made here").click()
    fresh.locator("#recipe-drop input[type=file]").set_input_files(str(saved))
    expect(fresh.locator("#recipe-preview")).to_contain_text("the mask is in this PNG", timeout=10_000)
    fresh.locator("#recipe-apply").click()
    expect(fresh.locator("#status")).to_contain_text("Its mask comes back with image 1", timeout=10_000)
    fresh.locator("#reference-1 input[type=file]").set_input_files(str(image_1))
    expect(fresh.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    expect(fresh.get_by_label("Edit only the painted area")).to_be_checked(timeout=30_000)
    fresh.wait_for_timeout(500)  # the upload's own events (the mask comes with image 1)
    fresh.locator("#run-button").click()
    expect(fresh.locator("#status")).to_contain_text("Done", timeout=60_000)
    latest = max(fake.jobs.values(), key=lambda job: job.created)
    assert len(fake.jobs) == 3 and latest.input["image_size"] == first.input["image_size"]
    screenshot(fresh, "from-png")
    fresh.close()


def test_strokes_painted_before_the_servers_copy_of_image_1_comes_back_are_kept(browser, app, fake, tmp_path):
    """On a busy server the answers to an upload (its check, image 1 set again where it moved)
    come back after a person has begun to paint: the editor keeps the strokes (it is the same
    picture), and the run edits that area."""
    image_1 = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(4).integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(image_1)
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(app.url)
    expect(page.locator("#run-button")).to_be_visible(timeout=60_000)
    page.get_by_role("button", name=re.compile("^Edit only a region")).click()
    held: list = []  # the page's requests to the server's queue, held back while painting: a slow server
    holding = [True]
    page.route("**/gradio_api/queue/join*", lambda route: held.append(route) if holding[0] else route.continue_())
    page.locator("#reference-1 input[type=file]").set_input_files(str(image_1))
    canvas = page.locator("#region-editor canvas").first
    expect(canvas).to_be_visible(timeout=30_000)
    wait_for_the_picture(canvas)
    before = canvas_gray(canvas)
    paint_across(page, canvas)
    assert held  # the upload's check among them
    holding[0] = False
    for route in held:
        route.continue_()
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.wait_for_timeout(2000)  # the upload's answers are back
    assert stroke_shows(canvas, before), "the server's answers wiped the stroke"
    page.get_by_label("Edit only the painted area").check()
    page.locator("#prompt textarea").fill("make it blue")
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    [job] = fake.jobs.values()
    assert (job.input["image_size"]["width"], job.input["image_size"]["height"]) != (640, 480)  # the crop
    page.close()


def test_a_painted_area_that_takes_long_to_send_still_makes_the_run(browser, app, fake, tmp_path, screenshot):
    """On a slow uplink the painted area (the editor's picture, sent when Run is clicked) takes
    longer than a few seconds to reach the server: the run waits for it, says so under the run
    bar, and then edits that area (it went without it after 5 s, refused as "nothing is painted")."""
    page = painted_run_ready(browser, app, tmp_path, seed=5)
    held: list = []  # the editor's uploads, held back: a slow uplink
    holding = [True]
    page.route("**/gradio_api/upload*", lambda route: held.append(route) if holding[0] else route.continue_())
    page.locator("#run-button").click()
    expect(page.locator("#region-note")).to_contain_text("Sending the painted area", timeout=10_000)
    page.wait_for_timeout(7_000)  # longer than the old wait
    assert held and not fake.jobs
    expect(page.locator("#status")).not_to_contain_text("nothing is painted")
    screenshot(page, "waiting", full_page=False)
    holding[0] = False
    for route in held:
        route.continue_()
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    expect(page.locator("#region-note")).to_have_count(0)
    [job] = fake.jobs.values()
    assert (job.input["image_size"]["width"], job.input["image_size"]["height"]) != (640, 480)  # the crop
    page.close()


def test_a_painted_area_the_server_refuses_to_take_says_why_and_runs_nothing(browser, app, fake, tmp_path,
                                                                            screenshot):
    """The server refuses the painted area's upload (past the visitor's upload share): Run says so
    under the run bar at once (it waited, silent, then ran and was refused as "nothing is painted"),
    runs nothing, and the next Run sends the strokes again and runs."""
    page = painted_run_ready(browser, app, tmp_path, seed=6)
    refusal = "This upload would take you past what one visitor may upload"
    page.route("**/gradio_api/upload*", lambda route: route.fulfill(status=429, content_type="text/plain",
                                                                   body=refusal))
    page.locator("#run-button").click()
    note = page.locator("#region-note")
    expect(note).to_contain_text(f"could not be sent (HTTP 429: {refusal})", timeout=10_000)
    expect(note).to_have_attribute("role", "alert")
    page.wait_for_timeout(1_000)
    assert not fake.jobs
    expect(page.locator("#status")).not_to_contain_text("nothing is painted")
    screenshot(page, "refused", full_page=False)
    page.unroute("**/gradio_api/upload*")
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    expect(note).to_have_count(0)
    [job] = fake.jobs.values()
    assert (job.input["image_size"]["width"], job.input["image_size"]["height"]) != (640, 480)  # the crop
    page.close()


def test_while_the_painted_area_is_sent_a_second_run_click_is_one_run_and_cancel_or_escape_runs_nothing(
    browser, app, fake, tmp_path, screenshot,
):
    """While the painted area is on its way (a slow uplink) the run has not started, so Stop has
    nothing to stop: the person could only wait, up to a minute, and a second click on Run made a
    second run. Now a second click is the same run, and the note's Cancel, or Escape, drops it."""
    page = painted_run_ready(browser, app, tmp_path, seed=7)
    held: list = []  # the editor's uploads, held back: a slow uplink
    holding = [True]
    page.route("**/gradio_api/upload*", lambda route: held.append(route) if holding[0] else route.continue_())

    def release() -> None:
        holding[0] = False
        while held:
            held.pop().continue_()

    # Run clicked twice while the area is sent: one run.
    page.locator("#run-button").click()
    expect(page.locator("#region-note")).to_contain_text("Sending the painted area", timeout=10_000)
    page.locator("#run-button").click()
    release()
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    page.wait_for_timeout(3_000)  # a second run would have reached the fake by now
    assert len(fake.jobs) == 1

    # Painted again, Run, then the note's Cancel (or Escape): nothing runs, even once the area
    # has arrived.
    canvas = page.locator("#region-editor canvas").first
    for row, cancel in ((0.3, "button"), (0.7, "Escape")):
        holding[0] = True
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * row)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * row, steps=10)
        page.mouse.up()
        page.locator("#run-button").click()
        note = page.locator("#region-note")
        expect(note).to_contain_text("Sending the painted area", timeout=10_000)
        if cancel == "button":
            note.get_by_role("button", name="Cancel").click()
        else:
            page.keyboard.press("Escape")
        expect(note).to_contain_text("Cancelled before the run started: nothing was run.")
        screenshot(page, f"cancelled-{cancel}", full_page=False)
        release()
        page.wait_for_timeout(3_000)
        assert len(fake.jobs) == 1, cancel

    # The next Run runs, with the area painted last.
    page.locator("#run-button").click()
    assert fake.wait_for(lambda: len(fake.jobs) == 2, timeout=60)
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    expect(page.locator("#region-note")).to_have_count(0)
    page.close()
