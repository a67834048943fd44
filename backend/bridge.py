"""One way to run blocking work in a thread while a generator keeps yielding.

A backend's `run` is a generator that Gradio drives; closing it is how a run is
stopped. Blocking work (an SSE read, an upload, the diffusers pipeline) therefore
runs in a thread, and the generator yields what the thread reports, plus a
heartbeat whenever the thread is quiet, so that a Stop or the deadline is noticed
within `poll` seconds:

    def work(emit):                  # runs in the thread
        emit(Progress("half way"))   # reaches the generator's consumer
        return value                 # becomes the generator's return value

    value = yield from bridge(work, heartbeat=lambda: Progress("working…"))

Closing the generator (or an exception in it) calls `stop()` so that the thread can
end early, then waits at most `join_seconds` for it. An exception raised in the thread
is raised in the generator.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

from .errors import RunTimeout

Y = TypeVar("Y")
R = TypeVar("R")
Emit = Callable[[Any], None]

_ITEM, _RETURN, _ERROR = "item", "return", "error"


class Deadline:
    """A run's deadline: off until `start()` (loading a model does not count), then
    `check()` raises RunTimeout once `seconds` have passed."""

    def __init__(self, seconds: float, started: bool = True):
        self.seconds = seconds
        self._at: float | None = None
        if started:
            self.start()

    def start(self) -> None:
        self._at = time.monotonic() + self.seconds

    def check(self) -> None:
        if self._at is not None and time.monotonic() > self._at:
            raise RunTimeout(self.seconds)


class Latest(Generic[Y]):
    """The last status a run reported: what a heartbeat repeats."""

    def __init__(self, value: Y):
        self.value = value

    def __call__(self) -> Y:
        return self.value


def bridge(
    work: Callable[[Emit], R],
    *,
    heartbeat: Callable[[], Y | None],
    poll: float = 0.5,
    deadline: Deadline | None = None,
    stop: Callable[[], None] | None = None,
    join_seconds: float = 2.0,
    name: str = "studio-worker",
) -> Generator[Any, None, R]:
    """Run `work(emit)` in a daemon thread; yield each emitted item as it comes, and
    `heartbeat()` (unless None) after `poll` quiet seconds; return what `work` returns."""
    inbox: queue.Queue[tuple[str, Any]] = queue.Queue()

    def target() -> None:
        try:
            inbox.put((_RETURN, work(lambda item: inbox.put((_ITEM, item)))))
        except BaseException as error:  # handed to the generator, which raises it
            inbox.put((_ERROR, error))

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    finished = False
    try:
        while True:
            if deadline is not None:
                deadline.check()
            try:
                kind, value = inbox.get(timeout=poll)
            except queue.Empty:
                beat = heartbeat()
                if beat is not None:
                    yield beat  # the thread is quiet: this yield lets a Stop in
                continue
            if kind == _ITEM:
                yield value
            elif kind == _ERROR:
                finished = True
                raise value
            else:
                finished = True
                return value
    finally:
        if not finished and stop is not None:
            stop()
        thread.join(timeout=join_seconds)
