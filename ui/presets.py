"""Presets: named sets of the form's preset fields (the LoRA stack and the sampling settings,
not the instruction or the images, which change from run to run), kept in the visitor's
browser like History (ui/history.py), exported and imported as a JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr

from ui.form import PRESET_FIELDS, SKIP, PageSetup
from ui.history import nothing, size_of
from ui.restored_values import as_updates, checked, left_out
from ui.text import error_text

# A presets file is a few KB. The presets together stay within this too: the browser keeps them
# in localStorage beside History (ui/history.py HISTORY_BUDGET), and a write past its room is lost.
MAX_PRESETS_BYTES = 1 << 20


def preset_names(presets: dict | None) -> list[str]:
    """The pick list: the names in alphabetical order, the same in every tab (each tab's copy keeps
    its presets in the order it came to know them) and wherever a rename puts one."""
    return sorted(presets or {}, key=lambda name: (name.casefold(), name))


def save_preset(presets: dict | None, name: str, values: dict[str, Any]) -> dict:
    name = (name or "").strip()
    if not name:
        raise ValueError("Give the preset a name.")
    return _within_room({**(presets or {}), name: {k: values[k] for k in PRESET_FIELDS}})


def _within_room(presets: dict) -> dict:
    """`presets`, if the browser has room for them (MAX_PRESETS_BYTES); else a ValueError."""
    if size_of(presets) > MAX_PRESETS_BYTES:
        raise ValueError(f"The presets would take over {MAX_PRESETS_BYTES // 2**20} MB, more than this browser "
                         "keeps of them: delete some you no longer use first.")
    return presets


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
    return _within_room({**(presets or {}), **taken})


def save_preset_handler(all_presets: dict | None, name: str, *values: Any) -> tuple[dict, Any]:
    try:
        all_presets = save_preset(all_presets, name, dict(zip(PRESET_FIELDS, values)))
    except ValueError as error:
        return nothing(str(error), 2)
    return all_presets, gr.update(choices=preset_names(all_presets), value=name.strip())


def load_preset(all_presets: dict | None, name: str, version: float, setup: PageSetup) -> tuple:
    """The preset's settings into the form, each checked as the form checks it (a presets file
    can say anything): one that fails stays as it is, named in a warning."""
    if not all_presets or name not in all_presets:
        return nothing("Pick a saved preset first.", len(PRESET_FIELDS) + 1)
    if not isinstance(saved := all_presets[name], dict):
        return nothing(error_text(f"Preset {name!r} could not be read: nothing was loaded."), len(PRESET_FIELDS) + 1)
    values, notes = checked({field: saved.get(field, SKIP) for field in PRESET_FIELDS}, setup)
    if notes:
        gr.Warning(error_text(f"Preset {name!r}: {left_out(notes)}"))  # a file's name and numbers, as text
    return (*as_updates(values, PRESET_FIELDS), version + 1)


def import_presets_handler(all_presets: dict | None, data: bytes) -> tuple[dict, Any]:
    try:
        all_presets = import_presets(all_presets, data)
    except ValueError as error:
        return nothing(str(error), 2)
    return all_presets, gr.update(choices=preset_names(all_presets))


def rename_preset_handler(all_presets: dict | None, old: str, new: str) -> tuple:
    try:
        all_presets = rename_preset(all_presets, old, new)
    except ValueError as error:
        return nothing(str(error), 2)
    return all_presets, gr.update(choices=preset_names(all_presets), value=new.strip())


def delete_preset_handler(all_presets: dict | None, name: str) -> tuple:
    try:
        all_presets = delete_preset(all_presets, name)
    except ValueError as error:
        return nothing(str(error), 2)
    return all_presets, gr.update(choices=preset_names(all_presets), value=None)


def preset_buttons(name: str | None, pick: str | None) -> tuple:
    """Save needs a name; Load and Delete a picked preset; Rename both."""
    named, picked = bool((name or "").strip()), bool(pick)
    return (gr.update(interactive=named), gr.update(interactive=picked), gr.update(interactive=named and picked),
            gr.update(interactive=picked))
