"""History and presets: what the browser keeps (recipes and small thumbnails, never keys).

Both live in the visitor's browser (gr.BrowserState, localStorage, ui/components.py kept_in_browser),
so they survive page reloads and server restarts; each run's files stay in the outputs
folder. The data functions work on plain data; the handlers below them turn their
results into page updates, and ui/wiring.py connects those to the page.
"""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from backend.outputs import is_inside, run_folder_of, set_starred
from ui.details import describe_run, images_on_disk
from ui.form import PRESET_FIELDS, RESTORED_FIELDS, SKIP, PageSetup, restore_values
from ui.results import result_paths, selected_result
from ui.text import as_text

MAX_HISTORY = 60  # entries kept (starred ones are never dropped)
MAX_SHOWN = 200  # entries shown at most (of a history a browser sends back)
THUMB_SIDE = 160
MAX_THUMB_CHARS = 200_000  # a thumbnail is a few KB of base64
MAX_PRESETS_BYTES = 1 << 20  # a presets file is a few KB
# A second click on Clear within this many of the page's 1-s ticks clears: the window starts when a
# busy page (ticking from then) shows "Click again", seconds after the server took the first click.
CONFIRM_TICKS = 4
UNDO_SECONDS = 8  # Undo is offered this long after a clear
CLEAR_LABEL = "Clear (keeps starred)"
CLEAR_ARMED_LABEL = "Click again to clear"
# A preset holds the form fields marked `preset` in ui/form.py: the LoRA stack and the
# sampling settings, not the instruction or the images (those change from run to run).


def thumbnail(path: str) -> str:
    """A small JPEG data URI of an image (a few KB: localStorage is small)."""
    with Image.open(path) as opened:
        image = opened.convert("RGB")
        image.thumbnail((THUMB_SIDE, THUMB_SIDE))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def add_entry(history: list[dict] | None, run: dict | None) -> list[dict]:
    """The history with the finished run first. `run` = {recipe, images, references}."""
    history = list(history or [])
    token = run.get("token") if run else None
    if not run or (token and any(entry.get("token") == token for entry in history)):  # kept already
        return history
    entry = {
        "id": uuid.uuid4().hex,  # which entry is which, as the list changes (undo, runs landing)
        "created": time.strftime("%Y-%m-%d %H:%M"),
        "at": time.time(),  # the order of runs made in one minute (ui/other_tabs.py merges by it)
        "recipe": run["recipe"],
        "images": run["images"],
        "references": run.get("references", []),
        # A sweep's card shows its grid ("thumb"); a run's, its images.
        "thumbs": [thumbnail(p) for p in ([run["thumb"]] if run.get("thumb") else run["images"][:4])],
        "starred": False,
        "token": run.get("token"),  # stars the run on the server (set_starred)
        **({"sweep": run["sweep"]} if run.get("sweep") else {}),  # {shape, grid, cells}: ui/sweep_view.py
    }
    return capped([entry, *history])


def capped(history: list[dict]) -> list[dict]:
    """At most MAX_HISTORY entries (newest first): the oldest unstarred go; starred ones never do."""
    unstarred = [i for i, entry in enumerate(history) if not entry.get("starred")]
    dropped = set(unstarred[max(0, len(unstarred) - max(0, len(history) - MAX_HISTORY)):])
    return [entry for i, entry in enumerate(history) if i not in dropped]


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
    """One card per run: its first thumbnail, captioned (`caption`).

    The history comes from the browser, which could send anything: at most
    MAX_SHOWN entries are shown, each thumbnail a JPEG of at most THUMB_SIDE px a side
    (checked from its header before it is decoded); an entry that is not is skipped."""
    items: list[tuple[Image.Image, str]] = []
    for entry in (history or [])[:MAX_SHOWN]:
        try:
            items.append((_thumbnail_image(entry["thumbs"][0]), caption(entry)))
        except Exception:  # not an entry this page wrote
            continue
    return items


def _thumbnail_image(uri: str) -> Image.Image:
    data = base64.b64decode(uri.split(",", 1)[1][:MAX_THUMB_CHARS])
    image = Image.open(io.BytesIO(data), formats=["JPEG"])
    if max(image.size) > THUMB_SIDE:
        raise ValueError("not a thumbnail")
    return image


def toggle_star(history: list[dict] | None, index: int | None) -> list[dict]:
    history = [dict(e) for e in history or []]
    if index is not None and 0 <= index < len(history):
        history[index]["starred"] = not history[index].get("starred")
    return history


