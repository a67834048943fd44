"""History as plain data: what the browser keeps of each run, and the run picked."""

from __future__ import annotations

import base64
import io
import random
import warnings

import gradio as gr
import pytest
from PIL import Image

from tests.helpers.history import add_entry
from ui import history as history_lib
from ui import other_tabs, png_restore
from ui import presets as presets_lib
from ui.form import PRESET_FIELDS, PageSetup
from ui.sweep_view import sweep_cost

SETUP = PageSetup(("fal",), "fal", False, (), "", "gpu")


@pytest.fixture
def run_file(tmp_path):
    path = tmp_path / "image-1.png"
    Image.new("RGB", (600, 400), (10, 20, 30)).save(path)
    return {"recipe": {"request": {"prompt": "make it blue"}, "seed": 5}, "images": [str(path)], "references": []}


def test_entries_are_newest_first_with_small_thumbnails_and_no_keys(run_file):
    history = add_entry([], run_file)
    history = add_entry(history, {**run_file, "recipe": {"request": {"prompt": "second"}, "seed": 6}})
    assert [e["recipe"]["request"]["prompt"] for e in history] == ["second", "make it blue"]
    assert history[0]["thumbs"][0].startswith("data:image/jpeg;base64,")
    assert len(history[0]["thumbs"][0]) < 20_000
    [(image, caption)] = history_lib.gallery_items(history[:1])
    assert max(image.size) == history_lib.THUMB_SIDE and caption.startswith("second · ")


