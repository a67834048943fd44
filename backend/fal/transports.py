"""The two ways a run reaches fal, both through the unmodified fal-client.

- "stream" (default; the endpoint is marked streaming): `SyncClient.stream` sends
  intermediate events, shown as previews, and the last event is the output. Stop
  closes the connection, which fal treats as a cancelled request.
- "queue": `submit`, then `status(with_logs=True)` every `poll_interval` seconds
  (queue position, log lines), then the result. Stop sends fal's cancel.

Either way the fal job is cancelled in a `finally` when the run is stopped, times
out, or the visitor leaves (Gradio closes the generator). Each is a generator of
events that returns fal's output and the request id.
"""

from __future__ import annotations

import contextlib
import io
import re
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

import fal_client
import httpx
from PIL import Image

from ..bridge import Deadline, Emit, Latest, bridge
from ..errors import InvalidInput, ServiceError, StudioError
from ..events import Event, Log, Preview, Progress, Queued
from ..redact import redact
from .config import FalSettings
from .http import current_stream, fal_errors
from .retries import attempts, retrying

STEP_PATTERN = re.compile(r"(\d+)\s*/\s*(\d+)")

#: fal's output and its request id
Output = tuple[dict[str, Any], str | None]
#: the bytes of an image fal returned (a data URI or a file on fal's CDN)
Fetch = Callable[[dict[str, Any]], bytes]
#: the run's keys: fal's text (log lines, errors) is redacted with them before it is shown
Secrets = Sequence[str | None]


def run_queued(
    client: fal_client.SyncClient, settings: FalSettings, arguments: dict[str, Any], secrets: Secrets = (),
) -> Generator[Event, None, Output]:
    handle = yield from attempts(settings, lambda: client.submit(settings.endpoint, arguments), starts_job=True)
    deadline = Deadline(settings.run_timeout)
    finished = False
    logs_seen = 0
    last_progress = Progress("Running on fal…")
    try:
        while True:
            status = yield from attempts(settings, lambda: handle.status(with_logs=True))
            logs = getattr(status, "logs", None) or []
            new_logs = logs[logs_seen:]
            logs_seen = max(logs_seen, len(logs))
            yield from log_events(new_logs, secrets)
            # One status event per poll: the UI redraws once per poll, not per line.
            if isinstance(status, fal_client.Queued):
                yield Queued(position=status.position)
            elif isinstance(status, fal_client.InProgress):
                last_progress = progress_from_logs(new_logs) or last_progress
                yield last_progress
            elif isinstance(status, fal_client.Completed):
                if status.error:
                    yield from failed_result(client, settings, handle.request_id, status.error, secrets)
                break
            deadline.check()
            time.sleep(settings.poll_interval)
        output = yield from attempts(settings, lambda: client.result(settings.endpoint, handle.request_id))
        finished = True
        return output, handle.request_id
    finally:
        if not finished:
            # Whatever the cancel meets (the job already completed, fal unreachable),
            # there is nothing more to do, and the run's own error must not be masked.
            with contextlib.suppress(Exception):
                retrying(settings, handle.cancel)


def failed_result(
    client: fal_client.SyncClient, settings: FalSettings, request_id: str, error: Any, secrets: Secrets,
) -> Generator[Event, None, None]:
    """Raise why a queued job failed. fal's COMPLETED status says only "Unprocessable
    Entity"; its result answers the 422 with each field's problem ("LoRA 1 path: …"),
    so the result is fetched for them. Any other answer: the status's reason."""
    try:
        with fal_errors(secrets):
            yield from attempts(settings, lambda: client.result(settings.endpoint, request_id))
    except InvalidInput:
        raise
    except StudioError:
        pass  # the status's own reason says it
    raise ServiceError(f"fal could not finish the run: {redact(str(error), *secrets)[:300]}", retryable=False)


