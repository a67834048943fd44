"""Accessibility in a real Chromium: every control has a name a screen reader can say, and the
main flow (image, instruction, run, stop) works from the keyboard alone, and a focused slider,
checkbox or radio shows that it is.

Names are Chromium's own (its accessibility tree, through the DevTools protocol), so aria-label,
aria-labelledby, <label for> and text content all count as they do for a screen reader.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.helpers.browser import choose_file, drop_zone, intercept_file_choosers

# What a person can operate, by mouse or keyboard. A file input is hidden; its drop zone (a
# button) is what is on screen.
CONTROLS = ", ".join([
    "input:not([type=hidden])", "textarea", "select", "button", "a[href]", "summary", "[contenteditable=true]",
    "[contenteditable='']", "[tabindex]:not([tabindex='-1'])", *(f"[role={role}]" for role in (
        "slider", "button", "checkbox", "radio", "combobox", "textbox", "switch", "tab", "listbox", "option",
        "menuitem", "link", "spinbutton", "searchbox")),
])
TAG_VISIBLE_CONTROLS = """
(selector) => {
  document.querySelectorAll("[data-a11y-audit]").forEach((el) => el.removeAttribute("data-a11y-audit"));
  const found = [];
  for (const el of document.querySelectorAll(selector)) {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (!box.width || !box.height || style.visibility === "hidden" || el.closest("[aria-hidden=true], [inert]")) {
      continue;
    }
    const owner = el.closest("[id]");
    found.push({owner: owner ? owner.id : "", html: el.outerHTML.replace(/\\s+/g, " ").slice(0, 140)});
    el.setAttribute("data-a11y-audit", String(found.length - 1));
  }
  return found;
}
"""
HAS_WORD = re.compile(r"\w")  # "✕" or "⇄" alone says nothing when read out


def nameless_controls(page) -> list[str]:
    """Visible controls whose accessible name is empty or has no letter or digit, described by
    the elem_id around them and the head of their HTML."""
    controls = page.evaluate(TAG_VISIBLE_CONTROLS, CONTROLS)
    assert len(controls) > 10, "the page has not loaded its controls"
    cdp = page.context.new_cdp_session(page)
    try:
        root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        offenders = []
        for index, control in enumerate(controls):
            node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": f'[data-a11y-audit="{index}"]'})
            [ax, *_] = cdp.send("Accessibility.getPartialAXTree",
                                {"nodeId": node["nodeId"], "fetchRelatives": False})["nodes"]
            name = (ax.get("name") or {}).get("value", "")
            if not HAS_WORD.search(name):
                offenders.append(f"#{control['owner'] or '?'} name={name!r}: {control['html']}")
        return offenders
    finally:
        cdp.detach()


# The label Gradio gives a component that was given none: a screen reader says "Radio".
GRADIO_DEFAULT_LABELS = {"Radio", "Textbox", "Dropdown", "Checkbox", "Checkboxgroup", "Slider", "Number", "Image",
                         "Gallery", "File", "Json", "JSON", "Imageslider", "Imageeditor", "Uploadbutton", "Button"}


def generic_names(page) -> list[str]:
    """What the page's accessibility tree names only by a component's type (hidden parts aside)."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    return [f"{(node.get('role') or {}).get('value')} {(node.get('name') or {}).get('value')!r}" for node in nodes
            if not node.get("ignored") and (node.get("name") or {}).get("value") in GRADIO_DEFAULT_LABELS]


def open_studio(browser, app):
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    intercept_file_choosers(page)
    page.goto(app.url)
    expect(page.locator("#run-button")).to_be_visible(timeout=60_000)
    drop = page.locator("#reference-1").get_by_role("button", name=drop_zone(1), exact=True)
    expect(drop).to_be_visible(timeout=60_000)
    return page


