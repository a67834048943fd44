"""Two tabs of one browser: what one writes to History and presets, the other merges in."""

from __future__ import annotations

import warnings

import gradio as gr
import pytest
from PIL import Image

from tests.helpers.history import add_entry
from ui import history as history_lib
from ui import other_tabs
from ui import presets as presets_lib


@pytest.fixture
def new_run(tmp_path):
    path = tmp_path / "image-1.png"
    Image.new("RGB", (64, 64), (10, 20, 30)).save(path)

    def made(prompt: str) -> dict:
        return {"recipe": {"request": {"prompt": prompt}, "seed": 1}, "images": [str(path)], "references": [],
                "token": prompt}
    return made


def prompts(history: list[dict]) -> list[str]:
    return [e["recipe"]["request"]["prompt"] for e in history]


def test_runs_made_in_either_tab_are_in_both_newest_first(new_run):
    start = add_entry([], new_run("old"))
    tab_a = add_entry(start, new_run("made in A"))
    tab_b = add_entry(start, new_run("made in B"))  # later
    assert prompts(other_tabs.merge_history(tab_a, tab_b, set())) == ["made in B", "made in A", "old"]
    assert prompts(other_tabs.merge_history(tab_b, tab_a, set())) == ["made in B", "made in A", "old"]


def test_what_the_other_tab_cleared_stays_cleared_and_its_stars_count(new_run):
    tab_a = add_entry(add_entry([], new_run("keep")), new_run("clear me"))
    tab_b = history_lib.toggle_star(tab_a, tab_a[1]["id"])  # B stars "keep", then clears the rest
    removed = set(history_lib.cleared_ids(tab_b))
    cleared = [e for e in tab_b if e["id"] not in removed]
    merged = other_tabs.merge_history(tab_a, cleared, removed)
    assert prompts(merged) == ["keep"] and merged[0]["starred"]


def test_the_merged_history_keeps_the_cap_and_every_starred_run(new_run):
    tab_a = []
    for n in range(history_lib.MAX_HISTORY):
        tab_a = add_entry(tab_a, new_run(f"A{n}"))
    tab_a = history_lib.toggle_star(tab_a, tab_a[-1]["id"])  # the oldest, starred
    tab_b = add_entry([], new_run("B"))
    merged = other_tabs.merge_history(tab_a, tab_b, set())
    assert len(merged) == history_lib.MAX_HISTORY
    assert prompts(merged)[0] == "B" and "A0" in prompts(merged) and "A1" not in prompts(merged)


def test_a_message_that_is_not_one_changes_nothing(new_run):
    mine = add_entry([], new_run("mine"))
    odd = ({"value": "nope", "removed": "all"}, {"value": [{"id": 3}, "x"]})
    for message in (None, "x", [], [1], *odd, *[[m] for m in odd]):
        outputs = other_tabs.history_from_other_tab(mine, message, mine[0]["id"])
        assert all(o is gr.skip() or o == gr.skip() for o in outputs)
        assert other_tabs.presets_from_other_tab({"a": {}}, message, "a") == (gr.skip(), gr.skip())


def test_a_merge_that_adds_nothing_writes_nothing(new_run):
    # The tabs settle: a tab merging what it already has does not write again (and tell the other).
    mine = add_entry([], new_run("both"))
    outputs = other_tabs.history_from_other_tab(mine, [{"value": list(reversed(mine)), "removed": []}], None)
    assert all(o == gr.skip() for o in outputs)


def test_the_picked_run_stays_picked_as_the_other_tabs_runs_come_in(new_run):
    mine = add_entry(add_entry([], new_run("picked")), new_run("newer"))
    theirs = add_entry(mine, new_run("from the other tab"))
    history, gallery, picked, *_ = other_tabs.history_from_other_tab(mine, [{"value": theirs, "removed": []}],
                                                                     mine[1]["id"])
    assert prompts(history)[gallery["selected_index"]] == "picked" and gallery["selected_index"] == 2
    assert picked == gr.skip()  # still the same run
    cleared = [{"value": [], "removed": [e["id"] for e in theirs]}]
    history, gallery, picked, restore, *_ = other_tabs.history_from_other_tab(mine, cleared, mine[1]["id"])
    assert history == [] and picked is None and restore["interactive"] is False


def test_presets_from_the_other_tab_are_added_renamed_and_deleted():
    mine = {"soft": {"guidance_scale": 2.0}, "old name": {"guidance_scale": 3.0}}
    theirs = {"soft": {"guidance_scale": 2.5}, "new name": {"guidance_scale": 3.0}, "strong": {"guidance_scale": 7.0}}
    presets, pick = other_tabs.presets_from_other_tab(mine, [{"value": theirs, "removed": ["old name"]}], "old name")
    assert presets == theirs
    assert pick["choices"] == ["new name", "soft", "strong"] and pick["value"] is None  # A to Z, in every tab


