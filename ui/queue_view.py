"""The queue of runs on the page: Queue (or Run while a run goes) adds the form's run to
the visitor's jobs (backend/jobs.py), which run on the server whether or not a page is
open; the Queue panel lists them, polled while any is unfinished.

The visitor's jobs are found by a token kept in the browser (gr.BrowserState), made on
the first Queue: after a reload the page asks for them again, and a run that finished
meanwhile goes into History then. A queued run is admitted like any run when its turn
comes (the visitor's quota and concurrency: it waits for a free slot instead of being
refused), and runs through the same `run_edit` as Run: saved, with its recipe.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from backend.errors import InvalidInput, StudioError
from backend.images import decoding, open_image, read_source
from backend.jobs import (
    DONE,
    FAILED,
    FINISHED,
    QUEUED,
    RUNNING,
    STOPPED,
    Job,
    JobBoard,
    JobControl,
    QueueFull,
    awaited,
)
from backend.redact import redact
from backend.settings import on_zerogpu
from ui import history as history_lib
from ui.field_checks import SHOWN
from ui.layout import RUNNING_LABEL
from ui.region_editor import take_painted_region
from ui.run import RunPlan, format_problems, plan_run, run_edit
from ui.spending_view import admitted, visitor_of
from ui.text import as_text
from ui.wiring_common import Context

ICONS = {QUEUED: "⏳", RUNNING: "▶️", DONE: "✅", FAILED: "❌", STOPPED: "⏹"}
STEP = re.compile(r"step (\d+) of (\d+)", re.IGNORECASE)
PLACE = re.compile(r"next in line|position \d+")  # a run waiting for the GPU (ui/run.py StatusLine)
THUMB_SIDE = 160
SLOT_WAIT_SECONDS = 0.5  # how often a queued run asks again for one of the visitor's slots
NOTHING_PICKED = "Pick a run in the queue first."
# ZeroGPU lends the GPU to a page's own request (and counts it against that visitor's quota): a
# run waiting on the server with no page behind it would get none.
NOT_ON_ZEROGPU = ("Not queued: on this ZeroGPU Space the GPU is lent to each page request, so a local run "
                  "cannot wait in the background. Press Run instead (fal runs can be queued).")


def queue_run(ctx: Context, values: dict[str, Any]) -> tuple:
    """Queue the form's run. Outputs: token, note, jobs panel (items, ids), timer, status line (said
    there too unless the page's own run is going: its status stays true)."""
    values.pop(SHOWN, None)
    page_running = values.pop("run_label", None) == RUNNING_LABEL
    token = str(values.pop("jobs_token", None) or "") or JobBoard.new_owner()
    take_painted_region(values)

    def answer(note: str, timer: Any = gr.skip()) -> tuple:
        return token, note, *panel(ctx.jobs, token), timer, gr.skip() if page_running else note

    try:
        plan = plan_run(values, ctx.backends)
        if plan.backend.name == "local" and on_zerogpu():
            raise QueueFull(NOT_ON_ZEROGPU)
        title = plan.request.prompt.strip().splitlines()[0][:80] if plan.request.prompt.strip() else "(no instruction)"
        visitor = visitor_of(values.get("profile"), values.get("request")).id
        job = ctx.jobs.submit(token, title, _thumbnail(plan), lambda control: _work(ctx, values, plan, control),
                              visitor=visitor)
    except (InvalidInput, QueueFull) as error:
        note = ("⚠️ Not queued. Please check the form: " + as_text(format_problems(error.problems))
                if isinstance(error, InvalidInput) else "⚠️ " + error.message)
        gr.Warning(note, title="Not queued")
        return answer(note)
    ahead = ctx.jobs.ahead(token, job.id)
    note = f"➕ Queued “{as_text(title)}”" + (f" ({ahead} before it)." if ahead else ", next in line.")
    # Short: the Queue panel says it too, and on a phone the toast covers the status line.
    gr.Info(note, title="Added to the queue", duration=4)
    return answer(note, gr.Timer(active=True))


def _work(ctx: Context, values: dict[str, Any], plan: RunPlan, control: JobControl) -> Generator[str, None, Any]:
    """One queued run: wait for a slot of the visitor's (in line), then run it as Run would.
    Returns the saved run (`last_run`, as History keeps it)."""
    def wait_for_slot() -> bool:
        return control.wait(SLOT_WAIT_SECONDS)

    try:
        with admitted(ctx.spending, ctx.setup, values, plan, [plan.request], wait_for_slot=wait_for_slot) as held:
            last_run = None
            for _gallery, status, _logs, _details, _seed, kept in run_edit(
                    held, ctx.outputs, price_per_mp=ctx.spending.limits.price_per_mp):
                # The next queued run may ask for a slot once this one has its first status: by then a
                # local run has its place in the GPU's line, so local runs take the GPU in queue order.
                control.started()
                last_run = kept or last_run
                yield status
            return last_run
    except gr.Error as error:  # refused by the spending policy: the reason is the job's
        raise StudioError(str(error.message)) from None
    except StudioError as error:
        raise StudioError(redact(error.message, plan.key)) from None


def _thumbnail(plan: RunPlan) -> Image.Image | None:
    """A small copy of image 1, shown for the run until it has a result."""
    try:
        # Opened as every visitor's image is (allowed formats, size checked, one of the decoding
        # slots), and shrunk before it is decoded (JPEG: a reduced draft).
        data = read_source(plan.request.image_urls[0], "image 1")
        with decoding(), open_image(data, "image 1") as opened:
            opened.thumbnail((THUMB_SIDE, THUMB_SIDE))
            return opened.convert("RGB")
    except Exception:  # a reference the backend fetches (a URL), or one the run will refuse: no picture
        return None