def test_every_control_on_the_hosted_page_has_a_name(browser, app, screenshot):
    page = open_studio(browser, app)
    offenders = nameless_controls(page)
    screenshot(page)
    assert not offenders, "controls without a name:\n" + "\n".join(offenders)
    page.close()


def test_every_control_has_a_name_with_advanced_loras_and_results_open(browser, app, fake, images, screenshot):
    page = open_studio(browser, app)
    choose_file(page, 1, images["red"])
    for row in (1, 2):
        page.locator("#add-lora").click()
        expect(page.get_by_label(f"LoRA {row}", exact=True)).to_be_visible(timeout=30_000)
        expect(page.get_by_role("button", name=f"Remove LoRA {row}", exact=True)).to_be_visible()
    # Each row's scale and switch say which row they belong to.
    for row in (1, 2):
        expect(page.get_by_role("slider", name=f"LoRA {row} scale", exact=True)).to_be_visible()
        expect(page.get_by_role("checkbox", name=f"LoRA {row} on", exact=True)).to_be_visible()
    page.locator("#prompt textarea").fill("make it glow")
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    for panel in ("Advanced", "Presets", "Sweep", "Restore settings from a PNG made here", "Sweep results", "Log"):
        page.get_by_role("button", name=re.compile("^" + re.escape(panel))).first.click()
    expect(page.get_by_label("Safety checker")).to_be_visible(timeout=30_000)
    expect(page.locator("#sweep-button")).to_be_visible()
    expect(page.locator("#logs textarea")).to_be_visible()
    page.get_by_label("A / B").check()
    expect(page.locator("#compare-a")).to_be_visible(timeout=30_000)
    expect(page.locator("#compare img")).to_have_count(2, timeout=30_000)
    expect(page.locator("#history img").first).to_be_visible(timeout=30_000)
    offenders = nameless_controls(page)
    screenshot(page)
    assert not offenders, "controls without a name:\n" + "\n".join(offenders)
    assert generic_names(page) == []  # e.g. Compare's choice was read out as "Radio"
    # The LoRA rows' "✕" buttons are named for the row they remove.
    page.locator("#lora-remove-1").click()
    expect(page.get_by_label("LoRA 2", exact=True)).to_be_hidden(timeout=30_000)
    expect(page.get_by_role("button", name="Remove LoRA 1", exact=True)).to_be_visible()
    page.close()


def test_every_control_has_a_name_when_each_visitor_brings_a_key(browser, keyless_app, screenshot):
    page = open_studio(browser, keyless_app)
    expect(page.get_by_label("Your fal API key")).to_be_visible()
    offenders = nameless_controls(page)
    screenshot(page)
    assert not offenders, "controls without a name:\n" + "\n".join(offenders)
    page.close()


