"""Nothing leaks, nothing injected, through the launched app (`python app.py` against the fake fal
server): fal's error bodies that echo a key reach neither the page nor the log, on every status and
both transports; values from a recipe PNG or fal's result are text on the page, never links or
images; a refused storage token and a queued job that fails on a field say what happened. The
redactor itself: tests/unit/test_redact.py; in-process: tests/unit/test_fal_redaction.py."""

from __future__ import annotations

import io

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from backend.recipes import embed_recipe
from tests.helpers.api import edit_args
from tests.helpers.app import SERVER_KEY, VISITOR_KEY, connect
from tests.helpers.injection import EVIL, crafted_recipe

STATUSES = [400, 401, 403, 404, 413, 422, 429, 500, 502, 503]
# What fal (or a proxy) would echo: the Authorization header as sent, the bare key, and the
# server's key after "Key " (which the keyless app does not know).
ECHO = "refused {auth} (you sent {key}); server Key " + SERVER_KEY
BOUND_S = 30


@pytest.fixture(autouse=True)
def quick_jobs(fake):
    fake.job_seconds, fake.steps = 0.1, 2


def _failed_message(app, images, **overrides) -> str:
    job = connect(app).submit(**edit_args(images, **overrides), api_name="/edit")
    with pytest.raises(AppError) as raised:
        job.result(timeout=BOUND_S)
    return str(raised.value)


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize(("which", "key"), [("app", SERVER_KEY), ("queue_app", SERVER_KEY),
                                            ("keyless_app", VISITOR_KEY)])
def test_a_fal_error_that_echoes_the_key_shows_and_logs_no_key(request, fake, images, which, key, status):
    app = request.getfixturevalue(which)
    since = len(app.log())
    detail = [{"loc": ["body", "loras", 0, "path"], "msg": ECHO, "type": "value_error"}] if status == 422 else ECHO
    fake.fail = {"status": status, "on": "submit" if which == "queue_app" else "stream", "times": None,
                 "detail": detail, "echo_key": True, "retry_after": "0"}
    message = _failed_message(app, images, fal_key=VISITOR_KEY if which == "keyless_app" else "")
    fake.fail = None
    assert any(r.headers.get("authorization") == f"Key {key}" for r in fake.requests)  # the key was sent...
    for secret in (SERVER_KEY, VISITOR_KEY):  # ...and is neither on the page nor in the log
        assert secret not in message
        assert secret not in app.log()[since:]
    if status not in (401, 403, 429):
        assert "refused Key **** (you sent ****); server Key ****" in message


@pytest.fixture
def large_reference(tmp_path):
    """Noise: more than 512 KiB once prepared, so it goes through fal's storage (upload)."""
    path = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (900, 900, 3), dtype=np.uint8)).save(path)
    return path


def test_a_key_refused_by_the_storage_token_request_says_so(keyless_app, fake, large_reference):
    message = _failed_message(keyless_app, {"red": large_reference}, fal_key="wrong-key-0123456789")
    assert "fal refused the API key (HTTP 401)" in message and "HTTPStatusError" not in message
    assert any(r.path.startswith("/rest/storage/auth/token") for r in fake.requests)
    assert "wrong-key-0123456789" not in keyless_app.log()


def test_a_queued_job_that_fails_on_a_lora_names_the_lora(queue_app, fake, images):
    fake.unloadable_loras = {"owner/missing"}
    message = _failed_message(queue_app, images, loras=[{"path": "owner/missing", "scale": 1.0, "enabled": True}])
    assert "LoRA 1 path: Could not load LoRA weights" in message
    assert len(fake.submits()) == 1


def test_the_safety_line_says_off_when_the_checker_is_off(app, images):
    *_, details, _seed = connect(app).predict(**edit_args(images, enable_safety_checker=False), api_name="/edit")
    assert "**Safety checker:** off" in details and "nothing flagged" not in details


def test_markup_in_a_prompt_comes_back_as_text(app, fake, images):
    _gallery, status, _logs, details, _seed = connect(app).predict(**edit_args(images, prompt=EVIL),
                                                                   api_name="/edit")
    assert status.startswith("✅ Done")
    [job] = fake.jobs.values()
    assert job.output["prompt"] == EVIL  # fal echoed the markup...
    assert "**Prompt used:** \\[link\\]\\(https\\://evil.example\\) &lt;img src=https\\://evil.example/t.png&gt;" \
        in details  # ...and the details show it as text
    assert "<img" not in details and "](https://" not in details


def test_a_crafted_recipe_png_restores_as_text(app, tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 20, 30)).save(buffer, format="PNG")
    png = tmp_path / "crafted.png"
    png.write_bytes(embed_recipe(buffer.getvalue(), crafted_recipe()))
    *values, status = connect(app, download_files=False).predict(handle_file(str(png)), 0, api_name="/restore")
    assert values[0] == EVIL  # the instruction comes back as it was, into a text box
    assert status.startswith("♻️ Restored the settings of a \\[link\\]\\(https\\://evil.example\\)")
    assert "<img" not in status and "](https://" not in status and "https://" not in status
