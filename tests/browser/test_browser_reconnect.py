"""A page whose connection to the server breaks (the server restarts, a phone loses its network):
Gradio reloads it once it can reach the server again, and the form the visitor was filling in
comes back, images included (ui/draft.py, assets/draft.js); so it does in a tab the browser had
discarded and loads again. A reload the visitor asks for starts afresh."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.helpers.app import VISITOR_KEY, launch_app, stop_app

LOST = "Connection to the server was lost"
RESTORED = "the form is as you left it"
# Everything this tab keeps of its form: sessionStorage, and the names of IndexedDB's records.
KEPT = """async () => {
  const session = Object.keys(sessionStorage).map((k) => k + "=" + sessionStorage.getItem(k)).join("\\n");
  const db = await new Promise((done) => {
    const r = indexedDB.open("studio-draft", 1); r.onsuccess = () => done(r.result); });
  const keys = await new Promise((done) => {
    const r = db.transaction("images").objectStore("images").getAllKeys(); r.onsuccess = () => done(r.result); });
  db.close();
  return session + "\\n" + keys.join("\\n");
}"""


def fill_form(page, images) -> None:
    """Two images, an instruction, a LoRA and 12 steps: what a designer would hate to lose."""
    for slot, image in ((1, images["red"]), (2, images["blue"])):
        page.locator(f"#reference-{slot} input[type=file]").set_input_files(str(image))
        expect(page.locator(f"#reference-{slot} img")).to_be_visible(timeout=15_000)
    page.locator("#prompt textarea").fill("a long instruction, half written")
    page.locator("#add-lora").click()
    lora = page.get_by_label("LoRA 1", exact=True)
    lora.fill("owner/watercolor")
    lora.blur()
    page.get_by_label("number input for Steps").fill("12")
    page.keyboard.press("Tab")


def expect_form_back(page) -> None:
    expect(page.locator("#status")).to_contain_text(RESTORED, timeout=30_000)
    expect(page.locator("#prompt textarea")).to_have_value("a long instruction, half written")
    expect(page.get_by_label("LoRA 1", exact=True)).to_have_value("owner/watercolor", timeout=15_000)
    expect(page.get_by_label("number input for Steps")).to_have_value("12")
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    expect(page.locator("#reference-2 img")).to_be_visible(timeout=15_000)
    expect(page.locator("#reference-3 img")).to_have_count(0)


def network_lost_and_back(context, page) -> None:
    """The network goes (after the pictures are kept, as they come: draft.js), Run is clicked, Gradio
    says the connection is lost; the network comes back and Gradio reloads the page."""
    page.wait_for_timeout(1500)
    context.set_offline(True)
    page.locator("#run-button").click()
    expect(page.locator(".toast-body").filter(has_text=LOST)).to_be_visible(timeout=30_000)
    with page.expect_event("load", timeout=60_000):
        context.set_offline(False)


def test_after_a_server_restart_the_page_gradio_reloads_has_the_form_as_it_was(browser, fake, images, tmp_path,
                                                                                screenshot):
    first = launch_app(tmp_path, fake)
    port = int(first.url.rsplit(":", 1)[1].strip("/"))
    again = None
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(first.url)
        expect(page.locator("#run-button")).to_be_visible(timeout=60_000)
        fill_form(page, images)
        page.locator("#own-key").get_by_text("Use your own fal key").click()
        page.get_by_label("Your fal API key").fill(VISITOR_KEY)
        page.wait_for_timeout(1500)  # the pictures are kept as they come (draft.js)
        stop_app(first)
        page.locator("#run-button").click()  # the server is gone: Gradio says so, and reloads once it is back
        expect(page.locator(".toast-body").filter(has_text=LOST)).to_be_visible(timeout=30_000)
        with page.expect_event("load", timeout=60_000):
            again = launch_app(tmp_path, fake, port=port)
        expect_form_back(page)
        assert VISITOR_KEY not in page.evaluate(KEPT)  # the key was never kept (nor is it back)
        page.locator("#own-key").get_by_text("Use your own fal key").click()
        expect(page.get_by_label("Your fal API key")).to_have_value("")
        screenshot(page)
        page.locator("#run-button").click()
        expect(page.locator("#status")).to_contain_text("Done", timeout=30_000)
        (job,) = fake.jobs.values()
        assert job.input["prompt"] == "a long instruction, half written"
        assert len(job.input["image_urls"]) == 2 and job.input["num_inference_steps"] == 12
        assert [lora["path"] for lora in job.input["loras"]] == ["owner/watercolor"]

        page.reload()  # asked for: a fresh form (History keeps the run)
        expect(page.locator("#history .thumbnail-item")).to_have_count(1, timeout=30_000)
        expect(page.locator("#status")).not_to_contain_text(RESTORED)
        expect(page.locator("#prompt textarea")).to_have_value("")
        expect(page.locator("#reference-1 img")).to_have_count(0)
    finally:
        page.close()
        stop_app(again or first)


def test_a_phone_that_loses_its_network_gets_its_form_back_after_gradios_reload(browser, app, fake, images,
                                                                                 screenshot):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(app.url)
    expect(page.locator("#run-button")).to_be_visible(timeout=60_000)
    fill_form(page, images)
    network_lost_and_back(context, page)
    expect_form_back(page)
    expect(page.locator("#image-note")).to_have_count(0)
    assert not fake.jobs  # the click while offline ran nothing; the form waits for Run
    screenshot(page, full_page=False)
    context.close()


# The browser's word that it discarded this tab (to save memory) and now loads it again: Chromium
# discards tabs only under memory pressure, which cannot be made here, so the page is told so
# (`document.wasDiscarded`) on the load after the test sets this tab's flag; that load is the same
# tab's, with its sessionStorage, as a discarded tab's return is.
DISCARDED_ON_NEXT_LOAD = """if (sessionStorage.getItem("test-discarded") === "1") {
  sessionStorage.removeItem("test-discarded");
  Object.defineProperty(document, "wasDiscarded", {get: () => true});
}"""


def test_a_tab_the_browser_discarded_comes_back_with_its_form(browser, app, fake, images):
    """A phone or a laptop short of memory discards a tab in the background and loads it afresh
    when the visitor comes back to it: the form comes back as after Gradio's reload; a reload the
    visitor asks for, right after, is a fresh form."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(DISCARDED_ON_NEXT_LOAD)
    page = context.new_page()
    page.goto(app.url)
    expect(page.locator("#run-button")).to_be_visible(timeout=60_000)
    fill_form(page, images)
    page.wait_for_timeout(1500)  # the pictures are kept as they come (draft.js)
    page.evaluate("sessionStorage.setItem('test-discarded', '1')")
    page.reload()
    expect_form_back(page)
    assert not fake.jobs
    page.reload()  # asked for: a fresh form
    expect(page.locator("#run-button")).to_be_visible(timeout=60_000)
    page.wait_for_timeout(1500)  # a restore would have begun
    expect(page.locator("#status")).not_to_contain_text(RESTORED)
    expect(page.locator("#prompt textarea")).to_have_value("")
    expect(page.locator("#reference-1 img")).to_have_count(0)
    context.close()


