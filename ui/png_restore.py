"""Settings from a PNG made here: the recipe is shown first, and applied only on "Apply".

A PNG carries the recipe that made it (backend/recipes.py), not the reference images: the
preview says which ones to add again. Anyone can write a PNG's text chunks, so everything
read from one is shown as text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from backend.recipes import read_recipe
from ui.form import RESTORED_FIELDS, SKIP, PageSetup, restore_values
from ui.text import as_code, as_text

APPLY_LABEL = "Apply these settings"
NO_RECIPE = "This PNG carries no recipe from this studio: nothing was restored."


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
    lines = [
        f"**Instruction:** {as_text(request.get('prompt'))}",
        f"**Backend:** {as_text(recipe.get('backend'))} ({as_code(recipe.get('endpoint'))})",
        f"**LoRAs:** {lora_text}",
        f"**Guidance:** {as_text(request.get('guidance_scale'))} · "
        f"**Steps:** {as_text(request.get('num_inference_steps'))} · **Size:** {size_text} · "
        f"**Seed:** {as_text(recipe.get('seed'))}",
    ]
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


def apply_png(recipe: dict[str, Any] | None, version: float, setup: PageSetup) -> tuple:
    """Apply: every restorable field from the recipe, the LoRA editor's version, the status."""
    if recipe is None:  # Apply is disabled then; a stale click changes nothing
        return (*[gr.skip()] * (len(RESTORED_FIELDS) + 1), gr.skip())
    values = restore_values(recipe, setup)
    count = len([u for u in recipe["request"].get("image_urls") or [] if isinstance(u, str)])
    add = f" Add the {count} reference image{'s' if count != 1 else ''} again." if count else ""
    return (*[gr.skip() if values[n] is SKIP else values[n] for n in RESTORED_FIELDS], version + 1,
            f"♻️ Restored the settings of a {as_text(recipe.get('backend'))} run (seed {as_text(recipe.get('seed'))})."
            + add)


def restore_png(path: str | None, version: float, setup: PageSetup) -> tuple:
    """The `restore` API: a PNG's settings applied at once (the page shows them first:
    preview_png, then apply_png). Outputs as apply_png's."""
    recipe = read_png(path)
    if recipe is None:  # an expected condition: a message, no output changes (no red pills)
        gr.Warning(NO_RECIPE, title="Nothing changed")
        return (*[gr.skip()] * (len(RESTORED_FIELDS) + 1), f"⚠️ {NO_RECIPE}")
    return apply_png(recipe, version, setup)
