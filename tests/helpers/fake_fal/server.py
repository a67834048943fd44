"""The fake fal server itself: one HTTP port serving the queue, run/stream, storage and CDN routes
(see the package docstring for each route and how it behaves)."""

from __future__ import annotations

import io
import json
import random
import re
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import ThreadingHTTPServer
from typing import Any, Callable

from PIL import Image

from tests.helpers.fake_fal.faults import Faults
from tests.helpers.fake_fal.handler import Handler, Server
from tests.helpers.fake_fal.records import HTTPError, Job, Recorded
from tests.helpers.fake_fal.render import (
    data_uri,
    decode_data_uri,
    encode_image,
    log_entry,
    progress_event,
    render_outputs,
)
from tests.helpers.fake_fal.schema import FORMATS, SUPPORTED_APPS, ValidationFailed, error_item, validate_input

CANCELLED_DETAIL = "Request cancelled by client"


def point_fal_client_at(base_url: str) -> None:
    """Aim fal_client's module-level hosts at ``base_url`` (they are read at call time)."""
    import fal_client.client as fc

    fc.QUEUE_URL_FORMAT = base_url + "/queue/"
    fc.RUN_URL_FORMAT = base_url + "/run/"
    fc.REST_URL = base_url + "/rest"
    fc.CDN_URL = base_url + "/cdn"


