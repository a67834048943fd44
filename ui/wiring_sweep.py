"""The sweep's events: the page's sweep and the `sweep` API endpoint, the X axis following the
LoRA list, picking a cell, and a sweep restored from History."""

from __future__ import annotations

import html
from collections.abc import Iterator
from functools import partial
from typing import Any

import gradio as gr

from backend.errors import InvalidInput
from ui import history as history_lib
from ui import sweep_cells
from ui.form import RESTORED_FIELDS, api_function, args_doc
from ui.key_box import fill_key_js
from ui.layout import Page
from ui.region_editor import PAGE_EXTRA, take_painted_region
from ui.run import form_error, plan_run
from ui.spending_view import admitted, sweep_requests
from ui.sweep_view import SWEEP_ARGS, SWEEP_ARGS_DOC, follow_loras, run_sweep_view
from ui.text import as_text
from ui.wiring_common import PRIVATE, PRIVATE_FAST, Context, mark_running, run_bar

SWEEP_DOC = f"""Run a grid of edits that vary one or two settings (at most 16 cells, one image each).

Args:
{args_doc(SWEEP_ARGS_DOC)}
Returns:
    the cells as they finish (captioned with their values), a status line, the labelled grid image and a zip
    of the cells and the grid.
"""


def _sweep_body(ctx: Context, values: dict[str, Any]) -> Iterator[Any]:
    try:
        plan = plan_run(values, ctx.backends)
    except InvalidInput as error:
        raise form_error(error) from None
    axes = values["x_axis"], values["x_values"], values["y_axis"] or None, values["y_values"]
    with admitted(ctx.spending, ctx.setup, values, plan, sweep_requests(plan.request, *axes), "sweep") as plan:
        yield from run_sweep_view(plan, ctx.outputs, *axes)


def _page_sweep_body(ctx: Context, values: dict[str, Any]) -> Iterator[Any]:
    """The page's sweep: a refused one (the form, the axes, the spending policy) is a warning and
    the status line, not an error: a raised error would put Gradio's red "Error" pill on every
    output (the cells, the grid, the status). The `sweep` API still raises."""
    take_painted_region(values)
    try:
        yield from _sweep_body(ctx, values)
    except gr.Error as error:
        gr.Warning(str(error.message), title=error.title)
        status = f"⚠️ {error.title}: {as_text(html.unescape(str(error.message)))}"
        yield gr.skip(), status, gr.skip(), gr.skip(), gr.skip()


def _api_sweep_body(ctx: Context, values: dict[str, Any]) -> Iterator[Any]:
    for update in _sweep_body(ctx, values):
        yield update[:-1]  # everything but the sweep state, which is the page's (see wire_run)


def wire_sweep(page: Page, ctx: Context) -> Any:
    """The sweep (the page's, with its state for History and picking cells; the `sweep` API
    endpoint without it, as for `edit`), the X axis following the LoRA list, and the cells."""
    controls: list[Any] = [page.sweep_x, page.sweep_x_values, page.sweep_y, page.sweep_y_values]
    shown = [page.sweep_gallery, page.status, page.sweep_grid, page.sweep_zip]
    # The sweep's card for History comes with its Done (ui/history.py with_landing).
    page_sweep = api_function("page_sweep", partial(history_lib.with_landing, partial(_page_sweep_body, ctx),
                                                    saved_run=sweep_cells.sweep_run),
                              ctx.setup, SWEEP_DOC, extra=[*SWEEP_ARGS, *PAGE_EXTRA])
    cell_buttons = [page.sweep_picked, page.sweep_use_input, page.sweep_restore]
    swept = [*page.inputs(), *controls, page.region.strokes, page.region.only_painted, page.restored_mask]
    # "Sweep as zip" waits for the sweep's zip (it offered nothing, or the last sweep's, meanwhile).
    opened = (lambda: (gr.update(open=True), gr.update(value=None, interactive=False)))
    event = page.sweep_button.click(opened, None, [page.sweep_results, page.sweep_zip], **PRIVATE_FAST).then(
        sweep_cells.unpick_cell, None, cell_buttons, **PRIVATE_FAST).then(
        page_sweep, swept, [*shown, page.sweep_state, page.other_tabs.sweep_landed],
        js=fill_key_js(swept, page.form["fal_key"]), **PRIVATE)
    api_sweep = api_function("sweep", partial(_api_sweep_body, ctx), ctx.setup, SWEEP_DOC, extra=SWEEP_ARGS)
    gr.Button(visible=False).click(api_sweep, [*page.inputs(), *controls], shown, api_name="sweep")
    # The run bar reads "Running" and Stop is enabled while the sweep runs: a click on Run then
    # says one is going (assets/page.js) instead of starting a run beside it.
    bar = [page.run_button, page.stop_button]
    page.sweep_button.click(mark_running, page.run_button, bar, **PRIVATE_FAST)
    event.then(lambda: run_bar(False), None, bar, **PRIVATE_FAST)
    # A finished sweep's zip (a stopped sweep's: ui/sweep_view.py stopped_sweep; this would read the
    # zip before Stop gave it, and disable it).
    event.success(lambda zipped: gr.update(interactive=bool(zipped)), page.sweep_zip, page.sweep_zip, **PRIVATE_FAST)
    event.failure(lambda: run_bar(False), None, bar, **PRIVATE_FAST)
    # The X axis follows the LoRA list (seed, or LoRA 1 scale) until the visitor picks it.
    for field in (page.sweep_x, page.sweep_x_values):
        field.input(lambda: True, None, page.sweep_edited, **PRIVATE_FAST)
    page.form["loras"].change(follow_loras, [page.form["loras"], page.sweep_edited],
                              [page.sweep_x, page.sweep_x_values], **PRIVATE_FAST)
    wire_sweep_cells(page, ctx)
    return event


def wire_sweep_cells(page: Page, ctx: Context) -> None:
    """Pick a cell; use it as the input or restore its settings; a sweep from History shown again."""
    cell_buttons = [page.sweep_picked, page.sweep_use_input, page.sweep_restore]
    page.sweep_gallery.select(sweep_cells.pick_cell, page.sweep_state, cell_buttons, **PRIVATE_FAST)
    page.sweep_use_input.click(partial(sweep_cells.use_cell_as_input, outputs_root=ctx.outputs.root,
                                       slot_count=len(page.slots)),
                               [page.sweep_state, page.sweep_picked], page.slots, **PRIVATE)  # queued: its warning
    page.sweep_restore.click(partial(sweep_cells.restore_cell, setup=ctx.setup, outputs_root=ctx.outputs.root),
                             [page.sweep_state, page.sweep_picked, page.lora_version],
                             [*[page.form[name] for name in RESTORED_FIELDS], page.lora_version, page.status],
                             **PRIVATE)
    page.history_restore.click(partial(sweep_cells.restore_sweep, outputs_root=ctx.outputs.root),
                               [page.history, page.history_selected],
                               [page.sweep_gallery, page.sweep_grid, page.sweep_zip, page.sweep_results,
                                page.sweep_state, *cell_buttons], **PRIVATE)
