"""Load and isolation: many people using the launched app at once, against the fake fal server.

50 gradio_client sessions (one Client each, as 50 browser tabs) make 4 runs each, all at
the same time. Every run must finish, and every session must get back only what its own
requests made: each result image is traced to the fal job that rendered it by its pixels
(the fake renders from the prompt, the seed and the reference, so no two jobs here share
pixels), not by anything the app says about it.

The history itself lives in each browser (localStorage) and is filled by a page-only
event, so it cannot be reached through the API; what goes into it (the saved run's
recipe, named by "Saved as" in the run details) is checked instead.

A full queue under a burst is covered here with a small STUDIO_MAX_QUEUE app; the
one-by-one case (running, waiting, refused) is
tests/app/test_app_hosted.py::test_a_full_queue_answers_busy_instead_of_piling_up.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from gradio_client import Client
from PIL import Image

from tests.helpers.api import edit_args
from tests.helpers.app import SERVER_KEY, connect, launch_app, stop_app
from tests.helpers.fake_fal import FakeFal, decode_data_uri

SESSIONS = 50
RUNS = 4


@pytest.fixture(scope="module")
def load_fake():
    """A fake of its own: short jobs, few steps, small images (50 sessions share 2 cores)."""
    with FakeFal(job_seconds=0.2, keys={SERVER_KEY}) as server:
        server.steps = 2
        server.max_output_side = 64
        yield server


@pytest.fixture(scope="module")
def load_app(load_fake, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("load-app")
    launched = launch_app(tmp, load_fake, GRADIO_TEMP_DIR=str(tmp / "gradio-cache"))
    yield launched
    stop_app(launched)


def new_client(app) -> Client:
    """One session, as one browser tab; files stay on the server and are fetched by URL.

    With generous httpx timeouts (tests/helpers/app.py): with 50 sessions starting at once
    on a busy machine, fetching the config took longer than httpx's default 5 s."""
    return connect(app, download_files=False, analytics_enabled=False)


def session_reference(folder: Path, session: int) -> Path:
    """A small PNG in a colour of this session's own (sent to fal as it is)."""
    path = folder / f"session-{session}.png"
    Image.new("RGB", (80, 64), (40 + 4 * session, 230 - 3 * session, (37 * session) % 256)).save(path)
    return path


def pixel_digest(data: bytes) -> str:
    """What an image shows, whatever metadata its file carries (saved PNGs embed their recipe)."""
    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
        return hashlib.sha256(repr(rgb.size).encode() + rgb.tobytes()).hexdigest()


def sent_reference(url: str, fake: FakeFal) -> bytes:
    """The bytes fal fetched for one of a job's image_urls."""
    if url.startswith("data:"):
        return decode_data_uri(url)
    return fake.uploads[url.rsplit("/", 1)[1]]


def saved_folder(details: str) -> str:
    match = re.search(r"\*\*Saved as:\*\* `([^`]+)`", details)
    assert match, details
    return match.group(1)


def test_fifty_sessions_at_once_each_get_their_own_results(load_app, load_fake, tmp_path):
    references = {s: session_reference(tmp_path, s) for s in range(1, SESSIONS + 1)}
    results: dict[int, list[dict]] = {s: [] for s in references}
    failures: list[str] = []
    start = threading.Barrier(SESSIONS)

    def session(number: int) -> None:
        try:
            client = new_client(load_app)
        except Exception:
            start.abort()
            raise
        try:
            start.wait()  # every session is connected: now they all run at once
            # The server (uvicorn) closes a kept-alive connection after 5 idle seconds; a run
            # on a busy machine takes longer, and reusing the connection just as the server
            # closes it reads "connection reset by peer". Let idle connections go first.
            with httpx.Client(timeout=60, limits=httpx.Limits(keepalive_expiry=2.0)) as http:
                for run in range(1, RUNS + 1):
                    prompt = f"session {number} run {run}"
                    try:
                        gallery, status, _logs, details, seed = client.predict(
                            **edit_args({"red": references[number]}, prompt=prompt), api_name="/edit",
                        )
                        images = [http.get(item["image"]["url"]).raise_for_status().content for item in gallery]
                    except Exception as error:
                        failures.append(f"{prompt}: {type(error).__name__}: {error}")
                        continue
                    results[number].append({"prompt": prompt, "status": status, "details": details, "seed": seed,
                                            "images": images, "captions": [item["caption"] for item in gallery]})
        finally:
            client.close()

    with ThreadPoolExecutor(SESSIONS) as pool:
        outcomes = [pool.submit(session, s) for s in references]
    for outcome in outcomes:
        if outcome.exception() is not None:
            failures.append("".join(traceback.format_exception(outcome.exception())))
    assert failures == []

    with load_fake._lock:
        jobs = list(load_fake.jobs.values())
        outputs = dict(load_fake.outputs)
    # Every run reached fal exactly once: nothing lost, nothing sent twice.
    assert sorted(job.input["prompt"] for job in jobs) == sorted(
        f"session {s} run {r}" for s in references for r in range(1, RUNS + 1)
    )
    job_by_pixels = {
        pixel_digest(outputs[item["file_name"]]): job for job in jobs for item in job.output["images"]
    }
    assert len(job_by_pixels) == SESSIONS * RUNS  # no two jobs made the same picture: tracing is exact

    for number, runs in results.items():
        assert [r["prompt"] for r in runs] == [f"session {number} run {k}" for k in range(1, RUNS + 1)]
        own_reference = references[number].read_bytes()
        for r in runs:
            assert r["status"].startswith("✅ Done"), (r["prompt"], r["status"])
            assert r["captions"] == ["image 1"] and len(r["images"]) == 1
            # The image this session got was rendered by this session's own job ...
            job = job_by_pixels.get(pixel_digest(r["images"][0]))
            assert job is not None, f"{r['prompt']}: the result image matches no image fal made"
            assert job.input["prompt"] == r["prompt"]
            # ... which was sent this session's own reference image.
            assert sent_reference(job.input["image_urls"][0], load_fake) == own_reference
            # The seed and the details are this run's: fal's seed for this job, fal's echo of the prompt.
            assert r["seed"] == job.output["seed"]
            assert f"**Seed:** `{job.output['seed']}`" in r["details"]
            assert f"**Prompt used:** {r['prompt']}" in r["details"]
            # The saved run (what the history keeps) is this run's too, with the same image.
            folder = load_app.outputs / saved_folder(r["details"])
            recipe = json.loads((folder / "recipe.json").read_text())
            assert recipe["request"]["prompt"] == r["prompt"]
            assert recipe["seed"] == job.output["seed"]
            assert recipe["request_id"] in (job.id, None)  # the stream transport records none
            assert pixel_digest((folder / "image-1.png").read_bytes()) == pixel_digest(r["images"][0])
    # One folder per run, none shared.
    assert len({saved_folder(r["details"]) for runs in results.values() for r in runs}) == SESSIONS * RUNS
    assert "Traceback" not in load_app.log()


