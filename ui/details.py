"""A finished run's details, from its recipe: the same text after a run and after a History restore.

    details = describe_run(recipe, shown_images(result), folder)

The recipe is the saved run's (backend/outputs.py recipe_for) plus what only the page knew
(`run_extras`: the time taken, the estimated cost on fal, notes, LoRA rows not sent), which the
history keeps with it. Every value goes in as text (`as_text` / `as_code`): a prompt, a LoRA path
or fal's words never become a live link or HTML. Plain Python: no gradio here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from backend.events import Result
from backend.request import PRESET_SIZES, EditRequest
from backend.spending import estimate, usd
from ui.text import as_code, as_text


@dataclass(frozen=True)
class ShownImage:
    """What the details say of one result image."""

    width: int
    height: int
    extension: str
    nsfw: bool = False


def shown_images(result: Result) -> list[ShownImage]:
    return [ShownImage(img.width, img.height, img.extension, img.nsfw) for img in result.images]


def images_on_disk(paths: Sequence[str], nsfw: Sequence[Any] = ()) -> list[ShownImage]:
    """The saved images' sizes, read from their headers (no pixel is decoded); a restored run's."""
    shown = []
    for index, path in enumerate(paths):
        with Image.open(path) as image:
            width, height = image.size
        flagged = bool(nsfw[index]) if index < len(nsfw) else False
        shown.append(ShownImage(width, height, Path(path).suffix.lstrip(".") or "png", flagged))
    return shown


def skipped_lora_rows(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """What the LoRA list holds that is not sent, each said once: a row switched on without a
    path (easy to miss), and a switched-off row that has one."""
    notes = []
    for number, row in enumerate(rows, start=1):
        path = str(row.get("path") or "").strip()
        if row.get("enabled") and not path:
            notes.append(f"LoRA row {number} is switched on but has no path: not sent")
        elif path and not row.get("enabled"):
            notes.append(f"LoRA row {number} is switched off: not sent")
    return notes


def fal_cost_micros(request: EditRequest, backend: str, price_per_mp: float | None) -> int | None:
    """The run's estimated cost on fal, by the spending policy's one rule; None off fal."""
    if backend != "fal" or price_per_mp is None:
        return None
    return estimate([request], price_per_mp)[1]


def run_extras(seconds: float, notes: Sequence[str], cost_micros: int | None) -> dict[str, Any]:
    """What the page adds to the saved recipe for the details (and the history keeps)."""
    return {"seconds": round(seconds, 1), "notes": list(notes), "cost_micros": cost_micros}


def requested_size(size: Any) -> str:
    """The size the form asked for, in Markdown: "match image 1", a preset with its pixels, or width×height."""
    if size is None:
        return "match image 1"
    if isinstance(size, dict):
        return as_text(f"{size.get('width')}×{size.get('height')}")
    width, height = PRESET_SIZES.get(str(size), (None, None))
    return f"{as_code(size)} ({width}×{height})" if width else as_code(size)


def lora_list(loras: Sequence[Mapping[str, Any]]) -> str:
    if not loras:
        return "none"
    return ", ".join(f"{as_code(lora.get('path'))} × {as_code(lora.get('scale'))}" for lora in loras)


def seed_line(recipe: Mapping[str, Any]) -> str:
    seeds = recipe.get("seeds") or []
    if len(seeds) > 1:
        return "**Seeds:** " + ", ".join(as_code(s) for s in seeds)
    seed = recipe.get("seed")
    return f"**Seed:** {as_code(seed)}" if seed is not None else "**Seed:** not reported"


def safety_summary(images: Sequence[ShownImage], options: Mapping[str, Any] | None) -> str:
    """What the safety checker said: flagged images, nothing flagged, or that it did not run
    (switched off, or a backend without one)."""
    flagged = [str(i) for i, img in enumerate(images, start=1) if img.nsfw]
    if flagged:
        return f"flagged image {', '.join(flagged)}"
    checker = True if options is None else options.get("enable_safety_checker")
    if checker is None:
        return "none on this backend"
    return "nothing flagged" if checker else "off"


def recipe_lines(recipe: Mapping[str, Any], images: Sequence[ShownImage]) -> list[str]:
    """The settings the run was made with, as the form names them."""
    request = recipe["request"]
    made = f"{images[0].width}×{images[0].height}" if images else "unknown"
    source = "Model" if recipe.get("backend") == "local" else "Endpoint"
    return [
        f"**Instruction:** {as_text(request.get('prompt'))}",
        f"**LoRAs:** {lora_list(request.get('loras') or [])}",
        f"**Guidance:** {as_code(request.get('guidance_scale'))} · "
        f"**Steps:** {as_code(request.get('num_inference_steps'))}",
        f"**Size:** asked {requested_size(request.get('image_size'))}, made {made}",
        seed_line(recipe),
        f"**Backend:** {as_text(recipe.get('backend'))} · **{source}:** {as_code(recipe.get('endpoint'))}",
    ]


def describe_run(recipe: Mapping[str, Any], images: Sequence[ShownImage], folder: Path | str | None) -> str:
    """The run's details in Markdown: its recipe, then what happened (images, time, cost, timings,
    safety, the prompt fal used, notes) and where it was saved."""
    lines = recipe_lines(recipe, images) if "request" in recipe else [seed_line(recipe)]
    if images:
        first = images[0]
        lines.append(f"**Images:** {len(images)} × {first.width}×{first.height} ({as_text(first.extension)})")
    if recipe.get("seconds") is not None:
        lines.append(f"**Time taken:** {float(recipe['seconds']):.1f} s")
    if recipe.get("cost_micros") is not None:
        lines.append(f"**Estimated cost on fal:** {usd(int(recipe['cost_micros']))}")
    timings = recipe.get("timings") or {}
    if timings:
        lines.append("**Timings:** " + ", ".join(f"{as_text(k)} {float(v):.2f} s" for k, v in timings.items()))
    lines.append(f"**Safety checker:** {safety_summary(images, recipe.get('options'))}")
    if recipe.get("prompt_used"):
        lines.append(f"**Prompt used:** {as_text(recipe['prompt_used'])}")
    lines += [f"**Note:** {as_text(note)}" for note in recipe.get("notes") or []]
    if folder is not None:
        lines.append(f"**Saved as:** {as_code(folder)} in the outputs folder")
    return "  \n".join(lines)
