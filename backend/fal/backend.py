"""The hosted backend: FLUX.2 [dev] LoRA edit on fal, through fal-client.

A run sends the references (inline, or through fal's storage), then the request
over one of two transports (transports.py: "stream" or "queue"), then fetches the
result images. fal's HTTP answers become our errors in http.py; what is tried again,
and when, is retries.py.
"""

from __future__ import annotations

import functools
import io
import threading
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

import fal_client
import httpx
from PIL import Image

from ..base import Backend
from ..bridge import Deadline, bridge
from ..errors import InvalidInput, MissingKey, ServiceError
from ..events import Event, Progress, Result, ResultImage
from ..images import prepare_reference, read_source
from ..lora_header import FLUX2_DEV
from ..lora_preflight import LoraInspector
from ..redact import redact, secrets_in_use
from ..request import EditRequest
from .config import FAL_MAX_REFERENCES, FalSettings
from .http import NOT_NOW_STATUSES, Transient, close_client, fal_errors, new_client
from .options import FalOptions
from .retries import retrying
from .transports import run_queued, run_streamed

T = TypeVar("T")

# The order of fal's arguments: fal's input schema's, as the JSON had it when these
# options were fields of EditRequest, so that fal gets the very same bytes. Fields
# not named here (none today) follow in the models' order.
FAL_ARGUMENT_ORDER = (
    "prompt", "image_urls", "loras", "guidance_scale", "num_inference_steps", "image_size", "num_images",
    "seed", "acceleration", "enable_prompt_expansion", "enable_safety_checker", "output_format", "sync_mode",
)


def fal_arguments(request: EditRequest, options: FalOptions, image_urls: Sequence[str]) -> dict[str, Any]:
    """The JSON arguments for fal: the request and fal's options, with `image_urls`
    replaced by what fal can fetch.

    Fields left at None (random seed, size matching the first image) are omitted so
    that fal applies its own behaviour for them.
    """
    fields = {**request.model_dump(mode="json", exclude_none=True), **options.model_dump(mode="json")}
    fields["image_urls"] = list(image_urls)
    ordered = {name: fields.pop(name) for name in FAL_ARGUMENT_ORDER if name in fields}
    return {**ordered, **fields}