def test_saved_files_are_served_only_through_their_content_hashed_urls(load_app, load_fake, tmp_path):
    """Another session cannot fetch a result by guessing its name: only the cache URL, whose
    folder name is a SHA-256 of the content, serves it; the outputs folder is not served."""
    client = new_client(load_app)
    try:
        gallery, status, _logs, details, _seed = client.predict(
            **edit_args({"red": session_reference(tmp_path, 99)}, prompt="isolation check"), api_name="/edit",
        )
    finally:
        client.close()
    assert status.startswith("✅ Done")
    saved = load_app.outputs / saved_folder(details) / "image-1.png"
    url = gallery[0]["image"]["url"]
    with httpx.Client(timeout=30) as http:
        # (b) the URL the session was given serves its result
        served = http.get(url)
        assert served.status_code == 200 and served.content == saved.read_bytes()
        # (c) the same URL with one character of the hash changed serves nothing
        match = re.search(r"/([0-9a-f]{64})/", url)
        assert match, f"no content hash in the result URL {url}"
        digest = match.group(1)
        guessed = url.replace(digest, digest[:-1] + ("0" if digest[-1] != "0" else "1"))
        assert http.get(guessed).status_code in (403, 404)
        # (a) the saved file under the outputs folder is not served by its path
        direct = http.get(f"{load_app.url}gradio_api/file={saved.resolve()}")
        assert direct.status_code in (403, 404), f"the outputs folder is served: HTTP {direct.status_code}"
        assert direct.content != saved.read_bytes()


def test_a_burst_beyond_the_queue_is_told_the_queue_is_full(load_fake, images, tmp_path):
    """16 sessions submit at once to an app that runs 2 and queues 2: the others are refused at
    once with "queue is full" (and never reach fal), the accepted ones finish, and the app then
    serves the next run as usual."""
    burst = 16
    load_fake.job_seconds = 3  # the accepted runs hold their places while the burst arrives
    app = launch_app(tmp_path, load_fake, STUDIO_CONCURRENCY="2", STUDIO_MAX_QUEUE="2",
                     GRADIO_TEMP_DIR=str(tmp_path / "gradio-cache"))
    try:
        with load_fake._lock:
            before = set(load_fake.jobs)
        clients = [new_client(app) for _ in range(burst)]
        start = threading.Barrier(burst)

        def one(index: int) -> str:
            start.wait()
            try:
                _gallery, status, *_ = clients[index].predict(
                    **edit_args(images, prompt=f"burst {index}"), api_name="/edit",
                )
                return status
            except Exception as error:
                return f"{type(error).__name__}: {error}"

        with ThreadPoolExecutor(burst) as pool:
            statuses = list(pool.map(one, range(burst)))
        done = [s for s in statuses if s.startswith("✅ Done")]
        refused = [s for s in statuses if re.search("(?i)queue is full", s)]
        assert len(done) + len(refused) == burst, statuses
        assert done and refused
        with load_fake._lock:
            reached = [job for job_id, job in load_fake.jobs.items() if job_id not in before]
        assert len(reached) == len(done)  # refused runs were never sent to fal
        load_fake.job_seconds = 0.2
        assert clients[0].predict(**edit_args(images), api_name="/edit")[1].startswith("✅ Done")
        for client in clients:
            client.close()
        assert "Traceback" not in app.log()
    finally:
        load_fake.job_seconds = 0.2
        stop_app(app)
