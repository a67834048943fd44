"""Tests for the fake fal server (tests/helpers/fake_fal/), driven through the unmodified fal_client (and raw
httpx where the client hides the wire)."""
from __future__ import annotations

import base64
import io

import fal_client
import httpx
import pytest
from fal_client.client import Completed, FalClientHTTPError, InProgress, Queued
from PIL import Image

from tests.helpers.fake_fal import APP, FakeFal, point_fal_client_at

KEY = "test-key"


# Named fal_fake (not `fake`) so that conftest's session-wide `fake` and its autouse reset stay out of it.
@pytest.fixture(scope="module")
def fal_fake_server():
    import fal_client.client as fc

    saved = (fc.QUEUE_URL_FORMAT, fc.RUN_URL_FORMAT, fc.REST_URL, fc.CDN_URL)
    with FakeFal(job_seconds=0.2) as server:
        point_fal_client_at(server.url)
        yield server
    fc.QUEUE_URL_FORMAT, fc.RUN_URL_FORMAT, fc.REST_URL, fc.CDN_URL = saved  # other modules may not expect us


@pytest.fixture
def fal_fake(fal_fake_server):
    fal_fake_server.reset()
    fal_fake_server.keys = {KEY}
    return fal_fake_server


@pytest.fixture
def client():
    return fal_client.SyncClient(key=KEY)


def png_bytes(size=(64, 48), color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def data_url(size=(64, 48), color=(200, 30, 30)) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(size, color)).decode()


def args(**extra) -> dict:
    return {"prompt": "make it blue", "image_urls": [data_url()], "seed": 7, "image_size": "square", **extra}


def fetch(url: str) -> bytes:
    if url.startswith("data:"):
        return base64.b64decode(url.partition(",")[2])
    r = httpx.get(url)
    r.raise_for_status()
    return r.content


def raw_stream(fal_fake, body, key=KEY) -> httpx.Response:
    """A stream request without fal_client, to look at status codes it would hide."""
    return httpx.post(f"{fal_fake.url}/run/{APP}/stream", json=body,
                      headers={"Authorization": f"Key {key}", "Accept": "text/event-stream"})


def test_submit_status_result_round_trip(fal_fake, client):
    fal_fake.queue_polls = 2
    handle = client.submit(APP, args())
    assert handle.status_url == f"{fal_fake.url}/queue/fal-ai/flux-2/requests/{handle.request_id}/status"
    assert handle.status(with_logs=True) == Queued(position=1)
    assert handle.status(with_logs=True) == Queued(position=0)
    first = handle.status(with_logs=True)
    assert isinstance(first, InProgress)
    seen_logs = first.logs
    assert fal_fake.wait_for(lambda: fal_fake.jobs[handle.request_id].state == "COMPLETED", 3)
    done = handle.status(with_logs=True)
    assert isinstance(done, Completed) and done.error is None
    assert [log["message"] for log in done.logs] == ["Step 1/4", "Step 2/4", "Step 3/4", "Step 4/4"]
    assert len(seen_logs) < 4 and done.metrics == {"inference_time": 0.2}
    assert handle.status(with_logs=False).logs is None

    result = handle.get()
    assert result["seed"] == 7 and result["prompt"] == "make it blue"
    assert result["has_nsfw_concepts"] == [False]
    (image,) = result["images"]
    assert (image["width"], image["height"]) == (512, 512) and image["content_type"] == "image/png"
    data = fetch(image["url"])
    assert image["url"].startswith(fal_fake.url + "/cdn/files/") and len(data) == image["file_size"]
    assert Image.open(io.BytesIO(data)).size == (512, 512)
    job = fal_fake.jobs[handle.request_id]
    assert job.transport == "queue" and job.input == args() and not job.cancelled
    submit = next(r for r in fal_fake.requests if r.method == "POST")
    assert submit.headers["authorization"] == f"Key {KEY}" and submit.path == f"/queue/{APP}"


