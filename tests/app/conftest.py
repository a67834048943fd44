"""Fixtures of the app layer only (the shared `app`, `keyless_app` and `local_app` are in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.helpers.app import launch_app, stop_app


@pytest.fixture(scope="session")
def queue_app(fake, tmp_path_factory):
    """The app using fal's queue transport (queue position, log lines, PUT cancel)."""
    launched = launch_app(tmp_path_factory.mktemp("queue-app"), fake, STUDIO_FAL_TRANSPORT="queue")
    yield launched
    stop_app(launched)
