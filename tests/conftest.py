"""Shared fixtures: the fake fal server, and the real app launched against it.

The app runs as `python app.py` in a subprocess, exactly as a person starts it,
with STUDIO_FAL_BASE_URL pointing its unmodified fal-client at the fake server.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from tests.fake_fal import FakeFal

# The tests build their models in code; nothing may reach for the Hugging Face hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
SERVER_KEY = "fal-test-server-key-7f3a9c"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LaunchedApp:
    url: str
    outputs: Path
    log_path: Path
    process: subprocess.Popen

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def launch_app(tmp: Path, fake: FakeFal, **env_overrides: str | None) -> LaunchedApp:
    port = free_port()
    outputs = tmp / "outputs"
    env = {
        **os.environ,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "STUDIO_FAL_BASE_URL": fake.url,
        "STUDIO_OUTPUTS": str(outputs),
        "FAL_KEY": SERVER_KEY,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    for name, value in env_overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    log_path = tmp / "app.log"
    process = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env,
        stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the app exited at start-up:\n" + log_path.read_text())
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return LaunchedApp(url=url, outputs=outputs, log_path=log_path, process=process)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the app did not answer within 60 s:\n" + log_path.read_text())


def stop_app(app: LaunchedApp) -> None:
    app.process.terminate()
    try:
        app.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        app.process.kill()


@pytest.fixture(scope="session")
def fake():
    with FakeFal(job_seconds=0.3, keys={SERVER_KEY, "visitor-key-123"}) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset_fake(request):
    """Every test starts with a fake in its default behaviour and no records."""
    if "fake" in request.fixturenames:
        server = request.getfixturevalue("fake")
        server.reset()
        server.keys = {SERVER_KEY, "visitor-key-123"}
    yield


@pytest.fixture
def pointed(fake):
    """The fake, with this process's fal-client aimed at it (for FalBackend in-process)."""
    import fal_client.client as fal_client_module

    from backend.fal_backend import point_fal_client_at

    names = ("QUEUE_URL_FORMAT", "RUN_URL_FORMAT", "REST_URL", "CDN_URL")
    saved = {name: getattr(fal_client_module, name) for name in names}
    point_fal_client_at(fake.url)
    yield fake
    for name, value in saved.items():
        setattr(fal_client_module, name, value)


@pytest.fixture(scope="session")
def app(fake, tmp_path_factory):
    """The app with a server key and the default (stream) transport."""
    launched = launch_app(tmp_path_factory.mktemp("app"), fake)
    yield launched
    stop_app(launched)


@pytest.fixture(scope="session")
def queue_app(fake, tmp_path_factory):
    """The app using fal's queue transport (queue position, log lines, PUT cancel)."""
    launched = launch_app(tmp_path_factory.mktemp("queue-app"), fake, STUDIO_FAL_TRANSPORT="queue")
    yield launched
    stop_app(launched)


@pytest.fixture(scope="session")
def keyless_app(fake, tmp_path_factory):
    """The app without FAL_KEY: each visitor brings their own key."""
    launched = launch_app(tmp_path_factory.mktemp("keyless-app"), fake, FAL_KEY=None)
    yield launched
    stop_app(launched)


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


def image_size(path: str | Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> dict[str, Path]:
    """A tiny random FLUX.2 pipeline saved to disk, and a LoRA folder for it."""
    from tests.tiny_flux2 import make_not_a_lora, make_tiny_lora, save_tiny_pipeline

    root = tmp_path_factory.mktemp("tiny-model")
    model = save_tiny_pipeline(root / "model")
    loras = root / "loras"
    make_tiny_lora(model, loras / "style.safetensors", trigger_words=["sks style"])
    make_not_a_lora(loras / "not-a-lora.safetensors")
    return {"model": model, "loras": loras}


@pytest.fixture(scope="session")
def local_app(fake, tiny_model, tmp_path_factory):
    """The app offering both backends; "local" runs the tiny pipeline on the CPU."""
    from tests.tiny_flux2 import MAX_SEQUENCE_LENGTH, TEXT_ENCODER_OUT_LAYERS

    launched = launch_app(
        tmp_path_factory.mktemp("local-app"), fake,
        STUDIO_BACKENDS="fal,local", STUDIO_MODEL=str(tiny_model["model"]), STUDIO_DEVICE="cpu",
        STUDIO_LORA_DIR=str(tiny_model["loras"]), STUDIO_PREVIEW_DECODE_EVERY="2",
        STUDIO_TEXT_ENCODER_LAYERS=",".join(map(str, TEXT_ENCODER_OUT_LAYERS)),
        STUDIO_MAX_SEQUENCE_LENGTH=str(MAX_SEQUENCE_LENGTH), FAL_KEY=None, HF_HUB_OFFLINE="1",
    )
    yield launched
    stop_app(launched)


# -- the browser tests: Debian's Chromium and a screenshot per test --------------------------
CHROMIUM = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = ROOT / "tests" / "screenshots"
# The README's pictures are these tests' screenshots, copied into assets/ only when
# STUDIO_UPDATE_SCREENSHOTS=1 (so an ordinary test run leaves the tree as it was).
README_SCREENSHOTS = {
    "test_upload_run_and_see_the_result": "screenshot.png",
    "test_compare_chain_and_downloads": "screenshot-compare.png",
    "test_switching_to_the_local_backend_shows_its_controls_and_disables_fal_only_ones": "screenshot-local.png",
}


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module (Playwright driving Debian's package)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def screenshot(request):
    """`screenshot(page)` saves tests/screenshots/<test name>.png (`screenshot(page, "moment")`:
    <test name>-moment.png, for a test that shows more than one state); returns its path."""

    def save(page, moment: str = "") -> Path:
        import shutil

        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{request.node.name}{'-' + moment if moment else ''}.png"
        page.screenshot(path=str(path), full_page=True)
        asset = README_SCREENSHOTS.get(request.node.name)
        if asset and not moment and os.environ.get("STUDIO_UPDATE_SCREENSHOTS") == "1":
            shutil.copyfile(path, ROOT / "assets" / asset)
        return path

    return save
