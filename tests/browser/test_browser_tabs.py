"""The studio open in several tabs of one browser: History and presets kept alike in each
(ui/other_tabs.py, assets/other_tabs.js), whatever order their messages and writes come in."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.helpers.browser import no_error_pill, open_panel, run_once


def open_two_tabs(browser, app, init_script: str | None = None):
    """Two tabs of one browser (one context: they share localStorage), each with the page loaded."""
    tabs = browser.new_context(viewport={"width": 1400, "height": 1400})
    if init_script:
        tabs.add_init_script(init_script)
    pages = tabs.new_page(), tabs.new_page()
    for tab in pages:
        tab.goto(app.url)
        expect(tab.locator("#run-button")).to_be_visible(timeout=60_000)
    return tabs, pages


def history_cards(tab):
    return tab.locator("#history .thumbnail-item")


def test_two_tabs_keep_each_others_runs_stars_clears_and_presets(browser, app, fake, images, screenshot):
    """A designer works in two tabs: a run made in either shows up in both Histories (and after a
    reload), a star or a Clear in one holds in the other, a preset saved in one is in the other's list."""
    tabs, (tab_a, tab_b) = open_two_tabs(browser, app)
    cards_a, cards_b = history_cards(tab_a), history_cards(tab_b)
    run_once(tab_a, images["blue"], prompt="made in tab A")
    expect(cards_b.filter(has_text="made in tab A")).to_have_count(1, timeout=15_000)
    run_once(tab_b, images["red"], prompt="made in tab B")
    expect(cards_a).to_have_count(2, timeout=15_000)
    expect(cards_a.first).to_contain_text("made in tab B")  # the newest first, in both
    expect(cards_b.first).to_contain_text("made in tab B")
    cards_b.filter(has_text="made in tab A").click()
    tab_b.locator("#history-star").click()
    expect(cards_a.filter(has_text="★ made in tab A")).to_have_count(1, timeout=15_000)
    tab_a.locator("#history-clear").click()
    tab_a.locator("#history-clear").click()  # the second click clears (keeps the starred run)
    expect(cards_b).to_have_count(1, timeout=15_000)
    expect(cards_b).to_contain_text("made in tab A")
    open_panel(tab_b, "Presets")
    tab_b.locator("#preset-name textarea, #preset-name input").first.fill("from tab B")
    tab_b.locator("#preset-save").click()
    tab_a.get_by_text("Presets", exact=True).click()
    expect(tab_a.locator("#preset-export")).to_be_enabled(timeout=15_000)
    tab_a.locator("#preset-pick input").click()
    expect(tab_a.get_by_role("option", name="from tab B")).to_be_visible()
    tab_a.reload()  # what the browser kept is the same: the starred run, and the preset
    expect(cards_a).to_have_count(1, timeout=30_000)
    expect(cards_a).to_contain_text("★ made in tab A")
    screenshot(tab_a)
    no_error_pill(tab_b)
    tabs.close()


# A tab that cannot hear the others (asleep, or its server call failed): its channel drops messages.
DEAF_TABS = """
const Channel = window.BroadcastChannel;
window.BroadcastChannel = class extends Channel {
  set onmessage(handler) { super.onmessage = (event) => { if (!window.studioDeaf) handler(event); }; }
  get onmessage() { return super.onmessage; }
};
"""