def test_a_draft_a_stranger_writes_is_checked_like_any_restored_setting(browser, app, fake):
    """The draft is the browser's to write: what the form would refuse is left as a fresh page has
    it and named, an image the tab never kept stays out; nothing runs."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script("""sessionStorage.setItem("studio-draft-wanted", "1");
      sessionStorage.setItem("studio-draft", JSON.stringify({form: {prompt: "kept", num_inference_steps: 999,
        backend: "someone-elses", loras: [{path: "owner/style", scale: 40, enabled: true}]},
        images: ["/gradio_api/file=/etc/passwd"]}));""")
    page = context.new_page()
    page.goto(app.url)
    status = page.locator("#status")
    expect(status).to_contain_text(RESTORED, timeout=60_000)
    expect(status).to_contain_text(re.compile(r"Steps: .*50"))
    expect(status).to_contain_text("this server does not offer it")
    expect(page.locator("#prompt textarea")).to_have_value("kept")
    expect(page.get_by_label("number input for Steps")).to_have_value("28")
    expect(page.locator("#image-note")).to_contain_text("Image 1 could not be brought back")
    expect(page.locator("#reference-1 img")).to_have_count(0)
    assert not fake.jobs
    context.close()


def test_a_local_form_gets_all_four_images_back(browser, local_app, images):
    """Images 4-6 are shown once the local backend is chosen: after the reload they come back too,
    in their order (the restored settings choose the backend first)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(local_app.url)
    expect(page.locator("#run-button")).to_be_visible(timeout=60_000)
    page.get_by_label("this machine's GPU (local)").check()
    order = [images["red"], images["blue"], images["blue"], images["red"]]
    for slot, image in enumerate(order, start=1):
        page.locator(f"#reference-{slot} input[type=file]").set_input_files(str(image))
        expect(page.locator(f"#reference-{slot} img")).to_be_visible(timeout=15_000)
    page.locator("#prompt textarea").fill("four of them")
    network_lost_and_back(context, page)
    expect(page.locator("#status")).to_contain_text(RESTORED, timeout=30_000)
    expect(page.get_by_label("this machine's GPU (local)")).to_be_checked()
    for slot in (1, 2, 3, 4):
        expect(page.locator(f"#reference-{slot} img")).to_be_visible(timeout=20_000)
    expect(page.locator("#reference-5 img")).to_have_count(0)
    names = [page.locator(f"#reference-{slot} img").get_attribute("src") for slot in (1, 2, 3, 4)]
    assert [name.rsplit(".", 1)[-1] for name in names] == ["png", "jpg", "jpg", "png"], names
    context.close()
