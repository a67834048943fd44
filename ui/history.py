"""History and presets: what the browser keeps (recipes and small thumbnails, never keys).

Both live in the visitor's browser (gr.BrowserState, localStorage), so they survive
page reloads, and each run's files stay in the outputs folder, so they survive server
restarts. These are plain functions on plain data; layout.py wires them to the page.
"""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path
from typing import Any

from PIL import Image

from backend.outputs import is_inside

MAX_HISTORY = 60  # entries kept (starred ones are never dropped)
THUMB_SIDE = 160
# The settings a preset holds: the LoRA stack and the sampling settings, not the
# instruction or the images (those change from run to run).
PRESET_FIELDS = (
    "loras", "guidance_scale", "num_inference_steps", "size", "width", "height", "acceleration",
    "enable_prompt_expansion", "enable_safety_checker", "output_format", "sync_mode",
)


def thumbnail(path: str) -> str:
    """A small JPEG data URI of an image (a few KB: localStorage is small)."""
    with Image.open(path) as image:
        image = image.convert("RGB")
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
    }
    history.insert(0, entry)
    while len(history) > MAX_HISTORY:
        oldest_unstarred = next((i for i in range(len(history) - 1, -1, -1) if not history[i]["starred"]), None)
        if oldest_unstarred is None:
            break
        history.pop(oldest_unstarred)
    return history


def gallery_items(history: list[dict] | None) -> list[tuple[Image.Image, str]]:
    """One thumbnail per run, captioned with star, time, instruction and seed."""
    items = []
    for entry in history or []:
        if not entry.get("thumbs"):
            continue
        data = base64.b64decode(entry["thumbs"][0].split(",", 1)[1])
        request = entry["recipe"]["request"]
        caption = ("★ " if entry.get("starred") else "") + f"{entry['created']} · {request['prompt'][:40]}"
        if entry["recipe"].get("seed") is not None:
            caption += f" · seed {entry['recipe']['seed']}"
        items.append((Image.open(io.BytesIO(data)), caption))
    return items


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
    """Merge presets from an exported JSON file; only known settings are taken."""
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
