"""One local run's parts that cross threads and processes: its GPU work (`Job`, pickled
into a ZeroGPU slot), what that work ends with (`Done`), and the small helpers of a run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from ..bridge import Latest
from ..events import Event, Preview, Progress
from ..request import EditRequest
from .options import LocalOptions

Emit = Callable[[Any], None]


@dataclass(frozen=True)
class Job:
    """One run's GPU work, as it crosses into a ZeroGPU slot (pickled there)."""

    request: EditRequest
    options: LocalOptions
    references: list[Image.Image]
    width: int | None
    height: int | None
    seeds: list[int]
    embeds: torch.Tensor | None = None  # encoded in a slot of its own (ZeroGPU), on the CPU


@dataclass(frozen=True)
class Done:
    """The last item of `LocalBackend._edit`: the finished images and the LoRA notes."""

    images: list
    notes: list


def reporter(emit: Emit, latest: Latest[Event]) -> Emit:
    """`emit`, also keeping the latest status for the heartbeat."""

    def report(item: Any) -> None:
        if isinstance(item, Progress):
            latest.value = item
        elif isinstance(item, Preview):
            latest.value = Progress(f"Step {item.step} of {item.total}", item.step, item.total)
        emit(item)

    return report
