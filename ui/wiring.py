"""The page's events: which handler runs when, with which components.

One function per concern: the form, the run (and its API endpoint `edit`), the
sweep (`sweep`), the results tools, history and presets. Every other event is
private (not in the API or MCP). Handlers live in ui/run.py, ui/results.py,
ui/sweep_view.py and ui/history.py.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr

from backend.base import Backend
from backend.errors import InvalidInput
from backend.spending import SpendingPolicy
from ui import history as history_lib
from ui import results
from ui.examples import example_settings
from ui.form import FIELDS, PRESET_FIELDS, RESTORED_FIELDS, PageSetup, api_function, args_doc
from ui.layout import FAL_ONLY, RUN_LABEL, RUNNING_LABEL, Page, references_hint
from ui.run import Outputs, form_error, form_error_status, plan_run, run_edit
from ui.spending_view import admitted, make_page_costs, sweep_requests
from ui.sweep_view import SWEEP_ARGS, SWEEP_ARGS_DOC, run_sweep_view

PRIVATE: dict[str, Any] = dict(api_visibility="private")
PRIVATE_FAST: dict[str, Any] = dict(api_visibility="private", queue=False)
EDIT_DOC = f"""Edit reference images (1-3 on fal, 1-6 locally) with FLUX.2 [dev] and up to 3 LoRAs.

Args:
{args_doc()}
Returns:
    the result images, a status line, the run's log lines, a summary (seed, timings, safety flags, where
    it was saved) and the seed used.
"""
SWEEP_DOC = f"""Run a grid of edits that vary one or two settings (at most 16 cells, one image each).

Args:
{args_doc(SWEEP_ARGS_DOC)}
Returns:
    the cells as they finish (captioned with their values), a status line, the labelled grid image and a zip
    of the cells and the grid.
