"""The page's upload areas, driven as a person does in Chromium (Playwright)."""

from __future__ import annotations

from playwright.sync_api import expect


def open_app(browser, app, width: int = 1400, height: int = 1400, **options):
    """A new page (a browser context of its own: no History, no queue) on the launched app, once
    its form is there. `options` go to Playwright's new_page (accept_downloads, color_scheme...)."""
    page = browser.new_page(viewport={"width": width, "height": height}, **options)
    page.goto(app.url)
    expect(page.locator("#run-button")).to_be_visible(timeout=60_000)
    return page


def drop_zone(slot: int) -> str:
    """The name of image `slot`'s empty upload area (the page names it for its slot)."""
    return f"Upload image {slot}"


def intercept_file_choosers(page) -> None:
    """Have Playwright catch this page's file choosers from now on. Playwright only starts to
    intercept them once a "filechooser" listener exists, and does not wait for the browser to
    agree: a chooser opened at once (a key press) could still go to the real dialog, unseen."""
    page.on("filechooser", lambda chooser: None)  # the test's expect_file_chooser() answers it


def choose_file(page, slot: int, path) -> None:
    """Click the upload area of image `slot` and pick `path` in the file chooser it opens."""
    with page.expect_file_chooser() as chooser:
        page.locator(f"#reference-{slot}").get_by_role("button", name=drop_zone(slot), exact=True).click()
    assert not chooser.value.is_multiple()
    chooser.value.set_files(str(path))
    expect(page.locator(f"#reference-{slot} img")).to_be_visible(timeout=30_000)


def start_run(page, image, prompt="make it glow", images=1):
    """Image 1, the instruction (and the number of images), then Run: what the run says is the caller's."""
    page.locator("#reference-1 input[type=file]").set_input_files(str(image))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.locator("#prompt textarea").fill(prompt)
    if images > 1:
        page.get_by_label("number input for Images").fill(str(images))
        page.keyboard.press("Tab")
    page.locator("#run-button").click()


def fill_local_form(page, image, prompt: str, **numbers: int) -> None:
    """The local backend, image 1, the instruction, and number fields by label ("Steps": 50, as
    `Steps=50`); what runs is the caller's."""
    page.get_by_label("this machine's GPU (local)").check()
    page.locator("#reference-1 input[type=file]").set_input_files(str(image))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=15_000)
    page.locator("#prompt textarea").fill(prompt)
    for label, value in numbers.items():
        page.get_by_label(f"number input for {label}").fill(str(value))
        page.keyboard.press("Tab")


def open_panel(page, title: str) -> None:
    """Open a closed panel for the first time, as a person does, and wait until Gradio has settled
    it. On a panel's first opening Gradio mounts its fields, then, a frame after they are loaded,
    writes each field's starting value into it again (js/core/src/init.svelte.ts,
    render_previously_invisible_children): what was typed in between is lost. No person types
    that fast after a click; a test does (a sweep of "1, 2, 3" ran the default four cells)."""
    page.get_by_text(title, exact=True).click()
    page.wait_for_load_state()
    for _ in range(3):  # a frame each: the components' loading, Gradio's tick, then its rewrite
        page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done()))")
    page.wait_for_timeout(300)


def run_once(page, image, prompt="make it glow", images=1):
    start_run(page, image, prompt, images)
    expect(page.locator("#status")).to_contain_text("Done", timeout=30_000)


# The page reloads the moment its status says `text` (again, if it says so now): in the same task
# as that change of the DOM, before whatever the page does after it (a person's reload comes some
# hundred ms later).
RELOAD_AT = """(text) => {
  const status = document.querySelector("#status");
  let cleared = !status.textContent.includes(text);
  new MutationObserver((_, observer) => {
    if (!status.textContent.includes(text)) cleared = true;
    if (!cleared || !status.textContent.includes(text)) return;
    observer.disconnect();
    location.reload();
  }).observe(status, {subtree: true, childList: true, characterData: true});
}"""


def reload_the_moment_status_says(page, text: str, click) -> None:
    """`click()` (a Run), and the page reloaded the moment its status says `text`; back once loaded."""
    page.evaluate(RELOAD_AT, text)
    with page.expect_navigation(timeout=60_000):
        click()
    expect(page.locator("#run-button")).to_be_visible(timeout=60_000)


