"""The sweep on the page: what it will cost, and its cells, grid and zip as they come.

Every cell is in the sweep gallery from the start: a grey placeholder captioned "queued ·
<values>" or "running · <values>" until its image (captioned with its values) replaces it; a
running cell shows its intermediate image as its backend sends one, and the status line its
step when one cell runs at a time (a local GPU). A Stop turns the cells not done into
"stopped · <values>".
A picked cell can become the input or give back its settings (ui/sweep_cells.py).
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image, ImageDraw

from backend.errors import InvalidInput
from backend.events import Preview, Progress, Result
from backend.grid import make_grid
from backend.outputs import SavedRun, atomic_write, recipe_for, save_run, store_references
from backend.redact import redact
from backend.sweep import SWEEPABLE, SweepAxis, SweepPlan, plan_sweep, run_sweep
from ui import history as history_lib
from ui.results import gallery_pairs
from ui.run import Outputs, RunPlan, active_loras, format_problems, normalise_loras
from ui.text import as_text, error_text

AXIS_CHOICES = [(label, key) for key, (label, _kind) in SWEEPABLE.items()]
# With no LoRA on, the sweep varies the seed; once one is on, its scale (default_axis).
DEFAULT_X, DEFAULT_X_VALUES = "seed", "1, 2, 3, 4"
LORA_X, LORA_X_VALUES = "lora1_scale", "0.4, 0.7, 1.0, 1.3"
#: the sweep's own API arguments after the form's, with their defaults
SWEEP_ARGS = (("x_axis", DEFAULT_X), ("x_values", DEFAULT_X_VALUES), ("y_axis", ""), ("y_values", ""))
SWEEP_ARGS_DOC = {
    "x_axis": f"the setting to vary: {', '.join(SWEEPABLE)}.",
    "x_values": 'its values, comma-separated, e.g. "0.4, 0.7, 1.0".',
    "y_axis": 'a second setting to vary, or "" for none.',
    "y_values": "its values, comma-separated.",
}
QUEUED, RUNNING, FAILED, STOPPED = "queued", "running", "failed", "stopped"
PLACEHOLDER_SIDE = 96


def default_axis(loras_value: Any) -> tuple[str, str]:
    """The X axis a sweep starts with: a switched-on LoRA's scale, else the seed."""
    try:
        on = active_loras(normalise_loras(loras_value))
    except InvalidInput:
        on = []
    return (LORA_X, LORA_X_VALUES) if on else (DEFAULT_X, DEFAULT_X_VALUES)


def follow_loras(loras_value: Any, edited: bool) -> tuple[Any, Any]:
    """The X axis fields after the LoRA list changed: the default for it, unless the
    visitor has chosen the axis themselves (their choice is kept)."""
    if edited:
        return gr.skip(), gr.skip()
    return default_axis(loras_value)


def sweep_cost(x_key: str, x_values: str, y_key: str | None, y_values: str,
               money: Callable[[int], str] | None = None) -> str:
    """What the page says before a sweep starts: how many runs it will make, and what they
    cost (`money(runs)`, e.g. ", about $0.67 on this server's key"; ui/spending_view.py)."""
    try:
        x = SweepAxis.parse(x_key, x_values)
        count = len(x.values)
        if y_key:
            count *= len(SweepAxis.parse(y_key, y_values).values)
    except InvalidInput as error:
        return f"⚠️ {as_text(format_problems(error.problems))}"
    note = " (at most 16)" if count > 16 else ""
    cost = money(count) if money is not None and count <= 16 else ""
    return f"This sweep makes **{count} run{'s' if count != 1 else ''}**{cost}{note}, one image each."


