"""Recipes in PNGs through the launched app: every saved PNG carries its recipe and never the
key, and a restored local recipe remakes the image exactly (the format: tests/unit/test_recipes.py)."""

from __future__ import annotations

from gradio_client import handle_file
from PIL import Image

from backend.recipes import RECIPE_KEY, read_recipe
from tests.helpers.api import edit_args, local_args, run
from tests.helpers.app import SERVER_KEY, connect


def test_saved_pngs_carry_their_recipe_and_never_the_key(app, fake, images):
    gallery, *_ = run(app, images, randomize_seed=False, seed=77,
                      loras=[{"path": "owner/style", "scale": 0.8, "enabled": True}])
    data = open(gallery[0]["image"], "rb").read()
    recipe = read_recipe(data)
    assert recipe["seed"] == 77 and recipe["request"]["loras"] == [{"path": "owner/style", "scale": 0.8}]
    assert recipe["backend"] == "fal" and recipe["endpoint"] == "fal-ai/flux-2/lora/edit"
    assert SERVER_KEY.encode() not in data
    assert RECIPE_KEY.encode() in data


def test_a_restored_local_recipe_remakes_the_image_exactly(local_app, images):
    client = connect(local_app)
    gallery, *_ = client.predict(
        **local_args(images, guidance_scale=3.5, num_images=2,
                     loras=[{"path": "style.safetensors", "scale": 0.6, "enabled": True}]),
        api_name="/edit",
    )
    second = gallery[1]["image"]  # the second image: its own seed
    # The LoRA rows look like file references ({"path": ...}) to gradio_client: don't fetch them.
    values = connect(local_app, download_files=False).predict(
        handle_file(second), 0, api_name="/restore")
    (prompt, loras, guidance, steps, size, width, height, seed, randomize, num_images,
     acceleration, expansion, safety, output_format, sync_mode, backend, model, memory, speed, _feather, _version,
     status) = values
    assert status.startswith("♻️ Restored") and backend == "local" and randomize is False and speed == "quality"
    # The recipe records the local backend's options too: the model it ran on comes back.
    recipe = read_recipe(open(second, "rb").read())
    assert model == recipe["options"]["model"] == recipe["endpoint"] and memory == "gpu"
    again, *_ = client.predict(**edit_args(
        images, prompt=prompt, loras=loras, guidance_scale=guidance, num_inference_steps=steps, size=size,
        seed=seed, randomize_seed=randomize, num_images=num_images, backend=backend, model=model, memory=memory,
        speed=speed,
    ), api_name="/edit")
    assert Image.open(again[0]["image"]).tobytes() == Image.open(second).tobytes()
