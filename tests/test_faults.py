"""The fault matrix of the fal backend, through the fake fal server, on both transports.

Each fault must end the run with a message naming what happened and what to do, within
a bounded time (while the fake would go on failing forever), cancel the fal job where
one exists, never submit the same job twice, and leave the backend (or the app) ready
for the next run, which succeeds.

In-process runs use short retry waits (FalSettings) so that nothing here waits on a
backoff; the launched app runs with the defaults (a few seconds at most).
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
from pathlib import Path

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from backend.errors import RateLimited, ServiceError, StudioError
from backend.events import Progress, Result
from backend.fal_backend import FalBackend, FalSettings, point_fal_client_at
from backend.request import build_request
from tests.conftest import SERVER_KEY, free_port
from tests.test_app_hosted import edit_args

# "Bounded": the run ends well before this, while the fake would answer the fault forever.
# (fal-client's own retries alone would take ~50-75 s per call.)
BOUND_S = 30
ATTEMPTS = 3


@pytest.fixture(autouse=True)
def quick_jobs(fake):
    """Short jobs with few steps: these tests are about how runs end, not about images."""
    fake.job_seconds, fake.steps = 0.1, 2


def backend(transport: str, **settings) -> FalBackend:
    settings = {"poll_interval": 0.05, "retry_attempts": ATTEMPTS, "retry_backoff": 0.05,
                "retry_max_wait": 2.0, **settings}
    return FalBackend(FalSettings(transport=transport, **settings), server_key=SERVER_KEY)


def request_for(images, **fields):
    return build_request(prompt="make it blue", image_urls=[str(images["red"])], **fields)


def run_to_end(run, within: float = BOUND_S) -> tuple[list, BaseException | None]:
    """Drain a backend run in a thread: its events and the error it ended with.

    Fails the test if the run has not ended within `within` seconds.
    """
    events: list = []
    ended: list[BaseException | None] = []

    def drain() -> None:
        try:
            events.extend(run)
            ended.append(None)
        except BaseException as error:  # handed to the test
            ended.append(error)

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), f"the run did not end within {within} s"
    return events, ended[0]


def failed_run(images, transport: str, **settings) -> StudioError:
    """A run against a faulty fake: the StudioError it ended with."""
    events, error = run_to_end(backend(transport, **settings).run(request_for(images)))
    assert isinstance(error, StudioError), f"expected a StudioError, got {error!r} after {events[-1:]}"
    assert SERVER_KEY not in error.message
    assert "<html" not in error.message.lower()
    return error


def assert_next_run_works(fake, images, transport: str) -> None:
    """The fault is gone: the next run on the same backend settings ends with a result."""
    fake.reset()  # knobs back to normal, records cleared
    events, error = run_to_end(backend(transport).run(request_for(images)))
    assert error is None and isinstance(events[-1], Result)
    assert len(fake.jobs) == 1 and len(fake.submits()) == 1


# -- 429 that never ends ------------------------------------------------------------------


@pytest.mark.parametrize(("transport", "retry_after", "when"), [
    ("stream", None, "Try again in a minute"),
    ("queue", None, "Try again in a minute"),
    ("queue", "1", "Try again in 1 s"),  # a short Retry-After is waited out between tries
])
def test_a_rate_limit_that_never_ends_stops_after_a_few_tries(pointed, images, transport, retry_after, when):
    pointed.fail = {"status": 429, "on": "any", "times": None, "retry_after": retry_after}
    error = failed_run(images, transport)
    assert isinstance(error, RateLimited)
    assert error.message.startswith("fal is rate limiting this key (HTTP 429)") and when in error.message
    # Tried again a few times (fal refuses before it queues anything), then gave up.
    assert 1 < len(pointed.submits()) <= ATTEMPTS
    assert not pointed.jobs
    assert_next_run_works(pointed, images, transport)


@pytest.mark.parametrize("transport", ["stream", "queue"])
def test_a_rate_limit_asking_for_a_long_wait_ends_the_run_at_once(pointed, images, transport):
    pointed.fail = {"status": 429, "on": "any", "times": None, "retry_after": "120"}
    error = failed_run(images, transport)
    assert isinstance(error, RateLimited) and "Try again in 2 min" in error.message
    assert len(pointed.submits()) == 1 and not pointed.jobs
    assert_next_run_works(pointed, images, transport)


@pytest.mark.parametrize("transport", ["stream", "queue"])
def test_a_short_rate_limit_is_waited_out(pointed, images, transport):
    pointed.fail = {"status": 429, "on": "any", "times": 2}
    events, error = run_to_end(backend(transport).run(request_for(images)))
    assert error is None and isinstance(events[-1], Result)
    assert len(pointed.submits()) == 3 and len(pointed.jobs) == 1
    # While it waited, the status said why and when it would try again.
    notes = [e.message for e in events if isinstance(e, Progress) and "trying again" in e.message]
    assert list(dict.fromkeys(notes)) == [
        "fal is rate limiting this key (HTTP 429); trying again in a moment (try 2 of 3)…",
        "fal is rate limiting this key (HTTP 429); trying again in a moment (try 3 of 3)…",
    ], notes


def test_a_large_reference_whose_upload_is_rate_limited_can_be_stopped_and_meets_the_deadline(
    pointed, images, tmp_path,
):
    # Over 512 KB, a reference goes through fal-client's upload client, which retries a 429
    # by itself for about a minute: the run must still say what it does, obey Stop and end
    # at the app's deadline.
    from PIL import Image

    path = tmp_path / "noisy.png"
    Image.effect_noise((1000, 1000), 80).convert("RGB").save(path)
    pointed.fail = {"status": 429, "on": "upload", "times": None}
    request = build_request(prompt="make it blue", image_urls=[str(path)])

    stopped = backend("stream").run(request)
    assert next(stopped).message == "Sending image 1 to fal…"
    stopped.close()  # Stop: returns at once, though the upload is still being retried

    events, error = run_to_end(backend("stream", run_timeout=2.0).run(request))
    assert isinstance(error, StudioError) and "took longer than 2 s" in error.message
    assert any(isinstance(e, Progress) and e.message == "Sending image 1 to fal…" for e in events)
    assert not pointed.jobs and not pointed.submits()


# -- 502 / 503 from a proxy (an HTML page, not fal's JSON) ---------------------------------


PROXY_FAULTS = [  # (transport, where the proxy fails, its status)
    ("stream", "stream", 502), ("stream", "stream", 503), ("stream", "download", 503),
    ("queue", "submit", 502), ("queue", "submit", 503), ("queue", "status", 503),
    ("queue", "status", 502), ("queue", "result", 502), ("queue", "result", 503), ("queue", "download", 502),
]


@pytest.mark.parametrize(("transport", "where", "status"), PROXY_FAULTS)
def test_a_proxy_error_names_the_status_and_cancels_the_job(pointed, images, transport, where, status):
    pointed.fail = {"status": status, "on": where, "times": None, "ingress": True}
    error = failed_run(images, transport)
    assert isinstance(error, ServiceError) and error.status_code == status
    if where == "download":
        assert f"fal's file server is unavailable (HTTP {status})" in error.message
    else:
        assert error.message.startswith(f"fal's service is unavailable (HTTP {status} ")
    assert "try again in a minute" in error.message.lower()
    # At most one job; one that had not finished is cancelled (a finished one is left alone).
    assert len(pointed.jobs) <= 1 and len(pointed.submits()) <= 1
    for job in pointed.jobs.values():
        assert pointed.wait_for(lambda: job.state == "COMPLETED" or job.cancelled, timeout=5)
    if where == "status":
        assert all(job.cancelled for job in pointed.jobs.values())
    if where in ("result", "download"):
        assert all(job.state == "COMPLETED" and not job.cancelled for job in pointed.jobs.values())
    assert_next_run_works(pointed, images, transport)


# -- never the same job twice --------------------------------------------------------------


@pytest.mark.parametrize("transport", ["stream", "queue"])
@pytest.mark.parametrize(("lost", "words"), [
    (502, "fal's service is unavailable (HTTP 502 "),
    ("drop", "The connection to fal broke off"),
])
def test_a_job_whose_reply_was_lost_is_not_sent_again(pointed, images, transport, lost, words):
    # fal took the job, but the answer never came back: sending it again would run it twice.
    pointed.submit_reply_lost = lost
    error = failed_run(images, transport)
    assert words in error.message
    assert len(pointed.submits()) == 1 and len(pointed.jobs) == 1
    assert_next_run_works(pointed, images, transport)


@pytest.mark.parametrize("transport", ["stream", "queue"])
def test_an_unreachable_fal_is_tried_a_few_times_then_named(pointed, images, transport):
    point_fal_client_at(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    error = failed_run(images, transport)
    assert "Could not reach fal (ConnectError)" in error.message and "connection" in error.message
    point_fal_client_at(pointed.url)
    assert_next_run_works(pointed, images, transport)


# -- Stop racing with completion -----------------------------------------------------------


def _close_at(run, moment: str, fake) -> list:
    """Iterate `run` and close it at `moment`: "completing" (the first event after fal
    finished the job), "before" (the download, right before the result) or "after"."""
    seen = []
    for event in run:
        seen.append(event)
        if moment == "completing" and any(j.state == "COMPLETED" for j in fake.jobs.values()):
            break
        if moment == "before" and isinstance(event, Progress) and event.message.startswith("Downloading"):
            break
        if moment == "after" and isinstance(event, Result):
            break
    run.close()
    return seen


@pytest.mark.parametrize("transport", ["stream", "queue"])
@pytest.mark.parametrize("moment", ["completing", "before", "after"])
def test_stop_racing_with_completion_is_clean(pointed, images, transport, moment):
    pointed.job_seconds = 0.3  # several updates before fal finishes
    seen = _close_at(backend(transport).run(request_for(images)), moment, pointed)  # no exception
    [job] = pointed.jobs.values()
    assert pointed.wait_for(lambda: job.state == "COMPLETED", timeout=5)
    # The job had finished: a cancel, if one went out at all, changed nothing at fal.
    assert not job.cancelled and len(pointed.submits()) == 1
    if moment != "completing":  # fal's answer was in: no cancel at all
        assert not pointed.cancels()
        assert isinstance(seen[-1], Result) == (moment == "after")
    assert_next_run_works(pointed, images, transport)


# -- through the launched app --------------------------------------------------------------


def _exceptions_logged(app, since: int) -> list[str]:
    """The last line (type: message) of each traceback the app logged after `since`.

    Gradio prints a traceback for every gr.Error too: the message shown to the person.
    """
    log = app.log()[since:]
    assert SERVER_KEY not in log
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last):")]
    return [next((line for line in lines[i + 1:] if line and not line[0].isspace()), "?") for i in starts]


def _only_messages_shown(app, since: int) -> None:
    """Every exception the app logged is a message for the person, none a crash."""
    unexpected = [e for e in _exceptions_logged(app, since) if not e.startswith("gradio.exceptions.Error:")]
    assert not unexpected


def _assert_outputs_whole(outputs: Path) -> None:
    """Every saved run is complete: its recipe and each image it lists; no temporary files."""
    for folder in {p.parent for p in outputs.rglob("image-*")} | {p.parent for p in outputs.rglob("recipe.json")}:
        recipe = json.loads((folder / "recipe.json").read_text())
        assert len(list(folder.glob("image-*"))) == recipe["request"]["num_images"], folder
    assert not list(outputs.rglob(".tmp-*"))


def test_app_rate_limited_forever_says_when_to_try_again_and_keeps_serving(app, fake, images):
    since = len(app.log())
    fake.fail = {"status": 429, "on": "any", "times": None, "retry_after": "1"}
    client = Client(app.url, verbose=False)
    job = client.submit(**edit_args(images), api_name="/edit")
    with pytest.raises(AppError, match=r"fal is rate limiting this key \(HTTP 429\).*Try again in 1 s"):
        job.result(timeout=BOUND_S)
    assert not fake.jobs
    fake.fail = None
    assert client.predict(**edit_args(images), api_name="/edit")[1].startswith("✅ Done")
    assert len(fake.jobs) == 1
    _only_messages_shown(app, since)


@pytest.mark.parametrize(("which", "where"), [("app", "stream"), ("queue_app", "status")])
def test_app_proxy_503_names_the_status_and_keeps_serving(which, where, request, fake, images):
    app = request.getfixturevalue(which)
    since = len(app.log())
    fake.fail = {"status": 503, "on": where, "times": None, "ingress": True}
    client = Client(app.url, verbose=False)
    job = client.submit(**edit_args(images), api_name="/edit")
    with pytest.raises(AppError, match=r"fal's service is unavailable \(HTTP 503 Service Unavailable\)"):
        job.result(timeout=BOUND_S)
    assert len(fake.jobs) <= 1 and len(fake.submits()) <= 1
    assert fake.wait_for(lambda: all(j.cancelled for j in fake.jobs.values()), timeout=5)
    fake.fail = None
    assert client.predict(**edit_args(images), api_name="/edit")[1].startswith("✅ Done")
    _only_messages_shown(app, since)


@pytest.mark.parametrize("which", ["app", "queue_app"])
def test_app_stop_as_the_result_arrives_is_clean(which, request, fake, images):
    app = request.getfixturevalue(which)
    since = len(app.log())
    fake.job_seconds = 0.5
    client = Client(app.url, verbose=False)
    job = client.submit(**edit_args(images), api_name="/edit")
    assert fake.wait_for(lambda: any(j.state == "COMPLETED" for j in fake.jobs.values()), timeout=BOUND_S)
    job.cancel()  # Stop, at the moment fal hands over the result
    assert fake.wait_for(job.done, timeout=BOUND_S)
    # Either the run finished (and was saved) or it stopped; no error shown either way.
    # (gradio_client ends a cancelled job with a KeyError of its own, or CancelledError.)
    try:
        ended = job.exception(timeout=0)
    except concurrent.futures.CancelledError:
        ended = None
    assert not isinstance(ended, AppError)
    [finished] = fake.jobs.values()
    assert not finished.cancelled and len(fake.submits()) == 1
    _assert_outputs_whole(app.outputs)
    # The page is ready for the next run.
    assert client.predict(**edit_args(images), api_name="/edit")[1].startswith("✅ Done")
    _assert_outputs_whole(app.outputs)
    assert not _exceptions_logged(app, since)
