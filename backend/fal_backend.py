"""The hosted backend: FLUX.2 [dev] LoRA edit on fal, through fal-client.

Two transports, both through the unmodified fal-client:
- "stream" (default; the endpoint is marked streaming): `SyncClient.stream` sends
  intermediate events, shown as previews, and the last event is the output. Stop
  closes the connection, which fal treats as a cancelled request.
- "queue": `submit`, then `status(with_logs=True)` every `poll_interval` seconds
  (queue position, log lines), then the result. Stop sends fal's cancel.

Either way the fal job is cancelled in a `finally` when the run is stopped, times
out, or the visitor leaves (Gradio closes the generator).

fal-client's own retries are switched off (see `_NoBlindRetries`): they take up to
10 tries over ~50-75 s and repeat a submit whose reply was lost, which would run
(and bill) the job twice. The backend retries instead, a few times and briefly,
and only what cannot start a second job (`FalBackend._retrying`).
"""

from __future__ import annotations

import email.utils
import io
import itertools
import json
import queue
import re
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal, TypeVar

import fal_client
import fal_client.client as fal_client_module
import httpx
from fal_client.auth import MissingCredentialsError
from httpx_sse import SSEError  # fal-client's SSE library
from PIL import Image

from .base import Backend
from .errors import (
    AuthFailed, FieldProblem, InvalidInput, MissingKey, RateLimited, RunTimeout,
    ServiceError, StudioError,
)
from .events import Event, Log, Preview, Progress, Queued, Result, ResultImage
from .images import prepare_reference, read_source
from .request import EditRequest, describe_location

DEFAULT_ENDPOINT = "fal-ai/flux-2/lora/edit"
FAL_MAX_REFERENCES = 3
STEP_PATTERN = re.compile(r"(\d+)\s*/\s*(\d+)")
# The statuses fal-client would retry itself: "not now" answers (408, 409, 429) and a
# proxy's 502-504. The response hook raises them first, so that the backend decides.
NOT_NOW_STATUSES = (408, 409, 429, 502, 503, 504)
T = TypeVar("T")


def point_fal_client_at(base_url: str) -> None:
    """Send every fal-client call to `base_url` instead of fal's hosts.

    For a fal-compatible gateway, or the test suite's fake fal server. fal-client reads
    these module constants at call time; there is no per-client host setting.
    """
    base = base_url.rstrip("/")
    fal_client_module.QUEUE_URL_FORMAT = base + "/queue/"
    fal_client_module.RUN_URL_FORMAT = base + "/run/"
    fal_client_module.REST_URL = base + "/rest"
    fal_client_module.CDN_URL = base + "/cdn"


@dataclass(frozen=True)
class FalSettings:
    endpoint: str = DEFAULT_ENDPOINT
    transport: Literal["stream", "queue"] = "stream"
    poll_interval: float = 0.5
    run_timeout: float = 600.0
    # References at most this big travel inline as data URIs (no upload round trips);
    # larger ones go through fal's storage.
    inline_max_bytes: int = 512 * 1024
    download_max_bytes: int = 64 * 1024 * 1024
    # Retries of a call fal answered "not now" (429, a proxy's 502-504, a dropped
    # connection): at most `retry_attempts` tries, waiting `retry_backoff` s, doubled
    # each time, never more than `retry_max_wait` s. A Retry-After above that ends the
    # run at once ("try again in ..."): a person should not watch a spinner for minutes.
    retry_attempts: int = 3
    retry_backoff: float = 1.0
    retry_max_wait: float = 8.0


