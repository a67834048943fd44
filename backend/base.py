"""The interface every backend implements: one generator method.

    for event in backend.run(request, key=...):
        ...

Cancellation is closing the generator (`gen.close()`, which Gradio does when a
person presses Stop or closes the tab): the backend's `finally` blocks cancel the
remote job or interrupt the pipeline. Backends must therefore yield regularly,
even when nothing changed, so that a close is noticed within about a second.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from .events import Event
from .request import EditRequest


class Backend(ABC):
    #: shown on the page
    name: str = "backend"
    #: how many reference images this backend takes
    max_references: int = 3
    #: how many runs of a sweep may run at once (hosted: fal does the work; local: one GPU)
    concurrent_runs: int = 1

    @abstractmethod
    def run(self, request: EditRequest, *, key: str | None = None) -> Iterator[Event]:
        """Run one edit, yielding events and ending with a Result.

        `key` is a per-visitor credential (used for this run only, never stored).
        Raises a StudioError subclass with a message a person can act on.
        """