@functools.cache
def placeholder(state: str) -> str:
    """A small grey PNG standing for a cell not done yet (or failed), drawn once per state."""
    shade = {QUEUED: 215, RUNNING: 170, FAILED: 140, STOPPED: 190}[state]
    image = Image.new("RGB", (PLACEHOLDER_SIDE, PLACEHOLDER_SIDE), (shade, shade, shade))
    ImageDraw.Draw(image).text((PLACEHOLDER_SIDE / 2, PLACEHOLDER_SIDE / 2), state, fill=(255, 255, 255),
                               anchor="mm")
    path = Path(tempfile.mkdtemp(prefix="studio-sweep-")) / f"{state}.png"
    image.save(path)
    return str(path)


def cell_items(captions: tuple[str, ...], paths: list[str | None], failed: set[int],
               running: list[int], stopped: bool = False, previews: dict[int, str] | None = None,
               ) -> list[tuple[str, str]]:
    """One gallery item per cell, in cell order: its image captioned with its values, or a
    placeholder captioned "queued · <values>", "running · <values>" or "failed · <values>"
    ("stopped · <values>" for each cell neither done nor failed, once `stopped`). A running
    cell with an intermediate image (`previews`: cell -> file) shows it instead of the grey."""
    items = []
    for index, caption in enumerate(captions):
        path = paths[index]
        if path:
            items.append((path, caption))
        else:
            waiting = STOPPED if stopped else RUNNING if index in running else QUEUED
            state = FAILED if index in failed else waiting
            shown = (previews or {}).get(index) if state == RUNNING else None
            items.append((shown or placeholder(state), f"{state} · {caption}"))
    return items


def stopped_cells(cells: Any) -> Any:
    """Stop: each cell still "queued" or "running" says "stopped · <values>" (nothing runs any
    more); finished and failed cells stay. Nothing changes when no cell was waiting (a run was
    stopped, or a sweep from History is shown)."""
    items, stopped = [], False
    for path, caption in gallery_pairs(cells):
        state, joint, values = str(caption or "").partition(" · ")
        if joint and state in (QUEUED, RUNNING):
            path, caption, stopped = placeholder(STOPPED), f"{STOPPED} · {values}", True
        items.append((path, caption))
    return items if stopped else gr.skip()


def sweep_status(done: int, total: int, running: list[int], steps: dict[int, tuple[int, int]] | None = None) -> str:
    """ "⚙️ Sweep: 0 of 8 cells done, cell 1 running" (cells numbered from 1), with the running
    cell's step (`steps`: running cell -> (step, total), as its backend reports them) when one runs: "…
    cell 1 running · step 12 of 28"; when several run at once (fal), how far the whole sweep is,
    their steps counted in: "… cells 1–8 running · 40% of the sweep" (the page's Run fills to it)."""
    status = f"⚙️ Sweep: {done} of {total} cells done"
    numbers = [i + 1 for i in sorted(running)]
    steps = steps or {}
    if len(numbers) == 1:
        step = steps.get(running[0])
        status += f", cell {numbers[0]} running" + (f" · step {step[0]} of {step[1]}" if step else "")
    elif numbers and numbers == list(range(numbers[0], numbers[-1] + 1)):
        status += f", cells {numbers[0]}–{numbers[-1]} running"
    elif numbers:
        status += f", cells {', '.join(map(str, numbers))} running"
    if len(numbers) > 1 and steps:
        made = done + sum(min(step / whole, 1.0) for step, whole in steps.values() if whole > 0)
        status += f" · {min(int(100 * made / total), 99)}% of the sweep"  # 100% is the Done
    return status


