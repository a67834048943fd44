"""The studio open in two tabs of one browser: History and presets kept alike in both.

Each tab holds its own copy of what the browser keeps (gr.BrowserState) and writes it whole
to localStorage at each change, so the last tab to write used to win: a run that finished in
one tab vanished from History once the other tab ran. Now a tab tells the others what it
wrote (assets/other_tabs.js, over a BroadcastChannel): the whole value, and what any tab of the
browser removed (a Clear, a deleted or renamed preset; remembered in localStorage, so a tab that
missed a message, asleep or cut off from the server, drops it at its next write and the others
drop it from that tab's messages). Each other tab merges that into its own copy here and writes
the union, so both end with every run and preset, and without what either removed; a tab whose
message lacks runs another has is sent that tab's value back. A merge that changes nothing
writes nothing, so the tabs settle.

What was removed is said by the event that removed it (a Clear's change, ui/history.py change;
a preset deleted or renamed, `preset_change`), never guessed from two values a tab wrote one
after the other: a tab's events read History when they start, so an answer that came back late
(a slow star) wrote History as it was then, and taking what it lacked for a removal took another
tab's new run from every tab. A tab's own changes (a run landed, a star, a Clear, an Undo; a
preset saved, renamed, deleted, imported) come to the same merge as the other tabs' messages, one
at a time: it is the one writer of History, and of the presets, in a tab.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ui.history import MAX_SHOWN, capped, with_pick
from ui.presets import preset_names

# The keys a tab broadcasts under (assets/other_tabs.js), one per kept value.
HISTORY, PRESETS = "history", "presets"
MAX_MESSAGES = 50  # merged at once (the messages that came while the last merge ran)


@dataclass(frozen=True)
class OtherTabInputs:
    """Hidden parts of the page that assets/other_tabs.js works: a button per kept value, which
    it clicks when another tab wrote that value, and the messages it hands to the server; and per
    kept value this tab's changes to it, which the page hands to the same merge."""

    history: gr.Button
    presets: gr.Button
    message: gr.JSON
    history_changed: gr.JSON  # this tab's changes to History, merged as another tab's are (ui/history.py change)
    # A run's and a sweep's entry, each in its own (ui/history.py with_landing): their updates set it
    # to None until the result, and a None landing just after another change in one component
    # could hide that change from its change event.
    run_landed: gr.JSON
    sweep_landed: gr.JSON
    presets_changed: gr.JSON  # this tab's changes to the presets (`preset_change`)
    not_kept: gr.Button  # clicked when the browser did not keep what this tab wrote (`warn_not_kept`)


def other_tab_inputs() -> OtherTabInputs:
    # "hidden": in the page (the script clicks them), not shown.
    return OtherTabInputs(
        history=gr.Button("", visible="hidden", elem_id="other-tab-history"),
        presets=gr.Button("", visible="hidden", elem_id="other-tab-presets"),
        message=gr.JSON(None, visible="hidden", elem_id="other-tab-message"),
        history_changed=gr.JSON(None, visible="hidden", elem_id="history-changed"),
        run_landed=gr.JSON(None, visible="hidden", elem_id="run-landed"),
        sweep_landed=gr.JSON(None, visible="hidden", elem_id="sweep-landed"),
        presets_changed=gr.JSON(None, visible="hidden", elem_id="presets-changed"),
        not_kept=gr.Button("", visible="hidden", elem_id="other-tab-not-kept"),
    )


def take_js(key: str) -> str:
    """The click's inputs as the browser sends them, with the messages other tabs sent under `key`."""
    return f"(mine, message, ...rest) => [mine, window.studioOtherTabs.take({key!r}), ...rest]"


def wrote_js(key: str) -> str:
    """Tells the other tabs that this one wrote `key`'s value (on the BrowserState's change)."""
    return f"(value) => {{ window.studioOtherTabs.wrote({key!r}, value); return []; }}"


