"""The events of the queue of runs: Queue, the panel's poll, pick, cancel, open, clear
(handlers: ui/queue_view.py; the jobs themselves: backend/jobs.py)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import gradio as gr

from ui import field_checks
from ui import queue_view as view
from ui.form import api_function
from ui.key_box import fill_key_js
from ui.layout import Page
from ui.region_editor import PAGE_EXTRA
from ui.wiring_common import PRIVATE, PRIVATE_FAST, Context


def wire_queue(demo: gr.Blocks, page: Page, ctx: Context) -> Any:
    """Queue's events; returns Open's event: the opened run is then the page's run."""
    panel, board = page.queue, ctx.jobs
    shown = [panel.gallery, panel.ids]
    def queue_once(values: dict[str, Any]) -> Iterator[tuple]:
        yield view.queue_run(ctx, values)  # one update (api_function drives a generator)

    def picked(token: str, ids: list[str], event: gr.SelectData) -> tuple:
        return view.pick_job(board, token, ids, event)

    queue = api_function("page_queue", queue_once, ctx.setup, "Queue a run.",
                         extra=[(field_checks.SHOWN, None), *PAGE_EXTRA, ("jobs_token", ""), ("run_label", "")])
    # Run while a run goes clicks Queue instead (assets/page.js).
    queued = [*page.inputs(), page.gallery, page.region.strokes, page.region.only_painted, page.restored_mask,
              panel.token, page.run_button]
    page.queue_button.click(
        queue, queued, [panel.token, panel.detail, *shown, panel.timer, page.status],
        js=fill_key_js(queued, page.form["fal_key"]), show_progress="hidden", **PRIVATE,
    )
    # The panel is redrawn while a queued run is unfinished; finished runs go into History.
    buttons = [panel.open, panel.cancel]
    polled = [*shown, panel.detail, *buttons, page.other_tabs.history_changed, panel.seen, panel.timer]
    for trigger in (demo.load, panel.timer.tick):
        trigger(partial(view.poll, board), [panel.token, page.history, panel.seen, panel.picked], polled,
                **PRIVATE_FAST)
    panel.gallery.select(picked, [panel.token, panel.ids],
                         [panel.picked, panel.detail, *buttons], **PRIVATE_FAST)
    panel.cancel.click(partial(view.cancel_job, board), [panel.token, panel.picked],
                       [panel.detail, panel.cancel, panel.timer], **PRIVATE_FAST)
    panel.clear.click(partial(view.clear_finished, board), panel.token, [*shown, panel.picked], **PRIVATE_FAST,
                      ).then(lambda: ("", gr.update(interactive=False), gr.update(interactive=False)), None,
                             [panel.detail, *buttons], **PRIVATE_FAST)
    panel.gallery.change(partial(view.clear_button, board), panel.token, panel.clear, **PRIVATE_FAST)
    return panel.open.click(
        partial(view.open_job, board, outputs_root=ctx.outputs.root), [panel.token, panel.picked],
        [page.gallery, page.status, page.last_run, page.seed_used, page.details], **PRIVATE,
    )