class LiveCells:
    """The running cells' latest step and intermediate image, as their backends report them
    (`watch`, from the sweep's worker threads). `previews` writes each new image once, as a
    JPEG in `folder` (thrown away with the sweep, as a run's previews are: ui/run.py)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.lock = threading.Lock()
        self.steps: dict[int, tuple[int, int]] = {}
        self.images: dict[int, tuple[int, Image.Image]] = {}  # cell -> (its preview's number, image)
        self.files: dict[int, tuple[int, str]] = {}  # cell -> (the number written, its file)
        self.count = 0

    def watch(self, index: int, event: Progress | Preview) -> None:
        with self.lock:
            known = self.steps.get(index, (0, 0))[0]
            if event.step is not None and event.step < known:
                return  # an older step, heard late: never shown after a newer one
            if event.step is not None and event.total:
                self.steps[index] = (event.step, event.total)
            if isinstance(event, Preview) and event.images:
                self.count += 1
                self.images[index] = (self.count, event.images[0])

    def ended(self, index: int) -> None:
        with self.lock:
            self.steps.pop(index, None)
            self.images.pop(index, None)

    def steps_of(self, running: list[int]) -> dict[int, tuple[int, int]]:
        """The running cells' latest (step, total), of those that reported one."""
        with self.lock:
            return {index: self.steps[index] for index in running if index in self.steps}

    def previews(self, running: list[int]) -> dict[int, str]:
        with self.lock:
            latest = {i: self.images[i] for i in running if i in self.images}
        for index, (number, image) in latest.items():
            if self.files.get(index, (None, ""))[0] != number:
                path = self.folder / f"cell-{index + 1}-{number}.jpg"
                image.convert("RGB").save(path, format="JPEG", quality=90)
                self.files[index] = (number, str(path))
        return {index: self.files[index][1] for index in latest}


