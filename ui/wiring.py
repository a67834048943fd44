"""The page's events: which handler runs when, with which components.

One function per concern: the form, the run (and its API endpoint `edit`), the costs and
the results tools here; the sweep (`sweep`) in ui/wiring_sweep.py; History, presets and a
PNG's recipe in ui/wiring_kept.py. Every other event is private (not in the API or MCP).
Handlers live in ui/run.py, ui/results.py, ui/sweep_view.py, ui/history.py and ui/presets.py.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr

from backend.base import Backend
from backend.errors import InvalidInput, StudioError
from backend.jobs import JobBoard
from backend.outputs import is_inside
from backend.spending import SpendingPolicy
from ui import field_checks, png_restore, results
from ui import history as history_lib
from ui.draft import wire_draft
from ui.dropped import wire_drop
from ui.examples import example_settings
from ui.form import FIELDS, PageSetup, api_function, args_doc
from ui.key_box import fill_key_js
from ui.layout import FAL_ONLY, Page, references_hint
from ui.region_editor import FOLLOW_IMAGE_1_JS, PAGE_EXTRA, STROKES_TAKEN_JS, TAKE_STROKES_JS, show_restored
from ui.run import Outputs, form_error_status, given_key, plan_run, refused_status, run_edit, run_error
from ui.snippets import run_snippets
from ui.spending_view import admitted, make_page_costs
from ui.sweep_view import stopped_sweep
from ui.wiring_common import PRIVATE, PRIVATE_FAST, Context, gradio_cache, run_bar, show_tint, start_run
from ui.wiring_kept import wire_history, wire_library, wire_presets
from ui.wiring_queue import wire_queue
from ui.wiring_sweep import wire_sweep

STARTING = "⏳ Starting…"
# Gradio 6.31's page reads a cancelled event's last message (the one /cancel sends, with no data)
# as a failure: each output the event shows progress on says "Error" until the page's cancel is
# over (about 0.1 s; on a sweep's status, cells and grid every time). A Stop is not an error, so
# from Stop until the next Run or Sweep the page is marked and assets/style.css hides that state.
STOPPED_JS = "() => { document.body.dataset.stopped = ''; }"
STARTED_JS = "() => { delete document.body.dataset.stopped; }"
EDIT_DOC = f"""Edit reference images (1-3 on fal, 1-6 locally) with FLUX.2 [dev] and up to 3 LoRAs.

Args:
{args_doc()}
Returns:
    the result images, a status line, the run's log lines, a summary (seed, timings, safety flags, where
    it was saved) and the seed used.
