"""Calling the launched app's `edit` endpoint as the form would, and looking at what reached fal."""

from __future__ import annotations

import base64
import io

from gradio_client import handle_file
from PIL import Image

from tests.helpers.app import connect


def edit_args(images, **overrides):
    """Arguments of the `edit` endpoint, as a person would leave the form, plus overrides."""
    args = dict(
        prompt="make this donut realistic", image_1=handle_file(str(images["red"])), image_2=None,
        image_3=None, loras=[], guidance_scale=2.5, num_inference_steps=28, size="match", width=1024,
        height=1024, seed=0, randomize_seed=True, num_images=1, acceleration="regular",
        enable_prompt_expansion=False, enable_safety_checker=True, output_format="png", sync_mode=False,
        fal_key="",
    )
    args.update(overrides)
    return args


def local_args(images, **overrides):
    """`edit_args` for the local backend, with few steps (the tiny pipeline on the CPU)."""
    return edit_args(images, backend="local", num_inference_steps=6, **overrides)


def run(app, images, **overrides):
    return connect(app).predict(**edit_args(images, **overrides), api_name="/edit")


def sent_image(url: str, fake) -> Image.Image:
    """The image fal would fetch for one of the image_urls the app sent."""
    if url.startswith("data:"):
        data = base64.b64decode(url.split(",", 1)[1])
    else:
        data = fake.uploads[url.rsplit("/", 1)[1]]
    return Image.open(io.BytesIO(data))
