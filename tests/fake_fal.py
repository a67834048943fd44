"""A fake of fal's hosted API for ``fal-ai/flux-2/lora/edit``, spoken over real HTTP.

The unmodified ``fal_client`` talks to it once its module constants point here
(see :func:`point_fal_client_at`); one port serves every host under a path prefix:

  queue   POST /queue/fal-ai/flux-2/lora/edit                 submit -> {request_id, status_url, response_url, cancel_url}
          GET  /queue/fal-ai/flux-2/requests/{id}/status?logs=1   IN_QUEUE / IN_PROGRESS / COMPLETED
          GET  /queue/fal-ai/flux-2/requests/{id}             result (200 output | 400 still running | 422 | 499)
          PUT  /queue/fal-ai/flux-2/requests/{id}/cancel      202 CANCELLATION_REQUESTED | 400 ALREADY_COMPLETED
  run     POST /run/fal-ai/flux-2/lora/edit/stream            SSE: `steps` progress events, then the output
          POST /run/fal-ai/flux-2/lora/edit                   synchronous run (waits job_seconds)
  rest    POST /rest/storage/auth/token?storage_type=fal-cdn-v3   CDN upload token (needs the fal key)
          POST /rest/storage/upload/initiate                  the client's fallback upload path ("fal" repository)
  cdn     POST /cdn/files/upload                              raw bytes, `Authorization: Bearer <token>`
          GET  /cdn/files/{name}                              uploads and generated images (no auth)
          PUT  /cdn/put/{name}                                target of the fallback upload

Every route but the CDN ones wants ``Authorization: Key <k>`` (missing -> 401; with ``keys`` set, a key
not in it -> 401 ``{"detail": "Invalid API key"}``). Unknown routes and apps -> 404 JSON.

Behaviour (as close to fal as we can tell):
  * Validation is asynchronous in queue mode: submit always succeeds; an invalid job is COMPLETED at
    once (status carries ``error``/``error_type: "validation_error"``) and its result answers
    422 ``{"detail": [{loc, msg, type, ctx?, input?}]}`` (pydantic style). In stream/run mode the
    422 comes back at once as a JSON response (not SSE), as do 401s and ``fail`` errors.
  * Cancel (queue): the job becomes state CANCELLED / ``cancelled=True``; status answers
    ``COMPLETED`` with ``error: "Request cancelled by client", error_type: "client_cancelled"``,
    and the result answers 499 ``{"detail": "Request cancelled by client", "error_type": "client_cancelled"}``.
    Repeating the cancel answers 202 again; cancelling a finished job answers 400 ALREADY_COMPLETED.
  * Stream: intermediate events are ``{"images": [previews], "seed", "prompt", "has_nsfw_concepts",
    "progress": {"step": i, "total": steps}, "logs": [log]}`` where previews are small blurred, darker
    JPEG ``data:`` URIs of the final images; with ``stream_previews = False`` only
    ``{"progress", "logs"}``. The final event is the plain output (no "progress" key). The body is
    chunked; ``cut_stream_after=N`` drops the connection after N events without the closing chunk, so
    httpx raises ``httpx.RemoteProtocolError``. A client that goes away mid-stream cancels the job.
  * Output size: ``image_size`` if given, else the first input's size scaled into 512..2048 (aspect
    kept; the long side wins when both limits bite). Pixels are the first input fitted to that size,
    tinted by a colour from sha256(prompt, seed, index, loras, input pixels), other inputs as corner
    thumbnails, and a bottom band with index+1 white squares. Same inputs -> same bytes.
  * "nsfw" as a word in the prompt flags image 1 in ``has_nsfw_concepts``.

Knobs (plain attributes; set them between runs): ``job_seconds``, ``queue_polls``, ``steps``,
``stream_previews``, ``cut_stream_after``, ``keys``, ``submit_reply_lost`` and ``fail``:
``{"status": 401|422|429|500|502|503|504, "detail": ..., "times": n | None, "on": "submit"|"status"|
"result"|"cancel"|"stream"|"run"|"upload"|"token"|"download"|"any", "error_type": str?, "ingress": bool?,
"retry_after": str?}`` (``times=None``: forever; "download": a GET of a generated image on the CDN;
``retry_after`` becomes a ``Retry-After`` header). A failed submit or stream POST creates no job (the
rate limiter or proxy in front of fal refused it).
A JSON 502-504 carries ``x-fal-request-id`` so fal_client does NOT retry it; ``"ingress": True`` sends
an nginx HTML page instead, which fal_client retries (up to 10 times, ~50 s: use ``times=1``). 429 is
always retried. ``submit_reply_lost`` (None | 502 | 503 | 504 | "drop"): every queue submit and
run/stream POST is accepted (the job exists) but its reply is lost on the way back: a proxy answers its
HTML error page, or ("drop") the connection closes without a reply. A streamed job is then cancelled
(its client is gone); a queued one stays, as nobody learned its id; a client that sends the POST again
makes a second job. ``submits()`` (the POSTs that can start a job) and ``cancels()`` (queue cancels)
filter ``requests``. ``max_output_side`` (default None) shrinks every output to fit that long side, aspect
kept, so that load tests stay cheap. Records: ``requests``, ``jobs``, ``uploads`` (client uploads),
``outputs`` (generated).
Only the first 3 image_urls are used (fal ignores extras); request bodies must carry Content-Length.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import re
import select
import socket
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

APP = "fal-ai/flux-2/lora/edit"
SUPPORTED_APPS = {APP}
PRESETS = {
    "square_hd": (1024, 1024), "square": (512, 512),
    "portrait_4_3": (768, 1024), "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768), "landscape_16_9": (1024, 576),
}
FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}
ACCELERATIONS = ("none", "regular", "high")
NGINX_PAGE = "<html><head><title>{s}</title></head><body><center><h1>{s}</h1></center><hr><center>nginx</center></body></html>"
DEFAULT_DETAILS = {401: "Invalid API key", 429: "Rate limit exceeded", 500: "Internal server error",
                   502: "Bad gateway", 503: "Service unavailable", 504: "Request timed out"}
CANCELLED_DETAIL = "Request cancelled by client"


def point_fal_client_at(base_url: str) -> None:
    """Aim fal_client's module-level hosts at ``base_url`` (they are read at call time)."""
    import fal_client.client as fc

    fc.QUEUE_URL_FORMAT = base_url + "/queue/"
    fc.RUN_URL_FORMAT = base_url + "/run/"
    fc.REST_URL = base_url + "/rest"
    fc.CDN_URL = base_url + "/cdn"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    time: float


