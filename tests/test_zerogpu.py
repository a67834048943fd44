"""The ZeroGPU path, with a stand-in for the `spaces` package (tests/stand_ins/spaces):
the app run as on a ZeroGPU Space, the GPU durations it asks for, and the instruction
encoded in a slot of its own."""

from __future__ import annotations

import json

import pytest
from gradio_client import Client, handle_file

from backend.settings import Settings, SettingsError
from backend.zerogpu import edit_seconds, on_zerogpu
from tests.conftest import ROOT, launch_app, stop_app
from tests.test_app_hosted import edit_args


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


@pytest.fixture(scope="module")
def zerogpu_app(fake, tiny_model, tmp_path_factory):
    from tests.tiny_flux2 import MAX_SEQUENCE_LENGTH, TEXT_ENCODER_OUT_LAYERS

    tmp = tmp_path_factory.mktemp("zerogpu-app")
    log = tmp / "spaces-calls.jsonl"
    launched = launch_app(
        tmp, fake, SPACES_ZERO_GPU="true", SPACES_STAND_IN_LOG=str(log),
        PYTHONPATH=str(ROOT / "tests" / "stand_ins"), FAL_KEY=None,
        STUDIO_MODEL=str(tiny_model["model"]), STUDIO_DEVICE="cpu", STUDIO_PREVIEW_DECODE_EVERY="2",
        STUDIO_TEXT_ENCODER_LAYERS=",".join(map(str, TEXT_ENCODER_OUT_LAYERS)),
        STUDIO_MAX_SEQUENCE_LENGTH=str(MAX_SEQUENCE_LENGTH), HF_HUB_OFFLINE="1",
    )
    yield launched, log
    stop_app(launched)


def calls(log) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_runs_on_zerogpu_ask_for_slots_that_fit_the_run(zerogpu_app, images):
    app, log = zerogpu_app
    client = Client(app.url, verbose=False, download_files=False)

    def edit(prompt, steps, *refs):
        args = edit_args(images, prompt=prompt, num_inference_steps=steps, backend="local",
                         image_2=handle_file(str(refs[1])) if len(refs) > 1 else None)
        before = len(calls(log))
        job = client.submit(**args, api_name="/edit")
        result = job.result(timeout=120)
        assert result[1].startswith("✅ Done"), result[1]
        statuses.extend(out[1] for out in job.outputs() if isinstance(out[1], str))
        return calls(log)[before:]

    statuses: list[str] = []

    first = edit("make it blue", 4, images["red"])
    # The model was loaded at start-up, outside any slot (ZeroGPU hands it to every slot).
    assert statuses and not any("Loading" in s for s in statuses)
    # A new instruction: a short slot for the text encoder, then the edit's slot.
    assert [c["function"] for c in first] == ["_encode_prompt", "_edit"]
    assert first[0]["duration"] == 30 and all(c["size"] == "xlarge" for c in first)
    # The same instruction again: only the edit's slot; more steps ask for more time.
    longer = edit("make it blue", 20, images["red"])
    assert [c["function"] for c in longer] == ["_edit"]
    assert longer[0]["duration"] > first[1]["duration"]
    # A second reference adds its tokens to every step.
    two = edit("make it blue", 20, images["red"], images["blue"])
    assert [c["function"] for c in two] == ["_edit"] and two[0]["duration"] > longer[0]["duration"]