def test_a_queued_run_that_landed_in_both_tabs_is_one_card_in_both(new_run):
    # Both tabs watch the queue (one token in the browser): each added the finished run itself.
    tab_a = add_entry([], new_run("queued"))
    tab_b = add_entry([], new_run("queued"))
    merged_in_a = other_tabs.merge_history(tab_a, tab_b, set())
    merged_in_b = other_tabs.merge_history(tab_b, tab_a, set())
    assert prompts(merged_in_a) == ["queued"] and merged_in_a == merged_in_b


def test_of_a_run_both_tabs_have_the_one_starred_or_unstarred_last_is_kept(new_run):
    mine = add_entry([], new_run("run"))
    starred = history_lib.toggle_star(mine, mine[0]["id"])
    # The other tab's answer was sent before it heard of the star: its copy is unstarred, and older.
    assert other_tabs.merge_history(starred, mine, set())[0]["starred"]
    unstarred_later = history_lib.toggle_star(starred, mine[0]["id"])
    assert not other_tabs.merge_history(starred, unstarred_later, set())[0]["starred"]


def test_a_preset_button_hands_its_change_to_the_merge_read_from_its_own_input_and_output():
    """A preset button writes no presets itself: it hands the merge what it saved and removed, read
    from the presets it read and the ones it would have written (never what this tab wrote before:
    that may be older or newer), so a late answer leaves what the merge took in meanwhile."""
    presets = {"a": {"seed": 1}, "b": {"seed": 2}}
    deleted, pick = other_tabs.handed_over(presets_lib.delete_preset_handler)(presets, "b")
    assert deleted["removed"] == ["b"] and deleted["value"] == {} and pick["value"] is None
    renamed, pick = other_tabs.handed_over(presets_lib.rename_preset_handler)(presets, "a", "c")
    assert renamed["removed"] == ["a"] and renamed["value"] == {"c": {"seed": 1}} and renamed["n"] != deleted["n"]
    assert pick["value"] == "c"
    saved = other_tabs.preset_change(presets, {"a": {"seed": 3}, "b": {"seed": 2}})
    assert saved["removed"] == [] and saved["value"] == {"a": {"seed": 3}}  # back if another tab deleted it
    assert other_tabs.preset_change(presets, dict(presets)) == gr.skip()
    assert other_tabs.preset_change(presets, gr.skip()) == gr.skip()  # a warning: nothing written
    # The merge takes it into the presets as they are by then: a preset another tab saved meanwhile stays.
    meanwhile = {**presets, "from another tab": {"seed": 9}}
    merged, pick = other_tabs.presets_from_other_tab(meanwhile, [renamed], "c")
    assert merged == {"b": {"seed": 2}, "from another tab": {"seed": 9}, "c": {"seed": 1}}
    assert pick["choices"] == ["b", "c", "from another tab"] and pick["value"] == "c"


def test_the_messages_that_came_during_the_last_merge_are_all_merged_in_their_order(new_run):
    # Three tabs wrote while this one merged: the page hands over all three messages at once.
    mine = add_entry([], new_run("mine"))
    two, three = (add_entry(mine, new_run(made)) for made in ("two", "three"))
    removed_in_four = {"value": [], "removed": [two[0]["id"]]}  # tab four cleared what two made
    messages = [{"value": two, "removed": []}, removed_in_four, {"value": three, "removed": []}]
    history, *_ = other_tabs.history_from_other_tab(mine, messages, None)
    assert prompts(history) == ["three", "mine"]
    presets, _pick = other_tabs.presets_from_other_tab({}, [{"value": {"a": {}}, "removed": []},
                                                            {"value": {"b": {}}, "removed": []}], None)
    assert presets == {"a": {}, "b": {}}


def test_a_write_the_browser_refused_is_named_and_nothing_else_warns():
    with pytest.warns(UserWarning, match="did not keep the latest change to History"):
        other_tabs.warn_not_kept("history")
    with pytest.warns(UserWarning, match="did not keep the latest change to the presets.*Export"):
        other_tabs.warn_not_kept("presets")
    with pytest.warns(UserWarning, match="lets this site keep nothing.*until this page is closed"):
        other_tabs.warn_not_kept("blocked")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for sent in (None, "other", ["history"], {"history": 1}):  # it comes from the browser
            other_tabs.warn_not_kept(sent)