"""


@dataclass(frozen=True)
class Context:
    """What the events need besides the page: the backends, where results go, and who may
    spend what (every run and sweep is admitted by `spending` first)."""

    setup: PageSetup
    backends: Mapping[str, Backend]
    outputs: Outputs
    downloads: Path
    spending: SpendingPolicy


def wire(demo: gr.Blocks, page: Page, setup: PageSetup, backends: Mapping[str, Backend], outputs: Outputs,
         spending: SpendingPolicy) -> None:
    ctx = Context(setup, backends, outputs, Path(tempfile.mkdtemp(prefix="studio-downloads-")), spending)
    wire_form(page, ctx)
    run_event = wire_run(page, ctx)
    sweep_event = wire_sweep(page, ctx)
    wire_costs(demo, page, ctx, [run_event, sweep_event])
    # The status is set after the cancel, so a last update of the stopped run cannot overwrite it.
    # Stop is enabled only while something runs (run_bar), so "Stopped" is always true.
    # The interrupted preview is captioned so (no result tool acts on it: ui/results.py).
    page.stop_button.click(
        None, None, None, cancels=[run_event, sweep_event], **PRIVATE_FAST,
    ).then(lambda g: ("⏹ Stopped.", results.interrupted(g), *run_bar(False)), page.gallery,
           [page.status, page.gallery, page.run_button, page.stop_button], **PRIVATE_FAST)
    wire_results(page, ctx, run_event)
    wire_history(demo, page, ctx, run_event)
    wire_presets(demo, page, ctx)


def wire_form(page: Page, ctx: Context) -> None:
    # Keep the images packed to the left, so "image N" is the N-th image sent.
    for slot in page.slots:
        for trigger in (slot.upload, slot.clear):
            trigger(results.pack_images, page.slots, page.slots, **PRIVATE_FAST)
    for index, button in enumerate(page.move_buttons):
        button.click(lambda *v, i=index: results.swap_images(v, i), page.slots, page.slots, **PRIVATE_FAST)
    backend_fields = [page.form[name] for name, f in FIELDS.items() if f.owner in ("fal", "local")]
    page.form["backend"].change(
        partial(switch_backend, ctx=ctx, local_only=len(page.local_slot_rows) + 1), page.form["backend"],
        [*page.local_slot_rows, page.local_panel, page.key_group, page.references_hint, *backend_fields],
        **PRIVATE_FAST,
    )
    page.form["size"].change(lambda s: gr.update(visible=s == "custom"), page.form["size"], page.custom_size,
                             **PRIVATE_FAST)
    page.reuse_seed.click(lambda s: (s, False) if s is not None else (gr.skip(), gr.skip()), page.seed_used,
                          [page.form["seed"], page.form["randomize_seed"]], **PRIVATE_FAST)


def switch_backend(name: str, ctx: Context, local_only: int) -> tuple:
    """Show what the chosen backend takes; the fields of another backend's options are
    disabled (local options are in their own panel, shown only for local). `local_only`:
    how many outputs (the extra reference rows and the local panel) only local shows."""
    local = name == "local"
    updates = []
    for field in FIELDS.values():
        if field.owner == "fal":
            model_info = field.model.model_fields[field.name].description if field.model else ""
            updates.append(gr.update(interactive=not local, info=FAL_ONLY if local else model_info))
        elif field.owner == "local":
            updates.append(gr.update(interactive=local))
    return (
        *[gr.update(visible=local) for _ in range(local_only)],
        gr.update(visible=name == "fal"),  # "Use your own fal key": fal only
        references_hint(ctx.backends[name].max_references), *updates,
    )


def _run_body(ctx: Context, values: dict[str, Any]) -> Iterator[Any]:
    try:
        plan = plan_run(values, ctx.backends)
    except InvalidInput as error:
        # The status line repeats the problems (it stays until the next run); the rest is kept.
        yield gr.skip(), form_error_status(error), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        raise form_error(error) from None
    with admitted(ctx.spending, ctx.setup, values, plan, [plan.request]) as plan:
        yield from run_edit(plan, ctx.outputs)


def _sweep_body(ctx: Context, values: dict[str, Any]) -> Iterator[Any]:
    try:
        plan = plan_run(values, ctx.backends)
    except InvalidInput as error:
        raise form_error(error) from None
    axes = values["x_axis"], values["x_values"], values["y_axis"] or None, values["y_values"]
    with admitted(ctx.spending, ctx.setup, values, plan, sweep_requests(plan.request, *axes), "sweep") as plan:
        yield from run_sweep_view(plan, ctx.outputs, *axes)


def wire_run(page: Page, ctx: Context) -> Any:
    """Run (button, Enter in the instruction), the run bar, examples, and the `edit` API endpoint.

    The page's run also fills `last_run` (a gr.State) for the history. The API endpoint is
    the same run without it, bound to a hidden trigger: Gradio's MCP server drops State
    outputs from a tool's result by position and fails on a tool that has one."""
    shown = [page.gallery, page.status, page.logs, page.details, page.seed_used]
    page_run = api_function("page_edit", partial(_run_body, ctx), ctx.setup, EDIT_DOC)
    # The run bar: Run reads "Running" and Stop is enabled while the run goes; a click on Run
    # then says what happens (assets/page.js: the run event itself ignores it, trigger_mode="once").
    bar = [page.run_button, page.stop_button]
    run_triggers = [page.run_button.click, page.form["prompt"].submit]
    gr.on(run_triggers, mark_running, page.run_button, bar, **PRIVATE_FAST)
    run_event = gr.on(
        [page.run_button.click, page.form["prompt"].submit], page_run, page.inputs(), [*shown, page.last_run],
        show_progress="minimal", show_progress_on=[page.gallery], trigger_mode="once", **PRIVATE,
    )
    api_run = api_function("edit", partial(_api_run_body, ctx), ctx.setup, EDIT_DOC)
    gr.Button(visible=False).click(api_run, page.inputs(), shown, api_name="edit")
    run_event.then(lambda: run_bar(False), None, bar, **PRIVATE_FAST)
    run_event.failure(lambda: run_bar(False), None, bar, **PRIVATE_FAST)  # .then does not follow an error
    # An example fills the form (references, instruction, LoRAs, settings); Run runs it.
    page.examples.load_input_event.then(
        example_settings, [page.form["prompt"], page.lora_version],
        [page.form["loras"], page.form["guidance_scale"], page.form["num_inference_steps"], page.lora_version,
         page.status], **PRIVATE_FAST,
    )
    return run_event


def run_bar(running: bool) -> tuple:
    """Run and Stop: "Running" and Stop enabled while something runs; "Run" and Stop disabled after."""
    return gr.update(value=RUNNING_LABEL if running else RUN_LABEL), gr.update(interactive=running)


def mark_running(label: str) -> tuple:
    return (gr.skip(), gr.skip()) if label == RUNNING_LABEL else run_bar(True)


def _api_run_body(ctx: Context, values: dict[str, Any]) -> Iterator[Any]:
    for update in _run_body(ctx, values):
        yield update[:-1]  # everything but `last_run`, which is the page's


