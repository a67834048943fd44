"""Settings from a PNG made here: the recipe is shown first, and applied only on "Apply".

A PNG carries the recipe that made it (backend/recipes.py), not the reference images: the
preview says which ones to add again. A region edit's PNG carries its mask too: Apply makes
it the restored mask (as a History restore does), kept when image 1 is added again. Anyone
can write a PNG's text chunks, so everything read from one is shown as text, and the mask
is opened as a PNG only, its size checked first.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from backend.recipes import read_mask, read_recipe
from ui.form import RESTORED_FIELDS, SKIP, PageSetup
from ui.restored_values import as_updates, restore_checked, warn_left_out
from ui.text import as_code, as_text

APPLY_LABEL = "Apply these settings"
NO_RECIPE = "This PNG carries no recipe from this studio: nothing was restored."
MAX_MASK_PIXELS = 50_000_000  # a mask is at image 1's size (at most 25 MP); more is not one of ours


def read_png(path: str | None) -> dict[str, Any] | None:
    recipe = read_recipe(Path(path).read_bytes()) if path else None
    return recipe if isinstance(recipe, dict) and isinstance(recipe.get("request"), dict) else None


def recipe_summary(recipe: dict[str, Any]) -> str:
    """What "Apply" would set, in Markdown (values as text), and the references to add again."""
    request = recipe["request"]
    loras = request.get("loras") or []
    lora_text = ", ".join(f"{as_code(lora.get('path'))} × {as_text(lora.get('scale'))}"
                          for lora in loras if isinstance(lora, dict)) or "none"
    size = request.get("image_size")
    if isinstance(size, dict):
        size_text = f"{as_text(size.get('width'))}×{as_text(size.get('height'))}"
    else:
        size_text = as_text(size) if size else "match image 1"
    endpoint = recipe.get("endpoint")  # a PNG made by an older studio, or elsewhere, may not name it
    lines = [
        f"**Instruction:** {as_text(request.get('prompt'))}",
        f"**Backend:** {as_text(recipe.get('backend'))}" + (f" ({as_code(endpoint)})" if endpoint else ""),
        f"**LoRAs:** {lora_text}",
        f"**Guidance:** {as_text(request.get('guidance_scale'))} · "
        f"**Steps:** {as_text(request.get('num_inference_steps'))} · **Size:** {size_text} · "
        f"**Seed:** {as_text(recipe.get('seed'))}",
    ]
    region = recipe.get("region")
    if isinstance(region, dict):
        lines.append(f"**Region:** only the painted area, feather {as_text(region.get('feather'))} px "
                     "(the mask is in this PNG: it comes back with image 1)")
    references = [u for u in request.get("image_urls") or [] if isinstance(u, str)]
    if references:
        named = ", ".join(f"image {i}: {as_code(name)}" for i, name in enumerate(references, start=1))
        lines.append(f"**Add the reference image{'s' if len(references) > 1 else ''} again** "
                     f"(a PNG does not hold them): {named}")
    return "  \n".join(lines)


def preview_png(path: str | None) -> tuple[Any, str, Any]:
    """On upload: (the recipe for Apply, what it holds, the Apply button). Nothing is changed yet."""
    recipe = read_png(path) if path else None
    if path and recipe is None:
        return None, f"⚠️ {NO_RECIPE}", gr.update(interactive=False)
    if recipe is None:  # the file was removed
        return None, "", gr.update(interactive=False)
    return recipe, recipe_summary(recipe), gr.update(interactive=True)


def mask_file(path: str | None, folder: Callable[[], Path]) -> str | None:
    """A region edit's mask from the PNG at `path`, written to a file in `folder()` (asked only
    when there is a mask; for the page's restored mask), or None: no mask, or not a PNG of a sane size."""
    data = read_mask(Path(path).read_bytes()) if path else None
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as opened:
            if opened.width * opened.height > MAX_MASK_PIXELS:
                return None
            mask = opened.convert("L")
    except Exception:  # not a PNG Pillow can read: no mask
        return None
    with tempfile.NamedTemporaryFile(dir=folder(), prefix="mask-", suffix=".png", delete=False) as file:
        mask.save(file, format="PNG")
    return file.name


def same_size(image_path: str | None, mask_path: str | None) -> bool:
    try:
        with Image.open(image_path) as image, Image.open(mask_path) as mask:  # type: ignore[arg-type]
            return image.size == mask.size
    except Exception:
        return False


def apply_mask(mask: str | None, image_1: str | None) -> tuple:
    """After Apply, a PNG's mask: the restored mask at once when image 1 is already the image it
    was painted on (same size), else it waits for image 1 to be added again (`mask_for_upload`).
    Outputs: restored mask, waiting mask, "Edit only the painted area" (the region panel opens
    once the mask is shown: ui/wiring_common.py show_tint)."""
    if not mask:
        return gr.skip(), None, gr.skip()
    if same_size(image_1, mask):
        return mask, None, True
    return gr.skip(), mask, True


def mask_for_upload(image_1: str | None, waiting: str | None) -> tuple:
    """A new image 1 has no mask of its own, except the image a PNG's mask waits for (same size).
    Outputs: restored mask, waiting mask (None: it was used or dropped)."""
    return (waiting if waiting and same_size(image_1, waiting) else None), None


def apply_png(recipe: dict[str, Any] | None, version: float, setup: PageSetup) -> tuple:
    """Apply: every restorable field from the recipe, the LoRA editor's version, the status."""
    if recipe is None:  # Apply is disabled then; a stale click changes nothing
        return (*[gr.skip()] * (len(RESTORED_FIELDS) + 1), gr.skip())
    values, notes = restore_checked(recipe, setup)
    seed = "a random seed" if values["seed"] is SKIP else f"seed {values['seed']}"
    count = len([u for u in recipe["request"].get("image_urls") or [] if isinstance(u, str)])
    add = f" Add the {count} reference image{'s' if count != 1 else ''} again." if count else ""
    if isinstance(recipe.get("region"), dict):
        add += " Its mask comes back with image 1 (Edit only a region)."
    return (*as_updates(values), version + 1,
            f"♻️ Restored the settings of a {as_text(recipe.get('backend'))} run ({seed})."
            + add + warn_left_out(notes))


def restore_png(path: str | None, version: float, setup: PageSetup) -> tuple:
    """The `restore` API: a PNG's settings applied at once (the page shows them first:
    preview_png, then apply_png). Outputs as apply_png's."""
    recipe = read_png(path)
    if recipe is None:  # an expected condition: a message, no output changes (no red pills)
        gr.Warning(NO_RECIPE, title="Nothing changed")
        return (*[gr.skip()] * (len(RESTORED_FIELDS) + 1), f"⚠️ {NO_RECIPE}")
    return apply_png(recipe, version, setup)
