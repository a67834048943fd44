"""Sweeps: one or two settings varied over given values, one run per cell.

    plan = plan_sweep(request, SweepAxis.parse("lora1_scale", "0.4, 0.7, 1.0"), SweepAxis.parse("seed", "1, 2"))
    for item in run_sweep(backend, plan, options, key=...):   # as cells finish
        if item is not None:                                  # None: still waiting
            index, outcome = item

Hosted cells run several at once (fal does the work); local cells run one after
another (one GPU). Closing the generator stops every cell (their fal jobs are
cancelled by the backend's own clean-up).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Generator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import Backend, BackendOptions
from .bridge import Emit, bridge
from .errors import InvalidInput, StudioError
from .events import Event, Preview, Progress, Result
from .grid import MAX_CELLS, Axis
from .region import Region, RegionRun
from .request import EditRequest, build_request

# The settings a sweep can vary: key -> (label, type)
SWEEPABLE: dict[str, tuple[str, type]] = {
    "seed": ("Seed", int),
    "guidance_scale": ("Guidance", float),
    "num_inference_steps": ("Steps", int),
    "lora1_scale": ("LoRA 1 scale", float),
    "lora2_scale": ("LoRA 2 scale", float),
    "lora3_scale": ("LoRA 3 scale", float),
}
# Short names for captions ("lora1 0.7 · seed 2") and file names ("lora1-scale-0.7_seed-2"): a
# gallery caption has room for about 25 characters, and "scale" alone would not say which LoRA.
SHORT_NAMES: dict[str, tuple[str, str]] = {
    "seed": ("seed", "seed"),
    "guidance_scale": ("guidance", "guidance"),
    "num_inference_steps": ("steps", "steps"),
    **{f"lora{i}_scale": (f"lora{i}", f"lora{i}-scale") for i in (1, 2, 3)},
}
# What the bridge yields while no cell finishes; run_sweep yields None for it.
_WAITING = object()


@dataclass(frozen=True)
class SweepAxis:
    key: str
    values: tuple[float | int, ...]

    @property
    def label(self) -> str:
        return SWEEPABLE[self.key][0]

    @classmethod
    def parse(cls, key: str, text: str, field_label: str = "Sweep values") -> SweepAxis:
        if key not in SWEEPABLE:
            raise InvalidInput.one("sweep", "Sweep axis", f"must be one of {', '.join(SWEEPABLE)}, not {key!r}")
        label, kind = SWEEPABLE[key]
        values = []
        for part in [p.strip() for p in str(text).replace(";", ",").split(",") if p.strip()]:
            try:
                number = float(part)
            except ValueError:
                raise InvalidInput.one("sweep", field_label, f"{label}: {part!r} is not a number") from None
            if kind is int and not number.is_integer():
                raise InvalidInput.one("sweep", field_label, f"{label}: {part} is not a whole number")
            values.append(kind(number))
        if not values:
            raise InvalidInput.one("sweep", field_label, f"give the {label} values, e.g. 0.4, 0.7, 1.0")
        if len(set(values)) != len(values):
            raise InvalidInput.one("sweep", field_label, f"{label}: a value is repeated")
        return cls(key=key, values=tuple(values))

    @property
    def slug(self) -> str:
        """The setting in a file name: "seed", "lora1-scale"."""
        return SHORT_NAMES[self.key][1]

    def axis(self) -> Axis:
        return Axis(self.label, tuple(_number(v) for v in self.values))


def _number(value: float | int) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class SweepPlan:
    x: SweepAxis
    y: SweepAxis | None
    cells: tuple[EditRequest, ...]  # row-major: cell (r, c) = cells[r * len(x.values) + c]
    captions: tuple[str, ...]  # every axis value, short: "lora1 0.7 · seed 2"
    names: tuple[str, ...] = ()  # the same as a file name stem: "lora1-scale-0.7_seed-2"

    @property
    def shape(self) -> str:
        """Columns × rows, e.g. "4×2" (one row without a Y axis)."""
        return f"{len(self.x.values)}×{len(self.y.values) if self.y else 1}"


def plan_sweep(request: EditRequest, x: SweepAxis, y: SweepAxis | None = None) -> SweepPlan:
    """Every cell's request, validated like any run (so a bad value names itself)."""
    if y is not None and y.key == x.key:
        raise InvalidInput.one("sweep", "Sweep axes", "the two axes must vary different settings")
    count = len(x.values) * (len(y.values) if y else 1)
    if count > MAX_CELLS:
        raise InvalidInput.one("sweep", "Sweep", f"at most {MAX_CELLS} cells per sweep (this one has {count})")
    cells, captions, names = [], [], []
    for y_value in (y.values if y else (None,)):
        for x_value in x.values:
            fields = request.model_dump(mode="json")
            fields["num_images"] = 1
            varied: list[tuple[SweepAxis, float | int]] = [(x, x_value)]
            if y is not None and y_value is not None:
                varied.append((y, y_value))
            for axis, value in varied:
                _apply(fields, axis, value)
            cells.append(build_request(**fields))
            captions.append(" · ".join(f"{SHORT_NAMES[a.key][0]} {_number(v)}" for a, v in varied))
            names.append("_".join(f"{a.slug}-{_number(v)}" for a, v in varied))
    return SweepPlan(x=x, y=y, cells=tuple(cells), captions=tuple(captions), names=tuple(names))


