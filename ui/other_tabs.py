"""The studio open in two tabs of one browser: History and presets kept alike in both.

Each tab holds its own copy of what the browser keeps (gr.BrowserState) and writes it whole
to localStorage at each change, so the last tab to write used to win: a run that finished in
one tab vanished from History once the other tab ran. Now a tab tells the others what it
wrote (assets/other_tabs.js, over a BroadcastChannel): the whole value, and what any tab of the
browser removed (a Clear, a deleted preset, a run the cap dropped; remembered in localStorage,
so a tab that missed a message, asleep or cut off from the server, drops it at its next write
and the others drop it from that tab's messages). Each other tab merges that into its own copy
here and writes the union, so both end with every run and preset, and without what either
removed; a tab whose message lacks runs another has is sent that tab's value back. A merge
that changes nothing writes nothing, so the tabs settle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ui.history import MAX_SHOWN, capped, with_pick

# The keys a tab broadcasts under (assets/other_tabs.js), one per kept value.
HISTORY, PRESETS = "history", "presets"


@dataclass(frozen=True)
class OtherTabInputs:
    """Hidden parts of the page that assets/other_tabs.js works: a button per kept value, which
    it clicks when another tab wrote that value, and the message it hands to the server."""

    history: gr.Button
    presets: gr.Button
    message: gr.JSON


def other_tab_inputs() -> OtherTabInputs:
    # "hidden": in the page (the script clicks them), not shown.
    return OtherTabInputs(
        history=gr.Button("", visible="hidden", elem_id="other-tab-history"),
        presets=gr.Button("", visible="hidden", elem_id="other-tab-presets"),
        message=gr.JSON(None, visible="hidden", elem_id="other-tab-message"),
    )


def take_js(key: str) -> str:
    """The click's inputs as the browser sends them, with the message another tab sent under `key`."""
    return f"(mine, message, ...rest) => [mine, window.studioOtherTabs.take({key!r}), ...rest]"


def wrote_js(key: str) -> str:
    """Tells the other tabs that this one wrote `key`'s value (on the BrowserState's change)."""
    return f"(value) => {{ window.studioOtherTabs.wrote({key!r}, value); return []; }}"


def _message(message: Any) -> tuple[Any, set[str]] | None:
    """(value, removed) from a message a tab sent; None if it is not one (it comes from the browser)."""
    if not isinstance(message, dict):
        return None
    removed = message.get("removed")
    removed = {r for r in removed[:10 * MAX_SHOWN] if isinstance(r, str)} if isinstance(removed, list) else set()
    return message.get("value"), removed


def merge_history(mine: list | None, theirs: Any, removed: set[str]) -> list[dict]:
    """Every run either tab has, newest first, less those the other tab removed. An entry both
    have is taken as the other tab wrote it last (a star); the cap holds as for a new run."""
    theirs_by_id = {e["id"]: e for e in (theirs if isinstance(theirs, list) else [])[:MAX_SHOWN]
                    if isinstance(e, dict) and isinstance(e.get("id"), str)}
    merged = [theirs_by_id.pop(e["id"], e) if isinstance(e.get("id"), str) else e
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


def _newest_first(entry: dict) -> tuple[str, float]:
    at = entry.get("at")
    return str(entry.get("created", "")), float(at) if isinstance(at, (int, float)) else 0.0


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


def history_from_other_tab(mine: list | None, message: Any, picked: int | None) -> tuple:
    """Another tab wrote History: this tab's History with its runs merged in, the picked run still
    picked. Outputs: history, history gallery, picked, Restore, Star, Compare."""
    unchanged = tuple(gr.skip() for _ in range(6))
    read = _message(message)
    if read is None:
        return unchanged
    before = [e for e in mine or [] if isinstance(e, dict)]
    merged = merge_history(before, *read)
    if _same_history(before, merged):
        return unchanged
    return with_pick(before, merged, picked)


def presets_from_other_tab(mine: dict | None, message: Any, pick: str | None) -> tuple:
    """Another tab wrote the presets: this tab's with theirs merged in. Outputs: presets, the pick list."""
    read = _message(message)
    if read is None:
        return gr.skip(), gr.skip()
    merged = merge_presets(mine if isinstance(mine, dict) else {}, *read)
    if merged == (mine or {}):
        return gr.skip(), gr.skip()
    return merged, gr.update(choices=list(merged), value=pick if pick in merged else None)