def test_a_run_cleared_while_the_other_tab_could_not_hear_stays_cleared(browser, app, fake, images, screenshot):
    """Tab B misses tab A's Clear and A's next run (asleep, say), then makes a run: the cleared run
    does not come back in A (nor stays in B), and B gets A's run it missed; a reload shows the same.
    A Clear undone comes back in the other tab all the same."""
    tabs, (tab_a, tab_b) = open_two_tabs(browser, app, init_script=DEAF_TABS)
    cards_a, cards_b = history_cards(tab_a), history_cards(tab_b)
    run_once(tab_a, images["blue"], prompt="cleared in tab A")
    expect(cards_b.filter(has_text="cleared in tab A")).to_have_count(1, timeout=15_000)
    tab_b.evaluate("window.studioDeaf = true")
    tab_a.locator("#history-clear").click()
    expect(tab_a.locator("#history-clear")).to_have_text("Click again to clear")
    tab_a.locator("#history-clear").click()
    expect(cards_a).to_have_count(0, timeout=15_000)
    run_once(tab_a, images["blue"], prompt="made in A while B slept")
    tab_b.wait_for_timeout(1_000)
    expect(cards_b).to_have_text([re.compile("cleared in tab A")])  # B heard none of it
    tab_b.evaluate("window.studioDeaf = false")
    run_once(tab_b, images["red"], prompt="made in B after waking")
    for cards in (cards_a, cards_b):
        expect(cards).to_have_count(2, timeout=15_000)
        expect(cards.first).to_contain_text("made in B after waking")
        expect(cards.nth(1)).to_contain_text("made in A while B slept")
    tab_a.wait_for_timeout(1_500)  # the tabs have settled: nothing comes back
    expect(cards_a.filter(has_text="cleared in tab A")).to_have_count(0)
    tab_a.reload()
    expect(cards_a).to_have_count(2, timeout=30_000)
    expect(cards_a.filter(has_text="cleared in tab A")).to_have_count(0)
    # What is remembered as removed does not stop an Undo: cleared and undone in B, back in A.
    tab_b.locator("#history-clear").click()
    expect(tab_b.locator("#history-clear")).to_have_text("Click again to clear")
    tab_b.locator("#history-clear").click()
    expect(cards_a).to_have_count(0, timeout=15_000)
    tab_b.locator("#history-undo").click()
    expect(cards_a).to_have_count(2, timeout=15_000)
    expect(cards_b).to_have_count(2)
    screenshot(tab_b)
    no_error_pill(tab_b)
    tabs.close()


# A listener on the tabs' channel, in a tab's page: what the tab broadcasts (`heard`), and a way
# to send it messages as two more tabs of the browser would (`spy.postMessage`).
SPY = """
window.heard = [];
window.spy = new BroadcastChannel("flux2-studio-kept");
window.spy.onmessage = (event) => window.heard.push(event.data);
"""


def test_runs_from_three_other_tabs_at_once_all_arrive(browser, app, fake, images, screenshot):
    """Three other tabs finish a run each at the same moment: all three runs show up in this tab's
    History (the second and third messages came while the first was still being merged)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.add_init_script(SPY)
    page.goto(app.url)
    run_once(page, images["blue"], prompt="made in this tab")
    cards = history_cards(page)
    expect(cards).to_have_count(1, timeout=15_000)
    page.wait_for_function("window.heard.some((m) => m.key === 'history' && m.value.length === 1)")
    page.evaluate("""() => {
        const mine = window.heard.filter((m) => m.key === "history").at(-1).value[0];
        const run = (prompt, later) => ({...mine, id: prompt.replaceAll(" ", "-"), at: mine.at + later, token: null,
                                         recipe: {...mine.recipe, request: {...mine.recipe.request, prompt}}});
        window.spy.postMessage({key: "history", value: [run("made in tab two", 1), mine], removed: []});
        window.spy.postMessage({key: "history", value: [run("made in tab three", 2), mine], removed: []});
        window.spy.postMessage({key: "history", value: [run("made in tab four", 3), mine], removed: []});
    }""")
    expect(cards).to_have_count(4, timeout=15_000)
    made_in = ("tab four", "tab three", "tab two", "this tab")
    expect(cards).to_have_text([re.compile(f"made in {tab}") for tab in made_in])
    screenshot(page)
    no_error_pill(page)
    page.close()


# Holds back the page's call of one event (window.slowFn, its fn_index) until window.release().
SLOW_CALL = """
const realFetch = window.fetch;
window.fetch = async (input, init) => {
  const body = init && typeof init.body === "string" ? init.body : "";
  if (window.slowFn !== undefined && new RegExp(`"fn_index":${window.slowFn}[,}]`).test(body)) {
    await new Promise((release) => { window.release = release; });
  }
  return realFetch(input, init);
};
"""


def fn_index_of(page, elem_id: str, event: str) -> int:
    """The fn_index of the page's event `event` on the component with this elem_id."""
    return page.evaluate("""([elemId, event]) => {
        const config = window.gradio_config;
        const target = config.components.find((c) => c.props && c.props.elem_id === elemId).id;
        return config.dependencies.find((d) => d.targets.some(([id, name]) => id === target && name === event)).id;
    }""", [elem_id, event])


