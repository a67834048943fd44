"""What a backend yields while it runs: small frozen dataclasses, like fal-client's states.

A run yields any number of Queued / Progress / Log / Preview events and ends with
exactly one Result (or raises a StudioError). The UI turns each into what a person sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image


@dataclass(frozen=True)
class Queued:
    """Waiting for a worker; `position` 0 means next in line."""

    position: int


@dataclass(frozen=True)
class Progress:
    """Work is under way. `step`/`total` when the backend knows them."""

    message: str
    step: int | None = None
    total: int | None = None

    @property
    def fraction(self) -> float | None:
        if self.step is None or not self.total:
            return None
        return min(1.0, self.step / self.total)


@dataclass(frozen=True)
class Log:
    """One log line from the model server."""

    message: str
    level: str = "INFO"


@dataclass(frozen=True)
class Preview:
    """Intermediate images: what the result looks like so far."""

    images: tuple[Image.Image, ...] = field(repr=False)
    step: int | None = None
    total: int | None = None
    seed: int | None = None  # the run's seed (its first image's), where the backend knows it before the result


@dataclass(frozen=True)
class ResultImage:
    """One final image: the encoded bytes as the model produced them, and its format."""

    data: bytes = field(repr=False)
    content_type: str
    width: int
    height: int
    nsfw: bool = False

    @property
    def extension(self) -> str:
        return {"image/jpeg": "jpg", "image/webp": "webp"}.get(self.content_type, "png")


@dataclass(frozen=True)
class Result:
    """The finished run."""

    images: tuple[ResultImage, ...]
    seed: int | None
    timings: dict[str, float] = field(default_factory=dict)
    prompt: str | None = None  # the prompt fal used (differs when prompt expansion is on)
    request_id: str | None = None
    seeds: tuple[int, ...] = ()  # one per image where the backend knows them
    notes: tuple[str, ...] = ()  # things a person should know (sizes rounded, trigger words)


Event = Queued | Progress | Log | Preview | Result
