"""Fixtures of the unit layer only: nothing here starts a process or a browser."""

from __future__ import annotations

import pytest


@pytest.fixture
def pointed(fake, monkeypatch):
    """The fake, with this process's fal-client aimed at it (for FalBackend in-process), and
    huggingface_hub at the session's stand-in Hub (LoRA headers)."""
    import fal_client.client as fal_client_module
    from huggingface_hub import constants

    from backend.fal import point_fal_client_at
    from tests.helpers.stand_ins.hub import session_hub

    monkeypatch.setenv("HF_ENDPOINT", session_hub().url)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    names = ("QUEUE_URL_FORMAT", "RUN_URL_FORMAT", "REST_URL", "CDN_URL")
    saved = {name: getattr(fal_client_module, name) for name in names}
    point_fal_client_at(fake.url)
    yield fake
    for name, value in saved.items():
        setattr(fal_client_module, name, value)


@pytest.fixture(autouse=True)
def _quick_fake_jobs(request):
    """In this layer a fal job takes 0.1 s (the app layers keep the fake's 0.3 s: a browser needs
    time to see a run going). A test that needs a job going for longer sets its own job_seconds."""
    if "fake" in request.fixturenames:
        request.getfixturevalue("fake").job_seconds = 0.1
    yield
