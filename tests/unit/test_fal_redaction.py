"""fal's answers that echo a key, a refused storage token, and a queued job that fails on a field:
FalBackend in this process against the fake fal server, on both transports (through the launched
app: tests/app/test_redaction.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from backend.errors import AuthFailed, InvalidInput, StudioError
from backend.events import Log, Result
from backend.fal import FalBackend, FalOptions, FalSettings
from backend.fal.transports import log_events
from backend.request import build_request
from tests.helpers.app import SERVER_KEY, VISITOR_KEY
from tests.helpers.backend_runs import run_to_end

OPTIONS = FalOptions()
ECHO = "refused {auth} (you sent {key})"
STATUSES = [400, 401, 403, 404, 413, 422, 429, 500, 502, 503]


@pytest.fixture(autouse=True)
def quick_jobs(fake):
    fake.job_seconds, fake.steps = 0.1, 2


def backend(transport: str, server_key: str | None = SERVER_KEY) -> FalBackend:
    return FalBackend(FalSettings(transport=transport, poll_interval=0.05, retry_attempts=2, retry_backoff=0.01,
                                  retry_max_wait=0.1), server_key=server_key)


def run(images, transport: str, key: str | None = None, server_key: str | None = SERVER_KEY, **fields):
    request = build_request(prompt="make it blue", image_urls=[str(images.get("path") or images["red"])], **fields)
    return run_to_end(backend(transport, server_key).run(request, OPTIONS, key=key))


@pytest.mark.parametrize("transport", ["stream", "queue"])
@pytest.mark.parametrize("status", STATUSES)
def test_a_fal_answer_echoing_the_key_shows_no_key(pointed, images, transport, status):
    detail = [{"loc": ["body", "prompt"], "msg": ECHO, "type": "value_error"}] if status == 422 else ECHO
    pointed.fail = {"status": status, "on": "stream" if transport == "stream" else "submit", "times": None,
                    "detail": detail, "echo_key": True, "retry_after": "0"}
    events, error = run(images, transport, key=VISITOR_KEY)
    assert isinstance(error, StudioError), error
    assert VISITOR_KEY not in error.message and SERVER_KEY not in error.message
    if status not in (401, 403, 429):
        assert "refused Key **** (you sent ****)" in error.message


def test_fal_log_lines_are_redacted_with_the_runs_keys():
    [line] = log_events([{"message": f"loading with Key {VISITOR_KEY}; {SERVER_KEY}", "level": "INFO"}],
                        (VISITOR_KEY, SERVER_KEY))
    assert line == Log(message="loading with Key ****; ****", level="INFO")


@pytest.fixture
def large_reference(tmp_path):
    """Noise: more than 512 KiB once prepared, so it goes through fal's storage (upload)."""
    path = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (900, 900, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("transport", ["stream", "queue"])
def test_a_key_refused_by_the_storage_token_request_reads_as_the_401_it_is(pointed, large_reference, transport):
    events, error = run({"path": large_reference}, transport, key="wrong-key-0123456789", server_key=None)
    assert isinstance(error, AuthFailed), error
    assert error.message.startswith("fal refused the API key (HTTP 401)")
    assert any(r.path.startswith("/rest/storage/auth/token") for r in pointed.requests)
    assert not pointed.jobs


@pytest.mark.parametrize("transport", ["stream", "queue"])
def test_a_lora_fal_cannot_load_is_named_on_both_transports(pointed, images, transport):
    pointed.unloadable_loras = {"owner/missing"}
    events, error = run(images, transport, loras=[{"path": "owner/missing", "scale": 1.0}])
    assert isinstance(error, InvalidInput), error
    assert error.message == "LoRA 1 path: Could not load LoRA weights"
    [job] = pointed.jobs.values()
    assert job.errors and len(pointed.submits()) == 1
    pointed.unloadable_loras = set()
    events, error = run(images, transport, loras=[{"path": "owner/style", "scale": 1.0}])
    assert error is None and isinstance(events[-1], Result)
