"""A sweep's cells after it ran: pick one, use it as the input or take back its settings;
a sweep from History shown again.

The cells come from the sweep state (ui/sweep_view.py: {"cells": [{caption, image}], "run"}),
kept on the server (a gr.State), or from a History entry, which the browser sends back: its
paths are checked to lie in the outputs folder before anything is read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr

from backend.outputs import is_inside
from ui import history as history_lib
from ui.form import RESTORED_FIELDS, PageSetup
from ui.restored_values import as_updates, restore_checked, warn_left_out
from ui.sweep_view import cell_items
from ui.text import as_text

PICK_FIRST = "Pick a finished cell in the sweep results first."


def _warn(message: str, count: int) -> tuple:
    """An expected condition: a warning, and no output changes (no gr.Error and its red pills)."""
    gr.Warning(message, title="Nothing changed")
    return tuple(gr.skip() for _ in range(count))


def picked_cell(state: dict | None, index: int | None, outputs_root: Path) -> dict | None:
    """The picked cell ({caption, image}) when it has an image that is still there."""
    cells = (state or {}).get("cells") or []
    if index is None or not 0 <= index < len(cells):
        return None
    image = cells[index].get("image")
    if not image or not is_inside(outputs_root, image) or not Path(image).is_file():
        return None
    return cells[index]


def pick_cell(state: dict | None, event: gr.SelectData) -> tuple:
    """A cell picked in the sweep gallery: its two buttons act on it once it has its image."""
    cells = (state or {}).get("cells") or []
    ready = 0 <= event.index < len(cells) and bool(cells[event.index].get("image"))
    return event.index, gr.update(interactive=ready), gr.update(interactive=ready)


def unpick_cell() -> tuple:
    """A new sweep (or a sweep from History): no cell is picked."""
    return None, gr.update(interactive=False), gr.update(interactive=False)


def use_cell_as_input(state: dict | None, index: int | None, outputs_root: Path, slot_count: int) -> tuple:
    """The picked cell's image becomes image 1; the other references are cleared (like the
    results' "Use as input")."""
    cell = picked_cell(state, index, outputs_root)
    if cell is None:
        return _warn(PICK_FIRST, slot_count)
    return (cell["image"], *([None] * (slot_count - 1)))


def restore_cell(state: dict | None, index: int | None, version: float, setup: PageSetup,
                 outputs_root: Path) -> tuple:
    """Every setting of the picked cell, from the recipe.json saved beside its image."""
    cell = picked_cell(state, index, outputs_root)
    recipe_file = Path(cell["image"]).parent / "recipe.json" if cell else None
    if cell is None or recipe_file is None or not recipe_file.is_file():
        return _warn(PICK_FIRST, len(RESTORED_FIELDS) + 2)
    values, notes = restore_checked(json.loads(recipe_file.read_text()), setup)
    return (*as_updates(values), version + 1,
            f"♻️ Restored the settings of the sweep cell {as_text(cell['caption'])}." + warn_left_out(notes))


def sweep_run(update: tuple) -> Any:
    """The finished sweep as History keeps it (one card), from the page sweep's update (its
    state last); None until the sweep is done, after a Stop, or when no cell made an image."""
    state = update[-1]
    return state.get("run") if isinstance(state, dict) else None


def restore_sweep(past: list[dict] | None, picked: str | None, outputs_root: Path) -> tuple:
    """A sweep picked in History: its cells, grid and zip in the sweep results again, no cell
    picked. Outputs: the sweep gallery, the grid, the zip, the sweep results accordion, the sweep
    state, then unpick_cell's. A run that is not a sweep changes none of them."""
    entry = history_lib.picked_entry(past, picked) or {}
    sweep = entry.get("sweep") if isinstance(entry, dict) else None
    if not isinstance(sweep, dict):
        return tuple(gr.skip() for _ in range(8))

    def kept(path: Any) -> str | None:  # from the browser: only files in the outputs folder
        return str(path) if path and is_inside(outputs_root, str(path)) and Path(str(path)).is_file() else None

    pairs = [c for c in (sweep.get("cells") or [])[:16] if isinstance(c, (list, tuple)) and len(c) == 2]
    captions = tuple(str(caption)[:80] for caption, _path in pairs)
    paths = [kept(path) for _caption, path in pairs]
    cells = [{"caption": c, "image": p} for c, p in zip(captions, paths)]
    listed = sweep.get("stopped")  # a stopped sweep's cells it did not make (from the browser: checked)
    stopped = {i for i in listed if isinstance(i, int)} if isinstance(listed, list) else set()
    failed = {i for i, p in enumerate(paths) if not p and i not in stopped}
    grid = kept(sweep.get("grid"))
    # The sweep's zip lies beside its grid (ui/sweep_view.py save_sweep): "Sweep as zip" is this
    # sweep's, not the last one run on this page.
    zipped = next((kept(z) for z in sorted(Path(grid).parent.glob("sweep_*.zip"))), None) if grid else None
    return (cell_items(captions, paths, failed, [], stopped=bool(stopped)), grid,
            gr.update(value=zipped, interactive=bool(zipped)), gr.update(open=True),
            {"cells": cells, "run": None}, *unpick_cell())