def test_a_slow_star_does_not_take_away_the_run_another_tab_made_meanwhile(browser, app, fake, images, screenshot):
    """Tab A stars a run on a slow connection; before the star comes back, tab B makes a run,
    which A shows. The star's answer (History as it was when A clicked) does not remove B's
    run, in B nor in A: both tabs end with both runs, the first one starred."""
    tabs, (tab_a, tab_b) = open_two_tabs(browser, app, init_script=SLOW_CALL)
    cards_a, cards_b = history_cards(tab_a), history_cards(tab_b)
    run_once(tab_a, images["blue"], prompt="first run")
    expect(cards_b).to_have_count(1, timeout=15_000)
    cards_a.first.click()
    expect(tab_a.locator("#history-star")).to_be_enabled()  # the run is picked
    tab_a.evaluate("(fn) => { window.slowFn = fn; }", fn_index_of(tab_a, "history-star", "click"))
    tab_a.locator("#history-star").click()
    tab_a.wait_for_function("typeof window.release === 'function'")  # the star is held back
    run_once(tab_b, images["red"], prompt="made in B meanwhile")
    expect(cards_a).to_have_count(2, timeout=15_000)
    tab_a.evaluate("window.slowFn = undefined; window.release()")
    expect(cards_a.filter(has_text="★ first run")).to_have_count(1, timeout=15_000)
    tab_a.wait_for_timeout(1_500)  # the tabs have settled
    for cards in (cards_a, cards_b):
        expect(cards).to_have_count(2, timeout=15_000)
        expect(cards.filter(has_text="made in B meanwhile")).to_have_count(1)
        expect(cards.filter(has_text="★ first run")).to_have_count(1)
    tab_b.reload()
    expect(cards_b).to_have_count(2, timeout=30_000)
    screenshot(tab_a)
    no_error_pill(tab_a)
    tabs.close()


def preset_names(tab) -> list[str]:
    """The presets a tab's list offers (the list is opened, read and closed)."""
    tab.locator("#preset-pick input").click()
    names = tab.get_by_role("option").all_inner_texts()
    tab.locator("#preset-pick input").blur()
    return [name.split("\n")[-1].strip() for name in names]  # less the ✓ of the one picked


def pick_preset(tab, name: str) -> None:
    tab.locator("#preset-pick input").fill(name)  # the list shows only it
    tab.get_by_role("option", name=name).click()
    expect(tab.locator("#preset-delete")).to_be_enabled()


def save_preset(tab, name: str) -> None:
    tab.locator("#preset-name textarea, #preset-name input").first.fill(name)
    tab.locator("#preset-save").click()


def test_a_preset_renamed_or_deleted_in_one_tab_is_gone_from_the_other_for_good(browser, app, screenshot):
    tabs, (tab_a, tab_b) = open_two_tabs(browser, app)
    for tab in (tab_a, tab_b):
        open_panel(tab, "Presets")
    save_preset(tab_a, "soft")
    expect(tab_b.locator("#preset-export")).to_be_enabled(timeout=15_000)  # B has a preset to export
    pick_preset(tab_b, "soft")
    tab_b.locator("#preset-name textarea, #preset-name input").first.fill("softer")
    tab_b.locator("#preset-rename").click()
    save_preset(tab_a, "strong")  # A's next write: "soft" must not come back with it
    for tab in (tab_a, tab_b):
        tab.wait_for_timeout(1_500)  # the tabs have settled
        assert preset_names(tab) == ["softer", "strong"]
    pick_preset(tab_b, "strong")
    tab_b.locator("#preset-delete").click()
    tab_a.wait_for_timeout(1_500)
    assert preset_names(tab_a) == ["softer"]
    tab_a.reload()
    open_panel(tab_a, "Presets")
    assert preset_names(tab_a) == ["softer"]
    screenshot(tab_a)
    no_error_pill(tab_b)
    tabs.close()


