"""History and presets: what the browser keeps (recipes and small thumbnails, never keys).

Both live in the visitor's browser (gr.BrowserState, localStorage), so they survive
page reloads, and each run's files stay in the outputs folder, so they survive server
restarts. The data functions work on plain data; the handlers below them turn their
results into page updates, and ui/wiring.py connects those to the page.
"""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from backend.outputs import is_inside, set_starred
from backend.recipes import read_recipe
from ui.form import PRESET_FIELDS, RESTORED_FIELDS, SKIP, PageSetup, restore_values
from ui.text import as_text

MAX_HISTORY = 60  # entries kept (starred ones are never dropped)
MAX_SHOWN = 200  # entries shown at most (of a history a browser sends back)
THUMB_SIDE = 160
MAX_THUMB_CHARS = 200_000  # a thumbnail is a few KB of base64
MAX_PRESETS_BYTES = 1 << 20  # a presets file is a few KB
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
    if not run:
        return history
    entry = {
        "id": f"{time.time():.6f}",
        "created": time.strftime("%Y-%m-%d %H:%M"),
        "recipe": run["recipe"],
        "images": run["images"],
        "references": run.get("references", []),
        "thumbs": [thumbnail(p) for p in run["images"][:4]],
        "starred": False,
        "token": run.get("token"),  # stars the run on the server (set_starred)
    }
    history.insert(0, entry)
    while len(history) > MAX_HISTORY:
        oldest_unstarred = next((i for i in range(len(history) - 1, -1, -1) if not history[i]["starred"]), None)
        if oldest_unstarred is None:
            break
        history.pop(oldest_unstarred)
    return history


def gallery_items(history: list[dict] | None) -> list[tuple[Image.Image, str]]:
    """One thumbnail per run, captioned with star, time, instruction and seed.

    The history comes from the browser, which could send anything: at most
    MAX_SHOWN entries are shown, each thumbnail a JPEG of at most THUMB_SIDE px a side
    (checked from its header before it is decoded); an entry that is not is skipped."""
    items: list[tuple[Image.Image, str]] = []
    for entry in (history or [])[:MAX_SHOWN]:
        try:
            image = _thumbnail_image(entry["thumbs"][0])
            request = entry["recipe"]["request"]
            caption = ("★ " if entry.get("starred") else "") + f"{entry['created']} · {request['prompt'][:40]}"
            if entry["recipe"].get("seed") is not None:
                caption += f" · seed {entry['recipe']['seed']}"
        except Exception:  # not an entry this page wrote
            continue
        items.append((image, caption))
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


def export_presets(presets: dict | None, folder: Path) -> str:
    path = folder / "flux2-studio-presets.json"
    path.write_text(json.dumps(presets or {}, indent=2))
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
    merged = dict(presets or {})
    for name, values in loaded.items():
        merged[str(name)[:80]] = {k: values[k] for k in PRESET_FIELDS if k in values}
    return merged


# -- handlers -------------------------------------------------------------------------------


def _as_updates(values: dict[str, Any]) -> list[Any]:
    """Restored values in RESTORED_FIELDS order; a field the recipe lacks stays as it is."""
    return [gr.skip() if values[name] is SKIP else values[name] for name in RESTORED_FIELDS]


def remember(run: dict | None, past: list[dict] | None) -> tuple[list[dict], list]:
    past = add_entry(past, run)
    return past, gallery_items(past)


def star(past: list[dict] | None, index: int | None, outputs_root: Path) -> tuple[list[dict], list]:
    past = toggle_star(past, index)
    if past and index is not None and 0 <= index < len(past):
        # The server keeps a starred run's files even when the outputs folder is full.
        entry = past[index]
        set_starred(outputs_root, next(iter(entry.get("images") or []), ""), bool(entry.get("starred")),
                    token=entry.get("token"))
    return past, gallery_items(past)


def clear_unstarred(past: list[dict] | None) -> tuple[list[dict], list]:
    kept = clear(past)
    return kept, gallery_items(kept)


def restore_png(path: str | None, version: float, setup: PageSetup) -> tuple:
    """Every setting of a PNG made by this studio (its recipe chunk)."""
    recipe = read_recipe(Path(path).read_bytes()) if path else None
    if recipe is None:
        raise gr.Error("This PNG carries no recipe from this studio.", title="Nothing to restore")
    return (*_as_updates(restore_values(recipe, setup)), version + 1,
            # The backend and seed come from the PNG, which anyone can write: text, never Markdown.
            f"♻️ Restored the settings of a {as_text(recipe.get('backend'))} run (seed {as_text(recipe.get('seed'))}).")


def restore_run(past: list[dict] | None, index: int | None, version: float, setup: PageSetup,
                outputs_root: Path, slot_count: int) -> tuple:
    """Every input of a past run: its settings, seed, backend and reference images."""
    if not past or index is None or index >= len(past):
        raise gr.Error("Pick a run in the history first.", title="Nothing to restore")
    entry = past[index]
    references = existing(entry.get("references", []), outputs_root)
    slot_values = (references + [None] * slot_count)[:slot_count]
    results = [p for p in existing(entry.get("images", []), outputs_root) if p]
    return (*_as_updates(restore_values(entry["recipe"], setup)), version + 1, *slot_values, results,
            f"♻️ Restored the run of {as_text(entry.get('created'))}.")


def save_preset_handler(all_presets: dict | None, name: str, *values: Any) -> tuple[dict, Any]:
    try:
        all_presets = save_preset(all_presets, name, dict(zip(PRESET_FIELDS, values)))
    except ValueError as error:
        raise gr.Error(str(error), title="Preset") from None
    return all_presets, gr.update(choices=list(all_presets), value=name.strip())


def load_preset(all_presets: dict | None, name: str, version: float) -> tuple:
    if not all_presets or name not in all_presets:
        raise gr.Error("Pick a saved preset first.", title="Preset")
    values = all_presets[name]
    return (*[values.get(f, gr.skip()) for f in PRESET_FIELDS], version + 1)


def import_presets_handler(all_presets: dict | None, data: bytes) -> tuple[dict, Any]:
    try:
        all_presets = import_presets(all_presets, data)
    except ValueError as error:
        raise gr.Error(str(error), title="Preset") from None
    return all_presets, gr.update(choices=list(all_presets))
