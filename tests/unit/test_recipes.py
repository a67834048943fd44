"""Recipes in PNGs: written with every saved PNG, read back to restore a run (through the
launched app: tests/app/test_recipes.py)."""

from __future__ import annotations

import io

from PIL import Image

from backend.recipes import a1111_parameters, embed_recipe, read_recipe

RECIPE = {
    "request": {
        "prompt": "make it blue", "loras": [{"path": "owner/style", "scale": 0.8}], "guidance_scale": 2.5,
        "num_inference_steps": 28, "image_size": {"width": 768, "height": 1024},
    },
    "seed": 42, "endpoint": "fal-ai/flux-2/lora/edit", "backend": "fal",
}


def png(size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_recipe_round_trips_and_leaves_the_pixels_alone():
    original = png()
    tagged = embed_recipe(original, RECIPE)
    assert read_recipe(tagged) == RECIPE
    with Image.open(io.BytesIO(tagged)) as image:
        assert image.tobytes() == Image.open(io.BytesIO(original)).tobytes()
        assert image.text["parameters"] == (
            "make it blue\nSteps: 28, Sampler: FLUX.2 flow matching, Guidance: 2.5, Seed: 42, Size: 768x1024, "
            "Model: fal-ai/flux-2/lora/edit, Backend: fal, LoRAs: owner/style:0.8"
        )
    assert read_recipe(original) is None and read_recipe(b"not a png") is None
    assert a1111_parameters({**RECIPE, "request": {**RECIPE["request"], "loras": [], "image_size": None}}).startswith(
        "make it blue\nSteps: 28")
