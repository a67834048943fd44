"""Fixtures of more than one layer: the fake fal server, reference images, the tiny model, and
the real app launched against the fake (the app and browser layers drive it).

The app runs as `python app.py` in a subprocess, exactly as a person starts it, with
STUDIO_FAL_BASE_URL pointing its unmodified fal-client at the fake server
(tests/helpers/app.py). Layer-only fixtures live in tests/unit/, tests/app/ and
tests/browser/conftest.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers.app import SERVER_KEY, VISITOR_KEY, launch_app, local_app_env, stop_app
from tests.helpers.fake_fal import FakeFal

# The tests build their models in code; nothing may reach for the Hugging Face hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def fake():
    with FakeFal(job_seconds=0.3, keys={SERVER_KEY, VISITOR_KEY}) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset_fake(request):
    """Every test starts with a fake in its default behaviour and no records."""
    if "fake" in request.fixturenames:
        server = request.getfixturevalue("fake")
        server.reset()
        server.keys = {SERVER_KEY, VISITOR_KEY}
    yield


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> dict[str, Path]:
    """Reference images made in code: a red 640x480 PNG and a blue 512x512 JPEG."""
    folder = tmp_path_factory.mktemp("images")
    red = Image.new("RGB", (640, 480), (200, 40, 40))
    red.paste((250, 220, 60), (200, 140, 440, 340))
    blue = Image.new("RGB", (512, 512), (30, 60, 200))
    paths = {"red": folder / "red.png", "blue": folder / "blue.jpg"}
    red.save(paths["red"])
    blue.save(paths["blue"], quality=95)
    return paths


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> dict[str, Path]:
    """A tiny random FLUX.2 pipeline saved to disk, and a LoRA folder for it."""
    from tests.helpers.tiny_flux2 import make_not_a_lora, make_tiny_lora, save_tiny_pipeline

    root = tmp_path_factory.mktemp("tiny-model")
    model = save_tiny_pipeline(root / "model")
    loras = root / "loras"
    make_tiny_lora(model, loras / "style.safetensors", trigger_words=["sks style"])
    make_not_a_lora(loras / "not-a-lora.safetensors")
    return {"model": model, "loras": loras}


@pytest.fixture(scope="session")
def app(fake, tmp_path_factory):
    """The app with a server key and the default (stream) transport."""
    launched = launch_app(tmp_path_factory.mktemp("app"), fake)
    yield launched
    stop_app(launched)


@pytest.fixture(scope="session")
def keyless_app(fake, tmp_path_factory):
    """The app without FAL_KEY: each visitor brings their own key."""
    launched = launch_app(tmp_path_factory.mktemp("keyless-app"), fake, FAL_KEY=None)
    yield launched
    stop_app(launched)


@pytest.fixture(scope="session")
def local_app(fake, tiny_model, tmp_path_factory):
    """The app offering both backends; "local" runs the tiny pipeline on the CPU."""
    launched = launch_app(
        tmp_path_factory.mktemp("local-app"), fake, **local_app_env(tiny_model),
        STUDIO_BACKENDS="fal,local", STUDIO_LORA_DIR=str(tiny_model["loras"]),
    )
    yield launched
    stop_app(launched)