@dataclass
class Job:
    id: str
    input: dict
    transport: str  # "queue" | "stream" | "run"
    state: str = "IN_QUEUE"  # IN_QUEUE | IN_PROGRESS | COMPLETED | CANCELLED
    cancelled: bool = False
    created: float = field(default_factory=time.time)
    finished: float | None = None
    started: float | None = None
    polls: int = 0
    job_seconds: float = 0.3
    steps: int = 4
    errors: list | None = None  # validation errors -> 422 on the result
    output: dict | None = None  # the result body once COMPLETED
    prepared: dict | None = field(default=None, repr=False)  # validated args + rendered pixels


class HTTPError(Exception):
    """Raised inside a route to answer with a JSON error."""

    def __init__(self, status: int, body: Any, headers: dict | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


class ValidationFailed(Exception):
    def __init__(self, errors: list):
        super().__init__("validation failed")
        self.errors = errors


# ----------------------------------------------------------------------------------------- validation
def _err(loc: list, msg: str, type_: str, value: Any = None, ctx: dict | None = None) -> dict:
    item = {"loc": ["body", *loc], "msg": msg, "type": type_}
    if ctx is not None:
        item["ctx"] = ctx
    if value is not None:
        item["input"] = value
    return item


def _is_int(v: Any) -> bool:
    return not isinstance(v, bool) and (isinstance(v, int) or (isinstance(v, float) and v.is_integer()))


def _is_num(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float))


