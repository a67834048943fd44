"""A run's first update comes before anything can start a job.

Gradio can close a run (how Stop cancels its fal job) only once the run's first update is
out; a Stop that comes before is met by cancelling the event there, and the run is never
resumed. So nothing may be sent to fal, and no slot taken, before that first update."""

from __future__ import annotations

from functools import partial

from backend.fal import FalBackend, FalSettings
from backend.jobs import JobBoard
from backend.spending import DATABASE_NAME, Limits, SpendingPolicy, Visitor
from tests.helpers.app import SERVER_KEY
from ui.form import PageSetup, api_function
from ui.run import Outputs
from ui.wiring import STARTING, _run_body
from ui.wiring_common import Context


def test_the_first_update_comes_before_any_request_to_fal_or_any_slot(pointed, images, tmp_path):
    setup = PageSetup(backends=("fal",), default_backend="fal", needs_visitor_key=False, models=("owner/model",),
                      default_model="owner/model", default_memory="auto")
    spending = SpendingPolicy(Limits(runs_per_hour=0, concurrency=1, daily_budget_usd=0), tmp_path / DATABASE_NAME)
    backend = FalBackend(FalSettings(poll_interval=0.1), server_key=SERVER_KEY)
    ctx = Context(setup, {"fal": backend}, Outputs(tmp_path / "outputs"), tmp_path / "downloads", spending,
                  JobBoard())
    run = api_function("edit", partial(_run_body, ctx), setup, "")(prompt="make it blue", image_1=str(images["red"]))
    first = next(run)
    assert first[1] == STARTING
    assert pointed.requests == [] and pointed.jobs == {}  # nothing sent: no upload, no job
    assert spending.in_flight(Visitor.of(None, None)) == 0  # no slot taken
    run.close()  # a Stop after the first update: nothing was started, nothing is left
    assert pointed.requests == [] and spending.in_flight(Visitor.of(None, None)) == 0
    # And the run itself, left to go on, is an ordinary run.
    updates = list(api_function("edit", partial(_run_body, ctx), setup, "")(
        prompt="make it blue", image_1=str(images["red"])))
    assert updates[-1][1].startswith("✅ Done") and len(pointed.jobs) == 1