def test_result_before_completion_is_400(fal_fake, client):
    fal_fake.queue_polls = 0
    fal_fake.job_seconds = 2
    handle = client.submit(APP, args())
    r = httpx.get(handle.response_url, headers={"Authorization": f"Key {KEY}"})  # get() would poll first
    assert r.status_code == 400 and r.json() == {"detail": "Request is still in progress"}
    handle.cancel()


def test_subscribe_with_queue_updates(fal_fake, client):
    updates = []
    result = client.subscribe(APP, args(num_images=2), with_logs=True, on_queue_update=updates.append)
    assert len(result["images"]) == 2 and result["has_nsfw_concepts"] == [False, False]
    assert isinstance(updates[0], Queued) and isinstance(updates[-1], Completed)
    assert any(isinstance(u, InProgress) for u in updates)
    a, b = (fetch(i["url"]) for i in result["images"])
    assert a != b  # the index band differs


def test_upload_then_use_as_image_url(fal_fake, client):
    url = client.upload(png_bytes((600, 400)), "image/png", "a.png")
    assert url.startswith(fal_fake.url + "/cdn/files/") and url.endswith("a.png")
    assert list(fal_fake.uploads.values()) == [png_bytes((600, 400))]
    upload = next(r for r in fal_fake.requests if r.path == "/cdn/files/upload")
    assert upload.headers["authorization"].startswith("Bearer ") and upload.headers["x-fal-file-name"] == "a.png"
    # without image_size the output follows the input, scaled so the short side reaches 512
    result = client.subscribe(APP, {"prompt": "p", "image_urls": [url], "seed": 1})
    assert (result["images"][0]["width"], result["images"][0]["height"]) == (768, 512)


def test_upload_with_wrong_key_fails(fal_fake):
    with pytest.raises(httpx.HTTPStatusError) as exc:  # the token fetch raises plain httpx errors
        fal_client.SyncClient(key="nope").upload(b"x", "text/plain")
    assert exc.value.response.status_code == 401


def test_stream_yields_previews_then_output(fal_fake, client):
    events = list(client.stream(APP, args(num_images=2)))
    assert len(events) == fal_fake.steps + 1
    *progress, final = events
    assert [e["progress"] for e in progress] == [{"step": i, "total": 4} for i in range(1, 5)]
    for e in progress:
        assert len(e["images"]) == 2 and e["images"][0]["url"].startswith("data:image/jpeg;base64,")
        assert e["logs"][0]["message"] == f"Step {e['progress']['step']}/4"
        assert Image.open(io.BytesIO(fetch(e["images"][0]["url"]))).size == (256, 256)
    assert "progress" not in final and final["images"][0]["url"].startswith(fal_fake.url + "/cdn/files/")
    (job,) = fal_fake.jobs.values()
    assert job.transport == "stream" and job.state == "COMPLETED" and not job.cancelled
    assert final == job.output


def test_stream_without_previews(fal_fake, client):
    fal_fake.stream_previews = False
    fal_fake.steps = 2
    *progress, final = client.stream(APP, args())
    assert [set(e) for e in progress] == [{"progress", "logs"}] * 2
    assert final["images"][0]["width"] == 512


def test_cut_stream_raises_after_n_events(fal_fake, client):
    fal_fake.cut_stream_after = 2
    got = []
    with pytest.raises(httpx.RemoteProtocolError):
        for event in client.stream(APP, args()):
            got.append(event)
    assert len(got) == 2 and all("progress" in e for e in got)


def test_cancel_marks_job_and_result(fal_fake, client):
    fal_fake.queue_polls = 0
    fal_fake.job_seconds = 5
    handle = client.submit(APP, args())
    assert isinstance(handle.status(), InProgress)
    handle.cancel()
    job = fal_fake.jobs[handle.request_id]
    assert job.cancelled and job.state == "CANCELLED"
    status = handle.status()
    assert isinstance(status, Completed) and status.error_type == "client_cancelled"
    with pytest.raises(FalClientHTTPError) as exc:
        handle.get()
    assert exc.value.status_code == 499