def test_a_late_preset_save_keeps_the_preset_a_closed_tab_saved_meanwhile(browser, app, screenshot):
    """Tab A saves a preset on a slow connection; before its answer comes, tab B saves another and
    is closed (nobody is left to send it back). A's late answer does not write B's preset out of
    A, nor out of the browser: both are there, and after a reload. A rename held back the same way
    keeps B's next preset too, and leaves no trace of the old name."""
    tabs, (tab_a, tab_b) = open_two_tabs(browser, app, init_script=SLOW_CALL)
    for tab in (tab_a, tab_b):
        open_panel(tab, "Presets")
    save_preset(tab_b, "from B, before")
    expect(tab_a.locator("#preset-export")).to_be_enabled(timeout=15_000)  # A has it
    tab_a.evaluate("(fn) => { window.slowFn = fn; }", fn_index_of(tab_a, "preset-save", "click"))
    save_preset(tab_a, "from A")
    tab_a.wait_for_function("typeof window.release === 'function'")  # A's save is held back
    save_preset(tab_b, "from B, meanwhile")
    tab_a.wait_for_timeout(1_500)  # A has merged it in
    tab_b.close()
    tab_a.evaluate("window.slowFn = undefined; window.release()")
    expect(tab_a.locator("#preset-pick input")).to_have_value("from A", timeout=15_000)
    tab_a.wait_for_timeout(1_500)  # settled
    assert preset_names(tab_a) == ["from A", "from B, before", "from B, meanwhile"]
    tab_b = tabs.new_page()
    tab_b.goto(app.url)
    open_panel(tab_b, "Presets")
    pick_preset(tab_a, "from A")
    tab_a.evaluate("(fn) => { window.slowFn = fn; }", fn_index_of(tab_a, "preset-rename", "click"))
    tab_a.locator("#preset-name textarea, #preset-name input").first.fill("a renamed")
    tab_a.locator("#preset-rename").click()
    tab_a.wait_for_function("typeof window.release === 'function'")  # A's rename is held back
    save_preset(tab_b, "from B, third")
    tab_a.wait_for_timeout(1_500)
    tab_b.close()
    tab_a.evaluate("window.slowFn = undefined; window.release()")
    expect(tab_a.locator("#preset-pick input")).to_have_value("a renamed", timeout=15_000)
    tab_a.wait_for_timeout(1_500)
    every = ["a renamed", "from B, before", "from B, meanwhile", "from B, third"]
    assert preset_names(tab_a) == every
    tab_a.reload()
    open_panel(tab_a, "Presets")
    assert preset_names(tab_a) == every
    screenshot(tab_a)
    no_error_pill(tab_a)
    tabs.close()


# How many runs this browser's tabs added to History that no write of History holds yet.
UNSAVED_RUNS = """(count) => {
  const unsaved = JSON.parse(localStorage.getItem("flux2-studio-unsaved") || "{}").history || [];
  return unsaved.reduce((runs, message) => runs + message.value.length, 0) === count;
}"""


