"""The ZeroGPU path: the GPU durations the app asks for, and what a ZeroGPU Space offers and
needs. The app run as on a ZeroGPU Space, with a stand-in for the `spaces` package:
tests/app/test_zerogpu.py."""

from __future__ import annotations

import pytest

from backend.local.zerogpu import edit_seconds, on_zerogpu
from backend.settings import Settings, SettingsError


def test_the_duration_grows_with_steps_images_size_and_references():
    base = edit_seconds(28, 1, 1024, 1024, [(1024, 1024)])
    assert 40 <= base <= 90  # ~31 s of denoising on an H200, plus loading and a margin
    assert edit_seconds(50, 1, 1024, 1024, [(1024, 1024)]) > base
    assert edit_seconds(28, 2, 1024, 1024, [(1024, 1024)]) > base
    assert edit_seconds(28, 1, 1440, 1440, [(1024, 1024)]) > base
    assert edit_seconds(28, 1, 1024, 1024, [(1024, 1024)] * 3) > base
    assert edit_seconds(28, 1, 512, 512, [(512, 512)]) < base
    assert edit_seconds(50, 4, 2048, 2048, [(1024, 1024)] * 6) == 300  # capped


def test_a_zerogpu_space_offers_the_local_backend_and_needs_spaces():
    assert on_zerogpu({"SPACES_ZERO_GPU": "true"}) and not on_zerogpu({})
    # Without `spaces` installed (this environment), the start says what to add.
    with pytest.raises(SettingsError, match="needs the spaces package: add spaces to requirements.txt"):
        Settings.from_env({"SPACES_ZERO_GPU": "true"})
    hosted = Settings.from_env({"SPACES_ZERO_GPU": "true", "STUDIO_BACKENDS": "fal"})
    assert hosted.backends == ("fal",) and hosted.default_backend == "fal"
