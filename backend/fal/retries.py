"""The fal backend's retry policy: a call fal answered "not now" is tried again a few
times, briefly, and only when that cannot start a second job.

fal-client's own retries are off (http.py, `NoBlindRetries`); these replace them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from typing import TypeVar

from ..errors import RateLimited, StudioError
from ..events import Progress
from .config import FalSettings
from .http import NotSent, Transient

T = TypeVar("T")


def attempts(settings: FalSettings, call: Callable[[], T], *, starts_job: bool = False,
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
            wait = retry_wait(settings, error, attempt, starts_job)
            if wait is None or attempt >= settings.retry_attempts:
                raise
            yield Progress(retry_note(error, wait, attempt + 1, settings.retry_attempts))
            if stop is not None:
                if stop.wait(wait):
                    raise error from None
            else:
                time.sleep(wait)
        attempt += 1


def retrying(settings: FalSettings, call: Callable[[], T], *, starts_job: bool = False,
             stop: threading.Event | None = None, notify: Callable[[Progress], None] | None = None) -> T:
    """`attempts` where there is no generator to yield to: its notes go to `notify`."""
    steps = attempts(settings, call, starts_job=starts_job, stop=stop)
    while True:
        try:
            note = next(steps)
        except StopIteration as done:
            return done.value
        if notify is not None:
            notify(note)


def retry_wait(settings: FalSettings, error: StudioError, attempt: int, starts_job: bool) -> float | None:
    """Seconds to wait before trying `error`'s call again; None: do not try again."""
    if isinstance(error, RateLimited):
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= settings.retry_max_wait else None
    elif not (isinstance(error, NotSent) or (isinstance(error, Transient) and not starts_job)):
        return None
    return min(settings.retry_backoff * 2 ** (attempt - 1), settings.retry_max_wait)


def retry_note(error: StudioError, wait: float, next_try: int, tries: int) -> str:
    """What the status line says while the backend waits to try a call again."""
    if isinstance(error, RateLimited):
        what = "fal is rate limiting this key (HTTP 429)"
    elif isinstance(error, NotSent):
        what = "fal could not be reached"
    elif status := getattr(error, "status_code", None):
        what = f"fal's service is busy (HTTP {status})"
    else:
        what = "the connection to fal broke off"
    when = f"in {wait:.0f} s" if wait >= 1 else "in a moment"
    return f"{what}; trying again {when} (try {next_try} of {tries})…"