def clear(history: list[dict] | None) -> list[dict]:
    """Forget every run except the starred ones."""
    return [e for e in history or [] if e.get("starred")]


def existing(paths: list[str], root: Path) -> list[str | None]:
    """The files that are still there (the size cap may have removed a run), and only
    files in the outputs folder `root`: these paths come from the browser, which could
    send any path."""
    return [p if p and is_inside(root, p) and Path(p).is_file() else None for p in paths]


# -- presets ------------------------------------------------------------------------------


def save_preset(presets: dict | None, name: str, values: dict[str, Any]) -> dict:
    name = (name or "").strip()
    if not name:
        raise ValueError("Give the preset a name.")
    return {**(presets or {}), name: {k: values[k] for k in PRESET_FIELDS}}


def rename_preset(presets: dict | None, old: str, new: str) -> dict:
    """The presets with `old` named `new`, in the same place of the list."""
    presets, new = presets or {}, (new or "").strip()
    if old not in presets:
        raise ValueError("Pick a saved preset first.")
    if not new:
        raise ValueError("Type the new name in Name first.")
    if new != old and new in presets:
        raise ValueError("Another preset already has that name.")
    return {(new if name == old else name): values for name, values in presets.items()}


def delete_preset(presets: dict | None, name: str) -> dict:
    if name not in (presets or {}):
        raise ValueError("Pick a saved preset first.")
    return {k: v for k, v in (presets or {}).items() if k != name}


def export_presets(presets: dict | None, folder: Path) -> str | None:
    """The presets as a file; None past an import's limit (the browser could send hundreds of MB)."""
    if len(text := json.dumps(presets or {}, indent=2)) > MAX_PRESETS_BYTES:
        return None
    (path := folder / "flux2-studio-presets.json").write_text(text)
    return str(path)


def import_presets(presets: dict | None, data: bytes) -> dict:
    """Merge presets from an exported JSON file; only known settings are taken. A file over
    MAX_PRESETS_BYTES is refused before it is parsed."""
    if len(data) > MAX_PRESETS_BYTES:
        raise ValueError(f"This file is over {MAX_PRESETS_BYTES // 2**20} MB: not a presets file from this studio.")
    try:
        loaded = json.loads(data)
    except ValueError:
        raise ValueError("This file is not JSON exported from this studio.") from None
    if not isinstance(loaded, dict) or not all(isinstance(v, dict) for v in loaded.values()):
        raise ValueError("This file is not a presets file from this studio.")
    taken = {str(name)[:80]: {k: values[k] for k in PRESET_FIELDS if k in values} for name, values in loaded.items()}
    return {**(presets or {}), **taken}


# -- handlers -------------------------------------------------------------------------------


def _nothing(message: str, count: int) -> tuple:
    """An expected condition (nothing picked, a bad file): a message, and no output changes.
    Raising gr.Error instead would put a red "Error" pill on every output of the event."""
    gr.Warning(message, title="Nothing changed")
    return tuple(gr.skip() for _ in range(count))


def _as_updates(values: dict[str, Any]) -> list[Any]:
    """Restored values in RESTORED_FIELDS order; a field the recipe lacks stays as it is."""
    return [gr.skip() if values[name] is SKIP else values[name] for name in RESTORED_FIELDS]


def remember(run: dict | None, past: list[dict] | None, picked: int | None) -> tuple:
    """A finished run on top of History, the picked card still picked (add_entries' outputs)."""
    return add_entries(past, [run] if run else [], picked)


def star(past: list[dict] | None, index: int | None, outputs_root: Path) -> tuple[list[dict], list]:
    past = toggle_star(past, index)
    if past and index is not None and 0 <= index < len(past):
        # The server keeps a starred run's files even when the outputs folder is full.
        entry = past[index]
        set_starred(outputs_root, next(iter(entry.get("images") or []), ""), bool(entry.get("starred")),
                    token=entry.get("token"))
    return past, gallery_items(past)


def clear_click(past: list[dict] | None, armed: int | None) -> tuple:
    """Clear asks first: a first click arms it ("Click again to clear"), a second within
    CONFIRM_TICKS ticks clears and offers Undo for UNDO_SECONDS. `armed`: the ticks since
    it was armed, None when it is not. Outputs: history, gallery, armed, cleared ({at,
    entries}), the Clear button, the Undo button, the timer."""
    if armed is None:
        return (gr.skip(), gr.skip(), 0, gr.skip(), gr.update(value=CLEAR_ARMED_LABEL), gr.skip(),
                gr.Timer(active=True))
    kept, cleared = clear(past), {"at": time.monotonic(), "entries": list(past or [])}
    return (kept, gr.update(value=gallery_items(kept), selected_index=None), None, cleared,
            gr.update(value=CLEAR_LABEL), gr.update(visible=True), gr.Timer(active=True))


