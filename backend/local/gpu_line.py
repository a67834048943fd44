"""The line for the GPU: one run uses it at a time, first come first served, and a
waiting run sees its place in line.

    yield from line.wait()      # Queued(position) events until this run holds the GPU
    try:
        ...                     # the run's GPU work
    finally:
        line.release()
"""

from __future__ import annotations

import threading
from collections.abc import Generator

from ..events import Queued


class GpuLine:
    def __init__(self, poll: float = 0.5):
        self.poll = poll
        self._gpu = threading.Lock()
        self._tickets: list[object] = []  # runs waiting, first in line first
        self._changed = threading.Condition()

    def wait(self) -> Generator[Queued, None, None]:
        """Take a ticket and wait in line, yielding the position (0: next) every `poll`
        seconds, which also lets a Stop in. Returns once this run holds the GPU."""
        ticket = object()
        with self._changed:
            self._tickets.append(ticket)
        try:
            while True:
                with self._changed:
                    position = self._tickets.index(ticket)
                    if position == 0 and self._gpu.acquire(blocking=False):
                        self._tickets.remove(ticket)
                        self._changed.notify_all()
                        return
                    self._changed.wait(timeout=self.poll)
                yield Queued(position=position)
        except BaseException:  # closed (Stop) while waiting: leave the line
            with self._changed:
                if ticket in self._tickets:
                    self._tickets.remove(ticket)
                self._changed.notify_all()
            raise

    def release(self) -> None:
        """The run holding the GPU is done with it; the next in line takes it."""
        self._gpu.release()
        with self._changed:
            self._changed.notify_all()

    def release_after(self, worker_done: threading.Event | None) -> None:
        """Release now; or, when a run's worker outlived the run (Stop, and a step that did not
        end in time), once that worker is done: the next run must not share the pipeline, its
        adapters, LoRA scales and interrupt flag with a step still running."""
        if worker_done is None or worker_done.is_set():
            self.release()
            return

        def release_when_done() -> None:
            worker_done.wait()
            self.release()

        threading.Thread(target=release_when_done, name="gpu-line-release", daemon=True).start()

    def acquire(self, timeout: float = -1) -> bool:
        """Take the GPU outside the line (tests and tools that must hold it)."""
        return self._gpu.acquire(timeout=timeout)

    def locked(self) -> bool:
        return self._gpu.locked()

    @property
    def waiting(self) -> int:
        """How many runs are waiting in line."""
        with self._changed:
            return len(self._tickets)
