"""The status line during a run (issue 12): a heartbeat never replaces a newer status, and a
preview is never taken for a result."""

from __future__ import annotations

import gradio as gr
from PIL import Image

from backend.events import Preview, Progress, Queued
from ui import results
from ui.run import StatusLine
from ui.wiring_common import start_run

WAITING = Progress("Sent to fal, waiting for the first update…")


def preview(step: int) -> Preview:
    return Preview(images=(Image.new("RGB", (8, 8)),), step=step, total=10)


def test_a_heartbeat_after_a_preview_keeps_the_step():
    line = StatusLine()
    shown = [line.update(Queued(0), "fal"), line.update(WAITING, "fal"), line.preview(preview(1)),
             line.update(WAITING, "fal"), line.preview(preview(2)), line.update(WAITING, "fal"),
             line.update(Progress("Step 1 of 10", 1, 10), "fal"), line.update(Progress("Downloading…"), "fal")]
    assert shown == [
        "⏳ Queued at fal: next in line", "⚙️ Sent to fal, waiting for the first update…",
        "🖼️ Intermediate result (step 1 of 10)", "🖼️ Intermediate result (step 1 of 10)",
        "🖼️ Intermediate result (step 2 of 10)", "🖼️ Intermediate result (step 2 of 10)",
        "🖼️ Intermediate result (step 2 of 10)", "⚙️ Downloading…",
    ]


def test_a_repeated_step_progress_changes_nothing():
    line = StatusLine()
    assert line.update(Progress("Step 3 of 10", 3, 10), "local") == "⚙️ Step 3 of 10"
    assert line.update(Progress("Step 3 of 10", 3, 10), "local") == "⚙️ Step 3 of 10"
    assert line.update(Progress("Step 4 of 10", 4, 10), "local") == "⚙️ Step 4 of 10"


def test_previews_are_not_results_and_stop_brings_back_what_the_page_showed():
    running = [("/tmp/p.jpg", "preview · step 2 of 10")]
    assert results.result_paths(running) == []
    finished = [("/tmp/image-1.png", "image 1")]
    assert results.result_paths(finished) == ["/tmp/image-1.png"]
    restored = [("/tmp/image-1.png", None)]  # a run restored from History: uncaptioned, a result
    assert results.result_paths(restored) == ["/tmp/image-1.png"]
    # Run clicked with a finished result shown; then Stop at a preview.
    kept = results.before_run([*finished, ("/tmp/old-preview.jpg", "interrupted preview")], "details",
                              {"recipe": {}}, "7")
    status, gallery, details, last_run, seed = results.after_stop(running, kept)
    assert gallery == [*finished, ("/tmp/p.jpg", results.INTERRUPTED)] and "shown again" in status
    assert results.result_paths(gallery) == ["/tmp/image-1.png"]  # the tools act on the kept result only
    assert (details, last_run, seed) == ("details", {"recipe": {}}, "7")
    assert results.after_stop([], kept)[1] == finished  # stopped before its first preview
    assert results.after_stop(finished, kept)[1] == gr.skip()  # a result that came just before Stop stays
    assert results.after_stop(restored, kept)[1] == gr.skip()  # a stopped sweep leaves the gallery alone
    assert start_run("Run", finished, "", None, "")[2]["gallery"] == finished  # Run's click keeps the page
    assert start_run("Running", finished, "", None, "")[2] == gr.skip()  # a click that queues keeps nothing