def changed_js(key: str) -> str:
    """Hands a change this tab made to `key` to its merge (on the `changed` JSON's change)."""
    return f"(message) => {{ window.studioOtherTabs.changed({key!r}, message); return []; }}"


# What a visitor is told when the browser did not keep a write (its storage for the site full:
# Gradio only logs that to the console), once per page and value.
NOT_KEPT = {
    HISTORY: "This browser did not keep the latest change to History (its storage for this site is full): "
             "this run, and any after it, will not be there after a reload. Download what you want to keep; "
             "Clear makes room.",
    PRESETS: "This browser did not keep the latest change to the presets (its storage for this site is full): "
             "it will not be there after a reload. Export the presets to keep them.",
    "blocked": "This browser lets this site keep nothing (its cookies and site data are blocked): History and "
               "presets last until this page is closed or reloaded. Allow this site's data to keep them.",
}
REPLAY_JS = "() => { window.studioOtherTabs.replay(); return []; }"  # at the page's load
NOT_KEPT_JS = "(message) => [window.studioOtherTabs.notKept()]"  # which value it was, as the click's input
BLOCKED_JS = "(message) => [window.studioOtherTabs.blocked()]"  # "blocked", or null: nothing to say


def warn_not_kept(which: Any) -> None:
    """The browser did not keep `which` (a key of NOT_KEPT), as assets/other_tabs.js found."""
    if isinstance(which, str) and which in NOT_KEPT:  # it comes from the browser
        gr.Warning(NOT_KEPT[which], title="Not kept in this browser")


def handed_over(handler: Callable[..., tuple]) -> Callable[..., tuple]:
    """A preset button's `handler`, whose first output is the presets it wrote (its first input is
    them as the event read them), with that output made a change for the page's merge instead
    (`preset_change`): the presets' one writer in a tab. A handler's answer that came back late
    (a slow connection) wrote the presets as they were when it was clicked, over a preset another
    tab saved meanwhile; with that tab closed, nothing brought it back."""
    @functools.wraps(handler)  # Gradio reads the handler's parameters through __wrapped__
    def with_change(*args: Any) -> tuple:
        outputs = handler(*args)
        return (preset_change(args[0], outputs[0]), *outputs[1:])
    return with_change


def preset_change(before: Any, after: Any) -> Any:
    """{n, value, removed}: the presets `after` has new or changed (a preset saved again under its
    name), by name, and the names in `before` and not in `after`; `n` tells one change from the next.
    gr.skip() when the handler wrote nothing (gr.skip(), a warning) or changed nothing."""
    if not isinstance(after, dict) or "__type__" in after:
        return gr.skip()
    old = {str(name): values for name, values in (before if isinstance(before, dict) else {}).items()}
    new = {str(name): values for name, values in after.items()}
    removed = [name for name in old if name not in new]
    saved = {name: values for name, values in new.items() if old.get(name) != values}
    if not removed and not saved:
        return gr.skip()
    return {"n": secrets.token_hex(8), "value": saved, "removed": removed}


def _messages(messages: Any) -> list[tuple[Any, set[str]]] | None:
    """[(value, removed)] of the messages that came since the last merge, oldest first (the page
    hands them over together: one merge at a time); None if there is none (it comes from the browser)."""
    if not isinstance(messages, list):
        return None
    read = [_message(message) for message in messages[:MAX_MESSAGES]]
    return [r for r in read if r is not None] or None


def _message(message: Any) -> tuple[Any, set[str]] | None:
    """(value, removed) from a message a tab sent; None if it is not one."""
    if not isinstance(message, dict):
        return None
    removed = message.get("removed")
    removed = {r for r in removed[:10 * MAX_SHOWN] if isinstance(r, str)} if isinstance(removed, list) else set()
    return message.get("value"), removed