"""


def wire(demo: gr.Blocks, page: Page, setup: PageSetup, backends: Mapping[str, Backend], outputs: Outputs,
         spending: SpendingPolicy) -> None:
    # Downloads are written inside Gradio's cache: Gradio serves them without a second copy, and
    # the cache's cap (backend/cache_room.py) counts them.
    downloads = Path(tempfile.mkdtemp(prefix="studio-downloads-", dir=gradio_cache(demo)))
    ctx = Context(setup, backends, outputs, downloads, spending, JobBoard())
    wire_form(page, ctx)
    before_run = gr.State(None)  # what the page showed when Run was clicked: Stop brings it back
    # Run and Sweep take Stop's mark off the page (STOPPED_JS). Before the run's own event: the page
    # handles one trigger's events in turn, each after the one before it is over (a run: at its end).
    gr.on([page.run_button.click, page.form["prompt"].submit, page.sweep_button.click], None, None,
          js=STARTED_JS, **PRIVATE_FAST)
    run_event = wire_run(page, ctx, before_run)
    sweep_event = wire_sweep(page, ctx)
    wire_costs(demo, page, ctx, [run_event, sweep_event])
    wire_lora_check(page, ctx)
    # The status is set after the cancel, so a last update of the stopped run cannot overwrite it.
    # Stop is enabled only while something runs (run_bar), so "Stopped" is always true. The page
    # shows again what it showed before the run (its results, details, seed; the tools act on
    # those), after the interrupted preview, captioned so (no result tool acts on it: ui/results.py).
    # Stop also marks the page until the next Run or Sweep (STOPPED_JS): assets/style.css then hides
    # the red "Error" Gradio puts on the cancelled event's outputs for a moment.
    # A sweep's cells not done say "stopped", and its finished cells are kept (ui/sweep_view.py
    # stopped_sweep: grid, zip, History), after after_stop, whose status line it then completes.
    stop = page.stop_button.click(None, None, None, cancels=[run_event, sweep_event], js=STOPPED_JS, **PRIVATE_FAST)
    after_stop = stop.then(results.after_stop, [page.gallery, before_run, page.seed_used],
                           [page.status, page.gallery, page.details, page.last_run, page.seed_used], **PRIVATE_FAST)
    after_stop.then(partial(stopped_sweep, outputs=ctx.outputs), [page.sweep_gallery, page.sweep_state],
                    [page.sweep_gallery, page.status, page.sweep_grid, page.sweep_zip, page.sweep_state,
                     page.other_tabs.sweep_landed], **PRIVATE_FAST)
    stopped = after_stop.then(lambda: run_bar(False), None, [page.run_button, page.stop_button], **PRIVATE_FAST)
    # A run that made nothing (failed or refused) shows again the results shown before it (ui/run.py);
    # their details, run and seed come back too, before wire_results gives their tools back.
    ran = run_event.then(results.after_failure, [before_run, page.last_run],
                         [page.details, page.last_run, page.seed_used], **PRIVATE_FAST)
    restored = wire_history(demo, page, ctx)
    opened = wire_queue(demo, page, ctx)
    wire_results(page, ctx, [ran, restored], opened, stopped)
    wire_presets(demo, page, ctx)
    wire_library(demo, page, ctx)
    wire_drop(page.dropped)
    wire_draft(demo, page, ctx.setup)


def wire_form(page: Page, ctx: Context) -> None:
    # Keep the images packed to the left, so "image N" is the N-th image sent.
    for slot in page.slots:
        slot.clear(results.pack_images, page.slots, page.slots, **PRIVATE_FAST)  # uploads: ui/field_checks.py
    for index, button in enumerate(page.move_buttons):
        button.click(lambda *v, i=index: results.swap_images(v, i), page.slots, page.slots, **PRIVATE_FAST)
    # A swap is enabled while both of its images are there (the slots are kept packed).
    for slot in page.slots:
        slot.change(results.swap_buttons, page.slots, page.move_buttons, **PRIVATE_FAST)
    backend_fields = [page.form[name] for name, f in FIELDS.items() if f.owner in ("fal", "local")]
    page.form["backend"].change(
        partial(switch_backend, ctx=ctx, local_only=len(page.local_slot_rows) + 1), page.form["backend"],
        [*page.local_slot_rows, page.local_panel, page.key_group, page.references_hint, *backend_fields],
        **PRIVATE_FAST,
    )
    page.form["size"].change(lambda s: gr.update(visible=s == "custom"), page.form["size"], page.custom_size,
                             **PRIVATE_FAST)
    # Region edits (ui/region_editor.py: why the editor is only ever used in the browser): the
    # editor shows image 1, or a restored mask tinted on it; its strokes are copied when a stroke
    # ends, and (when the box is ticked) are the run's mask (take_painted_region).
    region = page.region
    page.slots[0].change(None, page.slots[0], [region.editor, region.strokes], js=FOLLOW_IMAGE_1_JS, **PRIVATE_FAST)
    show_tint(page.slots[0].change(show_restored, [page.slots[0], page.restored_mask], region.tint, **PRIVATE_FAST),
              region, page.slots[0])
    region.take.click(None, region.editor, region.strokes, js=TAKE_STROKES_JS, **PRIVATE_FAST,
                      ).then(None, None, None, js=STROKES_TAKEN_JS, **PRIVATE_FAST)
    # A new image 1 has no mask, unless a PNG's mask waits for it (ui/png_restore.py mask_for_upload).
    show_tint(page.slots[0].upload(png_restore.mask_for_upload, [page.slots[0], page.waiting_mask],
                                   [page.restored_mask, page.waiting_mask], **PRIVATE_FAST,
                                   ).then(show_restored, [page.slots[0], page.restored_mask], region.tint,
                                          **PRIVATE_FAST), region, page.slots[0])
    page.reuse_seed.click(lambda s: (int(s), False) if str(s or "").isdigit() else (gr.skip(), gr.skip()),
                          page.seed_used, [page.form["seed"], page.form["randomize_seed"]], **PRIVATE_FAST)
    page.seed_used.change(lambda s: gr.update(interactive=str(s or "").isdigit()), page.seed_used, page.reuse_seed,
                          **PRIVATE_FAST)  # enabled while there is a seed to reuse
    # A seed typed in is the one used: typing it unticks Random seed (which would ignore it).
    page.form["seed"].input(None, None, page.form["randomize_seed"], js="() => false", **PRIVATE_FAST)


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


def _run_body(ctx: Context, values: dict[str, Any], previous: Any = ()) -> Iterator[Any]:
    """The run; a refused or failed one raises its StudioError (the page warns, the API errs)."""
    try:
        plan = plan_run(values, ctx.backends)
    except InvalidInput as error:
        # The status line repeats the problems (it stays until the next run); the rest is kept.
        yield gr.skip(), form_error_status(error), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        raise
    # A first update before anything can start a job: Gradio can close a run (which is how Stop
    # cancels its job) only once the run's first update is out. A Stop that comes before then
    # cancels the event there, and the run, never resumed, has started nothing.
    # (The rest is left as it is: a run the spending policy refuses next keeps the last run's details.)
    yield list(previous), STARTING, gr.skip(), gr.skip(), gr.skip(), gr.skip()
    with ExitStack() as admission:
        try:
            plan = admission.enter_context(admitted(ctx.spending, ctx.setup, values, plan, [plan.request]))
        except gr.Error as refusal:  # the spending policy's: nothing was sent. The status line says
            # why and when (it stays until the next run), not "Starting…"; the page warns.
            yield gr.skip(), refused_status(refusal), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            raise
        yield from run_edit(plan, ctx.outputs, price_per_mp=ctx.spending.limits.price_per_mp, previous=previous)


def wire_run(page: Page, ctx: Context, before_run: gr.State) -> Any:
    """Run (button, Enter in the instruction), the run bar, examples, and the `edit` API endpoint.

    The page's run also fills `last_run` (a gr.State) for the history. The API endpoint is
    the same run without it, bound to a hidden trigger: Gradio's MCP server drops State
    outputs from a tool's result by position and fails on a tool that has one."""
    shown = [page.gallery, page.status, page.logs, page.details, page.seed_used]
    # The run's entry for History comes with its Done (ui/history.py with_landing).
    page_run = api_function("page_edit", partial(history_lib.with_landing,
                                                 partial(field_checks.page_run, partial(_run_body, ctx))),
                            ctx.setup, EDIT_DOC, extra=[(field_checks.SHOWN, None), *PAGE_EXTRA])
    marks = gr.State({})  # the fields a refused run marks (ui/field_checks.py)
    # The run bar: Run reads "Running" and Stop is enabled while the run goes; a click on Run
    # then says what happens (assets/page.js: the run event itself ignores it, trigger_mode="once").
    bar = [page.run_button, page.stop_button]
    run_triggers = [page.run_button.click, page.form["prompt"].submit]
    # One event, so that what the page shows is kept (for Stop) as Run reads "Running" (not after).
    gr.on(run_triggers, start_run, [page.run_button, page.gallery, page.details, page.last_run, page.seed_used],
          [*bar, before_run, page.selected, page.use_input, page.add_reference, page.download_png,
           page.download_zip], **PRIVATE_FAST)
    run_inputs = [*page.inputs(), page.gallery, page.region.strokes, page.region.only_painted, page.restored_mask]
    run_event = gr.on(
        [page.run_button.click, page.form["prompt"].submit], page_run, run_inputs,
        [*shown, page.last_run, marks, page.other_tabs.run_landed],
        js=fill_key_js(run_inputs, page.form["fal_key"]),  # the visitor's key, held by the page (ui/key_box.py)
        show_progress="minimal", show_progress_on=[page.gallery], trigger_mode="once", **PRIVATE,
    )
    api_run = api_function("edit", partial(_api_run_body, ctx), ctx.setup, EDIT_DOC)
    # The API's seed is a number (page.seed_used is text, empty before a run).
    gr.Button(visible=False).click(api_run, page.inputs(), [*shown[:-1], page.api_seed], api_name="edit")
    run_event.then(lambda: run_bar(False), None, bar, **PRIVATE_FAST)
    run_event.failure(lambda: run_bar(False), None, bar, **PRIVATE_FAST)  # .then does not follow an error
    field_checks.wire_field_checks(page, marks)
    # An example fills the form (references, instruction, LoRAs, settings); Run runs it.
    page.examples.load_input_event.then(
        example_settings, [page.form["prompt"], page.lora_version],
        [page.form["loras"], page.form["guidance_scale"], page.form["num_inference_steps"], page.lora_version,
         page.status], **PRIVATE_FAST,
    )
    return run_event