def _check_range(errs: list, loc: list, v: Any, lo: float, hi: float, integer: bool) -> None:
    """Append pydantic's type / ge / le errors for a bounded number."""
    if not (_is_int(v) if integer else _is_num(v)):
        kind = ("int_type", "Input should be a valid integer") if integer else ("float_type", "Input should be a valid number")
        errs.append(_err(loc, kind[1], kind[0], v))
    elif v < lo:
        errs.append(_err(loc, f"Input should be greater than or equal to {lo}", "greater_than_equal", v, {"ge": lo}))
    elif v > hi:
        errs.append(_err(loc, f"Input should be less than or equal to {hi}", "less_than_equal", v, {"le": hi}))


def _check_literal(errs: list, loc: list, v: Any, allowed: tuple) -> None:
    if v not in allowed:
        expected = ", ".join(f"'{a}'" for a in allowed[:-1]) + f" or '{allowed[-1]}'"
        errs.append(_err(loc, f"Input should be {expected}", "literal_error", v, {"expected": expected}))


def _check_list(errs: list, loc: list, v: Any, lo: int, hi: int | None) -> bool:
    if not isinstance(v, list):
        errs.append(_err(loc, "Input should be a valid list", "list_type", v))
        return False
    if len(v) < lo:
        errs.append(_err(loc, f"List should have at least {lo} item after validation, not {len(v)}", "too_short", v,
                         {"field_type": "List", "min_length": lo, "actual_length": len(v)}))
        return False
    if hi is not None and len(v) > hi:
        errs.append(_err(loc, f"List should have at most {hi} items after validation, not {len(v)}", "too_long", v,
                         {"field_type": "List", "max_length": hi, "actual_length": len(v)}))
        return False
    return True


def validate_input(args: Any) -> tuple[dict, list]:
    """Check ``args`` against the endpoint's schema; return (args with defaults, pydantic-style errors).

    Image URLs are only type-checked here; fetching and decoding them happens in FakeFal._load_images.
    """
    if not isinstance(args, dict):
        return {}, [{"loc": ["body"], "msg": "Input should be a valid dictionary or object to extract fields from",
                     "type": "model_attributes_type", "input": args}]
    errs: list = []
    out = {"loras": [], "guidance_scale": 2.5, "num_inference_steps": 28, "image_size": None, "num_images": 1,
           "seed": None, "acceleration": "regular", "enable_prompt_expansion": False,
           "enable_safety_checker": True, "sync_mode": False, "output_format": "png", **args}
    for name in ("prompt", "image_urls"):
        if name not in args:
            errs.append(_err([name], "Field required", "missing", args))
    if "prompt" in args and not isinstance(args["prompt"], str):
        errs.append(_err(["prompt"], "Input should be a valid string", "string_type", args["prompt"]))
    if "image_urls" in args and _check_list(errs, ["image_urls"], args["image_urls"], 1, None):
        for i, u in enumerate(args["image_urls"]):
            if not isinstance(u, str):
                errs.append(_err(["image_urls", i], "Input should be a valid string", "string_type", u))
    if _check_list(errs, ["loras"], out["loras"], 0, 3):
        out["loras"] = [_validate_lora(errs, i, lo) for i, lo in enumerate(out["loras"])]
    _check_range(errs, ["guidance_scale"], out["guidance_scale"], 0, 20, integer=False)
    _check_range(errs, ["num_inference_steps"], out["num_inference_steps"], 4, 50, integer=True)
    _check_range(errs, ["num_images"], out["num_images"], 1, 4, integer=True)
    _validate_image_size(errs, out["image_size"])
    if out["seed"] is not None and not _is_int(out["seed"]):
        errs.append(_err(["seed"], "Input should be a valid integer", "int_type", out["seed"]))
    _check_literal(errs, ["acceleration"], out["acceleration"], ACCELERATIONS)
    _check_literal(errs, ["output_format"], out["output_format"], tuple(FORMATS))
    for name in ("enable_prompt_expansion", "enable_safety_checker", "sync_mode"):
        if not isinstance(out[name], bool):
            errs.append(_err([name], "Input should be a valid boolean", "bool_type", out[name]))
    for name in sorted(args.keys() - _FIELDS):
        errs.append(_err([name], "Extra inputs are not permitted", "extra_forbidden", args[name]))
    return out, errs


