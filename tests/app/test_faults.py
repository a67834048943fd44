"""The fault matrix of the fal backend through the launched app (`python app.py` against the fake
fal server): each fault ends the run with a message for the person, never a crash, the job is
not sent twice, nothing half-saved is left, and the app keeps serving. The launched app runs
with the default retry waits (a few seconds at most). The in-process matrix, on both
transports: tests/unit/test_faults.py.
"""

from __future__ import annotations

import concurrent.futures
import json
from pathlib import Path

import pytest
from gradio_client.exceptions import AppError

from tests.helpers.api import edit_args
from tests.helpers.app import SERVER_KEY, connect

# "Bounded": the run ends well before this, while the fake would answer the fault forever.
BOUND_S = 30


@pytest.fixture(autouse=True)
def quick_jobs(fake):
    """Short jobs with few steps: these tests are about how runs end, not about images."""
    fake.job_seconds, fake.steps = 0.1, 2


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
    client = connect(app)
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
    client = connect(app)
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
    client = connect(app)
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
