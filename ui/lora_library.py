"""The LoRA library: every LoRA this visitor has used (from History and presets) and, on the
local backend, every file in the server's LoRA folder, each with where it came from, the
scale it was last used at, its trigger words (when its header has been read) and a thumbnail
of the visitor's own last result with it. A click adds it to the LoRA stack.

The data functions work on plain data (History and presets are the browser's); the handlers
turn them into page updates, and ui/wiring_kept.py connects those to the page.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image, ImageDraw

from backend.errors import InvalidInput
from backend.request import MAX_ACTIVE_LORAS, LoraWeight, field_limits
from ui.lora_editor import KEPT_OFF, limit_active_loras
from ui.run import MAX_LORA_ROWS, normalise_loras

MAX_ENTRIES = 60
SCALES = field_limits("scale", LoraWeight)
TILE = 160


def library_entries(history: Any, presets: Any, folder: list[str]) -> list[dict[str, Any]]:
    """One entry per LoRA path, the most recently used first: {path, scale, source, thumb}.
    History (newest first) gives each path's last scale and result thumbnail; presets add the
    LoRAs only they hold; the LoRA folder's files come last (scale 1, no thumbnail)."""
    entries: dict[str, dict[str, Any]] = {}

    def add(path: Any, scale: Any, source: str, thumb: str | None) -> None:
        path = str(path or "").strip()
        if path and path not in entries and len(entries) < MAX_ENTRIES:
            try:
                value = float(scale)
            except (TypeError, ValueError):
                value = 1.0
            if not SCALES["minimum"] <= value <= SCALES["maximum"]:  # a hand-edited preset's 99 (or nan)
                value = 1.0
            entries[path] = {"path": path, "scale": value, "source": source, "thumb": thumb}

    for entry in history if isinstance(history, list) else []:
        try:
            loras, thumbs = entry["recipe"]["request"].get("loras") or [], entry.get("thumbs") or []
            when = str(entry.get("created", "")).rsplit(" ", 1)[-1]
        except (KeyError, TypeError, AttributeError):
            continue  # not an entry this page wrote
        for lora in loras if isinstance(loras, list) else []:
            if isinstance(lora, dict):
                add(lora.get("path"), lora.get("scale"), f"History {when}".strip(), thumbs[0] if thumbs else None)
    for name, values in (presets.items() if isinstance(presets, Mapping) else []):
        try:
            rows = normalise_loras(values.get("loras") if isinstance(values, Mapping) else None)
        except InvalidInput:
            continue  # a hand-edited presets file: loading that preset says what is wrong with it
        for row in rows:
            add(row["path"], row["scale"], f"Preset {str(name)[:30]}", None)
    for path in folder:
        add(path, 1.0, "LoRA folder", None)
    return list(entries.values())


def library_items(entries: list[dict[str, Any]], triggers: Mapping[str, tuple[str, ...]]) -> list[tuple[Any, str]]:
    """Gallery items: the thumbnail (or a tile with the LoRA's name) and a caption, e.g.
    "watercolor · 0.8 · History 14:32 · trigger: wtrclr"."""
    items = []
    for entry in entries:
        name = Path(entry["path"]).stem or entry["path"]
        parts = [name[:32], f"{entry['scale']:g}", entry["source"]]
        if triggers.get(entry["path"]):
            parts.append("trigger: " + ", ".join(triggers[entry["path"]][:3]))
        items.append((_image(entry.get("thumb")) or _tile(name), " · ".join(parts)))
    return items


def add_to_stack(rows: Any, version: float, entries: list[dict[str, Any]], index: int) -> tuple[Any, Any]:
    """The library's entry `index` as a new LoRA row at its last scale, switched on when fewer
    than three are; a LoRA already in the stack is switched on instead. Returns (rows, version)."""
    if not entries or not 0 <= index < len(entries):
        return gr.skip(), gr.skip()
    entry, current = entries[index], normalise_loras(rows)
    existing = next((i for i, row in enumerate(current) if row["path"].strip() == entry["path"]), None)
    if existing is not None:
        if current[existing]["enabled"]:
            return gr.skip(), gr.skip()  # already in the stack and on
        current[existing] = {**current[existing], "enabled": True}
        if sum(row["enabled"] for row in current) > MAX_ACTIVE_LORAS:
            gr.Warning(KEPT_OFF)
            return gr.skip(), gr.skip()
        return current, version + 1
    if len(current) >= MAX_LORA_ROWS:
        gr.Warning(f"At most {MAX_LORA_ROWS} LoRA rows: remove one first.")
        return gr.skip(), gr.skip()
    current, warning = limit_active_loras(current + [{"path": entry["path"], "scale": entry["scale"], "enabled": True}])
    if warning:
        gr.Warning(warning)
    return current, version + 1


def _image(uri: Any) -> Image.Image | None:
    """A thumbnail from History (a small JPEG data URI the page wrote); None for anything else."""
    if not isinstance(uri, str) or not uri.startswith("data:image/jpeg;base64,") or len(uri) > 200_000:
        return None
    try:
        with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1], validate=True))) as opened:
            if opened.format != "JPEG" or max(opened.size) > TILE:
                return None
            return opened.convert("RGB")
    except Exception:  # not an image this page wrote
        return None


def _tile(name: str) -> Image.Image:
    """A plain tile with the LoRA's name, for a LoRA with no result of this visitor's yet."""
    tile = Image.new("RGB", (TILE, TILE), (228, 228, 231))
    ImageDraw.Draw(tile).text((10, TILE // 2 - 6), name[:22], fill=(39, 39, 42))
    return tile