class FalBackend(Backend):
    name = "fal"
    max_references = FAL_MAX_REFERENCES
    concurrent_runs = 8

    def __init__(self, settings: FalSettings | None = None, server_key: str | None = None):
        self.settings = settings or FalSettings()
        self._server_key = server_key  # never logged: not part of repr
        self._client: fal_client.SyncClient | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FalBackend(endpoint={self.settings.endpoint!r}, transport={self.settings.transport!r})"

    def run(self, request: EditRequest, *, key: str | None = None) -> Iterator[Event]:
        key = (key or "").strip() or self._server_key
        if not key:
            raise MissingKey()
        if len(request.image_urls) > self.max_references:
            raise InvalidInput.one(
                "image_urls", "Reference images",
                f"fal takes at most {self.max_references} images (got {len(request.image_urls)})",
            )
        # The server's key gets one client for all runs (its connections and TLS set-up
        # are reused); a visitor's key gets a client for this run only, closed after it.
        shared = key == self._server_key
        client = self._shared_client() if shared else _new_client(key)
        try:
            with _fal_errors():
                deadline = time.monotonic() + self.settings.run_timeout
                urls = []
                for index, source in enumerate(request.image_urls, start=1):
                    urls.append((yield from self._in_background(
                        lambda source=source, label=f"image {index}": self._send_reference(client, source, label),
                        Progress(f"Sending image {index} to fal…"), deadline,
                    )))
                arguments = request.to_fal_arguments(urls)
                if self.settings.transport == "queue":
                    output, request_id = yield from self._run_queued(client, arguments)
                else:
                    output, request_id = yield from self._run_streamed(client, arguments)
                yield Progress("Downloading the results…")
                yield self._result(output, request_id)
        finally:
            if not shared:
                _close(client)

    def _shared_client(self) -> fal_client.SyncClient:
        with self._lock:
            if self._client is None:
                self._client = _new_client(self._server_key)
            return self._client

    def _in_background(self, call: Callable[[], T], status: Progress, deadline: float) -> Generator[Progress, None, T]:
        """`call()` in a thread, yielding `status` while it runs, so that Stop and the
        deadline still work. An upload of a large reference goes through fal-client's
        own upload client, which retries a 429 for up to about a minute by itself."""
        box: list = []
        done = threading.Event()

        def work() -> None:
            try:
                box.append(("value", call()))
            except BaseException as error:  # handed to the generator, which raises it
                box.append(("error", error))
            done.set()

        threading.Thread(target=work, name="fal-reference", daemon=True).start()
        while not done.wait(self.settings.poll_interval):
            if time.monotonic() > deadline:
                raise RunTimeout(self.settings.run_timeout)
            yield status  # also lets a Stop in: the thread's result is then dropped
        kind, value = box[0]
        if kind == "error":
            raise value
        return value

    # -- references -------------------------------------------------------------------

    def _send_reference(self, client: fal_client.SyncClient, source: str, label: str) -> str:
        if source.startswith(("https://", "http://")):
            return source  # fal fetches public URLs itself
        prepared = prepare_reference(source, label)
        if len(prepared.data) <= self.settings.inline_max_bytes:
            return prepared.data_uri()
        extension = prepared.content_type.removeprefix("image/").replace("jpeg", "jpg")
        return client.upload(prepared.data, prepared.content_type, f"reference.{extension}")

    # -- retries ----------------------------------------------------------------------

    def _attempts(self, call: Callable[[], T], *, starts_job: bool = False,
                  stop: threading.Event | None = None) -> Generator[Progress, None, T]:
        """`call()`, tried again a few times, briefly, when fal said "not now"; before each
        wait it yields a Progress saying so ("… trying again in 2 s (try 2 of 3)").

        A call that can start a job (the submit, the stream's POST) is sent again only
        when fal surely did not take it: a 429 (refused before it is queued) or no
        connection at all. After a proxy's 502-504 or a reply lost on the way, fal may
        have started the job already: sending it again would run (and bill) it twice,
        so the run ends with the error instead. Status, result, cancel and downloads
        repeat safely. `stop` set during a wait ends the retries.
        """
        attempt = 1
        while True:
            try:
                return call()
            except StudioError as error:
                wait = self._retry_wait(error, attempt, starts_job)
                if wait is None or attempt >= self.settings.retry_attempts:
                    raise
                yield Progress(_retry_note(error, wait, attempt + 1, self.settings.retry_attempts))
                if stop is not None:
                    if stop.wait(wait):
                        raise error from None
                else:
                    time.sleep(wait)
            attempt += 1

    def _retrying(self, call: Callable[[], T], *, starts_job: bool = False, stop: threading.Event | None = None,
                  notify: Callable[[Progress], None] | None = None) -> T:
        """`_attempts` where there is no generator to yield to: its notes go to `notify`."""
        steps = self._attempts(call, starts_job=starts_job, stop=stop)
        while True:
            try:
                note = next(steps)
            except StopIteration as done:
                return done.value
            if notify is not None:
                notify(note)

    def _retry_wait(self, error: StudioError, attempt: int, starts_job: bool) -> float | None:
        """Seconds to wait before trying `error`'s call again; None: do not try again."""
        settings = self.settings
        if isinstance(error, RateLimited):
            if error.retry_after is not None:
                return error.retry_after if error.retry_after <= settings.retry_max_wait else None
        elif not (isinstance(error, _NotSent) or (isinstance(error, _Transient) and not starts_job)):
            return None
        return min(settings.retry_backoff * 2 ** (attempt - 1), settings.retry_max_wait)

    # -- transports -------------------------------------------------------------------

    def _run_queued(self, client: fal_client.SyncClient, arguments: dict[str, Any]):
        handle = yield from self._attempts(lambda: client.submit(self.settings.endpoint, arguments), starts_job=True)
        deadline = time.monotonic() + self.settings.run_timeout
        finished = False
        logs_seen = 0
        last_progress = Progress("Running on fal…")
        try:
            while True:
                status = yield from self._attempts(lambda: handle.status(with_logs=True))
                logs = getattr(status, "logs", None) or []
                new_logs = logs[logs_seen:]
                logs_seen = max(logs_seen, len(logs))
                yield from _log_events(new_logs)
                # One status event per poll: the UI redraws once per poll, not per line.
                if isinstance(status, fal_client.Queued):
                    yield Queued(position=status.position)
                elif isinstance(status, fal_client.InProgress):
                    last_progress = _progress_from_logs(new_logs) or last_progress
                    yield last_progress
                elif isinstance(status, fal_client.Completed):
                    if status.error:
                        raise ServiceError(f"fal could not finish the run: {status.error}", retryable=False)
                    break
                if time.monotonic() > deadline:
                    raise RunTimeout(self.settings.run_timeout)
                time.sleep(self.settings.poll_interval)
            output = yield from self._attempts(lambda: client.result(self.settings.endpoint, handle.request_id))
            finished = True
            return output, handle.request_id
        finally:
            if not finished:
                try:
                    self._retrying(handle.cancel)
                except Exception:  # already completed or unreachable: nothing more to do
                    pass

    def _run_streamed(self, client: fal_client.SyncClient, arguments: dict[str, Any]):
        # The SSE read blocks; it runs in a thread so that this generator keeps
        # yielding (and so notices a Stop) while fal is quiet.
        inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        connection = _StreamConnection()

        def read_stream() -> None:
            _current_stream.connection = connection  # the response hook fills it in
            try:
                events = self._retrying(
                    lambda: _open_stream(client, self.settings.endpoint, arguments),
                    starts_job=True, stop=connection.stopped, notify=lambda note: inbox.put(("note", note)),
                )
                for event in events:
                    if connection.aborted:
                        return
                    inbox.put(("event", event))
                inbox.put(("end", None))
            except BaseException as error:  # handed to the generator, which raises it
                inbox.put(("error", error))

        reader = threading.Thread(target=read_stream, name="fal-stream", daemon=True)
        reader.start()
        deadline = time.monotonic() + self.settings.run_timeout
        last: dict[str, Any] | None = None
        finished = False
        progress = Progress("Sent to fal, waiting for the first update…")
        yield progress
        try:
            while True:
                try:
                    kind, value = inbox.get(timeout=self.settings.poll_interval)
                except queue.Empty:
                    if time.monotonic() > deadline:
                        raise RunTimeout(self.settings.run_timeout) from None
                    # fal is quiet: repeat the last status (this yield also lets a Stop in).
                    yield progress
                    continue
                if kind == "error":
                    raise value
                if kind == "end":
                    break
                if kind == "note":  # waiting to try again: say so
                    progress = value
                    yield value
                    continue
                last = value
                for event in self._intermediate_events(value):
                    if isinstance(event, Progress):
                        progress = event
                    yield event
            if last is None or not _looks_final(last):
                raise ServiceError("fal's stream ended before the result arrived. Run again.")
            finished = True
            return last, last.get("request_id")
        finally:
            if not finished:
                # Dropping the connection is how a streamed fal request is cancelled.
                connection.abort()
            reader.join(timeout=2.0)

    def _intermediate_events(self, event: dict[str, Any]) -> Iterator[Event]:
        """Log lines, then one Preview or Progress for an intermediate stream event."""
        logs = event.get("logs") or []
        yield from _log_events(logs)
        progress = event.get("progress")
        step = total = None
        if isinstance(progress, dict):
            step, total = progress.get("step"), progress.get("total")
        if event.get("images") and not _looks_final(event):
            images = tuple(_decode(self._fetch(item)) for item in event["images"])
            yield Preview(images=images, step=step, total=total)
        elif step is not None:
            yield Progress(f"Step {step} of {total}", step=step, total=total)
        elif (from_logs := _progress_from_logs(logs)) is not None:
            yield from_logs

    # -- results ----------------------------------------------------------------------

    def _result(self, output: dict[str, Any], request_id: str | None) -> Result:
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
        timings = {k: float(v) for k, v in (output.get("timings") or {}).items() if isinstance(v, (int, float))}
        return Result(
            images=tuple(images), seed=output.get("seed"), timings=timings,
            prompt=output.get("prompt"), request_id=request_id,
        )

    def _fetch(self, item: dict[str, Any]) -> bytes:
        """The bytes of an image fal returned: a data URI, or a file on fal's CDN."""
        url = str(item.get("url") or "")
        if url.startswith("data:"):
            return read_source(url, "result image")
        if not url.startswith(("https://", "http://")):
            raise ServiceError("fal returned an image without a usable URL.")
        return self._retrying(lambda: self._download(url))

    def _download(self, url: str) -> bytes:
        limit = self.settings.download_max_bytes
        with _downloads().stream("GET", url) as response:
            status = response.status_code
            if status in NOT_NOW_STATUSES:  # a busy or unreachable file server: a GET repeats safely
                raise _Transient(
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


# -- helpers --------------------------------------------------------------------------


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


def _looks_final(event: dict[str, Any]) -> bool:
    """The output event carries the seed and no progress; intermediate ones carry progress."""
    return bool(event.get("images")) and "seed" in event and "progress" not in event


def _log_events(entries: list[Any]) -> Iterator[Log]:
    for entry in entries:
        message = str(entry.get("message", "")) if isinstance(entry, dict) else str(entry)
        if message:
            level = str(entry.get("level", "INFO")) if isinstance(entry, dict) else "INFO"
            yield Log(message=message, level=level)


def _progress_from_logs(entries: list[Any]) -> Progress | None:
    """The latest 'i/n' step count in fal's log lines (tqdm-style), if any."""
    for entry in reversed(entries):
        message = str(entry.get("message", "")) if isinstance(entry, dict) else str(entry)
        match = STEP_PATTERN.search(message)
        if match and 0 < int(match.group(2)) <= 1000:
            step, total = int(match.group(1)), int(match.group(2))
            return Progress(f"Step {step} of {total}", step=step, total=total)
    return None


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _sniff_type(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/png"


def _close(client: fal_client.SyncClient) -> None:
    """Close the per-run HTTP connections (fal-client caches its httpx client lazily)."""
    http = client.__dict__.get("_client")
    if http is not None:
        http.close()


def _retry_note(error: StudioError, wait: float, next_try: int, tries: int) -> str:
    """What the status line says while the backend waits to try a call again."""
    if isinstance(error, RateLimited):
        what = "fal is rate limiting this key (HTTP 429)"
    elif isinstance(error, _NotSent):
        what = "fal could not be reached"
    elif getattr(error, "status_code", None):
        what = f"fal's service is busy (HTTP {error.status_code})"
    else:
        what = "the connection to fal broke off"
    when = f"in {wait:.0f} s" if wait >= 1 else "in a moment"
    return f"{what}; trying again {when} (try {next_try} of {tries})…"


def _new_client(key: str) -> fal_client.SyncClient:
    client = fal_client.SyncClient(key=key, default_timeout=60.0)
    http = client._client
    # fal-client's stream() does not check the HTTP status (an error body surfaces as
    # an opaque SSEError). A response hook on its httpx client reads error bodies
    # first, so a 422 on the stream still names the wrong field; it also raises the
    # "not now" statuses before fal-client's retry loop sees them.
    http.event_hooks["response"].append(_on_fal_response)
    http._transport = _NoBlindRetries(http._transport)  # no public setter in httpx
    return client


class _Transient(ServiceError):
    """A failure that may pass: a proxy's 502-504, 408/409, a connection lost or timed
    out. The request may have reached fal: only calls that cannot start a job repeat."""


class _NotSent(_Transient):
    """No connection was made, so nothing reached fal: even a submit may be sent again."""


class _NoBlindRetries(httpx.BaseTransport):
    """fal-client's transport, with network failures raised as StudioErrors.

    fal-client's retry loop repeats httpx errors (and FalClientHTTPErrors it deems
    retryable), a submit's POST included: a submit whose reply was lost would be sent
    again and start a second job. A StudioError passes through that loop untouched,
    so `FalBackend._retrying` decides instead. Replies are read here, so that one cut
    midway fails here too, not later inside fal-client's loop; streams are not.
    """

    def __init__(self, inner: httpx.BaseTransport):
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = self._inner.handle_request(request)
            if request.headers.get("accept") != "text/event-stream":
                try:
                    response.read()
                except BaseException:
                    response.close()
                    raise
            return response
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise _NotSent(f"Could not reach fal ({type(error).__name__}). Check the connection.") from None
        except httpx.TimeoutException:
            raise _Transient("fal did not answer in time. Try again.") from None
        except httpx.TransportError as error:
            raise _Transient(
                f"The connection to fal broke off before fal answered ({type(error).__name__}). Run again."
            ) from None

    def close(self) -> None:
        self._inner.close()


def _open_stream(client: fal_client.SyncClient, endpoint: str, arguments: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """fal's stream with its first event read: the POST, and its HTTP errors, happen here."""
    events = client.stream(endpoint, arguments)
    first = next(events, None)
    return events if first is None else itertools.chain([first], events)


class _StreamConnection:
    """The socket of one streamed request, so that another thread can drop it."""

    def __init__(self) -> None:
        self.response: httpx.Response | None = None
        self.stopped = threading.Event()  # also ends the retries of opening the stream

    @property
    def aborted(self) -> bool:
        return self.stopped.is_set()

    def abort(self) -> None:
        self.stopped.set()
        response = self.response
        stream = response.extensions.get("network_stream") if response is not None else None
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            try:
                # shutdown (not close) wakes the reader blocked in recv and tells fal at once.
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# Set by the thread that reads a stream; the response hook runs in that same thread.
_current_stream = threading.local()


def _on_fal_response(response: httpx.Response) -> None:
    streamed = response.request.url.path.endswith("/stream")
    if streamed:
        connection = getattr(_current_stream, "connection", None)
        if connection is not None:
            connection.response = response
    status = response.status_code
    if (streamed and status >= 400) or status in NOT_NOW_STATUSES:
        response.read()
        _raise_for_http_status(status, _json_or_text(response), response.headers)


def _json_or_text(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return response.text
    return body.get("detail", body) if isinstance(body, dict) else body


def _raise_for_http_status(status: int, detail: Any, headers: Any = None) -> None:
    if status in (401, 403):
        raise AuthFailed(status)
    if status == 422:
        raise InvalidInput(_problems_from_fal_detail(detail))
    if status == 429:
        raise RateLimited(_retry_after(headers))
    text = detail if isinstance(detail, str) else str(detail)
    # A proxy's error page (HTML) says nothing a person can use: the status says it all.
    text = "" if text.lstrip().startswith("<") else text.strip()[:300]
    said = f": {text}" if text else ""
    if status in (502, 503, 504):
        raise _Transient(
            f"fal's service is unavailable (HTTP {status} {HTTPStatus(status).phrase}){said}. "
            "The problem is on fal's side or on the way to it; try again in a minute.",
            status_code=status,
        )
    if status in (408, 409):
        raise _Transient(f"fal could not take the request just now (HTTP {status}){said}. Try again.",
                         status_code=status)
    if status >= 500:
        raise ServiceError(f"fal had a problem (HTTP {status}){said}. Try again in a moment.", status_code=status)
    raise ServiceError(f"fal refused the request (HTTP {status}){said}", status_code=status, retryable=False)


def _retry_after(headers: Any) -> float | None:
    """fal's Retry-After in seconds (a number or an HTTP date), None when absent or unreadable."""
    value = (headers or {}).get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time()) if when.tzinfo else None


def _problems_from_fal_detail(detail: Any) -> list[FieldProblem]:
    """fal's 422 detail (pydantic's list of {loc, msg, type}) as field problems."""
    if not isinstance(detail, list):
        return [FieldProblem(field="request", label="Request", message=str(detail)[:300])]
    problems = []
    for item in detail:
        if not isinstance(item, dict):
            continue
        loc = tuple(item.get("loc") or ())
        field = next((str(p) for p in loc if p != "body"), "request")
        problems.append(FieldProblem(
            field=field, label=describe_location(loc), message=str(item.get("msg", "is not valid")),
        ))
    return problems or [FieldProblem(field="request", label="Request", message="fal refused the request")]


@contextmanager
def _fal_errors():
    """Translate fal-client and network exceptions into StudioErrors."""
    try:
        yield
    except StudioError:
        raise
    except fal_client.FalClientHTTPError as error:
        _raise_for_http_status(error.status_code, error.message, error.response_headers)
    except fal_client.FalClientTimeoutError:
        raise ServiceError("fal did not answer in time. Try again.") from None
    except MissingCredentialsError:
        raise MissingKey() from None
    except SSEError:
        raise ServiceError("fal answered the stream with something that is not a stream.") from None
    except httpx.TimeoutException:
        raise ServiceError("fal did not answer in time. Try again.") from None
    except httpx.RemoteProtocolError:
        raise ServiceError("The connection to fal broke off before the result arrived. Run again.") from None
    except httpx.HTTPError as error:
        raise ServiceError(f"Could not reach fal ({type(error).__name__}). Check the connection.") from None
    except json.JSONDecodeError:  # a reply cut or garbled on the way
        raise ServiceError("fal sent a reply the app could not read. Run again.") from None