def wire_sweep(page: Page, ctx: Context) -> Any:
    sweep = api_function("sweep", partial(_sweep_body, ctx), ctx.setup, SWEEP_DOC, extra=SWEEP_ARGS)
    controls: list[Any] = [page.sweep_x, page.sweep_x_values, page.sweep_y, page.sweep_y_values]
    event = page.sweep_button.click(lambda: gr.update(open=True), None, page.sweep_results, **PRIVATE_FAST).then(
        sweep, [*page.inputs(), *controls], [page.sweep_gallery, page.status, page.sweep_grid, page.sweep_zip],
        api_name="sweep",
    )
    # Stop is enabled while the sweep runs.
    page.sweep_button.click(lambda: gr.update(interactive=True), None, page.stop_button, **PRIVATE_FAST)
    event.then(lambda: gr.update(interactive=False), None, page.stop_button, **PRIVATE_FAST)
    event.failure(lambda: gr.update(interactive=False), None, page.stop_button, **PRIVATE_FAST)
    return event


def wire_costs(demo: gr.Blocks, page: Page, ctx: Context, runs: list[Any]) -> None:
    """The texts before Run and before a sweep (what it costs, what is left today), kept
    up to date with the inputs they depend on, and after each run."""
    depends = [page.form[name] for name in ("backend", "fal_key", "size", "width", "height", "num_images")]
    inputs = [*depends, page.sweep_x, page.sweep_x_values, page.sweep_y, page.sweep_y_values, *page.slots]
    costs = make_page_costs(ctx.spending, ctx.setup)
    runs_done = gr.State(0)  # counts this page's finished runs: what is left today has changed
    triggers = [demo.load, runs_done.change] + [c.change for c in inputs]
    # One event for every trigger, always_last: a change while the texts are being worked out is
    # answered after, so the last answer is for the last values.
    gr.on(triggers, costs, inputs, [page.run_cost, page.sweep_cost], trigger_mode="always_last", **PRIVATE_FAST)
    for event in runs:
        event.then(lambda done: done + 1, runs_done, runs_done, **PRIVATE)


def wire_results(page: Page, ctx: Context, run_event: Any) -> None:
    """Compare, downloads and chaining edits, on the run's results."""

    def refresh_png(gallery_value: Any, index: int) -> Any:
        if not results.result_paths(gallery_value):
            return gr.update(value=None, interactive=False)
        return gr.update(value=results.as_png(results.selected_result(gallery_value, index), ctx.downloads),
                         interactive=True)

    def after_run(gallery_value: Any, reference: str | None) -> tuple:
        paths = results.result_paths(gallery_value)  # none after Stop: the preview is not a result
        choices = [(f"image {i}", i - 1) for i in range(1, len(paths) + 1)]
        zipped = results.zip_results(paths, results.fresh_folder(ctx.downloads))
        # With no result the A/B picks stay (a dropdown refuses its value once its choices are gone).
        pick_a = gr.update(choices=choices, value=0) if paths else gr.skip()
        pick_b = gr.update(choices=choices, value=min(1, len(paths) - 1)) if paths else gr.skip()
        return (
            0, pick_a, pick_b,
            gr.update(value=zipped, interactive=bool(zipped)),
            results.compare_pair(gallery_value, 0, reference, "before", 0, 0),
        )

    first_slot = page.slots[0]
    compare_inputs = [page.gallery, page.selected, first_slot, page.compare_mode, page.pick_a, page.pick_b]
    run_event.then(after_run, [page.gallery, first_slot],
                   [page.selected, page.pick_a, page.pick_b, page.download_zip, page.compare], **PRIVATE,
                   ).then(refresh_png, [page.gallery, page.selected], page.download_png, **PRIVATE)
    page.gallery.select(_selected_index, None, page.selected, **PRIVATE).then(
        results.compare_pair, compare_inputs, page.compare, **PRIVATE).then(
        refresh_png, [page.gallery, page.selected], page.download_png, **PRIVATE)
    page.compare_mode.change(lambda m: gr.update(visible=m == "ab"), page.compare_mode, page.ab_row, **PRIVATE)
    for trigger in (page.compare_mode.change, page.pick_a.change, page.pick_b.change):
        trigger(results.compare_pair, compare_inputs, page.compare, **PRIVATE)
    slot_count = len(page.slots)
    page.use_input.click(
        lambda g, i: results.use_as_input(g, i, slot_count) if results.result_paths(g) else no_result(slot_count),
        [page.gallery, page.selected], page.slots, **PRIVATE)
    page.add_reference.click(
        lambda g, i, name, *current: results.add_as_reference(g, i, list(current), ctx.backends[name].max_references)
        if results.result_paths(g) else no_result(slot_count),
        [page.gallery, page.selected, page.form["backend"], *page.slots], page.slots, **PRIVATE,
    )


def no_result(count: int) -> list:
    """Nothing to chain (no run yet, or only a stopped run's preview): say so, change nothing."""
    gr.Warning(results.NO_RESULT, title="No result")
    return [gr.skip()] * count


