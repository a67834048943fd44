"""What every part of the page's events shares: the context, the event options, the run bar."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from backend.base import Backend
from backend.jobs import JobBoard
from backend.spending import SpendingPolicy
from ui import results
from ui.form import PageSetup
from ui.layout import RUN_LABEL, RUNNING_LABEL
from ui.region_editor import OPEN_PANEL_JS, SHOW_TINT_JS, RegionEditor
from ui.run import Outputs

PRIVATE: dict[str, Any] = dict(api_visibility="private")
# Quick reactions of the page: unqueued, and with no progress overlay, which would flash a timer
# over their outputs (the cost text, History) at every change and on every first visit.
PRIVATE_FAST: dict[str, Any] = dict(api_visibility="private", queue=False, show_progress="hidden")

@dataclass(frozen=True)
class Context:
    """What the events need besides the page: the backends, where results go, and who may
    spend what (every run and sweep is admitted by `spending` first)."""

    setup: PageSetup
    backends: Mapping[str, Backend]
    outputs: Outputs
    downloads: Path
    spending: SpendingPolicy
    jobs: JobBoard  # every visitor's queued runs (backend/jobs.py)


def gradio_cache(demo: gr.Blocks) -> Path:
    """Gradio's cache folder (GRADIO_TEMP_DIR), made if need be: what the page's events write for
    the browser goes there, under the cache's cap (STUDIO_CACHE_MAX_MB)."""
    folder = Path(demo.GRADIO_CACHE)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def show_tint(event: Any, region: RegionEditor, image_1: Any) -> Any:
    """After `event`, which wrote `region.tint`: the tint goes into the editor, then the region
    panel opens to show it (both in the browser: ui/region_editor.py)."""
    return event.then(None, [region.tint, image_1], [region.editor, region.strokes], js=SHOW_TINT_JS, **PRIVATE_FAST,
                      ).then(None, None, region.panel, js=OPEN_PANEL_JS, **PRIVATE_FAST)


def run_bar(running: bool) -> tuple:
    """Run and Stop: "Running" and Stop enabled while something runs; "Run" and Stop disabled after."""
    return gr.update(value=RUNNING_LABEL if running else RUN_LABEL), gr.update(interactive=running)


def mark_running(label: str) -> tuple:
    return (gr.skip(), gr.skip()) if label == RUNNING_LABEL else run_bar(True)


RESULT_TOOLS = 4  # Use as input, Add as reference, Selected as PNG, All as zip


def start_run(label: str, gallery: Any, details: Any, last_run: Any, seed: Any) -> tuple:
    """Run clicked: the run bar; what the page shows, kept for Stop (or a failure) to bring back;
    no result picked (the gallery empties; a preview picked while the run goes stays picked at its
    end); the results' tools wait for the results (they would act on, or download, the last run's
    while its previews are shown). A click while a run goes (it queues: assets/page.js) keeps what
    that run's own click kept."""
    if label == RUNNING_LABEL:
        return (*mark_running(label), *[gr.skip()] * (2 + RESULT_TOOLS))
    return (*mark_running(label), results.before_run(gallery, details, last_run, seed), None,
            *[gr.update(interactive=False)] * RESULT_TOOLS)
