"""History: what the browser keeps of each run (its recipe and small thumbnails, never a key).

It lives in the visitor's browser (gr.BrowserState, localStorage, ui/components.py kept_in_browser),
as presets do (ui/presets.py), so it survives page reloads and server restarts; each run's files
stay in the outputs folder. The data functions work on plain data; the handlers below them turn
their results into page updates, and ui/wiring_kept.py connects those to the page.

The run picked in History is held by its entry's id, not its place in the list: runs land on
top (a queued run, another tab's) between a click and the server's answer, and a place would
then name another run.
"""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from backend.outputs import is_inside, run_folder_of, set_starred
from ui.details import describe_run, images_on_disk
from ui.form import RESTORED_FIELDS, PageSetup
from ui.restored_values import as_updates, restore_checked, warn_left_out
from ui.results import compare_shown, image_seed, result_caption, result_paths, result_place
from ui.text import as_text

MAX_HISTORY = 60  # entries kept (starred ones are not counted against it)
MAX_SHOWN = 200  # entries shown at most (of a history a browser sends back)
THUMB_SIDE = 160
MAX_THUMB_CHARS = 200_000  # a thumbnail is a few KB of base64
# The browser keeps History in localStorage: about 5.2 million characters a site (Chromium and
# Firefox: 5 MiB of UTF-16), shared with the presets (at most 1.4 million: ui/presets.py). Gradio
# stores a value encrypted, in base64: 4/3 of its JSON. A write past the limit fails without a word
# (Gradio logs it to the console) and every run after it is gone at the next reload. So History's
# JSON stays within HISTORY_BUDGET (3.3 million stored): the oldest unstarred runs go first, and a
# star that would take starred runs past STARRED_BUDGET is refused, so starred runs need not go.
HISTORY_BUDGET = 2_500_000
STARRED_BUDGET = 1_500_000
# A second click on Clear within this many of the page's 1-s ticks clears: the window starts when a
# busy page (ticking from then) shows "Click again", seconds after the server took the first click.
CONFIRM_TICKS = 4
UNDO_SECONDS = 8  # Undo is offered this long after a clear
CLEAR_LABEL = "Clear (keeps starred)"
CLEAR_ARMED_LABEL = "Click again to clear"