def loaded_width(image, tries: int = 10) -> int:
    """The width of the picture an <img> shows, once it is loaded (0: it cannot be shown). Right
    after the status says Done the gallery's <img> is there but its file may still be loading.
    A decode is refused when the <img> gets another picture meanwhile (the next preview of a run,
    in CI once): the locator is read again for the picture now shown, `tries` times at most."""
    for _ in range(tries):
        width = image.evaluate("img => img.decode().then(() => img.naturalWidth, () => 0)")
        if width:
            return width
    return 0


# Gradio's status tracker shows this red "Error" pill on each output of an event that raised.
ERROR_PILL = "[data-testid=status-tracker] .error"


def no_error_pill(page) -> None:
    page.wait_for_timeout(500)  # an event's pills would appear as it ends
    expect(page.locator(ERROR_PILL)).to_have_count(0)


# Every red "Error" pill shown from now on, by the id of the component it is on, however briefly: a
# MutationObserver looks as each change is made (Gradio showed one for ~0.1 s after a Stop).
WATCH_ERROR_PILLS = """() => {
  window.__pillsSeen = [];
  const look = () => {
    for (const pill of document.querySelectorAll("[data-testid=status-tracker] .error")) {
      if (pill.checkVisibility()) window.__pillsSeen.push(pill.closest("[id]")?.id || "(no id)");
    }
  };
  new MutationObserver(look).observe(document.body, {subtree: true, childList: true, characterData: true,
                                                    attributes: true});
}"""


def watch_error_pills(page) -> None:
    page.evaluate(WATCH_ERROR_PILLS)


def error_pills_seen(page) -> list[str]:
    """The components an "Error" pill was shown on since watch_error_pills (sorted, once each)."""
    return sorted(set(page.evaluate("window.__pillsSeen")))


# Where a gallery's picture is drawn: the part of it inside its <img> (object-fit "cover" draws
# past the box and clips; "contain" draws inside it) and the part of that the gallery's frame
# shows, and whether the frame's label lies over it. A picture shown whole has both equal to the
# picture as drawn, and no label over it.
DRAWN = """img => {
  const box = img.getBoundingClientRect(), fit = getComputedStyle(img).objectFit;
  const scale = (fit === 'cover' ? Math.max : Math.min)(box.width / img.naturalWidth, box.height / img.naturalHeight);
  const w = img.naturalWidth * scale, h = img.naturalHeight * scale;
  const frame = img.closest('.grid-wrap').getBoundingClientRect();
  const left = box.left + (box.width - w) / 2, top = box.top + (box.height - h) / 2;
  const label = img.closest('.block').querySelector('[data-testid=block-label]').getBoundingClientRect();
  const underLabel = label.bottom > top + 1 && label.right > left && label.left < left + w;
  return {w, h, shownW: Math.min(w, box.width, frame.right - left), shownH: Math.min(h, box.height, frame.bottom - top),
          frameH: frame.height, natural: [img.naturalWidth, img.naturalHeight], underLabel};
}"""

# What lies over the compare slider's picture (the "before" image, drawn "contain"): its frame's
# label and its buttons (reset, full screen, download), each named if any part covers the picture,
# "label over buttons" if the label runs under them, "label cut" if its words run past its end.
COVERING_COMPARE = """img => {
  const box = img.getBoundingClientRect();
  const scale = Math.min(box.width / img.naturalWidth, box.height / img.naturalHeight);
  const w = img.naturalWidth * scale, h = img.naturalHeight * scale;
  const left = box.left + (box.width - w) / 2, top = box.top + (box.height - h) / 2;
  const block = img.closest('.block');
  const over = [['label', '[data-testid=block-label]'], ['buttons', '.icon-button-wrapper']].filter(([, css]) => {
    const r = block.querySelector(css).getBoundingClientRect();
    return r.width > 0 && r.bottom > top + 1 && r.top < top + h && r.right > left && r.left < left + w;
  });
  const labelled = block.querySelector('[data-testid=block-label]'), label = labelled.getBoundingClientRect();
  const buttons = block.querySelector('.icon-button-wrapper').getBoundingClientRect();
  const crossed = buttons.width > 0 && label.right > buttons.left && label.bottom > buttons.top
    && label.top < buttons.bottom;
  const cut = labelled.scrollWidth > labelled.clientWidth + 1;
  return over.map(([name]) => name).concat(crossed ? ['label over buttons'] : [], cut ? ['label cut'] : []);
}"""


# A drop of a picture from another site: the browser's drag carries its address, not a file.
DROP_ADDRESS = """([selector, address]) => {
  const transfer = new DataTransfer();
  transfer.setData('text/uri-list', address);
  const target = document.querySelector(selector);
  for (const type of ['dragenter', 'dragover', 'drop']) {
    target.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true}));
  }
}"""