# -- the panel ------------------------------------------------------------------------------


def caption(job: Job, ahead: int) -> str:
    """Short, so that a card shows it whole: "⏳ queued (2 before it) · make it blue",
    "▶️ step 3/28 · …", "✅ done · …", "❌ failed · …", "⏹ stopped · …" (the picked run's
    detail line says why it failed)."""
    if job.state == QUEUED:
        what = f"queued ({ahead} before it)" if ahead else "queued, next"
    elif job.state == RUNNING:
        step, place = STEP.search(job.status), PLACE.search(job.status)
        what = f"step {step.group(1)}/{step.group(2)}" if step else f"waiting, {place.group(0)}" if place else "running"
    else:
        what = job.state
    return f"{ICONS[job.state]} {what} · {job.title}"


def panel(board: JobBoard, token: str) -> tuple[Any, list[str]]:
    """The jobs panel: (the gallery, shown only with a job in it; the job ids in its order)."""
    return _panel_of(board.jobs(token) if token else [])


def _panel_of(jobs: list[Job]) -> tuple[Any, list[str]]:
    items, ids = [], []
    in_line = 0
    for job in jobs:
        picture = _result_picture(job) or job.thumb or Image.new("RGB", (THUMB_SIDE, THUMB_SIDE), (96, 96, 96))
        items.append((picture, caption(job, in_line)))
        ids.append(job.id)
        in_line += job.state == QUEUED
    return gr.update(value=items, visible=bool(items)), ids


def _result_picture(job: Job) -> str | None:
    if job.state != DONE or not isinstance(job.result, dict):
        return None
    images = job.result.get("images") or []
    return images[0] if images and Path(images[0]).is_file() else None


def poll(board: JobBoard, token: str | None, history: list | None, seen: int, picked: str | None) -> tuple:
    """The panel now (and the picked run's line and buttons), and the runs that finished since
    the last look, for History. Outputs: jobs (items, ids), detail, Open, Cancel, the runs for
    History (ui/history.py landed), seen version, timer."""
    token = token or ""
    results = board.deliver(token) if token else []
    version = board.version()
    jobs = board.jobs(token) if token else []
    # On while a run is unfinished, or done and not yet handed over (it ended after `deliver` above).
    timer = gr.Timer(active=any(awaited(job) for job in jobs))
    if version == seen and not results:
        return (*[gr.skip()] * 6, version, timer)
    shown, ids = _panel_of(jobs)
    picked_view = _picked_view(board, next((j for j in jobs if j.id == picked), None)) if picked else (gr.skip(),) * 3
    return shown, ids, *picked_view, history_lib.landed(history, results), version, timer


def pick_job(board: JobBoard, token: str | None, ids: list[str], event: gr.SelectData) -> tuple:
    """A job picked in the panel. Outputs: picked id, detail, Open, Cancel."""
    index = event.index if isinstance(event.index, int) else None
    job_id = ids[index] if index is not None and 0 <= index < len(ids) else None
    return (job_id, *_picked_view(board, _job(board, token, job_id)))


def _picked_view(board: JobBoard, job: Job | None) -> tuple:
    """What the picked job says in full, and the buttons that can act on it: (detail, Open, Cancel)."""
    if job is None:
        return "", gr.update(interactive=False), gr.update(interactive=False)
    detail = f"**{ICONS[job.state]} {job.state.capitalize()}:** {as_text(job.title)}"
    if job.state == QUEUED:
        detail += f" ({board.ahead(job.owner, job.id)} before it)"
    elif job.state != DONE:  # why it failed or stopped, or where it is
        detail += f" · {as_text(job.status)}"
    return detail, gr.update(interactive=job.state == DONE), gr.update(interactive=job.state not in FINISHED)


def cancel_job(board: JobBoard, token: str | None, job_id: str | None) -> tuple:
    """Cancel the picked job (only it). Outputs: note, Cancel, timer."""
    if not (token and job_id and board.cancel(token, job_id)):
        return "This run has already finished.", gr.update(interactive=False), gr.skip()
    return "⏹ Cancelled.", gr.update(interactive=False), gr.Timer(active=True)


def open_job(board: JobBoard, token: str | None, job_id: str | None, outputs_root: Path) -> tuple:
    """Show a finished job as the page's run (its result, details, and then compare and downloads),
    leaving the form and the other jobs as they are. Outputs: gallery, status, last_run, seed, details."""
    job = _job(board, token, job_id)
    if job is None or job.state != DONE or not isinstance(job.result, dict):
        gr.Warning(NOTHING_PICKED, title="Nothing to open")
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
    # The run as History keeps it: shown as a run restored from History is (its files checked).
    run, _seed, details = history_lib.restored_run([{**job.result, "id": job.id}], job.id, outputs_root)
    gallery = [(path, f"image {i}") for i, path in enumerate(run["images"], start=1)]
    status = f"📂 Opened the queued run “{as_text(job.title)}”."
    return gallery, status, run, str((run.get("recipe") or {}).get("seed", "")), details


def clear_finished(board: JobBoard, token: str | None) -> tuple:
    """Forget the finished jobs (their results are in History). Outputs: jobs (items, ids), picked id."""
    if token:
        board.clear_finished(token)
    return *panel(board, token or ""), None


def clear_button(board: JobBoard, token: str | None) -> Any:
    """"Clear finished" is enabled while there is a finished run to clear (the panel changed)."""
    jobs = board.jobs(token) if token else []
    return gr.update(interactive=any(job.state in FINISHED for job in jobs))


def _job(board: JobBoard, token: str | None, job_id: str | None) -> Job | None:
    if not token or not job_id:
        return None
    return next((j for j in board.jobs(token) if j.id == job_id), None)