class FakeFal(Faults):
    def __init__(self, job_seconds: float = 0.3, keys: set[str] | None = None):
        self._defaults = {"job_seconds": job_seconds, "keys": keys}
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._stopping = threading.Event()
        self._tokens: set[str] = set()
        self.url = ""
        self.reset()

    def reset(self) -> None:
        """Clear records, stored files and knobs (job_seconds/keys go back to the constructor's)."""
        with self._lock:
            self.job_seconds: float = self._defaults["job_seconds"]
            self.keys: set[str] | None = self._defaults["keys"]
            self.queue_polls = 1
            self.steps = 4
            self.stream_previews = True
            self.reply_delay = 0.0  # seconds a run/stream POST waits, its job started, before the reply
            self.max_output_side: int | None = None  # shrink outputs to fit this long side (cheap load tests)
            self.reset_faults()  # no fault (faults.py)
            self.requests: list[Recorded] = []
            self.jobs: dict[str, Job] = {}
            self.uploads: dict[str, bytes] = {}
            self.outputs: dict[str, bytes] = {}
            self._files: dict[str, tuple[bytes, str]] = {}  # everything GET /cdn/files/ serves

    # -- lifecycle
    def start(self) -> "FakeFal":
        self._stopping.clear()
        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, name="fake-fal", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # lets running streams and jobs give up
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeFal":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def submits(self) -> list[Recorded]:
        """The recorded POSTs that can start a job: queue submits, run and stream calls."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path.startswith(("/queue/", "/run/"))]

    def cancels(self) -> list[Recorded]:
        """The recorded queue cancels (PUT .../requests/{id}/cancel), answered or not."""
        with self._lock:
            return [r for r in self.requests if r.method == "PUT" and r.path.endswith("/cancel")]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return bool(predicate())

    # -- request plumbing
    def _dispatch(self, h: "Handler", rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)
        self._seen(rec)
        parts = [p for p in rec.path.split("/") if p]
        try:
            if parts[:2] == ["cdn", "files"] and rec.method == "GET" and len(parts) == 3:
                return self._serve_file(h, parts[2])
            if parts[:2] == ["cdn", "put"] and rec.method == "PUT" and len(parts) == 3:
                return self._store_put(h, rec, parts[2])
            if parts[:3] == ["cdn", "files", "upload"] and rec.method == "POST":
                self._check_bearer(rec)
                self._maybe_fail("upload")
                return self._cdn_upload(h, rec)
            self._check_key(rec)
            if parts[:1] == ["rest"] and rec.method == "POST":
                # the token fetch has no retry/fallback in fal_client, so only on="any" hits it
                self._maybe_fail("token" if parts[1:] == ["storage", "auth", "token"] else "upload")
                return self._rest(h, rec, parts[1:])
            if parts[:1] == ["queue"]:
                return self._queue(h, rec, parts[1:])
            if parts[:1] == ["run"] and rec.method == "POST":
                return self._run(h, rec, parts[1:])
            raise HTTPError(404, {"detail": f"Not found: {rec.method} {rec.path}"})
        except HTTPError as e:
            h.send_json(e.status, e.body, e.headers)
        except ValidationFailed as e:
            h.send_json(422, {"detail": e.errors}, {"x-fal-request-id": str(uuid.uuid4())})

    def _check_key(self, rec: Recorded) -> None:
        auth = rec.headers.get("authorization", "")
        if not auth.startswith("Key "):
            raise HTTPError(401, {"detail": "Missing authorization header"})
        if self.keys is not None and auth[4:] not in self.keys:
            raise HTTPError(401, {"detail": "Invalid API key"})

    def _check_bearer(self, rec: Recorded) -> None:
        auth = rec.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self._tokens:
            raise HTTPError(401, {"detail": "Invalid or expired upload token"})

    # -- storage
    def _rest(self, h: "Handler", rec: Recorded, parts: list[str]) -> None:
        if parts == ["storage", "auth", "token"]:
            token = uuid.uuid4().hex
            self._tokens.add(token)
            expires = datetime.now(timezone.utc) + timedelta(hours=1)
            return h.send_json(200, {"token": token, "token_type": "Bearer", "base_url": self.url + "/cdn",
                                     "expires_at": expires.isoformat()})
        if parts == ["storage", "upload", "initiate"]:
            meta = json.loads(rec.body or b"{}")
            name = self._unique_name(meta.get("file_name"))
            return h.send_json(200, {"upload_url": f"{self.url}/cdn/put/{name}",
                                     "file_url": f"{self.url}/cdn/files/{name}"})
        raise HTTPError(404, {"detail": f"Not found: {rec.path}"})

    def _unique_name(self, file_name: str | None) -> str:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", file_name or "upload.bin")
        return f"{uuid.uuid4().hex[:12]}_{safe}"

    def _store(self, name: str, data: bytes, content_type: str, upload: bool) -> str:
        with self._lock:
            self._files[name] = (data, content_type)
            (self.uploads if upload else self.outputs)[name] = data
        return f"{self.url}/cdn/files/{name}"

    def _cdn_upload(self, h: "Handler", rec: Recorded) -> None:
        name = self._unique_name(rec.headers.get("x-fal-file-name"))
        ctype = rec.headers.get("content-type", "application/octet-stream")
        h.send_json(200, {"access_url": self._store(name, rec.body, ctype, upload=True)})

    def _store_put(self, h: "Handler", rec: Recorded, name: str) -> None:
        self._store(name, rec.body, rec.headers.get("content-type", "application/octet-stream"), upload=True)
        h.send_json(200, {})

    def _serve_file(self, h: "Handler", name: str) -> None:
        if name in self.outputs:
            self._maybe_fail("download")
        found = self._files.get(name)
        if found is None or (self.results_gone and name in self.outputs):
            raise HTTPError(404, {"detail": "File not found"})
        h.send_bytes(200, found[0], found[1])

    # -- queue
    def _queue(self, h: "Handler", rec: Recorded, parts: list[str]) -> None:
        if len(parts) >= 4 and parts[2] == "requests":
            job = self.jobs.get(parts[3])
            if job is None:
                raise HTTPError(404, {"detail": f"Request {parts[3]} not found"})
            tail = parts[4:]
            if tail == ["status"] and rec.method == "GET":
                self._maybe_fail("status")
                return h.send_json(200, self._status(job, rec.query.get("logs", "") in ("true", "1", "True")),
                                   {"x-fal-request-id": job.id})
            if tail == [] and rec.method == "GET":
                self._maybe_fail("result")
                return self._result(h, job)
            if tail == ["cancel"] and rec.method == "PUT":
                self._maybe_fail("cancel")
                return self._cancel(h, job)
            raise HTTPError(404, {"detail": f"Not found: {rec.method} {rec.path}"})
        if rec.method != "POST":
            raise HTTPError(405, {"detail": "Method not allowed"})
        self._require_app("/".join(parts))
        self._maybe_fail("submit")
        args = self._parse_json(rec.body)
        job = self._new_job(args, "queue")
        try:
            job.prepared = self._prepare(args)  # validate now (fal would do it on the runner), encode later
        except ValidationFailed as e:
            self._finish(job, errors=e.errors)
        if job.errors is None and self.queue_polls <= 0:
            self._start_queue_job(job)
        if self._lose_reply(h, job):
            return
        base = f"{self.url}/queue/{parts[0]}/{parts[1]}/requests/{job.id}"
        h.send_json(200, {"request_id": job.id, "response_url": base, "status_url": base + "/status",
                          "cancel_url": base + "/cancel", "queue_position": 0}, {"x-fal-request-id": job.id})

    def _status(self, job: Job, with_logs: bool) -> dict:
        with self._lock:
            if job.state == "IN_QUEUE":
                job.polls += 1
                if job.polls <= self.queue_polls:
                    return {"status": "IN_QUEUE", "queue_position": self.queue_polls - job.polls,
                            "request_id": job.id}
                self._start_queue_job(job)
            if job.state == "IN_PROGRESS":
                return {"status": "IN_PROGRESS", "request_id": job.id,
                        "logs": self._job_logs(job) if with_logs else None}
            body = {"status": "COMPLETED", "request_id": job.id, "logs": self._job_logs(job) if with_logs else None,
                    "metrics": {"inference_time": job.job_seconds} if job.errors is None else {}}
            if job.cancelled:
                body.update(error=CANCELLED_DETAIL, error_type="client_cancelled")
            elif job.errors is not None:
                body.update(error="Unprocessable Entity", error_type="validation_error")
            return body

    def _job_logs(self, job: Job) -> list[dict]:
        """'Step i/N' lines that accumulate as the job's clock runs."""
        if job.started is None or job.errors is not None:
            return []
        end = job.finished or time.time()
        done = job.steps if job.state == "COMPLETED" else int((end - job.started) / job.job_seconds * job.steps)
        dt = job.job_seconds / job.steps
        return [log_entry(f"Step {i}/{job.steps}", job.started + i * dt) for i in range(1, min(done, job.steps) + 1)]

    def _start_queue_job(self, job: Job) -> None:
        """Leave the queue: the job's clock starts now and a worker finishes it after job_seconds."""
        job.state, job.started = "IN_PROGRESS", time.time()
        threading.Thread(target=self._work, args=(job,), daemon=True).start()

    def _work(self, job: Job) -> None:
        deadline = job.started + job.job_seconds
        while time.time() < deadline:
            if job.cancelled or self._stopping.is_set():
                return
            time.sleep(0.01)
        output = self._generate(job)  # slow part outside the lock
        with self._lock:
            if not job.cancelled:
                self._finish(job, output=output)

    def _result(self, h: "Handler", job: Job) -> None:
        headers = {"x-fal-request-id": job.id}
        if job.cancelled:
            raise HTTPError(499, {"detail": CANCELLED_DETAIL, "error_type": "client_cancelled"}, headers)
        if job.state != "COMPLETED":
            raise HTTPError(400, {"detail": "Request is still in progress"}, headers)
        if job.errors is not None:
            raise HTTPError(422, {"detail": job.errors}, headers)
        if self.malformed:
            h.send_json(200, '{"images": [{"url": ', headers)
            return
        h.send_json(200, job.output, headers)

    def _cancel(self, h: "Handler", job: Job) -> None:
        with self._lock:
            if job.state == "COMPLETED":
                raise HTTPError(400, {"status": "ALREADY_COMPLETED"}, {"x-fal-request-id": job.id})
            job.cancelled, job.state = True, "CANCELLED"
            job.finished = job.finished or time.time()
        h.send_json(202, {"status": "CANCELLATION_REQUESTED"}, {"x-fal-request-id": job.id})

    # -- run / stream
    def _run(self, h: "Handler", rec: Recorded, parts: list[str]) -> None:
        streaming = parts[-1:] == ["stream"]
        self._require_app("/".join(parts[:-1] if streaming else parts))
        self._maybe_fail("stream" if streaming else "run")
        args = self._parse_json(rec.body)
        job = self._new_job(args, "stream" if streaming else "run")
        job.state, job.started = "IN_PROGRESS", time.time()
        if self._lose_reply(h, job):
            return
        if not h.idle(self.reply_delay, self._stopping):  # the client left before fal answered
            return self._mark_disconnected(job)
        try:
            job.prepared = self._prepare(args)
        except ValidationFailed as e:
            self._finish(job, errors=e.errors)
            raise HTTPError(422, {"detail": e.errors}, {"x-fal-request-id": job.id}) from None
        output = self._generate(job)
        if streaming:
            return self._stream(h, job, output)
        if h.idle(job.job_seconds, self._stopping):
            self._finish(job, output=output)
            h.send_json(200, output, {"x-fal-request-id": job.id})
        else:
            self._mark_disconnected(job)

    def _stream(self, h: "Handler", job: Job, output: dict) -> None:
        h.start_sse({"x-fal-request-id": job.id})
        cut_after = self.cut_stream_after
        pause = job.job_seconds / (job.steps + 1)
        events = [progress_event(job, output, i, self.stream_previews) for i in range(1, job.steps + 1)] + [output]
        for n, event in enumerate(events):
            if cut_after is not None and n >= cut_after:
                h.close_connection = True  # no terminating chunk: the client sees a truncated body
                self._mark_disconnected(job)
                return
            data = b'{"images": [{"url": ' if (self.malformed and event is output) else json.dumps(event).encode()
            if not h.idle(pause, self._stopping) or not h.send_chunk(b"data: " + data + b"\n\n"):
                self._mark_disconnected(job)
                return
            if event is output:
                self._finish(job, output=output)
        h.end_chunks()

    def _mark_disconnected(self, job: Job) -> None:
        with self._lock:
            if job.state != "COMPLETED":
                job.cancelled, job.state, job.finished = True, "CANCELLED", time.time()

    # -- jobs
    def _require_app(self, app: str) -> None:
        if app not in SUPPORTED_APPS:
            raise HTTPError(404, {"detail": f"Application '{app}' not found"})

    @staticmethod
    def _parse_json(body: bytes) -> Any:
        try:
            return json.loads(body or b"null")
        except ValueError:
            raise ValidationFailed([{"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}]) from None

    def _new_job(self, args: Any, transport: str) -> Job:
        job = Job(id=str(uuid.uuid4()), input=args, transport=transport,
                  job_seconds=self.job_seconds, steps=max(1, self.steps))
        with self._lock:
            self.jobs[job.id] = job
        return job

    def _finish(self, job: Job, output: dict | None = None, errors: list | None = None) -> None:
        with self._lock:
            job.state, job.finished = "COMPLETED", time.time()
            job.output, job.errors = output, errors

    def _prepare(self, raw: Any) -> dict:
        """Validate, fetch the input images and render the output pixels (not yet encoded/stored)."""
        args, errs = validate_input(raw)
        errs = errs or self._lora_load_errors(args)
        if errs:
            raise ValidationFailed(errs)
        inputs = self._load_images(args["image_urls"][:3])
        seed = int(args["seed"]) if args["seed"] is not None else random.randint(0, 2**31 - 1)
        rendered = render_outputs(args, inputs, seed, self.max_output_side)
        return {"args": args, "seed": seed, "rendered": rendered}

    def _load_images(self, urls: list[str]) -> list[Image.Image]:
        images, errs = [], []
        for i, url in enumerate(urls):
            data = self._fetch(url)
            if data is None:
                errs.append(error_item(["image_urls", i],
                                       "Failed to download the file. Please check if the URL is accessible.",
                                       "file_download_error", url))
                continue
            try:
                img = Image.open(io.BytesIO(data))
                img.load()
                images.append(img)
            except Exception:
                errs.append(error_item(["image_urls", i],
                                       "Failed to load the image. Please ensure the image file is not "
                                       "corrupted and is in a supported format.", "image_load_error", url[:100]))
        if errs:
            raise ValidationFailed(errs)
        return images

    def _fetch(self, url: str) -> bytes | None:
        """data: URIs and this server's CDN only; any other URL counts as not downloadable."""
        if url.startswith("data:"):
            try:
                return decode_data_uri(url)
            except ValueError:
                return b""
        prefix = self.url + "/cdn/files/"
        if url.startswith(prefix) and url[len(prefix):] in self._files:
            return self._files[url[len(prefix):]][0]
        return None

    def _generate(self, job: Job) -> dict:
        """Encode the rendered pixels and store them (or inline them with sync_mode): the output JSON."""
        prepared = job.prepared
        args, fmt = prepared["args"], prepared["args"]["output_format"]
        content_type = FORMATS[fmt][1]
        nsfw = re.search(r"\bnsfw\b", args["prompt"], re.IGNORECASE) is not None
        images = []
        for img in prepared["rendered"]:
            data = encode_image(img, fmt)
            name = f"{uuid.uuid4().hex[:16]}.{fmt}"
            url = data_uri(data, content_type) if args["sync_mode"] else self._store(name, data, content_type, False)
            images.append({"url": url, "width": img.width, "height": img.height, "content_type": content_type,
                           "file_name": name, "file_size": len(data)})
        return {"images": images, "seed": prepared["seed"], "prompt": args["prompt"],
                "has_nsfw_concepts": [nsfw and i == 0 for i in range(len(images))],
                "timings": {"inference": job.job_seconds}}