def _api_run_body(ctx: Context, values: dict[str, Any]) -> Iterator[Any]:
    try:
        for update in _run_body(ctx, values):
            yield update[:-1]  # everything but `last_run`, which is the page's
    except StudioError as error:
        raise run_error(error, given_key(values)) from None


def wire_costs(demo: gr.Blocks, page: Page, ctx: Context, runs: list[Any]) -> None:
    """The texts before Run and before a sweep (what it costs, what is left today), kept
    up to date with the inputs they depend on, and after each run."""
    depends = [page.form[name] for name in ("backend", "fal_key", "size", "width", "height", "num_images")]
    inputs = [*depends, page.sweep_x, page.sweep_x_values, page.sweep_y, page.sweep_y_values, *page.slots]
    costs = make_page_costs(ctx.spending, ctx.setup)
    runs_done = gr.State(0)  # counts this page's finished runs: what is left today has changed
    # The key is the page's (ui/key_box.py): its box's change, and the events' js reads it.
    triggers = [demo.load, runs_done.change, page.key_box.change] + [c.change for c in inputs
                                                                     if c is not page.form["fal_key"]]
    # One event for every trigger, always_last: a change while the texts are being worked out is
    # answered after, so the last answer is for the last values. Queued, as Gradio's page defers
    # only a queued event. Even so, Gradio's page checks for an answer in flight before it has
    # read the inputs and sent them (its dispatch awaits in between), so two can be in flight:
    # one at a time on the server, answered in the order asked (each takes a millisecond). This
    # follows Gradio's code; it was never shown failing. (The CI failures of the text after a key
    # was pasted were Gradio taking the key back: ui/key_box.py.) Its own concurrency (never
    # behind runs); its timer on a hidden component, not on the texts.
    # Told only whether the visitor gave a key (ui/key_box.py): the key leaves the page with a run alone.
    gr.on(triggers, costs, inputs, [page.run_cost, page.sweep_cost],
          js=fill_key_js(inputs, page.form["fal_key"], only_whether=True), trigger_mode="always_last",
          concurrency_id="costs", concurrency_limit=1, show_progress="hidden", show_progress_on=[page.lora_version],
          **PRIVATE)
    for event in runs:
        event.then(lambda done: done + 1, runs_done, runs_done, **PRIVATE)