def clear_button(items: list | None) -> Any:
    """Clear is enabled while History shows a run (its gallery changed)."""
    return gr.update(interactive=bool(items))


def undo_clear(cleared: dict | None, current: list[dict] | None) -> tuple:
    """The history before Clear, with what came since (a new run, a star) kept."""
    if not cleared:
        return gr.skip(), gr.skip(), None, gr.update(visible=False)
    before = list(cleared.get("entries") or [])
    known = {e.get("id") for e in before}
    now = {e.get("id"): e for e in current or []}
    past = [e for e in current or [] if e.get("id") not in known] + [now.get(e.get("id"), e) for e in before]
    return past, gallery_items(past), None, gr.update(visible=False)


def clear_tick(armed: int | None, cleared: dict | None) -> tuple:
    """Each second while Clear is armed or Undo is offered: count the tick, disarm, hide Undo,
    then stop. Outputs: armed, cleared, the Clear button, the Undo button, the timer."""
    ticks = None if armed is None or armed + 1 > CONFIRM_TICKS else armed + 1
    offered = bool(cleared) and time.monotonic() - float(cleared.get("at", 0)) <= UNDO_SECONDS  # type: ignore[union-attr]
    return (ticks, cleared if offered else None,
            gr.skip() if ticks is not None else gr.update(value=CLEAR_LABEL), gr.update(visible=offered),
            gr.Timer(active=ticks is not None or offered))


def restore_run(past: list[dict] | None, index: int | None, version: float, setup: PageSetup,
                outputs_root: Path, slot_count: int) -> tuple:
    """Every input of a past run: its settings, seed, backend, reference images and, for a
    region edit, its mask (handed to the region editor with image 1: ui/region_editor.py)."""
    if not past or index is None or not 0 <= index < len(past):
        return _nothing("Pick a run in the history first.", len(RESTORED_FIELDS) + slot_count + 5)
    entry = past[index]
    references = existing(entry.get("references", []), outputs_root)
    slot_values = (references + [None] * slot_count)[:slot_count]
    # A sweep's cells go back to the sweep results (ui/sweep_cells.py restore_sweep), not here.
    images = [p for p in existing(entry.get("images", []), outputs_root) if p]
    results = gr.skip() if entry.get("sweep") else images
    mask = _mask_of(entry, images, outputs_root)
    return (*_as_updates(restore_values(entry["recipe"], setup)), version + 1, *slot_values, results,
            f"♻️ Restored the run of {as_text(entry.get('created'))}.", mask, mask is not None)


def _mask_of(entry: dict, images: list[str], outputs_root: Path) -> str | None:
    """A region edit's saved mask (recipe "region", beside its images), or None."""
    region = entry.get("recipe", {}).get("region") if isinstance(entry.get("recipe"), dict) else None
    if not isinstance(region, dict) or not images:
        return None
    folder = run_folder_of(outputs_root, images[0])
    path = folder / str(region.get("mask", "")) if folder else None
    return str(path) if path and path.name and is_inside(outputs_root, path) and path.is_file() else None


def restored_run(past: list[dict] | None, index: int | None, outputs_root: Path) -> tuple:
    """After a restore, the picked run is the page's run, as if it had just finished: `last_run`
    (downloads, code), an empty "Seed used" (the seed is back in the form) and its details.
    Outputs: last_run, seed_used, details."""
    if not past or index is None or not 0 <= index < len(past):
        return gr.skip(), gr.skip(), gr.skip()
    entry = past[index]
    images = [p for p in existing(entry.get("images", []), outputs_root) if p]
    run = {"recipe": entry.get("recipe"), "images": images, "references": entry.get("references", []),
           "token": entry.get("token")}
    folder = run_folder_of(outputs_root, images[0]) if images else None
    try:  # the entry comes back from the browser: a recipe this page did not write shows less
        details = describe_run(entry["recipe"], images_on_disk(images, entry["recipe"].get("nsfw") or []),
                               folder.relative_to(Path(outputs_root).resolve()) if folder else None)
    except Exception:
        details = "The details of this run could not be read back."
    return run, None, details