class StopKeeper:
    """What a Stop keeps of a running sweep (stopped_sweep), shared by the sweep and the Stop
    through the page's sweep state (a gr.State, held on the server as it is). A cell saved just
    as Stop came, whose update was never shown, is kept with the others; once Stop has taken
    what it keeps, a cell that ends after is not saved (on disk but in no grid, zip or card)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kept: dict | None = None  # {plan, paths, failed, run}, once a cell is done
        self.stopped = False

    def take(self) -> dict | None:
        """Stop: what the sweep has made; from now on it saves nothing more."""
        with self.lock:
            self.stopped = True
            return self.kept


def plan_from_axes(run: RunPlan, x_key: str, x_values: str, y_key: str | None, y_values: str) -> SweepPlan:
    x = SweepAxis.parse(x_key, x_values, "Sweep values (X)")
    y = SweepAxis.parse(y_key, y_values, "Sweep values (Y)") if y_key else None
    return plan_sweep(run.request, x, y)


def run_sweep_view(
    run: RunPlan, outputs: Outputs, x_key: str, x_values: str, y_key: str | None, y_values: str,
) -> Iterator[tuple[Any, str, Any, Any, Any]]:
    """Run a sweep, yielding (cells gallery, status, grid image, zip, sweep state) from the first moment:
    every cell's placeholder, then each cell as it runs and finishes. The sweep state (a gr.State of the
    page, on the server) is {"cells": [{caption, image}], "run"}: "run" once the sweep is done, for
    History (None when no cell made an image); until then with "keeper", what a Stop keeps (StopKeeper)."""
    try:
        plan = plan_from_axes(run, x_key, x_values, y_key, y_values)
    except InvalidInput as error:
        problems = format_problems(error.problems)
        yield gr.skip(), f"⚠️ Please check the sweep: {as_text(problems)}", gr.skip(), gr.skip(), gr.skip()
        raise gr.Error(error_text(problems), title="Please check the sweep") from None
    total = len(plan.cells)
    paths: list[str | None] = [None] * total
    saved: dict[int, SavedRun] = {}
    results: dict[int, Result] = {}
    failures: dict[int, str] = {}
    # In the order they started (a dict as an ordered set): the pool starts these first, and
    # run_sweep reports them started again when it does.
    started: dict[int, None] = dict.fromkeys(range(min(run.backend.concurrent_runs, total)))
    lock = threading.Lock()

    def start(index: int) -> None:
        with lock:
            started.setdefault(index)

    keeper = StopKeeper()

    def state(sweep_run: dict | None = None) -> dict:
        cells = {"cells": [{"caption": c, "image": p} for c, p in zip(plan.captions, paths)], "run": sweep_run}
        return {**cells, "keeper": keeper} if sweep_run is None else cells

    def update() -> tuple[Any, str, Any, Any, Any]:
        with lock:
            running = [i for i in started if paths[i] is None and i not in failures]
        # The pool starts the next cell the moment one ends, which can be before this view hears
        # of that end: no more than concurrent_runs cells run, and the first started are the ones
        # it has not heard of yet ("0 of 2 cells done, cells 1–2 running" on a one-at-a-time GPU).
        running = running[:run.backend.concurrent_runs]
        return (cell_items(plan.captions, paths, set(failures), running, previews=live.previews(running)),
                sweep_status(len(saved), total, running, live.steps_of(running)), None, None, state())

    live = LiveCells(Path(tempfile.mkdtemp(prefix="studio-sweep-previews-")))
    references = None
    try:
        yield update()
        for item in run_sweep(run.backend, plan, run.options, key=run.key, started=start, region=run.region,
                              watch=live.watch):
            if item is not None:  # None: still waiting (this yield lets a Stop in)
                index, outcome = item
                live.ended(index)
                with keeper.lock:
                    if keeper.stopped:
                        return  # Stop took what the sweep had made: nothing more is saved
                    if isinstance(outcome, Result):
                        if references is None:  # every cell has the same references: stored once for the sweep
                            references = store_references(outputs.root, run.request.image_urls)
                        saved[index] = save_run(outputs.root, plan.cells[index], run.options, outcome,
                                                run.backend.name, run.backend.source(run.options),
                                                references=references, region=run.region)
                        paths[index], results[index] = str(saved[index].image_paths[0]), outcome
                    else:
                        failures[index] = as_text(redact(outcome.message, run.key))
                    if saved:
                        keeper.kept = {"plan": plan, "paths": list(paths), "failed": set(failures),
                                       "run": history_run(run, plan, saved, results, paths)}
            yield update()
        grid_path, zipped = save_sweep(outputs.root, plan, paths)
        status = f"✅ Sweep done: {len(saved)} of {total} cells"
        if failures:
            status += " — failed: " + "; ".join(f"{as_text(plan.captions[i])}: {m}"
                                                for i, m in sorted(failures.items()))
        items = cell_items(plan.captions, paths, set(failures), [])
        yield items, status, str(grid_path), zipped, state(history_run(run, plan, saved, results, paths, grid_path))
    finally:
        # Gradio has copied every intermediate image it showed into its cache by now.
        shutil.rmtree(live.folder, ignore_errors=True)
    outputs.enforce_cap()  # once per sweep, after its results are shown


def history_run(run: RunPlan, plan: SweepPlan, saved: dict[int, SavedRun], results: dict[int, Result],
                paths: list[str | None], grid_path: Path | None = None) -> dict | None:
    """The sweep as one History entry (ui/history.py new_entry): the base recipe (the form's
    request, the first finished cell's result), the cells, and the grid as its thumbnail (None:
    not drawn yet, with_grid adds it)."""
    if not saved:
        return None
    first = saved[min(saved)]
    # The first cell's recipe, but with the request as the form had it (not one cell's values).
    recipe = {**first.recipe, "request": recipe_for(run.request, run.options, results[min(saved)], "", "")["request"]}
    entry = {
        "recipe": recipe, "images": [p for p in paths if p], "token": first.token,
        "references": [str(p) for p in first.reference_paths],
        "sweep": {"shape": plan.shape, "cells": [[c, p] for c, p in zip(plan.captions, paths)]},
    }
    return with_grid(entry, grid_path) if grid_path else entry


def with_grid(sweep_run: dict, grid_path: Path, stopped: list[int] | None = None) -> dict:
    """The History entry's run with its grid, once drawn (and, for a stopped sweep, the cells
    it did not make: History shows them "stopped")."""
    sweep = {**sweep_run["sweep"], "grid": str(grid_path), **({"stopped": stopped} if stopped else {})}
    return {**sweep_run, "thumb": str(grid_path), "sweep": sweep}


def stopped_sweep(cells: Any, state: Any, outputs: Outputs) -> tuple:
    """Stop: the cells not done say "stopped" (stopped_cells). A sweep with finished cells keeps
    them as it would have kept them all: their grid and zip, and its History card (the cells it
    did not make say "stopped" in each). Outputs: the sweep gallery, status, grid, zip, sweep
    state, History change; each left as it is when there is nothing to keep (a run was stopped,
    or no cell had finished). `state` is the page's gr.State (the server's), not the browser's."""
    marked = stopped_cells(cells)
    keeper = state.get("keeper") if isinstance(state, dict) else None
    kept = keeper.take() if isinstance(keeper, StopKeeper) else None
    if not kept or not kept.get("run") or marked == gr.skip():  # gr.skip(): no cell waited, no sweep was stopped
        return marked, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
    plan, paths, failed = kept["plan"], kept["paths"], kept["failed"]
    undone = [i for i, p in enumerate(paths) if not p and i not in failed]
    grid_path, zipped = save_sweep(outputs.root, plan, paths, undone)
    sweep_run = with_grid(kept["run"], grid_path, undone)
    done = sum(1 for p in paths if p)
    status = (f"⏹ Stopped. {done} of {len(paths)} cells were done: they are kept (their grid and zip below, "
              "the sweep in History).")
    state = {"cells": [{"caption": c, "image": p} for c, p in zip(plan.captions, paths)], "run": sweep_run}
    outputs.enforce_cap()
    return (cell_items(plan.captions, paths, failed, [], stopped=True), status, str(grid_path),
            gr.update(value=zipped, interactive=True), state, history_lib.landed([], [sweep_run]))


