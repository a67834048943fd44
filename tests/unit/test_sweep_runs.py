"""Running a sweep in this process: every cell gets the run's options and key, hosted cells
run several at once and local ones one at a time, and closing the sweep stops every cell
(planning: tests/unit/test_sweep.py; through the launched app: tests/app/test_sweep.py)."""

from __future__ import annotations

import threading
import time

from backend.base import Backend
from backend.events import Progress, Result, ResultImage
from backend.fal import FalBackend, FalOptions, FalSettings
from backend.request import build_request
from backend.sweep import SweepAxis, plan_sweep, run_sweep
from tests.helpers.app import SERVER_KEY


def hosted() -> FalBackend:
    return FalBackend(FalSettings(poll_interval=0.05), server_key=SERVER_KEY)


def seed_plan(images, seeds: str):
    request = build_request(prompt="make it blue", image_urls=[str(images["red"])], seed=1)
    return plan_sweep(request, SweepAxis.parse("seed", seeds))


def test_hosted_cells_run_at_once_each_with_the_runs_options(pointed, images):
    pointed.job_seconds = 0.5
    options = FalOptions(acceleration="high", enable_safety_checker=False)
    items = list(run_sweep(hosted(), seed_plan(images, "1, 2, 3"), options, heartbeat=0.05))
    outcomes = dict(item for item in items if item is not None)
    assert sorted(outcomes) == [0, 1, 2] and all(isinstance(o, Result) for o in outcomes.values())
    assert [outcomes[i].seed for i in range(3)] == [1, 2, 3]
    assert None in items  # a heartbeat while no cell finished: a chance to notice a Stop
    jobs = list(pointed.jobs.values())
    assert sorted(j.input["seed"] for j in jobs) == [1, 2, 3]
    assert all(j.input["acceleration"] == "high" and j.input["enable_safety_checker"] is False for j in jobs)
    assert any(a.started < b.finished and b.started < a.finished for a in jobs for b in jobs if a is not b)


def test_closing_a_sweep_stops_every_cell_and_cancels_its_job(pointed, images):
    pointed.job_seconds = 30
    sweep = run_sweep(hosted(), seed_plan(images, "1, 2, 3"), FalOptions(), heartbeat=0.05)
    deadline = time.monotonic() + 20
    for _item in sweep:
        if len(pointed.jobs) == 3 or time.monotonic() > deadline:
            break
    assert len(pointed.jobs) == 3
    started = time.monotonic()
    sweep.close()
    assert time.monotonic() - started < 10
    assert pointed.wait_for(lambda: all(j.cancelled for j in pointed.jobs.values()), timeout=5)


class OneAtATime(Backend):
    """A local-like backend (one GPU) that records what each run got and whether runs overlapped."""

    concurrent_runs = 1

    def __init__(self) -> None:
        self.seen: list[tuple[int | None, object, str | None]] = []
        self.running = 0
        self.overlapped = False
        self._lock = threading.Lock()

    def run(self, request, options, *, key=None):
        with self._lock:
            self.running += 1
            self.overlapped |= self.running > 1
            self.seen.append((request.seed, options, key))
        try:
            yield Progress("working")
            time.sleep(0.05)
            image = ResultImage(data=b"", content_type="image/png", width=1, height=1)
            yield Result(images=(image,), seed=request.seed)
        finally:
            with self._lock:
                self.running -= 1


def test_local_cells_run_one_after_another_with_the_runs_options_and_key(images):
    backend, options = OneAtATime(), FalOptions(sync_mode=True)
    items = [item for item in run_sweep(backend, seed_plan(images, "4, 5, 6"), options, key="k") if item]
    assert [(index, outcome.seed) for index, outcome in items] == [(0, 4), (1, 5), (2, 6)]
    assert backend.seen == [(4, options, "k"), (5, options, "k"), (6, options, "k")]
    assert not backend.overlapped