def test_cancel_after_completion_is_400(fal_fake, client):
    handle = client.submit(APP, args())
    handle.get()
    with pytest.raises(FalClientHTTPError) as exc:
        handle.cancel()
    assert exc.value.status_code == 400 and "ALREADY_COMPLETED" in exc.value.response.text


def test_closing_stream_midway_cancels_job(fal_fake, client):
    fal_fake.job_seconds = 3
    fal_fake.steps = 10
    events = client.stream(APP, args())
    assert "progress" in next(events)
    events.close()  # what Stop does
    (job,) = fal_fake.jobs.values()
    assert fal_fake.wait_for(lambda: job.cancelled, 2) and job.state == "CANCELLED"


def test_wrong_key_is_401(fal_fake):
    with pytest.raises(FalClientHTTPError) as exc:
        fal_client.SyncClient(key="wrong").submit(APP, args())
    assert exc.value.status_code == 401 and exc.value.message == "Invalid API key"
    assert raw_stream(fal_fake, args(), key="wrong").status_code == 401
    assert httpx.post(f"{fal_fake.url}/queue/{APP}", json=args()).status_code == 401  # no key at all


def test_invalid_input_fails_on_result_with_422(fal_fake, client):
    handle = client.submit(APP, args(guidance_scale=25))  # submit itself succeeds, as on fal
    with pytest.raises(FalClientHTTPError) as exc:
        handle.get()
    assert exc.value.status_code == 422
    (item,) = exc.value.message
    assert item["loc"][-1] == "guidance_scale" and item["type"] == "less_than_equal"
    assert item["ctx"] == {"le": 20} and item["input"] == 25


@pytest.mark.parametrize("extra, loc, type_", [
    ({"image_urls": []}, ["body", "image_urls"], "too_short"),
    ({"image_urls": ["https://example.com/x.png"]}, ["body", "image_urls", 0], "file_download_error"),
    ({"image_urls": ["data:image/png;base64,AAAA"]}, ["body", "image_urls", 0], "image_load_error"),
    ({"num_inference_steps": 2}, ["body", "num_inference_steps"], "greater_than_equal"),
    ({"image_size": {"width": 4000, "height": 600}}, ["body", "image_size", "width"], "less_than_equal"),
    ({"image_size": "huge"}, ["body", "image_size"], "literal_error"),
    ({"loras": [{"path": "a"}] * 4}, ["body", "loras"], "too_long"),
    ({"loras": [{"path": "a", "scale": 5}]}, ["body", "loras", 0, "scale"], "less_than_equal"),
    ({"output_format": "gif"}, ["body", "output_format"], "literal_error"),
    ({"sync_mode": "yes"}, ["body", "sync_mode"], "bool_type"),
    ({"strength": 0.5}, ["body", "strength"], "extra_forbidden"),
])
def test_stream_validation_errors_are_immediate_422(fal_fake, extra, loc, type_):
    r = raw_stream(fal_fake, args(**extra))
    assert r.status_code == 422 and r.headers["content-type"] == "application/json"
    assert [(d["loc"], d["type"]) for d in r.json()["detail"]] == [(loc, type_)]


def test_missing_prompt(fal_fake):
    r = raw_stream(fal_fake, {"image_urls": [data_url()]})
    (item,) = r.json()["detail"]
    assert (item["loc"], item["type"], item["msg"]) == (["body", "prompt"], "missing", "Field required")


def test_fail_knob_500_once(fal_fake, client):
    fal_fake.fail = {"status": 500, "detail": "boom", "times": 1, "on": "submit"}
    with pytest.raises(FalClientHTTPError) as exc:
        client.submit(APP, args())
    assert exc.value.status_code == 500 and exc.value.message == "boom"
    assert fal_fake.fail is None
    assert client.subscribe(APP, args())["seed"] == 7


def test_fail_knob_on_result_and_stream(fal_fake, client):
    fal_fake.fail = {"status": 503, "detail": "no runners", "times": None, "on": "result"}
    handle = client.submit(APP, args())
    with pytest.raises(FalClientHTTPError) as exc:
        handle.get()  # JSON 503 with x-fal-request-id: not retried by fal_client
    assert exc.value.status_code == 503
    fal_fake.fail = {"status": 500, "on": "stream"}
    r = raw_stream(fal_fake, args())
    assert r.status_code == 500 and r.json()["detail"] == "Internal server error"


