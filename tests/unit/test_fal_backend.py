"""FalBackend in-process against the fake fal server: faults, deadlines, uploads."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from PIL import Image

from backend.errors import AuthFailed, InvalidInput, MissingKey, RunTimeout, ServiceError
from backend.events import Preview, Progress, Queued, Result
from backend.fal import FalBackend, FalOptions, FalSettings, fal_arguments
from backend.request import build_request
from tests.helpers.app import ROOT, SERVER_KEY

OPTIONS = FalOptions()  # fal's defaults, as the form leaves them


def backend(transport="stream", **settings) -> FalBackend:
    return FalBackend(FalSettings(transport=transport, poll_interval=0.1, **settings), server_key=SERVER_KEY)


def request_for(images, **fields):
    return build_request(prompt="make it blue", image_urls=[str(images["red"])], **fields)


def drain(events):
    return list(events)


@pytest.mark.parametrize("transport", ["stream", "queue"])
def test_a_run_ends_with_the_result_and_the_seed(pointed, images, transport):
    events = drain(backend(transport).run(request_for(images, seed=7, num_images=2), OPTIONS))
    result = events[-1]
    assert isinstance(result, Result) and result.seed == 7 and len(result.images) == 2
    assert Image.open(io.BytesIO(result.images[0].data)).size == (result.images[0].width, result.images[0].height)
    if transport == "stream":
        assert any(isinstance(e, Preview) for e in events[:-1])
    else:
        assert any(isinstance(e, Queued) for e in events)


@pytest.mark.parametrize("transport", ["stream", "queue"])
def test_the_runs_options_reach_fal_with_the_request(pointed, images, transport):
    options = FalOptions(acceleration="high", enable_prompt_expansion=True, enable_safety_checker=False, sync_mode=True)
    request = request_for(images, seed=5)
    assert isinstance(drain(backend(transport).run(request, options))[-1], Result)
    [job] = pointed.jobs.values()
    assert job.input == fal_arguments(request, options, job.input["image_urls"])
    assert [job.input[name] for name in ("acceleration", "sync_mode", "enable_safety_checker")] == ["high", True, False]
    assert backend(transport).source(options) == "fal-ai/flux-2/lora/edit"


@pytest.mark.parametrize("transport", ["stream", "queue"])
def test_the_apps_own_deadline_cancels_the_job(pointed, images, transport):
    pointed.job_seconds = 30
    with pytest.raises(RunTimeout, match="longer than 1 s and was cancelled"):
        drain(backend(transport, run_timeout=1.0).run(request_for(images), OPTIONS))
    assert pointed.wait_for(lambda: all(j.cancelled for j in pointed.jobs.values()), timeout=5)
    assert len(pointed.jobs) == 1 and len(pointed.submits()) == 1


@pytest.mark.parametrize("transport", ["stream", "queue"])
def test_closing_the_run_cancels_the_job(pointed, images, transport):
    pointed.job_seconds = 30
    run = backend(transport).run(request_for(images), OPTIONS)
    for event in run:
        if isinstance(event, Progress) and any(j.state == "IN_PROGRESS" for j in pointed.jobs.values()):
            break
    run.close()
    assert pointed.wait_for(lambda: all(j.cancelled for j in pointed.jobs.values()), timeout=5)


def test_a_stop_while_fal_has_not_answered_the_stream_yet_cancels_the_job(pointed, images):
    # The window a busy page hits: the POST has started the job, fal's reply is on its way.
    # The stop cannot drop a socket it does not have yet; the reply must not keep the job alive.
    pointed.reply_delay, pointed.job_seconds = 3.0, 120  # longer than a stop waits; a first update after 24 s
    server = backend()  # the server's key: one client for every run, which outlives this one
    run = server.run(request_for(images), OPTIONS)
    for _event in run:
        if pointed.jobs:
            break
    run.close()
    assert pointed.wait_for(lambda: all(j.cancelled for j in pointed.jobs.values()), timeout=10)
    assert server.run  # still in use: its connections were not closed with it


def test_a_stream_cut_halfway_is_an_error_not_a_result(pointed, images):
    pointed.cut_stream_after = 2
    with pytest.raises(ServiceError) as caught:
        drain(backend().run(request_for(images), OPTIONS))
    assert "broke off before the result arrived" in caught.value.message
    assert len(pointed.submits()) == 1  # not sent again: fal had started it


@pytest.mark.parametrize("transport", ["stream", "queue"])
@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (401, AuthFailed, "fal refused the API key"),
        (500, ServiceError, "fal had a problem (HTTP 500)"),
    ],
)
def test_http_errors_become_messages(pointed, images, transport, status, error, words):
    pointed.fail = {"status": status, "on": "any", "times": 1}
    with pytest.raises(error) as caught:
        drain(backend(transport).run(request_for(images), OPTIONS))
    assert words in caught.value.message
    assert SERVER_KEY not in caught.value.message
    assert len(pointed.submits()) == 1 and not pointed.jobs  # refused, and not sent again


@pytest.mark.parametrize("transport", ["stream", "queue"])
def test_fal_validation_errors_name_the_field(pointed, images, transport):
    pointed.fail = {
        "status": 422, "on": "any", "times": 1,
        "detail": [
            {"loc": ["body", "image_size", "width"], "msg": "Input should be a multiple of 16", "type": "value_error"}
        ],
    }
    with pytest.raises(InvalidInput) as caught:
        drain(backend(transport).run(request_for(images), OPTIONS))
    [problem] = caught.value.problems
    assert len(pointed.submits()) == 1
    assert (problem.field, problem.label, problem.message) == (
        "image_size", "Width", "Input should be a multiple of 16"
    )


def test_no_key_at_all_explains_how_to_get_one(pointed, images):
    with pytest.raises(MissingKey, match="fal.ai"):
        drain(FalBackend(FalSettings()).run(request_for(images), OPTIONS))
    assert not pointed.requests


def test_more_images_than_fal_takes_is_refused(pointed, images):
    request = build_request(prompt="x", image_urls=[str(images["red"])] * 4)
    with pytest.raises(InvalidInput, match="fal takes at most 3 images"):
        drain(backend().run(request, OPTIONS))


def test_small_references_go_inline_and_large_ones_through_storage(pointed, images, tmp_path):
    noisy = Image.effect_noise((1000, 1000), 80).convert("RGB")
    path = tmp_path / "noisy.png"
    noisy.save(path)
    drain(backend().run(build_request(prompt="x", image_urls=[str(images["blue"]), str(path)]), OPTIONS))
    [job] = pointed.jobs.values()
    inline, uploaded = job.input["image_urls"]
    assert inline.startswith("data:image/jpeg;base64,")
    assert uploaded.startswith(pointed.url + "/cdn/files/")
    assert len(pointed.uploads) == 1


def test_the_hosted_app_does_not_import_torch_or_diffusers():
    code = "import sys, app; bad = {'torch', 'diffusers'} & set(sys.modules); print(sorted(bad)); sys.exit(bool(bad))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("transport", ["stream", "queue"])
def test_a_reply_that_is_not_json_is_a_clear_error(pointed, images, transport):
    pointed.malformed = True
    with pytest.raises(ServiceError, match="fal sent a reply the app could not read"):
        drain(backend(transport).run(request_for(images), OPTIONS))
    assert len(pointed.submits()) == 1 and len(pointed.jobs) == 1
    pointed.malformed = False
    assert isinstance(drain(backend(transport).run(request_for(images), OPTIONS))[-1], Result)


def test_a_result_image_that_cannot_be_fetched_is_a_clear_error(pointed, images):
    pointed.results_gone = True
    with pytest.raises(ServiceError, match=r"Could not download a result image \(HTTP 404\)"):
        drain(backend("queue").run(request_for(images), OPTIONS))
    assert len(pointed.submits()) == 1 and len(pointed.jobs) == 1
