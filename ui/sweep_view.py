"""The sweep on the page: what it will cost, and its cells, grid and zip as they come."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from backend.errors import InvalidInput
from backend.events import Result
from backend.grid import make_grid
from backend.outputs import atomic_write, save_run, store_references
from backend.redact import redact
from backend.sweep import SWEEPABLE, SweepAxis, plan_sweep, run_sweep
from ui.results import zip_results
from ui.run import Outputs, RunPlan, format_problems
from ui.text import as_text, error_text

AXIS_CHOICES = [(label, key) for key, (label, _kind) in SWEEPABLE.items()]
DEFAULT_X, DEFAULT_X_VALUES = "lora1_scale", "0.4, 0.7, 1.0, 1.3"
#: the sweep's own API arguments after the form's, with their defaults
SWEEP_ARGS = (("x_axis", DEFAULT_X), ("x_values", DEFAULT_X_VALUES), ("y_axis", ""), ("y_values", ""))
SWEEP_ARGS_DOC = {
    "x_axis": f"the setting to vary: {', '.join(SWEEPABLE)}.",
    "x_values": 'its values, comma-separated, e.g. "0.4, 0.7, 1.0".',
    "y_axis": 'a second setting to vary, or "" for none.',
    "y_values": "its values, comma-separated.",
}


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


def run_sweep_view(
    run: RunPlan, outputs: Outputs, x_key: str, x_values: str, y_key: str | None, y_values: str,
) -> Iterator[tuple[Any, str, Any, Any]]:
    """Run a sweep, yielding (cells gallery, status, grid image, zip) as cells finish."""
    try:
        x = SweepAxis.parse(x_key, x_values, "Sweep values (X)")
        y = SweepAxis.parse(y_key, y_values, "Sweep values (Y)") if y_key else None
        plan = plan_sweep(run.request, x, y)
    except InvalidInput as error:
        raise gr.Error(error_text(format_problems(error.problems)), title="Please check the sweep") from None
    backend, total = run.backend, len(plan.cells)
    paths: list[str | None] = [None] * total
    failures: list[str] = []
    done: list[tuple[str, str]] = []
    references: tuple[Path, ...] | None = None
    yield [], f"⏳ Sweep: 0 of {total} cells", None, None
    for item in run_sweep(backend, plan, run.options, key=run.key):
        if item is None:  # still waiting: say where it stands (this yield lets a Stop in)
            # The current values, not gr.skip(): see ui/run.py, run_edit.
            yield done, f"⚙️ Sweep: {len(done)} of {total} cells", None, None
            continue
        index, outcome = item
        if isinstance(outcome, Result):
            if references is None:  # every cell has the same references: stored once for the sweep
                references = store_references(outputs.root, run.request.image_urls)
            saved = save_run(outputs.root, plan.cells[index], run.options, outcome, backend.name,
                             backend.source(run.options), references=references)
            paths[index] = str(saved.image_paths[0])
        else:
            failures.append(f"{as_text(plan.captions[index])}: {as_text(redact(outcome.message, run.key))}")
        done = [(p, plan.captions[i]) for i, p in enumerate(paths) if p]
        yield done, f"⚙️ Sweep: {len(done)} of {total} cells", None, None
    grid_path, zipped = _save_sweep(outputs.root, plan, x, y, paths)
    status = f"✅ Sweep done: {total - len(failures)} of {total} cells"
    if failures:
        status += " — failed: " + "; ".join(failures)
    yield [(p, plan.captions[i]) for i, p in enumerate(paths) if p], status, str(grid_path), zipped
    outputs.enforce_cap()  # once per sweep, after its results are shown


def _save_sweep(root: Path, plan: Any, x: SweepAxis, y: SweepAxis | None, paths: list[str | None]):
    """The labelled grid, sweep.json and a zip of the cells and the grid."""
    cells: list[Image.Image | None] = [Image.open(p) if p else None for p in paths]
    grid, _layout = make_grid(cells, x.axis(), y.axis() if y else None)
    folder = Path(tempfile.mkdtemp(prefix="sweep-", dir=root))
    grid_path = folder / "grid.png"
    grid.save(grid_path)
    atomic_write(folder / "sweep.json", json.dumps({
        "x": {"setting": x.key, "values": list(x.values)},
        "y": {"setting": y.key, "values": list(y.values)} if y else None,
        "cells": [{"caption": c, "image": p} for c, p in zip(plan.captions, paths)],
    }, indent=2).encode())
    return grid_path, zip_results([p for p in paths if p] + [str(grid_path)], folder, "sweep.zip")