def thumbnail(path: str, whole: bool = False) -> str:
    """A small JPEG data URI of an image (a few KB: localStorage is small). `whole`: on a white
    square, for a sweep's grid: a card crops its picture to a square, and a 4×1 grid's middle
    (a cell and a half, blown up) said nothing of the sweep."""
    with Image.open(path) as opened:
        image = opened.convert("RGB")
        image.thumbnail((THUMB_SIDE, THUMB_SIDE))
        if whole:
            square = Image.new("RGB", (max(image.size),) * 2, "white")
            square.paste(image, ((square.width - image.width) // 2, (square.height - image.height) // 2))
            image = square
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def new_entry(history: list[dict], run: dict | None) -> dict | None:
    """The History entry of a finished run, `run` = {recipe, images, references, token}; None if
    History holds it already (by its token: a Stop brings back the run shown before, no new run)."""
    token = run.get("token") if run else None
    if not run or (token and any(entry.get("token") == token for entry in history)):
        return None
    return {
        "id": uuid.uuid4().hex,  # which entry is which, as the list changes (undo, runs landing)
        "created": time.strftime("%Y-%m-%d %H:%M"),
        "at": time.time(),  # the order of runs made in one minute (ui/other_tabs.py merges by it)
        "recipe": run["recipe"],
        "images": run["images"],
        "references": run.get("references", []),
        # The card's picture: a sweep's whole grid ("thumb"), a run's first image.
        "thumbs": ([thumbnail(run["thumb"], whole=True)] if run.get("thumb")
                   else [thumbnail(p) for p in run["images"][:1]]),
        "starred": False,
        "token": run.get("token"),  # stars the run on the server (set_starred)
        **({"sweep": run["sweep"]} if run.get("sweep") else {}),  # {shape, grid, cells}: ui/sweep_view.py
    }


def change(entries: list[dict], removed: list[str] | None = None) -> dict:
    """A change this tab makes to History, as a message for the page's merge: entries added or
    starred, runs removed. History has one writer per tab (ui/other_tabs.py history_from_other_tab,
    one at a time, reading History as it is when it starts): an event that wrote History itself
    wrote it as it was when that event started, over a run that landed meanwhile. `n` tells one
    change from the next (assets/other_tabs.js remembers what was removed once per change)."""
    return {"n": uuid.uuid4().hex, "value": entries, "removed": removed or []}


def landed(past: list[dict] | None, runs: list[dict]) -> Any:
    """Runs that finished in this tab (oldest first), for History (a `change`); gr.skip() when
    History holds them all already."""
    entries: list[dict] = []
    for run in runs:
        if entry := new_entry([*entries, *(past or [])], run):
            entries.insert(0, entry)
    return change(entries) if entries else gr.skip()


def capped(history: list[dict]) -> list[dict]:
    """At most MAX_HISTORY entries (newest first) and HISTORY_BUDGET characters: the oldest
    unstarred go; starred ones stay (past MAX_HISTORY too), and so does the newest run. Each entry
    keeps the one thumbnail its card shows (an older page kept one per image)."""
    history = [_one_thumbnail(entry) for entry in history]
    sizes = [size_of(entry) for entry in history]
    count, total, dropped = len(history), sum(sizes), set()
    for i in reversed(range(1, len(history))):  # the oldest first
        if count <= MAX_HISTORY and total <= HISTORY_BUDGET:
            break
        if not history[i].get("starred"):
            dropped.add(i)
            count, total = count - 1, total - sizes[i]
    # Starred runs past the budget: only a History this page did not write (`star` keeps them
    # within STARRED_BUDGET) gets here. Kept whole, it would not be written at all.
    for i in reversed(range(1, len(history))):
        if total <= HISTORY_BUDGET:
            break
        if i not in dropped:
            dropped.add(i)
            total -= sizes[i]
    return [entry for i, entry in enumerate(history) if i not in dropped]


def size_of(entry: Any) -> int:
    """The characters a value takes in the browser's JSON (as it writes it: UTF-8, compact): an
    entry of History, or the presets."""
    return len(json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode())


def _one_thumbnail(entry: dict) -> dict:
    thumbs = entry.get("thumbs")
    return {**entry, "thumbs": thumbs[:1]} if isinstance(thumbs, list) and len(thumbs) > 1 else entry


def caption(entry: dict) -> str:
    """What a card says: star, instruction, LoRAs (file name and scale) and time,
    e.g. "★ make it blue · style 0.8 · 14:32"."""
    request = entry["recipe"]["request"]
    if isinstance(entry.get("sweep"), dict):  # "Sweep 4×2: make it blue · 14:32"
        parts = [f"Sweep {str(entry['sweep'].get('shape'))[:8]}: {str(request['prompt'])[:40]}",
                 str(entry["created"]).rsplit(" ", 1)[-1]]
        return ("★ " if entry.get("starred") else "") + " · ".join(parts)
    parts = [str(request["prompt"])[:48]]
    parts += [f"{Path(str(lora['path'])).stem[:24]} {float(lora['scale']):g}" for lora in request.get("loras") or []]
    parts.append(str(entry["created"]).rsplit(" ", 1)[-1])
    return ("★ " if entry.get("starred") else "") + " · ".join(parts)


def gallery_items(history: list[dict] | None) -> list[tuple[Image.Image, str]]:
    """One card per run: its first thumbnail, captioned (`caption`)."""
    return [(image, caption(entry)) for entry, image in _shown(history)]


def _shown(history: list[dict] | None) -> list[tuple[dict, Image.Image]]:
    """The entries History shows, with their thumbnails. The history comes from the browser, which
    could send anything: at most MAX_SHOWN entries are shown, each thumbnail a JPEG of at most
    THUMB_SIDE px a side (checked from its header before it is decoded); an entry that is not is skipped."""
    shown: list[tuple[dict, Image.Image]] = []
    for entry in (history or [])[:MAX_SHOWN]:
        try:
            caption(entry)  # it has what a caption needs
            shown.append((entry, _thumbnail_image(entry["thumbs"][0])))
        except Exception:  # not an entry this page wrote
            continue
    return shown


def picked_entry(history: list[dict] | None, picked: str | None) -> dict | None:
    """The entry with the picked id, or None (nothing picked, or it is gone)."""
    return next((e for e in history or [] if isinstance(e, dict) and picked and e.get("id") == picked), None)


def _thumbnail_image(uri: str) -> Image.Image:
    data = base64.b64decode(uri.split(",", 1)[1][:MAX_THUMB_CHARS])
    image = Image.open(io.BytesIO(data), formats=["JPEG"])
    if max(image.size) > THUMB_SIDE:
        raise ValueError("not a thumbnail")
    return image


def toggle_star(history: list[dict] | None, picked: str | None) -> list[dict]:
    history = [dict(e) for e in history or []]
    if entry := picked_entry(history, picked):  # when: the other tabs keep the last star (ui/other_tabs.py)
        entry.update(starred=not entry.get("starred"), starred_at=time.time())
    return history


def cleared_ids(history: list[dict] | None) -> list[str]:
    """The runs Clear forgets: every run except the starred ones."""
    return [e["id"] for e in history or [] if not e.get("starred") and isinstance(e.get("id"), str)]


def existing(paths: list[str], root: Path) -> list[str | None]:
    """The files that are still there (the size cap may have removed a run), and only
    files in the outputs folder `root`: these paths come from the browser, which could
    send any path."""
    return [p if p and is_inside(root, p) and Path(p).is_file() else None for p in paths]


# -- handlers -------------------------------------------------------------------------------


def nothing(message: str, count: int) -> tuple:
    """An expected condition (nothing picked, a bad file): a message, and no output changes.
    Raising gr.Error instead would put a red "Error" pill on every output of the event."""
    gr.Warning(message, title="Nothing changed")
    return tuple(gr.skip() for _ in range(count))


def with_landing(run: Callable[[dict[str, Any]], Iterator[tuple]], values: dict[str, Any],
                 saved_run: Callable[[tuple], Any] = lambda update: update[-2]) -> Iterator[tuple]:
    """The page's run (or sweep), `run(values)`, each update with the run's change to History
    last: None until `saved_run(update)` is the saved run ({recipe, images, ...}: a run's
    `last_run`, second to last), then its entry. The change comes in the same update as the run's
    Done, and the page keeps it in the browser at once (assets/other_tabs.js, until History's
    write holds it): handed over by an event after the run, it reached the browser two server
    calls after Done, and a reload in that half second lost the run."""
    message = None
    for update in run(values):
        saved = saved_run(update)  # gr.skip() (a dict too) before the run starts, None until its result
        if message is None and isinstance(saved, dict) and "recipe" in saved:
            message = landed([], [saved])  # a run of its own: always new
        yield (*update, message)


def star(past: list[dict] | None, picked: str | None, outputs_root: Path) -> Any:
    """The picked run starred (or unstarred), for History (a `change`). A star that would take
    starred runs past what the browser can keep of them (STARRED_BUDGET) is refused."""
    toggled = toggle_star(past, picked)
    if (entry := picked_entry(toggled, picked)) is None:
        return gr.skip()
    starred = [e for e in toggled if e.get("starred")]
    if entry.get("starred") and sum(size_of(e) for e in starred) > STARRED_BUDGET:
        return nothing(f"This browser cannot keep another starred run: the {len(starred) - 1} starred runs fill "
                       f"the room History has for them ({STARRED_BUDGET / 1e6:g} MB). Unstar one you no longer "
                       "need, or restore this run and download it (Selected as PNG, All as zip).", 1)[0]
    # The server keeps a starred run's files even when the outputs folder is full.
    set_starred(outputs_root, next(iter(entry.get("images") or []), ""), bool(entry.get("starred")),
                token=entry.get("token"))
    return change([entry])


def clear_click(past: list[dict] | None, armed: int | None) -> tuple:
    """Clear asks first: a first click arms it ("Click again to clear"), a second within
    CONFIRM_TICKS ticks clears and offers Undo for UNDO_SECONDS. `armed`: the ticks since
    it was armed, None when it is not. Outputs: the change to History, armed, cleared ({at,
    entries}), the Clear button, the Undo button, the timer."""
    if armed is None:
        return gr.skip(), 0, gr.skip(), gr.update(value=CLEAR_ARMED_LABEL), gr.skip(), gr.Timer(active=True)
    cleared = {"at": time.monotonic(), "entries": list(past or [])}
    return (change([], cleared_ids(past)), None, cleared, gr.update(value=CLEAR_LABEL), gr.update(visible=True),
            gr.Timer(active=True))


def clear_button(items: list | None) -> Any:
    """Clear is enabled while History shows a run (its gallery changed)."""
    return gr.update(interactive=bool(items))


def undo_clear(cleared: dict | None, current: list[dict] | None) -> tuple:
    """What Clear removed, back in History (a `change`: what came since, a new run or a star, stays).
    Outputs: the change to History, cleared, the Undo button."""
    if not cleared:
        return gr.skip(), None, gr.update(visible=False)
    now = {e.get("id") for e in current or [] if isinstance(e, dict)}
    back = [e for e in cleared.get("entries") or [] if isinstance(e, dict) and e.get("id") not in now]
    return change(back), None, gr.update(visible=False)


def clear_tick(armed: int | None, cleared: dict | None) -> tuple:
    """Each second while Clear is armed or Undo is offered: count the tick, disarm, hide Undo,
    then stop. Outputs: armed, cleared, the Clear button, the Undo button, the timer."""
    ticks = None if armed is None or armed + 1 > CONFIRM_TICKS else armed + 1
    offered = bool(cleared) and time.monotonic() - float(cleared.get("at", 0)) <= UNDO_SECONDS  # type: ignore[union-attr]
    # While Undo is offered a tick leaves it as Clear set it: a tick that read `cleared` before an
    # Undo answered after it, and brought the used Undo (and what it had undone) back.
    return (ticks, gr.skip() if offered else None,
            gr.skip() if ticks is not None else gr.update(value=CLEAR_LABEL),
            gr.skip() if offered else gr.update(visible=False), gr.Timer(active=ticks is not None or offered))


def restore_run(past: list[dict] | None, picked: str | None, version: float, setup: PageSetup,
                outputs_root: Path, slot_count: int) -> tuple:
    """Every input of a past run: its settings, seed, backend, reference images and, for a
    region edit, its mask (handed to the region editor with image 1: ui/region_editor.py)."""
    if (entry := picked_entry(past, picked)) is None:
        return nothing("Pick a run in the history first.", len(RESTORED_FIELDS) + slot_count + 5)
    references = existing(entry.get("references", []), outputs_root)
    slot_values = (references + [None] * slot_count)[:slot_count]
    # A sweep's cells go back to the sweep results (ui/sweep_cells.py restore_sweep), not here.
    images = [p for p in existing(entry.get("images", []), outputs_root) if p]
    flags = entry["recipe"].get("nsfw") if isinstance(entry.get("recipe"), dict) else None
    flags = flags if isinstance(flags, list) else []
    # Captioned as the run's own results were ("image 2 ⚠ flagged"; a sweep's go to its own panel).
    results = gr.skip() if entry.get("sweep") else [
        (path, result_caption(i, bool(flags[i - 1]) if i <= len(flags) else False))
        for i, path in enumerate(images, start=1)]
    mask = _mask_of(entry, images, outputs_root)
    values, notes = restore_checked(entry.get("recipe"), setup)
    return (*as_updates(values), version + 1, *slot_values, results,
            f"♻️ Restored the run of {as_text(entry.get('created'))}." + warn_left_out(notes), mask, mask is not None)


def _mask_of(entry: dict, images: list[str], outputs_root: Path) -> str | None:
    """A region edit's saved mask (recipe "region", beside its images), or None."""
    region = entry.get("recipe", {}).get("region") if isinstance(entry.get("recipe"), dict) else None
    if not isinstance(region, dict) or not images:
        return None
    folder = run_folder_of(outputs_root, images[0])
    path = folder / str(region.get("mask", "")) if folder else None
    return str(path) if path and path.name and is_inside(outputs_root, path) and path.is_file() else None


def restored_run(past: list[dict] | None, picked: str | None, outputs_root: Path) -> tuple:
    """After a restore, the picked run is the page's run, as if it had just finished: `last_run`
    (downloads, code), its seed in "Seed used" (image 1's; the selected image's after: ui/wiring.py;
    the seed is back in the form too) and its details. Outputs: last_run, seed_used, details."""
    if (entry := picked_entry(past, picked)) is None:
        return gr.skip(), gr.skip(), gr.skip()
    images = [p for p in existing(entry.get("images", []), outputs_root) if p]
    run = {"recipe": entry.get("recipe"), "images": images, "references": entry.get("references", []),
           "token": entry.get("token")}
    folder = run_folder_of(outputs_root, images[0]) if images else None
    try:  # the entry comes back from the browser: a recipe this page did not write shows less
        details = describe_run(entry["recipe"], images_on_disk(images, entry["recipe"].get("nsfw") or []),
                               folder.relative_to(Path(outputs_root).resolve()) if folder else None)
    except Exception:
        details = "The details of this run could not be read back."
    seed = image_seed(run, 0)
    return run, None if seed is None else str(seed), details


def pick_run(past: list[dict] | None, event: gr.SelectData) -> tuple:
    """A card picked: its run (by id) is the one Restore, Star and Compare act on.
    Outputs: picked, Restore, Star, Compare."""
    shown = _shown(past)
    if not 0 <= event.index < len(shown) or not isinstance(shown[event.index][0].get("id"), str):
        return unpick_run()  # an entry of an older page, without an id
    return shown[event.index][0]["id"], *(gr.update(interactive=True) for _ in range(3))


def with_pick(history: list[dict], picked: str | None) -> tuple:
    """The outputs for a new `history`, the picked run's card still the one selected (it moves as
    runs land); a pick whose run is gone is undone. Outputs: history, history gallery, picked,
    Restore, Star, Compare."""
    shown = _shown(history)
    items = [(image, caption(entry)) for entry, image in shown]
    if not picked:
        return history, items, gr.skip(), gr.skip(), gr.skip(), gr.skip()
    moved = next((i for i, (entry, _image) in enumerate(shown) if entry.get("id") == picked), None)
    if moved is None:  # its card is gone, and so is the highlight: a gr.update drops a None prop
        return history, gr.Gallery(value=items, selected_index=None), *unpick_run()
    return history, gr.update(value=items, selected_index=moved), gr.skip(), gr.skip(), gr.skip(), gr.skip()


def unpick_run() -> tuple:
    """No entry is picked (after a clear, or when the picked one was dropped)."""
    return None, *(gr.update(interactive=False) for _ in range(3))


def compare_with_run(gallery: Any, selected: int | None, past: list[dict] | None, picked: str | None,
                     outputs_root: Path) -> Any:
    """The compare slider's pair: the selected result (A) against the picked run's first image (B)."""
    if (entry := picked_entry(past, picked)) is None:
        return nothing("Pick a run in the history first.", 1)[0]
    if not result_paths(gallery):
        return nothing("Run an edit (or restore a run) first: its selected result is A.", 1)[0]
    theirs = next((p for p in existing(entry.get("images") or [], outputs_root) if p), None)
    if theirs is None:
        return nothing("This run's images are no longer on the server.", 1)[0]
    ours = result_paths(gallery)
    place = result_place(ours, selected)
    when = caption(entry).rpartition(" · ")[2]  # the time its card shows: the label fits a phone's slider
    return compare_shown((ours[place], theirs), f"result {place + 1}", f"past run of {when}")
