"""Recipes in PNGs: written with every saved PNG, read back to restore a run."""

from __future__ import annotations

import io

from gradio_client import Client, handle_file
from PIL import Image

from backend.recipes import RECIPE_KEY, a1111_parameters, embed_recipe, read_recipe
from tests.conftest import SERVER_KEY
from tests.test_app_hosted import edit_args, run
from tests.test_app_local import local_args

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
    client = Client(local_app.url, verbose=False)
    gallery, *_ = client.predict(
        **local_args(images, guidance_scale=3.5, num_images=2,
                     loras=[{"path": "style.safetensors", "scale": 0.6, "enabled": True}]),
        api_name="/edit",
    )
    second = gallery[1]["image"]  # the second image: its own seed
    # The LoRA rows look like file references ({"path": ...}) to gradio_client: don't fetch them.
    values = Client(local_app.url, verbose=False, download_files=False).predict(
        handle_file(second), 0, api_name="/restore")
    (prompt, loras, guidance, steps, size, width, height, seed, randomize, num_images,
     acceleration, expansion, safety, output_format, sync_mode, backend, _version, status) = values
    assert status.startswith("♻️ Restored") and backend == "local" and randomize is False
    again, *_ = client.predict(**edit_args(
        images, prompt=prompt, loras=loras, guidance_scale=guidance, num_inference_steps=steps, size=size,
        seed=seed, randomize_seed=randomize, num_images=num_images, backend=backend,
    ), api_name="/edit")
    assert Image.open(again[0]["image"]).tobytes() == Image.open(second).tobytes()