class FalBackend(Backend[FalOptions]):
    name = "fal"
    options_model = FalOptions
    max_references = FAL_MAX_REFERENCES
    concurrent_runs = 8

    def __init__(self, settings: FalSettings | None = None, server_key: str | None = None):
        self.settings = settings or FalSettings()
        self._server_key = server_key  # never logged: not part of repr
        self._client: fal_client.SyncClient | None = None
        self._lock = threading.Lock()
        self.lora_inspector = LoraInspector() if self.settings.lora_check else None
        self.lora_model = FLUX2_DEV

    def __repr__(self) -> str:
        return f"FalBackend(endpoint={self.settings.endpoint!r}, transport={self.settings.transport!r})"

    def source(self, options: FalOptions) -> str:
        return self.settings.endpoint

    def _key_for(self, key: str | None) -> str | None:
        """The key a run uses: the visitor's, else the server's (None: neither)."""
        return (key or "").strip() or self._server_key

    def lacks_key(self, key: str | None) -> bool:
        return not self._key_for(key)

    def run(self, request: EditRequest, options: FalOptions, *, key: str | None = None) -> Generator[Event, None, None]:
        key = self._key_for(key)
        if not key:  # plan_run names it with the form's problems first; this is for other callers
            raise MissingKey()
        if len(request.image_urls) > self.max_references:
            raise InvalidInput.one(
                "image_urls", "Reference images",
                f"fal takes at most {self.max_references} images (got {len(request.image_urls)})",
            )
        # The server's key gets one client for all runs (its connections and TLS set-up
        # are reused); a visitor's key gets a client for this run only, closed after it.
        shared = key == self._server_key
        secrets = (key, self._server_key)  # fal's text is redacted with both before it is shown
        client = self._shared_client() if shared else new_client(key)
        try:
            with secrets_in_use(key), fal_errors(secrets):
                deadline = Deadline(self.settings.run_timeout)
                if self.lora_inspector is not None and request.loras:
                    yield from self._in_background(functools.partial(self._check_loras, request),
                                                   Progress("Checking the LoRAs…"), deadline)
                urls = []
                for index, source in enumerate(request.image_urls, start=1):
                    urls.append((yield from self._in_background(
                        functools.partial(self._send_reference, client, source, f"image {index}"),
                        Progress(f"Sending image {index} to fal…"), deadline,
                    )))
                arguments = fal_arguments(request, options, urls)
                if self.settings.transport == "queue":
                    output, request_id = yield from run_queued(client, self.settings, arguments, secrets)
                else:
                    output, request_id = yield from run_streamed(
                        client, self.settings, arguments, self._fetch, secrets)
                yield Progress("Downloading the results…")
                yield self._result(output, request_id, secrets)
        finally:
            if not shared:
                close_client(client)

    def _shared_client(self) -> fal_client.SyncClient:
        with self._lock:
            if self._client is None:
                self._client = new_client(self._server_key)
            return self._client

    def _in_background(
        self, call: Callable[[], T], status: Progress, deadline: Deadline,
    ) -> Generator[Progress, None, T]:
        """`call()` in a thread, yielding `status` while it runs, so that Stop and the
        deadline still work. An upload of a large reference goes through fal-client's
        own upload client, which retries a 429 for up to about a minute by itself."""
        return (yield from bridge(
            lambda emit: call(), heartbeat=lambda: status, poll=self.settings.poll_interval, deadline=deadline,
            join_seconds=0,  # a Stop returns at once: the thread's result is then dropped
            name="fal-reference",
        ))

    def _check_loras(self, request: EditRequest) -> None:
        """Each LoRA's header, read before anything is spent: LoraError for one that cannot
        be read or was made for another model."""
        assert self.lora_inspector is not None
        for index, lora in enumerate(request.loras, start=1):
            self.lora_inspector.check(index, lora.path)

    # -- references -------------------------------------------------------------------

    def _send_reference(self, client: fal_client.SyncClient, source: str, label: str) -> str:
        if source.startswith(("https://", "http://")):
            return source  # fal fetches public URLs itself
        prepared = prepare_reference(source, label)
        if len(prepared.data) <= self.settings.inline_max_bytes:
            return prepared.data_uri()
        extension = prepared.content_type.removeprefix("image/").replace("jpeg", "jpg")
        return client.upload(prepared.data, prepared.content_type, f"reference.{extension}")

    # -- results ----------------------------------------------------------------------

    def _result(self, output: dict[str, Any], request_id: str | None, secrets: Sequence[str | None] = ()) -> Result:
        items = output.get("images") or []
        if not items:
            raise ServiceError("fal finished but returned no images.", retryable=True)
        flags = list(output.get("has_nsfw_concepts") or [])
        images = []
        for index, item in enumerate(items):
            data = self._fetch(item)
            content_type = item.get("content_type") or _sniff_type(data)
            width, height = item.get("width"), item.get("height")
            if not (width and height):
                with Image.open(io.BytesIO(data)) as probe:
                    width, height = probe.size
            images.append(ResultImage(
                data=data, content_type=content_type, width=int(width), height=int(height),
                nsfw=bool(flags[index]) if index < len(flags) else False,
            ))
        timings = {redact(str(k), *secrets)[:40]: float(v) for k, v in (output.get("timings") or {}).items()
                   if isinstance(v, (int, float))}
        prompt = output.get("prompt")
        return Result(
            images=tuple(images), seed=output.get("seed"), timings=timings,
            prompt=redact(str(prompt), *secrets) if prompt else None, request_id=request_id,
        )

    def _fetch(self, item: dict[str, Any]) -> bytes:
        """The bytes of an image fal returned: a data URI, or a file on fal's CDN."""
        url = str(item.get("url") or "")
        if url.startswith("data:"):
            return read_source(url, "result image")
        if not url.startswith(("https://", "http://")):
            raise ServiceError("fal returned an image without a usable URL.")
        return retrying(self.settings, lambda: self._download(url))

    def _download(self, url: str) -> bytes:
        limit = self.settings.download_max_bytes
        with _downloads().stream("GET", url) as response:
            status = response.status_code
            if status in NOT_NOW_STATUSES:  # a busy or unreachable file server: a GET repeats safely
                raise Transient(
                    f"Could not download a result image: fal's file server is unavailable (HTTP {status}). "
                    "Try again in a minute.", status_code=status,
                )
            if status != 200:
                raise ServiceError(f"Could not download a result image (HTTP {status}).")
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise ServiceError(f"A result image is larger than {limit // 2**20} MB.")
                chunks.append(chunk)
        return b"".join(chunks)


_download_client: httpx.Client | None = None
_download_lock = threading.Lock()


def _downloads() -> httpx.Client:
    """One shared client for result downloads (thread-safe; saves a TLS set-up per run).

    It carries no fal key: result files are public CDN URLs, and a key must never go
    to a host named in a response.
    """
    global _download_client
    with _download_lock:
        if _download_client is None:
            _download_client = httpx.Client(timeout=60.0, follow_redirects=True)
        return _download_client


def _sniff_type(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/png"