def test_a_sweeps_card_shows_its_whole_grid(run_file, tmp_path):
    """A card is a square crop of its picture: a 4×1 sweep grid showed a cell and a half, blown up."""
    colours = [(200, 0, 0), (0, 160, 0), (0, 0, 200), (230, 200, 0)]
    grid = Image.new("RGB", (1200, 300))
    for i, colour in enumerate(colours):
        grid.paste(colour, (i * 300, 0, (i + 1) * 300, 300))
    grid.save(tmp_path / "grid.png")
    history = add_entry([], {**run_file, "thumb": str(tmp_path / "grid.png"), "sweep": {"shape": "4×1"}})
    [(card, _caption)] = history_lib.gallery_items(history)
    assert card.width == card.height  # nothing of it cropped away by the square card
    middle = card.height // 2
    shown = [card.getpixel((card.width * (2 * i + 1) // 8, middle)) for i in range(4)]
    assert all(max(abs(a - b) for a, b in zip(seen, colour)) < 40 for seen, colour in zip(shown, colours)), shown


def test_a_run_already_kept_is_not_kept_twice(run_file):
    # Stop brings back the run shown before (any History entry, restored): it is not new.
    first, second = {**run_file, "token": "a"}, {**run_file, "token": "b"}
    history = add_entry(add_entry([], first), second)
    assert [e["token"] for e in add_entry(history, first)] == ["b", "a"]


def test_a_run_brings_its_history_entry_with_its_done_and_only_then(run_file):
    """The page's run hands History its entry in the update that says Done (the page keeps it in
    the browser from there): none before the result, none for a run that failed, one entry per run."""
    saved = {**run_file, "token": "t1"}

    def page_run(outcome):  # the page run's updates: (gallery, status, logs, details, seed, last_run, marks)
        yield [], "⏳ Starting…", gr.skip(), gr.skip(), gr.skip(), gr.skip(), {}
        yield [], "Step 1/4", "", "", None, None, {}
        if outcome == "done":
            yield ["image-1.png"], "✅ Done in 2.0 s", "", "details", 5, saved, {}
        else:
            yield (*[gr.skip()] * 6, {"prompt": "too long"})

    updates = list(history_lib.with_landing(page_run, "done"))
    assert [u[-1] for u in updates[:2]] == [None, None]
    message = updates[2][-1]
    assert updates[2][:-1] == (["image-1.png"], "✅ Done in 2.0 s", "", "details", 5, saved, {})  # the run's own
    assert message["removed"] == []
    [entry] = message["value"]
    assert entry["token"] == "t1" and entry["recipe"] == saved["recipe"] and entry["thumbs"]
    merged = other_tabs.history_from_other_tab([], [message], None)[0]
    assert [e["id"] for e in merged] == [entry["id"]]
    assert [u[-1] for u in history_lib.with_landing(page_run, "refused")] == [None, None, None]


def test_starred_runs_survive_clear_and_the_cap(run_file):
    history = add_entry([], run_file)
    history = history_lib.toggle_star(history, history[0]["id"])
    for _ in range(history_lib.MAX_HISTORY + 5):
        history = add_entry(history, run_file)
    assert len(history) == history_lib.MAX_HISTORY and history[-1]["starred"]
    assert history[-1]["id"] not in history_lib.cleared_ids(history)
    assert len(history_lib.cleared_ids(history)) == history_lib.MAX_HISTORY - 1


def test_the_page_says_what_a_sweep_costs_before_it_starts():
    assert sweep_cost("lora1_scale", "0.4, 0.7, 1.0, 1.3", "seed", "1, 2") == \
        "This sweep makes **8 runs**, one image each."
    assert "at most 16" in sweep_cost("seed", "1,2,3,4,5", "guidance_scale", "1,2,3,4")
    assert "is not a number" in sweep_cost("seed", "1, x", "", "")


def _photo(path, seed: int) -> str:
    """A noisy picture: its thumbnail is as large as a photo's gets (JPEG compresses noise worst)."""
    Image.frombytes("RGB", (200, 200), random.Random(seed).randbytes(200 * 200 * 3)).save(path, compress_level=1)
    return str(path)


def test_history_stays_within_what_a_browser_keeps_and_refuses_a_star_past_it(tmp_path):
    """localStorage holds about 5.2 million characters a site; a write past it was lost without a
    word, with every run after it, at the next reload. A designer who stars runs all day: each run
    keeps one thumbnail, a star past the starred runs' room is refused and changes nothing (on the
    server neither), and new runs push out the oldest unstarred ones, never a starred one."""
    from backend import outputs
    from tests.helpers.outputs import HOUR, make_run

    root = tmp_path / "outputs"
    history: list[dict] = []
    refused_at = None
    for n in range(300):
        folder = make_run(root, "2026-12-06", f"10{n:04d}-abcd", 10, age=HOUR, token=f"t{n}")
        run = {"recipe": {"request": {"prompt": "x" * 5000, "loras": [{"path": "https://e.com/" + "l" * 2000,
                                                                          "scale": 1}] * 3}, "seed": n},
               "images": [_photo(folder / f"image-{i}.png", n * 4 + i) for i in range(1, 5)], "token": f"t{n}"}
        history = add_entry(history, run)
        assert len(history[0]["thumbs"]) == 1  # the card's; four images used to keep four
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            starred = history_lib.star(history, history[0]["id"], root)
        if "value" in starred:  # a change (a refusal is gr.skip())
            history = other_tabs.merge_history(history, starred["value"], set())
            assert (folder / outputs.STAR_MARKER).exists()
        else:
            refused_at = n
            assert not (folder / outputs.STAR_MARKER).exists() and not history[0]["starred"]
            assert "cannot keep another starred run" in str(caught[-1].message)
            assert f"the {n} starred runs" in str(caught[-1].message)
            break
    assert refused_at is not None and refused_at > 30  # dozens of starred runs of long recipes fit
    for n in range(100):  # then more runs than History keeps
        history = add_entry(history, {"recipe": {"request": {"prompt": "y" * 5000}, "seed": n},
                                      "images": [_photo(tmp_path / "new.png", 10_000 + n)]})
        assert sum(history_lib.size_of(e) for e in history) <= history_lib.HISTORY_BUDGET
    assert sum(bool(e["starred"]) for e in history) == refused_at  # every starred run is still there
    assert history[0]["recipe"]["seed"] == 99  # and the newest


def test_a_history_an_older_page_wrote_keeps_one_thumbnail_per_run_and_fits(run_file):
    """An older page kept a thumbnail per image and had no size cap: its History, even all of it
    starred, comes back within the budget, newest first."""
    entry = add_entry([], run_file)[0]
    big = "data:image/jpeg;base64," + "A" * 30_000
    old = [{**entry, "id": f"e{n}", "at": n, "starred": True, "thumbs": [entry["thumbs"][0], big, big, big],
            "recipe": {**entry["recipe"], "request": {"prompt": "z" * 5000}}} for n in range(200, 0, -1)]
    kept = history_lib.capped(old)
    assert all(e["thumbs"] == [entry["thumbs"][0]] for e in kept)
    assert sum(history_lib.size_of(e) for e in kept) <= history_lib.HISTORY_BUDGET
    assert [e["id"] for e in kept] == [f"e{n}" for n in range(200, 200 - len(kept), -1)]


def test_the_history_stars_a_run_on_the_server_only_with_the_token_it_was_given(tmp_path):
    """The page's star handler passes the entry's token on: the session that made the run (and
    its history, across reloads) stars it; the same request without the token changes nothing
    on the server, as does one naming a run this history never got a token for."""
    from backend import outputs
    from tests.helpers.outputs import HOUR, make_run

    root = tmp_path / "outputs"
    run = make_run(root, "2026-11-28", "100000-abcd", 10, age=HOUR, token="issued-with-the-result")
    image = Image.new("RGB", (60, 40))
    image.save(run / "image-1.png")
    history = add_entry([], {"recipe": {"request": {"prompt": "p"}, "seed": 1},
                                         "images": [str(run / "image-1.png")], "token": "issued-with-the-result"})
    forged = [{**history[0], "token": None}]
    picked = history[0]["id"]
    history_lib.star(forged, picked, root)
    assert not (run / outputs.STAR_MARKER).exists()
    starred = history_lib.star(history, picked, root)["value"]
    assert starred[0]["starred"] and (run / outputs.STAR_MARKER).exists()
    history_lib.star([{**starred[0], "token": "guess"}], picked, root)  # unstarring needs it too
    assert (run / outputs.STAR_MARKER).exists()
    history_lib.star(starred, picked, root)
    assert not (run / outputs.STAR_MARKER).exists()


def test_a_history_sent_back_by_a_browser_is_bounded(run_file):
    """What the page shows of a history a browser sends: at most MAX_SHOWN entries, only
    small JPEG thumbnails (a large or other image is skipped before it is decoded)."""
    entry = add_entry([], run_file)[0]
    big = io.BytesIO()
    Image.new("RGB", (2000, 2000)).save(big, format="JPEG")
    png = io.BytesIO()
    Image.new("RGB", (100, 100)).save(png, format="PNG")
    odd = [{**entry, "thumbs": ["data:image/jpeg;base64," + base64.b64encode(data).decode()]}
           for data in (big.getvalue(), png.getvalue())]
    assert history_lib.gallery_items(odd + [{"not": "an entry"}, entry]) == history_lib.gallery_items([entry])
    many = history_lib.gallery_items([entry] * (history_lib.MAX_SHOWN + 50))
    assert len(many) == history_lib.MAX_SHOWN


@pytest.mark.filterwarnings("ignore:.*:UserWarning")
def test_expected_conditions_warn_and_change_nothing(tmp_path):
    """Nothing picked, no name, a bad file: no gr.Error (its red pill lands on every output),
    only skips (and, for a PNG, a status line)."""
    skipped = [
        presets_lib.save_preset_handler({}, "  ", *range(len(PRESET_FIELDS))),
        presets_lib.load_preset({}, "", 0, setup=SETUP),
        presets_lib.import_presets_handler({}, b"not json"),
        presets_lib.rename_preset_handler({}, None, "x"),
        presets_lib.delete_preset_handler({}, None),
        history_lib.restore_run([], None, 0, None, tmp_path, 3),
    ]
    for outputs in skipped:
        assert outputs and all(o == gr.skip() for o in outputs)
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    *outputs, status = png_restore.restore_png(str(plain), 0, None)
    assert all(o == gr.skip() for o in outputs) and png_restore.NO_RECIPE in status


def test_a_card_leads_with_the_instruction_then_loras_and_time():
    entry = {"recipe": {"request": {"prompt": "make it blue", "loras": [
        {"path": "https://example.com/x/style.safetensors", "scale": 0.8}]}, "seed": 3},
        "created": "2026-12-03 14:32", "starred": True}
    assert history_lib.caption(entry) == "★ make it blue · style 0.8 · 14:32"


def apply(history: list[dict], change: dict) -> list[dict]:
    """A change to History, applied as the page applies it: merged (ui/other_tabs.py)."""
    return other_tabs.merge_history(history, change["value"], set(change["removed"]))


def test_clear_asks_first_and_can_be_undone():
    past = [{"id": "1", "starred": False, "at": 1}, {"id": "2", "starred": True, "at": 2}]
    change, armed, cleared, *_ = history_lib.clear_click(past, None)
    assert change == gr.skip() and armed is not None and cleared == gr.skip()  # only armed
    change, armed, cleared, *_ = history_lib.clear_click(past, armed)
    assert change["removed"] == ["1"] and armed is None and cleared["entries"] == past
    history = apply(past, change)
    assert history == [past[1]]
    newer = {"id": "3", "starred": False, "at": 3}
    change, *_ = history_lib.undo_clear(cleared, [newer, *history])
    assert change["value"] == [past[0]] and change["removed"] == []  # what Clear took, back
    assert [e["id"] for e in apply([newer, *history], change)] == ["3", "2", "1"]


def test_clear_asks_disarms_and_offers_undo_only_for_a_few_seconds(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(history_lib.time, "monotonic", lambda: now[0])
    past = [{"id": "a", "recipe": {}}, {"id": "b", "recipe": {}, "starred": True}]
    # A first click arms Clear and changes nothing.
    change, armed, cleared, button, _undo, _timer = history_lib.clear_click(past, None)
    assert change == gr.skip() and armed is not None and button["value"] == history_lib.CLEAR_ARMED_LABEL
    # Left alone past CONFIRM_TICKS of the page's ticks, it disarms (and a click then only arms it again).
    for _ in range(history_lib.CONFIRM_TICKS + 1):
        armed, _cleared, button, _undo, timer = history_lib.clear_tick(armed, None)
    assert armed is None and button["value"] == history_lib.CLEAR_LABEL
    # A second click in time clears the unstarred runs and offers Undo, however long the page
    # took to show "Click again" (its ticks start then): the server's clock does not count.
    _, armed, _, _, _, _ = history_lib.clear_click(past, None)
    now[0] += 30
    for _ in range(history_lib.CONFIRM_TICKS - 1):
        armed, _cleared, button, _undo, timer = history_lib.clear_tick(armed, None)
    assert armed is not None and button == gr.skip()
    change, armed, cleared, button, undo, _timer = history_lib.clear_click(past, armed)
    assert change["removed"] == ["a"] and undo["visible"] is True and cleared["entries"] == past
    # Undo is still offered within UNDO_SECONDS, gone after.
    now[0] += history_lib.UNDO_SECONDS - 1
    _, still, _, undo, timer = history_lib.clear_tick(None, cleared)
    # Still offered: the tick leaves Undo and what it would bring back as Clear set them (a tick
    # that read them before an Undo must not answer after it with Undo shown again).
    assert still == gr.skip() and undo == gr.skip() and timer.active is True
    now[0] += 2
    _, gone, _, undo, timer = history_lib.clear_tick(None, cleared)
    assert gone is None and undo["visible"] is False


def prompts_of(history: list[dict]) -> list[str]:
    return [entry["recipe"]["request"]["prompt"] for entry in history]


def land(history: list[dict], runs: list[dict], picked: str | None) -> tuple:
    """Runs that finished in this tab, as the page lands them: through the merge (its outputs)."""
    return other_tabs.history_from_other_tab(history, [history_lib.landed(history, runs)], picked)


def test_runs_that_land_from_the_queue_keep_the_picked_card_picked(run_file):
    """A run picked in History stays the one Restore, Star and Compare act on when queued runs
    land on top of it (its card, selected, moves from 1 to 3)."""
    history = []
    for prompt in ("first", "second"):
        history = add_entry(history, {**run_file, "recipe": {"request": {"prompt": prompt}}})
    runs = [{**run_file, "recipe": {"request": {"prompt": p}}} for p in ("third", "fourth")]
    history, gallery, picked, *buttons = land(history, runs, history[1]["id"])
    assert prompts_of(history) == ["fourth", "third", "second", "first"]
    assert picked == gr.skip() and gallery["selected_index"] == 3 and len(gallery["value"]) == 4
    assert buttons == [gr.skip()] * 3  # Restore, Star and Compare stay enabled
    # Nothing picked: nothing to move.
    _history, gallery, picked, *_buttons = land(history, runs[:1], None)
    assert picked == gr.skip() and isinstance(gallery, list)
    # A run History holds already (a Stop brings back the run shown before) is not landed again.
    assert history_lib.landed(history, [{**run_file, "token": "kept"}]) != gr.skip()
    assert history_lib.landed([{"token": "kept"}], [{**run_file, "token": "kept"}]) == gr.skip()


def test_a_picked_card_the_cap_drops_is_unpicked(run_file):
    history = []
    for number in range(history_lib.MAX_HISTORY):
        history = add_entry(history, {**run_file, "recipe": {"request": {"prompt": f"run {number}"}}})
    oldest = history[-1]["id"]
    history, gallery, picked, *buttons = land(history, [run_file], oldest)
    assert "run 0" not in prompts_of(history)
    assert picked is None and gallery.selected_index is None  # its highlight goes too
    assert "selected_index" in gallery.constructor_args  # sent: gr.update would drop a None
    assert [button["interactive"] for button in buttons] == [False, False, False]


def test_the_picked_run_is_the_one_starred_and_restored_wherever_its_card_has_moved(run_file, tmp_path):
    """A card is picked; before the click on Star, Restore or Compare reaches the server, runs land
    on top (another tab's, a queued one) or the page still shows History as it was: either way
    it is the picked run that is starred, restored and compared, not whatever is now in its place."""
    odd = {"not": "an entry"}  # what a browser may send back: not shown, so the cards skip it
    history = [odd, *add_entry(add_entry([], run_file), {**run_file, "recipe": {
        "request": {"prompt": "newer"}, "seed": 6}})]
    picked, *buttons = history_lib.pick_run(history, gr.SelectData(None, {"index": 1, "value": None}))
    assert picked == history[2]["id"] and [b["interactive"] for b in buttons] == [True] * 3
    landed, gallery, *_ = land(history, [{**run_file, "recipe": {"request": {"prompt": "landed"}}}], picked)
    assert prompts_of([e for e in landed if e is not odd]) == ["landed", "newer", "make it blue"]
    assert gallery["selected_index"] == 2  # the third card: the odd entry has none
    for seen_by_the_handler in (history, landed):
        starred = apply(landed, history_lib.star(seen_by_the_handler, picked, tmp_path))
        assert [e["recipe"]["request"]["prompt"] for e in starred if e.get("starred")] == ["make it blue"]
        assert len(starred) == len(landed)  # the run that landed meanwhile stays
        restored = history_lib.restored_run(seen_by_the_handler, picked, tmp_path)[0]
        assert restored["recipe"]["request"]["prompt"] == "make it blue"
    assert history_lib.pick_run(history, gr.SelectData(None, {"index": 7, "value": None}))[0] is None
