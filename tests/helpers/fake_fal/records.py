"""What the fake keeps about each request and job, and the error a route answers with."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


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