_FIELDS = {"prompt", "image_urls", "loras", "guidance_scale", "num_inference_steps", "image_size", "num_images",
           "seed", "acceleration", "enable_prompt_expansion", "enable_safety_checker", "sync_mode", "output_format"}


def _validate_lora(errs: list, i: int, lora: Any) -> Any:
    if not isinstance(lora, dict):
        errs.append(_err(["loras", i], "Input should be a valid dictionary or object to extract fields from",
                         "model_attributes_type", lora))
        return lora
    lora = {"scale": 1.0, **lora}
    if "path" not in lora:
        errs.append(_err(["loras", i, "path"], "Field required", "missing", lora))
    elif not isinstance(lora["path"], str):
        errs.append(_err(["loras", i, "path"], "Input should be a valid string", "string_type", lora["path"]))
    _check_range(errs, ["loras", i, "scale"], lora["scale"], 0, 4, integer=False)
    for extra in lora.keys() - {"path", "scale"}:
        errs.append(_err(["loras", i, extra], "Extra inputs are not permitted", "extra_forbidden", lora[extra]))
    return lora


def _validate_image_size(errs: list, size: Any) -> None:
    if size is None:
        return
    if isinstance(size, str):
        _check_literal(errs, ["image_size"], size, tuple(PRESETS))
    elif isinstance(size, dict):
        for dim in ("width", "height"):
            _check_range(errs, ["image_size", dim], size.get(dim, 512), 512, 2048, integer=True)
        for extra in size.keys() - {"width", "height"}:
            errs.append(_err(["image_size", extra], "Extra inputs are not permitted", "extra_forbidden", size[extra]))
    else:
        errs.append(_err(["image_size"], "Input should be a valid dictionary or object to extract fields from",
                         "model_attributes_type", size))