def save_preset_handler(all_presets: dict | None, name: str, *values: Any) -> tuple[dict, Any]:
    try:
        all_presets = save_preset(all_presets, name, dict(zip(PRESET_FIELDS, values)))
    except ValueError as error:
        return _nothing(str(error), 2)
    return all_presets, gr.update(choices=list(all_presets), value=name.strip())


def load_preset(all_presets: dict | None, name: str, version: float) -> tuple:
    if not all_presets or name not in all_presets:
        return _nothing("Pick a saved preset first.", len(PRESET_FIELDS) + 1)
    values = all_presets[name]
    return (*[values.get(f, gr.skip()) for f in PRESET_FIELDS], version + 1)


def import_presets_handler(all_presets: dict | None, data: bytes) -> tuple[dict, Any]:
    try:
        all_presets = import_presets(all_presets, data)
    except ValueError as error:
        return _nothing(str(error), 2)
    return all_presets, gr.update(choices=list(all_presets))


def rename_preset_handler(all_presets: dict | None, old: str, new: str) -> tuple:
    try:
        all_presets = rename_preset(all_presets, old, new)
    except ValueError as error:
        return _nothing(str(error), 2)
    return all_presets, gr.update(choices=list(all_presets), value=new.strip())


def delete_preset_handler(all_presets: dict | None, name: str) -> tuple:
    try:
        all_presets = delete_preset(all_presets, name)
    except ValueError as error:
        return _nothing(str(error), 2)
    return all_presets, gr.update(choices=list(all_presets), value=None)


def preset_buttons(name: str | None, pick: str | None) -> tuple:
    """Save needs a name; Load and Delete a picked preset; Rename both."""
    named, picked = bool((name or "").strip()), bool(pick)
    return (gr.update(interactive=named), gr.update(interactive=picked), gr.update(interactive=named and picked),
            gr.update(interactive=picked))


def pick_run(event: gr.SelectData) -> tuple:
    """A history entry picked: Restore, Star and Compare can act on it."""
    return event.index, *(gr.update(interactive=True) for _ in range(3))


def add_entries(history: list[dict] | None, runs: list[dict], picked: int | None) -> tuple:
    """`runs` (oldest first) added to the history, the picked run still picked (`with_pick`'s outputs)."""
    before = list(history or [])
    for run in runs:  # oldest first: the newest ends on top
        history = add_entry(history, run)
    return with_pick(before, list(history or []), picked)


def with_pick(before: list, history: list[dict], picked: int | None) -> tuple:
    """The outputs for `history`, which replaced `before`, with the run picked in `before` still
    picked: its card moves as runs land (the pick is an index); one no longer there is unpicked.
    Outputs: history, history gallery, picked, Restore, Star, Compare."""
    picked_entry = before[picked] if picked is not None and 0 <= picked < len(before) else None
    picked_id = picked_entry.get("id") if isinstance(picked_entry, dict) else None  # the list is the browser's
    items = gallery_items(history)
    if picked_id is None:
        return history, items, gr.skip(), gr.skip(), gr.skip(), gr.skip()
    moved = next((i for i, entry in enumerate(history) if isinstance(entry, dict) and entry.get("id") == picked_id),
                 None)
    if moved is None:
        return history, gr.update(value=items, selected_index=None), *unpick_run()
    return history, gr.update(value=items, selected_index=moved), moved, gr.skip(), gr.skip(), gr.skip()


def unpick_if_cleared(armed: int | None) -> tuple:
    """After a click on Clear: a clear unpicks the run picked (its card may be gone); a first
    click, which only arms Clear, leaves it picked."""
    return tuple(gr.skip() for _ in range(4)) if armed is not None else unpick_run()


def unpick_run() -> tuple:
    """No entry is picked (after a clear, or when the picked one was dropped)."""
    return None, *(gr.update(interactive=False) for _ in range(3))


def compare_with_run(gallery: Any, selected: int | None, past: list[dict] | None, index: int | None,
                     outputs_root: Path) -> Any:
    """The compare slider's pair: the selected result (A) against the picked run's first image (B)."""
    if not past or index is None or not 0 <= index < len(past):
        return _nothing("Pick a run in the history first.", 1)[0]
    if not result_paths(gallery):
        return _nothing("Run an edit (or restore a run) first: its selected result is A.", 1)[0]
    theirs = next((p for p in existing(past[index].get("images") or [], outputs_root) if p), None)
    if theirs is None:
        return _nothing("This run's images are no longer on the server.", 1)[0]
    return (selected_result(gallery, selected), theirs)
