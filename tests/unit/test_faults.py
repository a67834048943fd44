"""The fault matrix of the fal backend, through the fake fal server, on both transports.

Each fault must end the run with a message naming what happened and what to do, within
a bounded time (while the fake would go on failing forever), cancel the fal job where
one exists, never submit the same job twice, and leave the backend (or the app) ready
for the next run, which succeeds.

In-process runs (FalBackend in this process, against the fake) use short retry waits
(FalSettings) so that nothing here waits on a backoff. The same faults through the launched
app: tests/app/test_faults.py.
"""

from __future__ import annotations

import pytest

from backend.errors import RateLimited, ServiceError, StudioError
from backend.events import Progress, Result
from backend.fal import FalBackend, FalOptions, FalSettings, point_fal_client_at
from backend.request import build_request
from tests.helpers.app import SERVER_KEY, free_port
from tests.helpers.backend_runs import run_to_end

# "Bounded": the run ends well before this, while the fake would answer the fault forever.
# (fal-client's own retries alone would take ~50-75 s per call.)
BOUND_S = 30
ATTEMPTS = 3
OPTIONS = FalOptions()  # fal's defaults, as the form leaves them


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





def failed_run(images, transport: str, **settings) -> StudioError:
    """A run against a faulty fake: the StudioError it ended with."""
    events, error = run_to_end(backend(transport, **settings).run(request_for(images), OPTIONS))
    assert isinstance(error, StudioError), f"expected a StudioError, got {error!r} after {events[-1:]}"
    assert SERVER_KEY not in error.message
    assert "<html" not in error.message.lower()
    return error


def assert_next_run_works(fake, images, transport: str) -> None:
    """The fault is gone: the next run on the same backend settings ends with a result."""
    fake.reset()  # knobs back to normal, records cleared
    fake.job_seconds, fake.steps = 0.1, 2  # still a short job (reset() restored the fixture's)
    events, error = run_to_end(backend(transport).run(request_for(images), OPTIONS))
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
    events, error = run_to_end(backend(transport).run(request_for(images), OPTIONS))
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

    stopped = backend("stream").run(request, OPTIONS)
    assert next(stopped).message == "Sending image 1 to fal…"
    stopped.close()  # Stop: returns at once, though the upload is still being retried

    events, error = run_to_end(backend("stream", run_timeout=2.0).run(request, OPTIONS))
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
        assert pointed.wait_for(lambda job=job: job.state == "COMPLETED" or job.cancelled, timeout=5)
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
    seen = _close_at(backend(transport).run(request_for(images), OPTIONS), moment, pointed)  # no exception
    [job] = pointed.jobs.values()
    assert pointed.wait_for(lambda: job.state == "COMPLETED", timeout=5)
    # The job had finished: a cancel, if one went out at all, changed nothing at fal.
    assert not job.cancelled and len(pointed.submits()) == 1
    if moment != "completing":  # fal's answer was in: no cancel at all
        assert not pointed.cancels()
        assert isinstance(seen[-1], Result) == (moment == "after")
    assert_next_run_works(pointed, images, transport)
