"""The errors a run can end with, each carrying a message a person can act on.

    StudioError                 base: `.message` is safe to show on the page
    ├── InvalidInput            a field is wrong: `.problems` name each field and its limit
    ├── MissingKey              no fal key: says how to get one
    ├── LoraError               a LoRA cannot be used: `.index`, `.path`, `.reason`
    ├── ServiceError            fal (or the network) failed: `.status_code`, `.retryable`
    │   ├── AuthFailed          401/403: the key was refused
    │   └── RateLimited         429 after the backend's few retries: `.retry_after`
    └── RunTimeout              the app's own deadline fired (the job was cancelled)

Messages never contain an API key: they are built from field names, limits and
fal's error details only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    """One wrong field: `field` is the request field, `label` what the page calls it."""

    field: str
    label: str
    message: str

    def __str__(self) -> str:
        return f"{self.label}: {self.message}"


class StudioError(Exception):
    """Base of every error a run can end with; `message` is shown to the person."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(StudioError):
    """One or more fields are wrong. Nothing was sent (or fal refused it with 422)."""

    def __init__(self, problems: list[FieldProblem]):
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems) or "The request is not valid.")

    @classmethod
    def one(cls, field: str, label: str, message: str) -> "InvalidInput":
        return cls([FieldProblem(field=field, label=label, message=message)])


class MissingKey(StudioError):
    def __init__(self) -> None:
        super().__init__(
            "No fal API key. Create one at fal.ai (Dashboard → API keys) and paste it into "
            "'Your fal API key', or start the app with FAL_KEY set."
        )


class LoraError(StudioError):
    """A LoRA could not be used (not found, too large, made for another model…); the
    message names it and says why."""

    def __init__(self, index: int, path: str, reason: str):
        super().__init__(f"LoRA {index} ({_short(path)}): {reason}")
        self.index = index
        self.path = path
        self.reason = reason


def _short(path: str) -> str:
    return path if len(path) <= 60 else path[:28] + "…" + path[-28:]


class ServiceError(StudioError):
    """fal or the network failed. `retryable` says whether trying again may help."""

    def __init__(self, message: str, status_code: int | None = None, retryable: bool = True):
        super().__init__(message)
        self.status_code = status_code
        self.retryable = retryable


class AuthFailed(ServiceError):
    def __init__(self, status_code: int = 401):
        super().__init__(
            "fal refused the API key (HTTP %d). Check the key at fal.ai (Dashboard → API keys)."
            % status_code,
            status_code=status_code,
            retryable=False,
        )


class RateLimited(ServiceError):
    """fal refused to take the request now (HTTP 429). `retry_after`: the seconds fal
    asked to wait (its Retry-After header), None when it did not say."""

    def __init__(self, retry_after: float | None = None) -> None:
        when = f"in {_duration(retry_after)}" if retry_after else "in a minute"
        super().__init__(
            f"fal is rate limiting this key (HTTP 429): too many requests at once. Try again {when}.",
            status_code=429,
        )
        self.retry_after = retry_after


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, math.ceil(seconds))} s"
    return f"{round(seconds / 60)} min"


class RunTimeout(StudioError):
    def __init__(self, seconds: float):
        super().__init__(
            f"The run took longer than {seconds:g} s and was cancelled. Try fewer steps or images, "
            "or raise STUDIO_RUN_TIMEOUT."
        )
        self.seconds = seconds
