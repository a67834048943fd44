"""The app run as on a ZeroGPU Space, with a stand-in for the `spaces` package
(tests/helpers/stand_ins/spaces): the GPU durations it asks for, and the instruction encoded
in a slot of its own (the durations themselves: tests/unit/test_zerogpu.py)."""

from __future__ import annotations

import json

import httpx
import pytest
from gradio_client import handle_file

from tests.helpers.api import edit_args
from tests.helpers.app import ROOT, connect, launch_app, local_app_env, stop_app

STAND_INS = ROOT / "tests" / "helpers" / "stand_ins"


@pytest.fixture(scope="module")
def zerogpu_app(fake, tiny_model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("zerogpu-app")
    log = tmp / "spaces-calls.jsonl"
    launched = launch_app(
        tmp, fake, SPACES_ZERO_GPU="true", SPACES_STAND_IN_LOG=str(log),
        # The H200's step (no warm-up): this CPU's tiny-model step would make every slot the minimum.
        STUDIO_STEP_SECONDS="1.12",
        PYTHONPATH=str(STAND_INS), **local_app_env(tiny_model),
    )
    yield launched, log
    stop_app(launched)


def calls(log) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_runs_on_zerogpu_ask_for_slots_that_fit_the_run(zerogpu_app, images):
    app, log = zerogpu_app
    client = connect(app, download_files=False)

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


def test_the_page_says_what_the_start_up_made_of_the_card(zerogpu_app):
    app, log = zerogpu_app
    # The card is read in a slot of its own before the model loads; no GPU here (the stand-in
    # on a CPU), so the operator's settings stay and the Speed field's note says so.
    assert calls(log)[0] == {"function": "from_torch", "duration": 30, "size": "xlarge"}
    config = httpx.get(f"{app.url}config").json()
    [speed] = [c for c in config["components"] if c.get("props", {}).get("elem_id") == "local-speed"]
    assert speed["props"]["info"].endswith("GPU: not readable at start-up; memory and speed as set.")
    assert "GPU could not be read" in app.log()