def test_a_queued_run_that_lands_while_a_run_is_put_in_history_or_starred_is_kept_too(
        browser, app, fake, images, screenshot):
    """One tab: a run finishes, and before its History entry is merged in (a slow connection), a
    queued run lands; then a star is on its way while another queued run lands. Every run is
    kept, the star too: no write takes another's run away."""
    fake.job_seconds = 0
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.add_init_script(SLOW_CALL)
    page.goto(app.url)
    expect(page.locator("#run-button")).to_be_visible(timeout=60_000)
    cards = history_cards(page)
    page.evaluate("(fn) => { window.slowFn = fn; }", fn_index_of(page, "other-tab-history", "click"))
    run_once(page, images["blue"], prompt="run made here")
    page.wait_for_function("typeof window.release === 'function'")  # its merge into History is held back
    page.locator("#prompt textarea").fill("queued meanwhile")
    page.locator("#queue-button").click()
    # Both wait for the merge, kept in the browser meanwhile (a reload now would merge them in).
    page.wait_for_function(UNSAVED_RUNS, arg=2, timeout=30_000)
    page.evaluate("window.slowFn = undefined; window.release()")
    expect(cards).to_have_count(2, timeout=15_000)
    page.wait_for_timeout(1_500)  # settled: neither comes and goes
    expect(cards).to_have_text([re.compile("queued meanwhile"), re.compile("run made here")])  # newest first
    page.wait_for_function(UNSAVED_RUNS, arg=0)  # History's write holds both
    cards.filter(has_text="run made here").click()
    expect(page.locator("#history-star")).to_be_enabled()  # the run is picked
    page.evaluate("(fn) => { window.slowFn = fn; }", fn_index_of(page, "history-star", "click"))
    page.locator("#history-star").click()
    page.wait_for_function("typeof window.release === 'function'")  # the star is held back
    page.locator("#prompt textarea").fill("queued while starring")
    page.locator("#queue-button").click()
    expect(cards).to_have_count(3, timeout=30_000)
    page.evaluate("window.slowFn = undefined; window.release()")
    expect(cards.filter(has_text="★ run made here")).to_have_count(1, timeout=15_000)
    page.wait_for_timeout(1_500)
    newest_first = ("queued while starring", "queued meanwhile", "★ run made here")
    expect(cards).to_have_text([re.compile(text) for text in newest_first])
    page.reload()
    expect(cards).to_have_count(3, timeout=30_000)
    screenshot(page)
    no_error_pill(page)
    page.close()


def test_clear_takes_the_pick_and_its_highlight_only_with_the_run_it_clears(browser, app, fake, images, screenshot):
    """A starred run picked stays picked through a Clear (and its Undo); an unstarred one picked is
    cleared, and then no card is highlighted and Restore, Star and Compare wait for a pick."""
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(app.url)
    cards = history_cards(page)
    buttons = [page.locator(f"#history-{name}") for name in ("restore", "star", "compare")]
    for prompt in ("starred", "cleared"):
        run_once(page, images["blue"], prompt=prompt)
    expect(cards).to_have_count(2, timeout=15_000)
    cards.filter(has_text="starred").click()
    expect(buttons[1]).to_be_enabled()
    buttons[1].click()
    expect(cards.filter(has_text="★ starred")).to_have_count(1, timeout=10_000)
    for _ in range(2):
        page.locator("#history-clear").click()
    expect(cards).to_have_count(1, timeout=10_000)
    expect(page.locator("#history .thumbnail-item.selected")).to_contain_text("★ starred")
    page.locator("#history-undo").click()
    expect(cards).to_have_count(2, timeout=10_000)
    expect(page.locator("#history .thumbnail-item.selected")).to_contain_text("★ starred")
    cards.filter(has_text="cleared").click()
    expect(page.locator("#history .thumbnail-item.selected")).to_contain_text("cleared")
    for _ in range(2):
        page.locator("#history-clear").click()
    expect(cards).to_have_count(1, timeout=10_000)
    expect(page.locator("#history .thumbnail-item.selected")).to_have_count(0)
    for button in buttons:
        expect(button).to_be_disabled()
    screenshot(page)
    no_error_pill(page)
    page.close()