# ------------------------------------------------------------------------------------------- images
def output_size(image_size: Any, first_input: Image.Image) -> tuple[int, int]:
    """The preset / custom size, else the first input's size scaled into 512..2048 keeping aspect."""
    if isinstance(image_size, str):
        return PRESETS[image_size]
    if isinstance(image_size, dict):
        return int(image_size.get("width", 512)), int(image_size.get("height", 512))
    w, h = first_input.size
    scale = max(1.0, 512 / min(w, h))
    scale = min(scale, 2048 / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def render_image(inputs: list[Image.Image], size: tuple[int, int], digest: bytes, index: int) -> Image.Image:
    """A deterministic stand-in for a generated image (see module docstring)."""
    img = ImageOps.fit(inputs[0].convert("RGB"), size)
    img = Image.blend(img, Image.new("RGB", size, tuple(digest[:3])), 0.4)
    w, h = size
    thumb = max(16, min(w, h) // 6)
    for k, extra in enumerate(inputs[1:]):  # show the other references, so they visibly matter
        img.paste(ImageOps.fit(extra.convert("RGB"), (thumb, thumb)), (8 + k * (thumb + 8), 8))
    band = max(8, h // 16)
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, h - band, w, h], fill=(16, 16, 16))
    for k in range(index + 1):  # index+1 white squares: which image of the batch this is
        x = 4 + k * (band + 4)
        draw.rectangle([x, h - band + 2, x + band - 4, h - 2], fill=(255, 255, 255))
    return img


def encode_image(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    pil_format = FORMATS[fmt][0]
    # compress_level=1 keeps PNG encoding fast; still lossless and deterministic
    img.save(buf, pil_format, **({"compress_level": 1} if pil_format == "PNG" else {}))
    return buf.getvalue()


def data_uri(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64," + base64.b64encode(data).decode("ascii")


def decode_data_uri(uri: str) -> bytes:
    header, _, payload = uri.partition(",")
    if header.endswith(";base64"):
        return base64.b64decode(payload, validate=False)
    return urllib.parse.unquote_to_bytes(payload)


def preview_of(img: Image.Image, step: int, total: int) -> Image.Image:
    """A smaller, blurred, darker version of ``img`` that sharpens as ``step`` approaches ``total``."""
    small = img.copy()
    small.thumbnail((256, 256))
    frac = step / max(1, total)
    small = small.filter(ImageFilter.GaussianBlur(radius=1 + 8 * (1 - frac)))
    return ImageEnhance.Brightness(small).enhance(0.4 + 0.5 * frac)


def _now_iso(t: float | None = None) -> str:
    return datetime.fromtimestamp(t if t is not None else time.time(), timezone.utc).isoformat()


def _proxy_page(status: int) -> str:
    return NGINX_PAGE.format(s=f"{status} {HTTPStatus(status).phrase}")


def _log(message: str, t: float) -> dict:
    return {"message": message, "level": "INFO", "source": "user", "timestamp": _now_iso(t)}


# ------------------------------------------------------------------------------------------- server
class FakeFal:
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
            self.cut_stream_after: int | None = None
            self.malformed = False  # the output (queue result or last stream event) is not JSON
            self.results_gone = False  # result image URLs answer 404 (an expired or lost file)
            self.max_output_side: int | None = None  # shrink outputs to fit this long side (cheap load tests)
            self.fail: dict | None = None
            self.submit_reply_lost: int | str | None = None  # 502|503|504|"drop": job made, reply lost
            self.requests: list[Recorded] = []
            self.jobs: dict[str, Job] = {}
            self.uploads: dict[str, bytes] = {}
            self.outputs: dict[str, bytes] = {}
            self._files: dict[str, tuple[bytes, str]] = {}  # everything GET /cdn/files/ serves

    # -- lifecycle
    def start(self) -> "FakeFal":
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler)
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
    def _dispatch(self, h: "_Handler", rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)
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

    def _maybe_fail(self, where: str) -> None:
        """Consume one use of the ``fail`` knob if it applies to ``where``."""
        with self._lock:
            f = self.fail
            if not f or f.get("on", "any") not in (where, "any"):
                return
            if f.get("times") is not None:
                f["times"] -= 1
                if f["times"] <= 0:
                    self.fail = None
        status = f["status"]
        extra = {"retry-after": str(f["retry_after"])} if f.get("retry_after") is not None else {}
        if f.get("ingress"):  # nginx page without x-fal-request-id: fal_client retries these
            raise HTTPError(status, _proxy_page(status), {"content-type": "text/html", **extra})
        detail = f.get("detail")
        if detail is None:
            detail = ([_err([], "Simulated validation error", "value_error")] if status == 422
                      else DEFAULT_DETAILS.get(status, "Simulated error"))
        body = {"detail": detail}
        if f.get("error_type"):
            body["error_type"] = f["error_type"]
        raise HTTPError(status, body, {"x-fal-request-id": str(uuid.uuid4()), **extra})

    def _lose_reply(self, h: "_Handler", job: Job) -> bool:
        """Apply ``submit_reply_lost`` to an accepted job's reply; True when it was lost."""
        lost = self.submit_reply_lost
        if lost is None:
            return False
        if job.transport != "queue":
            self._mark_disconnected(job)  # the proxy hung up on fal: fal cancels a streamed request
        if lost == "drop":
            h.close_connection = True  # nothing sent: the client sees the server hang up
        else:
            h.send_json(int(lost), _proxy_page(int(lost)), {"content-type": "text/html"})
        return True

    # -- storage
    def _rest(self, h: "_Handler", rec: Recorded, parts: list[str]) -> None:
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

    def _cdn_upload(self, h: "_Handler", rec: Recorded) -> None:
        name = self._unique_name(rec.headers.get("x-fal-file-name"))
        ctype = rec.headers.get("content-type", "application/octet-stream")
        h.send_json(200, {"access_url": self._store(name, rec.body, ctype, upload=True)})

    def _store_put(self, h: "_Handler", rec: Recorded, name: str) -> None:
        self._store(name, rec.body, rec.headers.get("content-type", "application/octet-stream"), upload=True)
        h.send_json(200, {})

    def _serve_file(self, h: "_Handler", name: str) -> None:
        if name in self.outputs:
            self._maybe_fail("download")
        found = self._files.get(name)
        if found is None or (self.results_gone and name in self.outputs):
            raise HTTPError(404, {"detail": "File not found"})
        h.send_bytes(200, found[0], found[1])

    # -- queue
    def _queue(self, h: "_Handler", rec: Recorded, parts: list[str]) -> None:
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
        return [_log(f"Step {i}/{job.steps}", job.started + i * dt) for i in range(1, min(done, job.steps) + 1)]

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

    def _result(self, h: "_Handler", job: Job) -> None:
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

    def _cancel(self, h: "_Handler", job: Job) -> None:
        with self._lock:
            if job.state == "COMPLETED":
                raise HTTPError(400, {"status": "ALREADY_COMPLETED"}, {"x-fal-request-id": job.id})
            job.cancelled, job.state = True, "CANCELLED"
            job.finished = job.finished or time.time()
        h.send_json(202, {"status": "CANCELLATION_REQUESTED"}, {"x-fal-request-id": job.id})

    # -- run / stream
    def _run(self, h: "_Handler", rec: Recorded, parts: list[str]) -> None:
        streaming = parts[-1:] == ["stream"]
        self._require_app("/".join(parts[:-1] if streaming else parts))
        self._maybe_fail("stream" if streaming else "run")
        args = self._parse_json(rec.body)
        job = self._new_job(args, "stream" if streaming else "run")
        job.state, job.started = "IN_PROGRESS", time.time()
        if self._lose_reply(h, job):
            return
        try:
            job.prepared = self._prepare(args)
        except ValidationFailed as e:
            self._finish(job, errors=e.errors)
            raise HTTPError(422, {"detail": e.errors}, {"x-fal-request-id": job.id})
        output = self._generate(job)
        if streaming:
            return self._stream(h, job, output)
        if h.idle(job.job_seconds, self._stopping):
            self._finish(job, output=output)
            h.send_json(200, output, {"x-fal-request-id": job.id})
        else:
            self._mark_disconnected(job)

    def _stream(self, h: "_Handler", job: Job, output: dict) -> None:
        h.start_sse({"x-fal-request-id": job.id})
        cut_after = self.cut_stream_after
        pause = job.job_seconds / (job.steps + 1)
        events = [self._progress_event(job, output, i) for i in range(1, job.steps + 1)] + [output]
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

    def _progress_event(self, job: Job, output: dict, step: int) -> dict:
        event: dict[str, Any] = {}
        if self.stream_previews:
            images = []
            for img in job.prepared["rendered"]:
                preview = preview_of(img, step, job.steps)
                data = encode_image(preview, "jpeg")
                images.append({"url": data_uri(data, "image/jpeg"), "width": preview.width, "height": preview.height,
                               "content_type": "image/jpeg", "file_name": f"preview_{step}.jpg",
                               "file_size": len(data)})
            event.update(images=images, seed=output["seed"], prompt=output["prompt"],
                         has_nsfw_concepts=output["has_nsfw_concepts"])
        event["progress"] = {"step": step, "total": job.steps}
        event["logs"] = [_log(f"Step {step}/{job.steps}", time.time())]
        return event

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
            raise ValidationFailed([{"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}])

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
        if errs:
            raise ValidationFailed(errs)
        inputs = self._load_images(args["image_urls"][:3])
        seed = int(args["seed"]) if args["seed"] is not None else random.randint(0, 2**31 - 1)
        size = output_size(args["image_size"], inputs[0])
        if self.max_output_side and max(size) > self.max_output_side:
            scale = self.max_output_side / max(size)
            size = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
        h = hashlib.sha256(json.dumps([args["prompt"], seed, args["loras"]], sort_keys=True).encode())
        for img in inputs:
            h.update(f"{img.mode}{img.size}".encode())
            h.update(img.tobytes())
        rendered = [render_image(inputs, size, hashlib.sha256(h.digest() + bytes([i])).digest(), i)
                    for i in range(int(args["num_images"]))]
        return {"args": args, "seed": seed, "rendered": rendered}

    def _load_images(self, urls: list[str]) -> list[Image.Image]:
        images, errs = [], []
        for i, url in enumerate(urls):
            data = self._fetch(url)
            if data is None:
                errs.append(_err(["image_urls", i], "Failed to download the file. Please check if the URL is accessible.",
                                 "file_download_error", url))
                continue
            try:
                img = Image.open(io.BytesIO(data))
                img.load()
                images.append(img)
            except Exception:
                errs.append(_err(["image_urls", i], "Failed to load the image. Please ensure the image file is not "
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
        for i, img in enumerate(prepared["rendered"]):
            data = encode_image(img, fmt)
            name = f"{uuid.uuid4().hex[:16]}.{fmt}"
            url = data_uri(data, content_type) if args["sync_mode"] else self._store(name, data, content_type, False)
            images.append({"url": url, "width": img.width, "height": img.height, "content_type": content_type,
                           "file_name": name, "file_size": len(data)})
        return {"images": images, "seed": prepared["seed"], "prompt": args["prompt"],
                "has_nsfw_concepts": [nsfw and i == 0 for i in range(len(images))],
                "timings": {"inference": job.job_seconds}}


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a burst of connections (the load tests) would
    # overflow it and see resets that fal's own servers do not give.
    request_queue_size = 128


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every reply carries Content-Length or is chunked + close
    server_version = "fake-fal/1.0"

    def log_message(self, *args) -> None:  # keep pytest output quiet
        pass

    def _handle(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        rec = Recorded(method=self.command, path=url.path, query=dict(urllib.parse.parse_qsl(url.query)),
                       headers={k.lower(): v for k, v in self.headers.items()},
                       body=self.rfile.read(length) if length else b"", time=time.time())
        try:
            self.server.fake._dispatch(self, rec)  # type: ignore[attr-defined]
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # a bug in the fake should surface as a 500, not a hung client
            self.send_json(500, {"detail": f"fake_fal internal error: {e!r}", "error_type": "internal_error"})

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def send_bytes(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, body: Any, headers: dict | None = None) -> None:
        headers = dict(headers or {})
        ctype = headers.pop("content-type", "application/json")
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_bytes(status, data, ctype, headers)

    def start_sse(self, headers: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.close_connection = True

    def send_chunk(self, data: bytes) -> bool:
        """Write one chunk; False when the client has gone away."""
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            return True
        except (BrokenPipeError, ConnectionResetError, OSError):
            return False

    def end_chunks(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass

    def idle(self, seconds: float, stopping: threading.Event) -> bool:
        """Sleep ``seconds`` while watching the socket; False if the peer hung up (or we are stopping).

        A write to a half-closed socket can still succeed, so watching for EOF is the reliable way to
        notice that a client closed its stream (httpx sends nothing else on this connection meanwhile).
        """
        deadline = time.monotonic() + seconds
        while True:
            if stopping.is_set() or self._peer_closed():
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(0.02, left))

    def _peer_closed(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True