def merge_history(mine: list | None, theirs: Any, removed: set[str]) -> list[dict]:
    """Every run either tab has, newest first, less those the other tab removed. Of an entry both
    have, the one starred or unstarred last; the cap holds as for a new run."""
    theirs_by_id = {e["id"]: e for e in (theirs if isinstance(theirs, list) else [])[:MAX_SHOWN]
                    if isinstance(e, dict) and isinstance(e.get("id"), str)}
    merged = [_starred_last(e, theirs_by_id.pop(e["id"], e)) if isinstance(e.get("id"), str) else e
              for e in mine or [] if isinstance(e, dict)]
    merged += theirs_by_id.values()  # runs only the other tab had
    merged = [e for e in merged if e.get("id") not in removed]
    # A queued run lands in each tab that watches the queue (the tabs share its token), each
    # time as an entry of its own: both tabs keep the same one of them (the smaller id).
    kept_of_run: dict[str, str] = {}
    for entry in merged:
        token, entry_id = entry.get("token"), str(entry.get("id"))
        if isinstance(token, str):
            kept_of_run[token] = min(kept_of_run.get(token, entry_id), entry_id)
    merged = [e for e in merged if not isinstance(e.get("token"), str) or kept_of_run[e["token"]] == str(e.get("id"))]
    merged.sort(key=_newest_first, reverse=True)
    return capped(merged)


def _starred_last(mine: dict, theirs: dict) -> dict:
    """The tab's copy of a run that was starred or unstarred last (a tab's answer can carry an old
    copy: it was sent before that tab merged the star in); theirs when neither is newer."""
    def when(entry: dict) -> float:
        at = entry.get("starred_at")
        return float(at) if isinstance(at, (int, float)) else 0.0
    return mine if when(mine) > when(theirs) else theirs


def _newest_first(entry: dict) -> float:
    """When the run finished: its "at"; for an entry of an older page without one, its "created"
    (which the page now writes in the visitor's time, assets/other_tabs.js localTime)."""
    at = entry.get("at")
    if isinstance(at, (int, float)):
        return float(at)
    try:
        return time.mktime(time.strptime(str(entry.get("created")), "%Y-%m-%d %H:%M"))
    except (ValueError, OverflowError):
        return 0.0


def merge_presets(mine: dict | None, theirs: Any, removed: set[str]) -> dict:
    """Every preset either tab has, the other tab's version of one both have, less the removed."""
    merged = dict(mine or {})
    if isinstance(theirs, dict):
        merged.update({name: values for name, values in theirs.items() if isinstance(values, dict)})
    return {name: values for name, values in merged.items() if name not in removed}


def _same_history(a: list, b: list) -> bool:
    """The same runs with the same stars (the order may differ: a merge keeps each tab's own)."""
    def runs(entries: list) -> set:
        return {(e.get("id"), bool(e.get("starred"))) for e in entries if isinstance(e, dict)}
    return runs(a) == runs(b)


def history_from_other_tab(mine: list | None, message: Any, picked: str | None) -> tuple:
    """Other tabs wrote History, or this tab changed it (ui/history.py change): this tab's History
    with each message merged in, in order, the picked run still picked; History's one writer in a
    tab. Outputs: history, history gallery, picked, Restore, Star, Compare."""
    unchanged = tuple(gr.skip() for _ in range(6))
    if (read := _messages(message)) is None:
        return unchanged
    before = merged = [e for e in mine or [] if isinstance(e, dict)]
    for value, removed in read:
        merged = merge_history(merged, value, removed)
    if _same_history(before, merged):
        return unchanged
    return with_pick(merged, picked)


def presets_from_other_tab(mine: dict | None, message: Any, pick: str | None) -> tuple:
    """Other tabs wrote the presets, or this tab changed them (`preset_change`): this tab's with each
    message merged in, in order; the presets' one writer in a tab. Outputs: presets, the pick list."""
    if (read := _messages(message)) is None:
        return gr.skip(), gr.skip()
    merged = mine if isinstance(mine, dict) else {}
    for value, removed in read:
        merged = merge_presets(merged, value, removed)
    if merged == (mine or {}):
        return gr.skip(), gr.skip()
    return merged, gr.update(choices=preset_names(merged), value=pick if pick in merged else None)