def test_a_history_bigger_than_the_browser_keeps_is_cut_to_what_a_reload_shows(browser, app, tmp_path, screenshot):
    """localStorage keeps about 5.2 million characters a site, and a write past that is dropped
    without a word. An older page kept a thumbnail per image and no size cap: 120 starred runs of
    four images and long instructions (7 MB) came from another tab, the page showed them all, wrote
    none, and a reload showed an empty History. Now the page keeps what the browser can hold, and
    a reload shows the same cards."""
    import random

    from PIL import Image

    from ui.history import capped, thumbnail

    tabs, (tab_a, tab_b) = open_two_tabs(browser, app)
    older = []
    for n in range(120):
        Image.frombytes("RGB", (300, 300), random.Random(n).randbytes(300 * 300 * 3)).save(tmp_path / "p.png")
        thumb = thumbnail(str(tmp_path / "p.png"))
        older.append({"id": f"run-{n:03d}", "created": "2026-12-06 10:00", "at": 1000 - n, "starred": True,
                      "recipe": {"request": {"prompt": f"run {n:03d} " + "x" * 5000}, "seed": n},
                      "images": [], "references": [], "thumbs": [thumb] * 4})
    tab_b.evaluate("(value) => new BroadcastChannel('flux2-studio-kept')"
                   ".postMessage({key: 'history', value, removed: []})", older)
    cards, kept = history_cards(tab_a), len(capped(older))
    assert kept > 100  # the newest starred runs, with one thumbnail each; the oldest past the room go
    expect(cards).to_have_count(kept, timeout=60_000)
    expect(cards.first).to_contain_text("★ run 000")
    # The browser holds it: the write went through (it used to fail, and the key stayed empty).
    tab_a.wait_for_function("() => (localStorage.getItem('flux2-studio-history') || '').length > 1e6",
                            timeout=30_000)
    tab_a.reload()
    expect(cards).to_have_count(kept, timeout=60_000)
    expect(cards.last).to_contain_text(f"★ run {kept - 1:03d}")
    screenshot(tab_a)
    tabs.close()


def test_a_star_past_the_room_for_starred_runs_is_refused_and_says_why(browser, app, images, tmp_path, screenshot):
    """Starred runs are never dropped, so they have a room of their own in what the browser keeps
    (ui/history.py STARRED_BUDGET): a star past it is refused with what to do, the card stays as it
    was, and the runs already starred stay."""
    import random

    from PIL import Image

    from ui.history import STARRED_BUDGET, size_of, thumbnail

    tabs, (tab_a, tab_b) = open_two_tabs(browser, app)
    run_once(tab_a, images["blue"], prompt="the last straw")
    cards = history_cards(tab_a)
    expect(cards).to_have_count(1, timeout=15_000)
    def older_starred_run(n: int, padding: int) -> dict:
        Image.frombytes("RGB", (300, 300), random.Random(n).randbytes(300 * 300 * 3)).save(tmp_path / "p.png")
        return {"id": f"run-{n:03d}", "created": "2026-12-05 09:00", "at": 1000 - n, "starred": True,
                "recipe": {"request": {"prompt": f"starred {n:03d} " + "x" * padding}, "seed": n},
                "images": [], "references": [], "thumbs": [thumbnail(str(tmp_path / "p.png"))]}

    starred: list[dict] = []
    while sum(size_of(e) for e in starred) < STARRED_BUDGET - 50_000:
        starred.append(older_starred_run(len(starred), 2000))
    last = older_starred_run(len(starred), 0)  # the room is full to 1,000 characters
    room = STARRED_BUDGET - 1_000 - sum(size_of(e) for e in starred) - size_of(last)
    starred.append(older_starred_run(len(starred), room))
    assert STARRED_BUDGET - 1_000 <= sum(size_of(e) for e in starred) <= STARRED_BUDGET
    tab_b.evaluate("(value) => new BroadcastChannel('flux2-studio-kept')"
                   ".postMessage({key: 'history', value, removed: []})", starred)
    expect(cards).to_have_count(len(starred) + 1, timeout=30_000)
    cards.filter(has_text="the last straw").click()
    tab_a.locator("#history-star").click()
    expect(tab_a.locator(".toast-body").filter(has_text="cannot keep another starred run")).to_be_visible(
        timeout=15_000)
    expect(tab_a.locator(".toast-body")).to_contain_text(f"the {len(starred)} starred runs")
    expect(cards.filter(has_text="the last straw")).not_to_contain_text("★")
    screenshot(tab_a)
    tab_a.reload()  # the browser kept the starred runs and the run
    expect(cards).to_have_count(len(starred) + 1, timeout=30_000)
    tabs.close()
