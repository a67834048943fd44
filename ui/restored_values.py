"""Values that come back into the form from outside it (a preset, a History card, a PNG's recipe,
a sweep cell), checked against the same limits as the form before the page gets them.

These values come from the visitor's browser storage or from a file: an old or hand-edited
presets file, or a PNG made elsewhere, can hold anything. Handed to the components as they are,
a guidance of "high" or 1000 steps would put a red "Error" on the slider and break the form.
Each field is checked with its owning model's own Field (the request's limits, fal's and the
local backend's options), so the form, the API and a restore agree; a value that fails is left
out (the field keeps what it had) and named in a note.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

import gradio as gr
from pydantic import BaseModel, ValidationError, create_model

from backend.errors import InvalidInput
from backend.region import MAX_FEATHER
from backend.request import (
    MAX_ACTIVE_LORAS,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    EditRequest,
    ImageSize,
    LoraWeight,
    field_limits,
    field_title,
    problems_from_validation_error,
)
from ui.form import FIELDS, OWNER_MODELS, RESTORED_FIELDS, SIZE_CHOICES, SKIP, PageSetup
from ui.lora_editor import limit_active_loras
from ui.run import normalise_loras
from ui.text import as_text, error_text

SIZES = tuple(value for _, value in SIZE_CHOICES)
MAX_LORA_PATH = LoraWeight.model_json_schema()["properties"]["path"]["maxLength"]
LABELS = {"loras": "LoRAs", "size": "Size", "seed": "Seed", "randomize_seed": "Random seed", "mask_feather": "Feather",
          "backend": "Backend", "prompt": "Instruction", "width": "Width", "height": "Height"}
OFF_NOTE = f"only {MAX_ACTIVE_LORAS} can be on at once: the others were switched off"


@cache
def _one_field_model(owner: type[BaseModel], name: str) -> type[BaseModel]:
    """A model of the one field `name` of `owner`, with its type and limits."""
    info = owner.model_fields[name]
    return create_model(f"Restored_{name}", **{name: (info.annotation, info)})  # type: ignore[call-overload]


def _by_model(owner: type[BaseModel], name: str, value: Any) -> tuple[Any, str | None]:
    """(value as the model reads it, None) or (SKIP, "Label: reason")."""
    try:
        return getattr(_one_field_model(owner, name).model_validate({name: value}), name), None
    except ValidationError as error:
        problem = problems_from_validation_error(error, owner)[0]
        limits = field_limits(name, owner) if error.errors()[0]["type"] == "multiple_of" else {}
        if limits and not limits["minimum"] <= float(value) <= limits["maximum"]:  # the range first, then the step
            return SKIP, f"{problem.label}: must be from {limits['minimum']} to {limits['maximum']} (got {value})"
        return SKIP, f"{problem.label}: {problem.message}"


def _loras(value: Any) -> tuple[Any, str | None]:
    try:
        rows = normalise_loras(value)
    except InvalidInput as error:
        return SKIP, str(error)
    for index, row in enumerate(rows, start=1):
        if len(row["path"]) > MAX_LORA_PATH:
            return SKIP, f"LoRA {index}: the path is longer than {MAX_LORA_PATH} characters"
        scale, note = _by_model(LoraWeight, "scale", row["scale"])
        if note:
            return SKIP, f"LoRA {index} {note.removeprefix('LoRA ')}"
        row["scale"] = scale
    rows, switched_off = limit_active_loras(rows)
    return rows, f"LoRAs: {OFF_NOTE}" if switched_off else None


def _whole_number(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _label(name: str) -> str:
    return LABELS.get(name) or field_title(name, OWNER_MODELS.get(FIELDS[name].owner, EditRequest))


def check_one(name: str, value: Any, setup: PageSetup) -> tuple[Any, str | None]:
    """A value for the form field `name` as the form takes it, or SKIP and the reason."""
    label = _label(name)
    if name == "loras":
        return _loras(value)
    if name == "prompt":
        ok = isinstance(value, str) and len(value) <= MAX_PROMPT_CHARS
        return (value, None) if ok else (SKIP, f"{label}: must be text of at most {MAX_PROMPT_CHARS} characters")
    if name == "size":
        return (value, None) if value in SIZES else (SKIP, f"{label}: must be one of {', '.join(SIZES)}")
    if name in ("width", "height"):
        return _by_model(ImageSize, name, value)
    if name == "seed":
        ok = _whole_number(value, 0, MAX_SEED)
        return (value, None) if ok else (SKIP, f"{label}: must be a whole number from 0 to {MAX_SEED}")
    if name == "randomize_seed":
        return (value, None) if isinstance(value, bool) else (SKIP, f"{label}: must be true or false")
    if name == "mask_feather":
        ok = _whole_number(value, 0, MAX_FEATHER)
        return (value, None) if ok else (SKIP, f"{label}: must be a whole number from 0 to {MAX_FEATHER}")
    if name == "backend":
        return (value, None) if value in setup.backends else (SKIP, f"{label}: this server does not offer it")
    if name == "model":
        return (value, None) if value in setup.models else (SKIP, "Model: this server does not offer it")
    if name == "speed" and value in setup.unavailable_speeds:  # shown disabled: a run asking for it is refused
        return SKIP, f"{label}: {value} cannot run on this server (the Speed setting says why)"
    owner = OWNER_MODELS.get(FIELDS[name].owner, EditRequest)
    if name in owner.model_fields:
        return _by_model(owner, name, value)
    return SKIP, None  # a field that never comes back from outside the form


def checked(values: dict[str, Any], setup: PageSetup) -> tuple[dict[str, Any], list[str]]:
    """Each value checked (SKIP stays SKIP); the notes name the ones left out and why."""
    out, notes = {}, []
    for name, value in values.items():
        out[name], note = (SKIP, None) if value is SKIP else check_one(name, value, setup)
        if note:
            notes.append(note)
    if values.get("seed", SKIP) is not SKIP and out["seed"] is SKIP and "randomize_seed" in out:
        out["randomize_seed"] = True  # a seed that cannot be used is no reason to keep the old one
    return out, notes


def restore_checked(recipe: Any, setup: PageSetup) -> tuple[dict[str, Any], list[str]]:
    """Every restorable field's value from a recipe, checked; SKIP where the recipe has none or
    the value fails (named in the notes)."""
    if not isinstance(recipe, dict) or not isinstance(recipe.get("request"), dict):
        return dict.fromkeys(RESTORED_FIELDS, SKIP), ["the saved settings could not be read"]
    values, unread = {}, []
    for name in RESTORED_FIELDS:
        try:
            values[name] = FIELDS[name].restored(recipe, setup)
        except (KeyError, TypeError, AttributeError, IndexError, ValueError):  # a recipe's shape is not ours to trust
            values[name] = SKIP
            unread.append(f"{_label(name)}: could not be read")
    values, notes = checked(values, setup)
    return values, unread + notes


def left_out(notes: Iterable[str]) -> str:
    """One sentence for a warning or the status line."""
    notes = list(notes)
    return f"Some settings were left as they were: {'; '.join(notes)}." if notes else ""


def as_updates(values: dict[str, Any], names: Iterable[str] = RESTORED_FIELDS) -> list[Any]:
    """The values in `names` order, for an event's outputs; SKIP leaves a field as it is."""
    return [gr.skip() if values[name] is SKIP else values[name] for name in names]


def warn_left_out(notes: list[str]) -> str:
    """A warning naming what was left out, and the same words for a status line ("" if nothing)."""
    if sentence := left_out(notes):
        gr.Warning(error_text(sentence))  # the notes quote a file's numbers: shown as text, never markup
        return " ⚠️ " + as_text(sentence)
    return ""