def run_streamed(
    client: fal_client.SyncClient, settings: FalSettings, arguments: dict[str, Any], fetch: Fetch,
    secrets: Secrets = (),
) -> Generator[Event, None, Output]:
    # The SSE read blocks; it runs in a thread (through `bridge`) so that this generator
    # keeps yielding (and so notices a Stop) while fal is quiet: then it repeats the
    # last status. Closing the generator drops the connection (`stop`).
    connection = StreamConnection()
    status = Latest(Progress("Sent to fal, waiting for the first update…"))

    def read_stream(emit: Emit) -> dict[str, Any] | None:
        current_stream.connection = connection  # the response hook fills it in

        def say(event: Event) -> None:
            if isinstance(event, Progress):
                status.value = event
            emit(event)

        say(status.value)
        events = retrying(
            settings, lambda: open_stream(client, settings.endpoint, arguments),
            starts_job=True, stop=connection.stopped, notify=say,  # waiting to try again: say so
        )
        last = None
        try:
            for event in events:
                if connection.aborted:
                    return None
                last = event
                for update in intermediate_events(event, fetch, secrets):
                    say(update)
        finally:
            # Closed here, not left to the garbage collector: a Stop that came while the POST was
            # on its way (before its socket could be dropped) then still ends the job on fal.
            events.close()
        return last

    finished = False
    try:
        last = yield from bridge(
            read_stream, heartbeat=status, poll=settings.poll_interval, deadline=Deadline(settings.run_timeout),
            stop=connection.abort, name="fal-stream",
        )
        if last is None or not looks_final(last):
            raise ServiceError("fal's stream ended before the result arrived. Run again.")
        finished = True
        return last, last.get("request_id")
    finally:
        if not finished:
            # Dropping the connection is how a streamed fal request is cancelled.
            connection.abort()


def open_stream(client: fal_client.SyncClient, endpoint: str, arguments: dict[str, Any],
                ) -> Generator[dict[str, Any], None, None]:
    """fal's stream with its first event read: the POST, and its HTTP errors, happen here."""
    events = client.stream(endpoint, arguments)
    first = next(events, None)
    return _from_first(first, events)


def _from_first(first: dict[str, Any] | None, events: Iterator[dict[str, Any]],
                ) -> Generator[dict[str, Any], None, None]:
    """`first`, then the rest of `events`; closing this closes the stream (its connection)."""
    try:
        if first is not None:
            yield first
        yield from events
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


class StreamConnection:
    """The socket of one streamed request, so that another thread can drop it.

    A stop can come before fal has answered the POST (a busy fal, or a busy server):
    there is no socket to drop yet, so the response is dropped as it arrives (`attach`),
    instead of being read until fal's first update, which could be minutes away."""

    def __init__(self) -> None:
        self.response: httpx.Response | None = None
        self.stopped = threading.Event()  # also ends the retries of opening the stream
        self._lock = threading.Lock()  # a stop and the response's arrival, one at a time

    @property
    def aborted(self) -> bool:
        return self.stopped.is_set()

    def attach(self, response: httpx.Response) -> None:
        """The stream's response has arrived (in the reading thread, from the response hook)."""
        with self._lock:
            self.response = response
            stopped = self.stopped.is_set()
        if stopped:
            _drop(response)

    def abort(self) -> None:
        with self._lock:
            self.stopped.set()
            response = self.response
        if response is not None:
            _drop(response)


def _drop(response: httpx.Response) -> None:
    """Shut the response's socket down: that wakes a reader blocked in recv and tells fal at once
    (a shutdown, not a close, which would leave the reader on a closed file descriptor)."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def intermediate_events(event: dict[str, Any], fetch: Fetch, secrets: Secrets = ()) -> Iterator[Event]:
    """Log lines, then one Preview or Progress for an intermediate stream event."""
    logs = event.get("logs") or []
    yield from log_events(logs, secrets)
    progress = event.get("progress")
    step = total = None
    if isinstance(progress, dict):
        step, total = progress.get("step"), progress.get("total")
    if event.get("images") and not looks_final(event):
        images = tuple(decode(fetch(item)) for item in event["images"])
        yield Preview(images=images, step=step, total=total)
    elif step is not None:
        yield Progress(f"Step {step} of {total}", step=step, total=total)
    elif (from_logs := progress_from_logs(logs)) is not None:
        yield from_logs


def looks_final(event: dict[str, Any]) -> bool:
    """The output event carries the seed and no progress; intermediate ones carry progress."""
    return bool(event.get("images")) and "seed" in event and "progress" not in event


def log_events(entries: list[Any], secrets: Secrets = ()) -> Iterator[Log]:
    """fal's log lines, each redacted with the run's keys."""
    for entry in entries:
        message = str(entry.get("message", "")) if isinstance(entry, dict) else str(entry)
        if message:
            level = str(entry.get("level", "INFO")) if isinstance(entry, dict) else "INFO"
            yield Log(message=redact(message, *secrets), level=redact(level, *secrets)[:20])


def progress_from_logs(entries: list[Any]) -> Progress | None:
    """The latest 'i/n' step count in fal's log lines (tqdm-style), if any."""
    for entry in reversed(entries):
        message = str(entry.get("message", "")) if isinstance(entry, dict) else str(entry)
        match = STEP_PATTERN.search(message)
        if match and 0 < int(match.group(2)) <= 1000:
            step, total = int(match.group(1)), int(match.group(2))
            return Progress(f"Step {step} of {total}", step=step, total=total)
    return None


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