def _apply(fields: dict[str, Any], axis: SweepAxis, value: Any) -> None:
    if axis.key.startswith("lora"):
        index = int(axis.key[4]) - 1
        if index >= len(fields["loras"]):
            raise InvalidInput.one("sweep", axis.label, f"LoRA {index + 1} is not switched on: switch it on "
                                   "(LoRAs, above), or vary another setting such as Seed")
        fields["loras"][index] = {**fields["loras"][index], "scale": value}
    else:
        fields[axis.key] = value


def run_sweep(
    backend: Backend[Any], plan: SweepPlan, options: BackendOptions, key: str | None = None, heartbeat: float = 0.5,
    started: Callable[[int], None] | None = None, region: Region | None = None,
    watch: Callable[[int, Progress | Preview], None] | None = None,
) -> Generator[tuple[int, Result | StudioError] | None, None, None]:
    """Run every cell of `plan` with the run's `options` and `key`.

    Yields (cell index, Result or the error that ended that cell) as cells finish, and
    None every `heartbeat` seconds while none does: the caller skips the Nones, which
    are there so that a Stop (closing this generator) is noticed while cells run.
    `started(index)` is called (from a worker thread) as each cell is handed to the
    backend, so the page can say which cells are running. `watch(index, event)` gets each
    cell's Progress and Preview events (from its worker thread), so the page can show a running
    cell's step and intermediate image. `region`: every cell is a region edit of that mask
    (backend/region.py).
    Closing it stops every cell and returns once each has ended (its job cancelled).
    """
    stop = threading.Event()
    crops = Path(tempfile.mkdtemp(prefix="studio-sweep-crops-"))  # each cell's crop of image 1 (region edits)
    workers = ThreadPoolExecutor(max_workers=backend.concurrent_runs, thread_name_prefix="sweep")

    def run_cell(index: int) -> Result | StudioError:
        if stop.is_set():
            return StudioError("Stopped.")
        if started is not None:
            started(index)
        try:
            events = _cell_events(backend, plan.cells[index], options, key, region, crops / f"cell-{index}.png")
        except StudioError as error:
            return error
        try:
            for event in events:
                if stop.is_set():
                    return StudioError("Stopped.")
                if isinstance(event, Result):
                    return event
                if watch is not None and isinstance(event, (Progress, Preview)):
                    watch(index, event)
            return StudioError("The run ended without a result.")
        except StudioError as error:
            return error
        finally:
            events.close()  # cancels the cell's job when it was stopped

    def run_cells(emit: Emit) -> None:
        futures = {workers.submit(run_cell, i): i for i in range(len(plan.cells))}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            if stop.is_set():
                return
            for future in sorted(done, key=futures.__getitem__):
                emit((futures[future], future.result()))

    try:
        # No join: the `finally` below waits for the cells themselves.
        for item in bridge(run_cells, heartbeat=lambda: _WAITING, poll=heartbeat, join_seconds=0, name="sweep"):
            yield None if item is _WAITING else item
    finally:
        stop.set()
        workers.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(crops, ignore_errors=True)


def _cell_events(backend: Backend[Any], request: EditRequest, options: BackendOptions, key: str | None,
                 region: Region | None, crop_path: Path) -> Generator[Event, None, None]:
    """One cell's run: the backend's own, or a region edit of it."""
    if region is None:
        return backend.run(request, options, key=key)
    region_run = RegionRun.plan(request, region, str(crop_path))
    return region_run.events(backend.run(region_run.request, options, key=key))