def wire_lora_check(page: Page, ctx: Context) -> None:
    """What each LoRA is, from its header, as soon as it is typed or restored (before a run
    spends anything). Headers are read in the background: only the last values are checked
    when the rows change while a check runs; a header read once is remembered by the backend."""
    gr.on([page.form["loras"].change, page.form["backend"].change], partial(field_checks.lora_checks, ctx.backends),
          page.inputs(), page.lora_check, trigger_mode="always_last", concurrency_id="lora-check",
          concurrency_limit=8, show_progress="hidden", show_progress_on=[page.lora_version], **PRIVATE)


def wire_results(page: Page, ctx: Context, finished: list[Any], opened: Any, stopped: Any) -> None:
    """Compare, downloads, the run as code and chaining edits, on the run's results. `finished`:
    Run, and a run restored from History, which gets the same; `opened`: a queued run opened
    (compared with its own image 1: the form is left as it is); `stopped`: Stop, after which the
    results shown before the run are the page's again (compared as they were)."""

    def refresh_png(gallery_value: Any, index: int, run: Any) -> Any:
        paths = results.result_paths(gallery_value)
        if not paths:
            return gr.update(value=None, interactive=False)
        number = min(max(index or 0, 0), len(paths) - 1) + 1  # the image's place in the run
        name = results.download_name(_prompt_of(run), results.image_seed(run, number - 1), number, "png")
        return gr.update(value=results.as_png(paths[number - 1], results.fresh_folder(ctx.downloads), name),
                         interactive=True)

    def after_run(gallery_value: Any, reference: str | None, run: Any, picked: int | None = None) -> tuple:
        paths = results.result_paths(gallery_value)  # a preview (running or interrupted) is not a result
        # The image picked while the run went stays picked (the gallery shows it so): the compare,
        # "Selected as PNG" and "Use as input" take it, not image 1.
        selected = picked if isinstance(picked, int) and 0 <= picked < len(paths) else 0
        choices = [(f"image {i}", i - 1) for i in range(1, len(paths) + 1)]
        zipped = results.zip_results(paths, results.fresh_folder(ctx.downloads), _prompt_of(run), run)
        # With no result the A/B picks stay (a dropdown refuses its value once its choices are gone).
        pick_a = gr.update(choices=choices, value=0) if paths else gr.skip()
        pick_b = gr.update(choices=choices, value=min(1, len(paths) - 1)) if paths else gr.skip()
        return (
            selected, pick_a, pick_b,
            gr.update(value=zipped, interactive=bool(zipped)),
            results.compare_pair(gallery_value, selected, reference, "before", 0, 0),
            # Chaining needs a finished result: enabled once there is one (a Stop keeps the last one).
            gr.update(interactive=bool(paths)), gr.update(interactive=bool(paths)),
            reference if paths else gr.skip(),  # "before" stays the run's own image 1
        )

    def after_opened(gallery_value: Any, run: Any) -> tuple:
        references = run.get("references") if isinstance(run, dict) else None
        reference = references[0] if references and is_inside(ctx.outputs.root, references[0]) else None
        return after_run(gallery_value, reference, run)

    first_slot = page.slots[0]
    # "Before" is the shown run's image 1, kept from when it was shown (image 1 may change after).
    before = gr.State(None)
    compare_inputs = [page.gallery, page.selected, before, page.compare_mode, page.pick_a, page.pick_b]
    # After a run, a restore from History (ui/history.py restored_run) and an opened queued run: the same tools.
    shown_after: list[tuple[Any, Callable[..., tuple], list[Any]]] = [
        (event, after_run, [page.gallery, first_slot, page.last_run, page.selected]) for event in finished]
    shown_after += [(opened, after_opened, [page.gallery, page.last_run]),
                    (stopped, after_run, [page.gallery, before, page.last_run])]
    seed_inputs = [page.gallery, page.last_run, page.selected]  # "Seed used" follows the selected image
    for event, tools, given in shown_after:
        event.then(tools, given,
                   [page.selected, page.pick_a, page.pick_b, page.download_zip, page.compare, page.use_input,
                    page.add_reference, before], **PRIVATE,
                   ).then(refresh_png, [page.gallery, page.selected, page.last_run], page.download_png, **PRIVATE,
                          ).then(results.shown_seed, seed_inputs, page.seed_used, **PRIVATE_FAST)
        event.then(run_snippets, page.last_run, [page.code_client, page.code_fal, page.code_recipe], **PRIVATE)
    # "Seed used" is the selected image's own seed (where the backend knows each: local), so that
    # "Reuse this seed" makes that image again.
    page.gallery.select(_selected_index, None, page.selected, **PRIVATE).then(
        results.shown_seed, seed_inputs, page.seed_used, **PRIVATE_FAST).then(
        results.compare_pair, compare_inputs, page.compare, **PRIVATE).then(
        refresh_png, [page.gallery, page.selected, page.last_run], page.download_png, **PRIVATE)
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


def _prompt_of(run: Any) -> Any:
    """The instruction a run's downloads are named for (None without a run)."""
    recipe = run.get("recipe") if isinstance(run, dict) else None
    if not isinstance(recipe, dict) or not isinstance(recipe.get("request"), dict):
        return None
    return recipe["request"].get("prompt")


def no_result(count: int) -> list:
    """Nothing to chain (no run yet, or only a stopped run's preview): say so, change nothing."""
    gr.Warning(results.NO_RESULT, title="No result")
    return [gr.skip()] * count


def _selected_index(event: gr.SelectData) -> int:
    return event.index