# -- the keyboard ------------------------------------------------------------------------------
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return {owner: "", name: "", tag: "BODY"};
  const owner = el.closest("[id]");
  return {owner: owner ? owner.id : "", name: el.getAttribute("aria-label") || el.innerText || "", tag: el.tagName};
}"""


def tab_until(page, wanted, most: int = 200) -> list[dict]:
    """Press Tab until the focused element satisfies `wanted`; returns what was focused on the way."""
    passed = []
    for _ in range(most):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        passed.append(focused)
        if wanted(focused):
            return passed
    raise AssertionError(f"Tab never reached it; focus went through {passed}")


def test_the_main_flow_works_from_the_keyboard(browser, app, fake, images, screenshot):
    page = open_studio(browser, app)
    assert page.evaluate(FOCUSED)["tag"] == "BODY"  # nothing focused yet: the person starts with Tab

    # Tab to image 1's upload area; Enter opens the file chooser.
    tab_until(page, lambda f: f["owner"] == "reference-1" and f["name"] == drop_zone(1))
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(str(images["red"]))
    expect(page.locator("#reference-1 img")).to_be_visible(timeout=30_000)

    # Tab to the instruction, type it, Ctrl+Enter runs.
    tab_until(page, lambda f: f["owner"] == "prompt" and f["tag"] == "TEXTAREA")
    page.keyboard.type("make it glow")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    expect(page.locator("#results img").first).to_be_visible()
    [job] = fake.jobs.values()
    assert job.input["prompt"] == "make it glow"

    # From the instruction, Tab reaches the Run button before the results.
    passed = tab_until(page, lambda f: f["owner"] == "results")
    owners = [f["owner"] for f in passed]
    assert "run-button" in owners and owners.index("run-button") < owners.index("results"), owners

    # A slow run from the keyboard (Ctrl+Enter works wherever the focus is), and Escape stops it:
    # the page says so and the fal job is cancelled.
    fake.job_seconds = 300
    page.keyboard.press("Control+Enter")
    assert fake.wait_for(lambda: len(fake.jobs) == 2, timeout=60)
    [slow] = [j for j in fake.jobs.values() if j is not job]
    expect(page.locator("#status")).not_to_contain_text("Done", timeout=30_000)
    page.keyboard.press("Escape")
    expect(page.locator("#status")).to_contain_text("Stopped", timeout=30_000)
    assert fake.wait_for(lambda: slow.cancelled, timeout=30)
    screenshot(page)
    page.close()


# The focused element's kind, and the width of the outline drawn around it (0: none).
FOCUS_RING = """() => {
  const el = document.activeElement, style = getComputedStyle(el);
  return {type: el.tagName === "INPUT" ? el.type : el.tagName, name: el.getAttribute("aria-label") || "",
          outline: style.outlineStyle === "none" ? 0 : parseFloat(style.outlineWidth)};
}"""


def test_tabbing_through_the_page_shows_where_the_focus_is_on_sliders_checkboxes_and_radios(browser, app, screenshot):
    """Gradio draws no focus on a slider, a checkbox or a radio (a focused slider's white thumb
    looked as it does unfocused): a designer tabbing through the settings lost their place."""
    page = open_studio(browser, app)
    rings: dict[str, list[float]] = {}
    for _ in range(60):  # past the form's settings to the Compare choice beside the results
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUS_RING)
        if focused["type"] in ("range", "checkbox", "radio"):
            rings.setdefault(focused["type"], []).append(focused["outline"])
            if focused["name"] == "range slider for Guidance":
                screenshot(page)
    assert set(rings) == {"range", "checkbox", "radio"}, rings
    assert all(width >= 2 for widths in rings.values() for width in widths), rings
    page.close()


# What a screen reader is given to say: each text the page's live region for the status takes.
LISTEN = """() => { window.heard = []; const region = document.querySelector("#status-announcer[role=status]");
  new MutationObserver(() => window.heard.push(region.textContent)).observe(
    region, {childList: true, characterData: true, subtree: true}); }"""


def test_a_screen_reader_hears_how_each_run_ends_but_not_every_step(browser, app, fake, images):
    """The status line is no live region: a person who cannot see it never heard that a run was
    refused or done. The page's own region says each new status but not the steps between."""
    fake.job_seconds = 2.0  # long enough for the steps' previews to come
    page = open_studio(browser, app)
    expect(page.locator("#status-announcer[role=status]")).to_be_attached(timeout=10_000)
    page.evaluate(LISTEN)
    page.locator("#run-button").click()  # nothing in the form
    expect(page.locator("#status")).to_contain_text("Please check the form", timeout=30_000)
    choose_file(page, 1, images["red"])
    page.locator("#prompt textarea").fill("make it glow")
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text(re.compile(r"step \d+ of \d+"), timeout=30_000)  # on screen
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    page.wait_for_timeout(500)
    heard = page.evaluate("window.heard")
    assert heard[0].startswith("⚠️ Please check the form: Reference images"), heard
    assert heard[-1].startswith("✅ Done"), heard
    assert not [text for text in heard if re.search(r"step \d+ of \d+", text)], heard
    page.close()
