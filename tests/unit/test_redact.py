"""Nothing leaks, nothing injected: the redactor (backend/redact.py), fal's error mapping with it
(backend/fal/http.py), and values shown as text, never Markdown or HTML (ui/text.py). Through the
launched app: tests/app/test_redaction.py."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from PIL import Image

from backend.errors import AuthFailed, InvalidInput, RateLimited, ServiceError
from backend.events import Result, ResultImage
from backend.fal import FalOptions
from backend.fal.http import http_error
from backend.local.options import LocalOptions
from backend.outputs import recipe_for
from backend.recipes import embed_recipe
from backend.redact import MASK, RedactingFilter, install_log_redaction, redact, secrets_in_use
from backend.request import build_request
from tests.helpers.injection import EVIL, crafted_recipe
from ui import png_restore
from ui.details import describe_run, run_extras, shown_images
from ui.form import PageSetup
from ui.text import as_code, as_text, error_text

FAL_KEY = "6f1c3b8e-1a2b-4c3d-9e8f-0123456789ab:0123456789abcdef0123456789abcdef"
SERVER = "fal-test-server-key-7f3a9c"
VISITOR = "visitor-key-123"



# -- the redactor ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    f"Authorization: Key {SERVER}", f"Authorization: Bearer {SERVER}", f"authorization=bearer {SERVER}",
    f"got {SERVER} and {VISITOR}", f"'Key {FAL_KEY}'", f"key id {FAL_KEY.split(':')[0]} secret {FAL_KEY.split(':')[1]}",
    f"url-encoded {FAL_KEY.replace(':', '%3A')}",
])
def test_keys_are_masked_in_every_spelling(text):
    cleaned = redact(text, SERVER, VISITOR, FAL_KEY)
    for secret in (SERVER, VISITOR, FAL_KEY, *FAL_KEY.split(":")):
        assert secret not in cleaned
    assert MASK in cleaned


def test_key_shaped_tokens_and_schemes_are_masked_without_being_named():
    assert redact(f"echo {FAL_KEY} end") == f"echo {MASK} end"
    assert redact("token abcdefghijkl_mnop:ABCDEFGHIJKLMNOPQRSTUVWXYZ01 end") == f"token {MASK} end"
    assert redact("Key anything-at-all, Bearer eyJhbGciOi.x.y") == f"Key {MASK}, Bearer {MASK}"


def test_ordinary_text_is_left_alone():
    text = ("fal refused the API key (HTTP 401). Step 3/28 at http://127.0.0.1:7860/ 2024-05-01T12:34:56 "
            "LoRA 1 path: Could not load LoRA weights; KeyError: 'x'")
    assert redact(text, "", None, "short") == text


def test_a_key_in_use_is_masked_everywhere_until_the_run_ends():
    with secrets_in_use(VISITOR):
        assert VISITOR not in redact(f"log line {VISITOR}")
    assert redact(f"log line {VISITOR}") == f"log line {VISITOR}"


def test_the_log_filter_masks_messages_arguments_and_tracebacks():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.Logger("redact-test")
    logger.addHandler(handler)
    install_log_redaction(logger)
    assert any(isinstance(f, RedactingFilter) for f in handler.filters)
    with secrets_in_use(SERVER):
        logger.warning("upload failed: %s", f"401 for Key {VISITOR}")
        logger.warning("server key %s and %s", SERVER, FAL_KEY)
        try:
            raise RuntimeError(f"body echoed {FAL_KEY}")
        except RuntimeError:
            logger.exception("failed")
    written = stream.getvalue()
    assert VISITOR not in written and SERVER not in written and FAL_KEY not in written
    assert "Key ****" in written and "RuntimeError: body echoed ****" in written


# -- fal's answers, every status --------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422, 429, 500, 502, 503])
def test_every_fal_status_is_mapped_without_the_keys(status):
    text = f"refused Key {SERVER} ({VISITOR}); also {FAL_KEY}"
    detail = [{"loc": ["body", "loras", 0, "path"], "msg": text}] if status == 422 else text
    error = http_error(status, detail, {}, (SERVER, VISITOR))
    for secret in (SERVER, VISITOR, FAL_KEY):
        assert secret not in error.message
    if status in (401, 403):
        assert isinstance(error, AuthFailed)
    elif status == 422:
        assert isinstance(error, InvalidInput) and error.message == "LoRA 1 path: refused Key **** (****); also ****"
    elif status == 429:
        assert isinstance(error, RateLimited)
    else:
        assert isinstance(error, ServiceError) and "refused Key ****" in error.message


def test_a_key_cut_by_the_length_limit_is_masked_before_the_cut():
    error = http_error(400, "x" * 280 + SERVER, {}, (SERVER,))
    assert SERVER[:10] not in error.message


# -- values as text -----------------------------------------------------------------------------


def test_as_text_leaves_no_link_image_or_html():
    text = as_text(EVIL + " www.evil.example me@evil.example")
    assert "<" not in text and ">" not in text
    for live in ("[link](", "![x](", "https://", "www.evil", "me@evil"):
        assert live not in text
    assert "\\[link\\]\\(https\\://evil.example\\)" in text and "&lt;img src=" in text


def test_as_code_fences_any_backticks_and_error_text_escapes_html():
    assert as_code(77) == "`77`"
    assert as_code("a `b` c") == "``a `b` c``"
    assert error_text("<img src=x> & more") == "&lt;img src=x&gt; &amp; more"


def _result(**fields) -> Result:
    image = ResultImage(data=b"", content_type="image/png", width=64, height=64)
    return Result(images=(image,), seed=fields.pop("seed", 7), **fields)


def describe_result(result: Result, folder: Path, options) -> str:
    """The details as ui/run.py run_edit builds them: the saved recipe, the page's extras."""
    backend = "fal" if isinstance(options, FalOptions) else "local"
    recipe = {**recipe_for(build_request(prompt="x", image_urls=["image.png"]), options, result, backend, "endpoint"),
              **run_extras(1.0, list(result.notes), None)}
    return describe_run(recipe, shown_images(result), folder)


def test_result_details_show_fal_and_visitor_values_as_text():
    details = describe_result(_result(prompt=EVIL, notes=(f"LoRA {EVIL}",), timings={"<b>x</b>": 1.0}),
                              Path("2024-05-01/run"), FalOptions())
    assert "<img" not in details and "<b>" not in details and "](https://" not in details
    assert "**Prompt used:** \\[link\\]\\(https\\://evil.example\\)" in details
    assert "**Seed:** `7`" in details and "**Saved as:** `2024-05-01/run`" in details


@pytest.mark.parametrize(("options", "said"), [
    (FalOptions(), "nothing flagged"), (FalOptions(enable_safety_checker=False), "off"),
    (LocalOptions(model="owner/model"), "none on this backend"),
])
def test_the_safety_line_says_whether_the_checker_ran(options, said):
    assert f"**Safety checker:** {said}" in describe_result(_result(), Path("run"), options)


def test_a_restored_recipe_puts_no_markup_into_the_status(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buffer, format="PNG")
    png = tmp_path / "crafted.png"
    png.write_bytes(embed_recipe(buffer.getvalue(), crafted_recipe()))
    setup = PageSetup(("fal",), "fal", False, (), "", "gpu")
    *values, version, status = png_restore.restore_png(str(png), 0, setup)
    assert version == 1 and status.startswith("♻️ Restored the settings of a \\[link\\]")
    assert "<img" not in status and "](https://" not in status and "https://" not in status