@pytest.mark.parametrize("fail", [{"status": 429}, {"status": 502, "ingress": True}])
def test_retryable_failure_once_is_retried_by_the_client(fal_fake, client, fail):
    fal_fake.fail = {**fail, "times": 1, "on": "submit"}
    client.submit(APP, args())
    assert [r.method for r in fal_fake.requests if r.path == f"/queue/{APP}"] == ["POST", "POST"]


@pytest.mark.parametrize("lost", [502, "drop"])
def test_a_lost_submit_reply_makes_plain_fal_client_start_the_job_twice(fal_fake, client, monkeypatch, lost):
    # Why the app does not let fal_client retry a submit: fal took the job, the reply was lost.
    import fal_client.client as fc

    monkeypatch.setattr(fc, "MAX_ATTEMPTS", 2)
    monkeypatch.setattr(fc, "BASE_DELAY", 0.01)
    fal_fake.submit_reply_lost = lost
    with pytest.raises((FalClientHTTPError, httpx.RemoteProtocolError)):
        client.submit(APP, args())
    assert len(fal_fake.submits()) == 2 and len(fal_fake.jobs) == 2


def test_retry_after_and_download_failures(fal_fake, client):
    fal_fake.fail = {"status": 429, "times": 1, "on": "stream", "retry_after": "7"}
    r = raw_stream(fal_fake, args())
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    url = client.subscribe(APP, args())["images"][0]["url"]
    fal_fake.fail = {"status": 503, "times": 1, "on": "download", "ingress": True}
    r = httpx.get(url)
    assert r.status_code == 503 and "nginx" in r.text and "x-fal-request-id" not in r.headers
    assert fetch(url)  # once only
    assert fal_fake.cancels() == [] and len(fal_fake.submits()) == 2


def test_upload_failing_once_falls_back_to_the_other_repository(fal_fake, client):
    fal_fake.fail = {"status": 500, "times": 1, "on": "upload"}
    url = client.upload(b"hello", "text/plain", "h.txt")
    assert fetch(url) == b"hello"
    put_path = url.replace(fal_fake.url, "").replace("/files/", "/put/")
    assert [r.path for r in fal_fake.requests if r.method != "GET"][-2:] == ["/rest/storage/upload/initiate", put_path]


def test_same_inputs_same_bytes_different_seed_different_bytes(fal_fake, client):
    def image_bytes(**kw):
        return fetch(client.subscribe(APP, args(**kw))["images"][0]["url"])

    first = image_bytes()
    assert image_bytes() == first
    assert image_bytes(seed=8) != first
    assert image_bytes(prompt="make it red") != first


def test_random_seed_is_returned(fal_fake, client):
    body = args()
    del body["seed"]
    assert isinstance(client.subscribe(APP, body)["seed"], int)


def test_sync_mode_returns_data_uris(fal_fake, client):
    result = client.subscribe(APP, args(sync_mode=True, output_format="jpeg", image_size="landscape_16_9"))
    image = result["images"][0]
    assert image["url"].startswith("data:image/jpeg;base64,") and image["content_type"] == "image/jpeg"
    assert Image.open(io.BytesIO(fetch(image["url"]))).size == (1024, 576)
    assert fal_fake.outputs == {}


def test_webp_and_nsfw_flag(fal_fake, client):
    result = client.subscribe(APP, args(prompt="an NSFW test", num_images=2, output_format="webp"))
    assert result["has_nsfw_concepts"] == [True, False]
    assert Image.open(io.BytesIO(fetch(result["images"][0]["url"]))).format == "WEBP"


def test_unknown_routes_are_404(fal_fake, client):
    assert httpx.get(f"{fal_fake.url}/nowhere", headers={"Authorization": f"Key {KEY}"}).status_code == 404
    with pytest.raises(FalClientHTTPError) as exc:
        client.submit("fal-ai/other-model", args())
    assert exc.value.status_code == 404