def _selected_index(event: gr.SelectData) -> int:
    return event.index


def wire_history(demo: gr.Blocks, page: Page, ctx: Context, run_event: Any) -> None:
    restored = [page.form[name] for name in RESTORED_FIELDS]
    history_buttons = [page.history_selected, page.history_restore, page.history_star, page.history_compare]
    run_event.then(history_lib.remember, [page.last_run, page.history], [page.history, page.history_gallery],
                   **PRIVATE).then(history_lib.unpick_run, None, history_buttons, **PRIVATE_FAST)
    demo.load(history_lib.gallery_items, page.history, page.history_gallery, **PRIVATE)
    page.history_gallery.select(history_lib.pick_run, None, history_buttons, **PRIVATE_FAST)
    page.history_star.click(partial(history_lib.star, outputs_root=ctx.outputs.root),
                            [page.history, page.history_selected], [page.history, page.history_gallery],
                            **PRIVATE_FAST)
    # Clear asks (a second click within a few seconds), then offers Undo for a few seconds.
    clearing = [page.history_armed, page.history_cleared, page.history_clear, page.history_undo, page.history_timer]
    page.history_clear.click(history_lib.clear_click, [page.history, page.history_armed],
                             [page.history, page.history_gallery, *clearing], **PRIVATE_FAST,
                             ).then(history_lib.unpick_run, None, history_buttons, **PRIVATE_FAST)
    # A/B against any past run: the selected result (A) and the picked run's first image (B).
    page.history_compare.click(partial(history_lib.compare_with_run, outputs_root=ctx.outputs.root),
                               [page.gallery, page.selected, page.history, page.history_selected], page.compare,
                               **PRIVATE)
    page.history_undo.click(history_lib.undo_clear, [page.history_cleared, page.history],
                            [page.history, page.history_gallery, page.history_cleared, page.history_undo],
                            **PRIVATE_FAST)
    page.history_timer.tick(history_lib.clear_tick, [page.history_armed, page.history_cleared], clearing,
                            **PRIVATE_FAST)
    page.recipe_file.upload(
        partial(history_lib.restore_png, setup=ctx.setup), [page.recipe_file, page.lora_version],
        [*restored, page.lora_version, page.status], api_name="restore", api_visibility="undocumented",
    )
    page.history_restore.click(
        partial(history_lib.restore_run, setup=ctx.setup, outputs_root=ctx.outputs.root,
                slot_count=len(page.slots)),
        [page.history, page.history_selected, page.lora_version],
        [*restored, page.lora_version, *page.slots, page.gallery, page.status], **PRIVATE,  # queued: its warning
    )


def wire_presets(demo: gr.Blocks, page: Page, ctx: Context) -> None:
    preset_inputs = [page.form[name] for name in PRESET_FIELDS]

    def export_file(all_presets: dict | None) -> str:
        """The export button always holds the current presets as a JSON file."""
        return history_lib.export_presets(all_presets, results.fresh_folder(ctx.downloads))

    # Queued (PRIVATE), so that a handler's gr.Warning reaches the page; none of them raises.
    page.preset_save.click(history_lib.save_preset_handler, [page.presets, page.preset_name, *preset_inputs],
                           [page.presets, page.preset_pick], **PRIVATE,
                           ).then(export_file, page.presets, page.preset_export, **PRIVATE_FAST)
    page.preset_load.click(history_lib.load_preset, [page.presets, page.preset_pick, page.lora_version],
                           [*preset_inputs, page.lora_version], **PRIVATE)
    page.preset_import.upload(history_lib.import_presets_handler, [page.presets, page.preset_import],
                              [page.presets, page.preset_pick], **PRIVATE,
                              ).then(export_file, page.presets, page.preset_export, **PRIVATE_FAST)
    page.preset_rename.click(history_lib.rename_preset_handler, [page.presets, page.preset_pick, page.preset_name],
                             [page.presets, page.preset_pick], **PRIVATE,
                             ).then(export_file, page.presets, page.preset_export, **PRIVATE_FAST)
    page.preset_delete.click(history_lib.delete_preset_handler, [page.presets, page.preset_pick],
                             [page.presets, page.preset_pick], **PRIVATE,
                             ).then(export_file, page.presets, page.preset_export, **PRIVATE_FAST)
    for field in (page.preset_name, page.preset_pick):
        field.change(history_lib.preset_buttons, [page.preset_name, page.preset_pick],
                     [page.preset_save, page.preset_load, page.preset_rename, page.preset_delete], **PRIVATE_FAST)
    demo.load(lambda p: (gr.update(choices=list(p or {})), export_file(p)), page.presets,
              [page.preset_pick, page.preset_export], **PRIVATE)