def zip_name(plan: SweepPlan) -> str:
    """e.g. "sweep_lora1-scale_x_seed.zip"."""
    return "sweep_" + plan.x.slug + (f"_x_{plan.y.slug}" if plan.y else "") + ".zip"


def zip_members(plan: SweepPlan, paths: list[str | None]) -> list[tuple[str, str]]:
    """(file in the zip, file on disk) for each finished cell: "lora1-scale-0.7_seed-2.png"."""
    return [(name + Path(p).suffix, p) for name, p in zip(plan.names, paths) if p]


def save_sweep(root: Path, plan: SweepPlan, paths: list[str | None], stopped: list[int] | None = None,
               ) -> tuple[Path, str]:
    """The labelled grid, sweep.json and a zip of the cells (named by their values), the grid
    and sweep.json, in a folder of their own under the outputs. The cells a Stop left undone
    (`stopped`) say so in the grid; other cells with no image failed."""
    cells: list[Image.Image | None] = [Image.open(p) if p else None for p in paths]
    grid, _layout = make_grid(cells, plan.x.axis(), plan.y.axis() if plan.y else None,
                              missing=dict.fromkeys(stopped or [], STOPPED))
    folder = Path(tempfile.mkdtemp(prefix="sweep-", dir=root))
    grid_path = folder / "grid.png"
    grid.save(grid_path)
    members = dict((p, name) for name, p in zip_members(plan, paths))
    atomic_write(folder / "sweep.json", json.dumps({
        "x": {"setting": plan.x.key, "values": list(plan.x.values)},
        "y": {"setting": plan.y.key, "values": list(plan.y.values)} if plan.y else None,
        "cells": [{"caption": c, "file": members.get(p) if p else None} for c, p in zip(plan.captions, paths)],
    }, indent=2).encode())
    target = folder / zip_name(plan)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:  # images are compressed
        for name, path in zip_members(plan, paths):
            archive.write(path, arcname=name)
        archive.write(grid_path, arcname="grid.png")
        archive.write(folder / "sweep.json", arcname="sweep.json")
    return grid_path, str(target)
