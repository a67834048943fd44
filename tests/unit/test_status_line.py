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


def test_a_stopped_runs_preview_says_its_seed_and_seed_used_follows_the_selected_image():
    """A local run's previews carry its seed: Stop captions the interrupted preview with it, and
    "Seed used" shows it when that preview is selected, so that the image can be finished later."""
    running = [("/tmp/p.jpg", "preview · step 2 of 10")]
    fresh = results.before_run([], "", None, "")  # the first run of the page
    status, gallery, *_rest = results.after_stop(running, fresh, "123")
    assert gallery == [("/tmp/p.jpg", "interrupted preview · seed 123")] and results.result_paths(gallery) == []
    assert results.shown_seed(gallery, None, 0) == "123"
    assert results.after_stop(running, fresh, "")[1] == [("/tmp/p.jpg", results.INTERRUPTED)]  # fal: not known
    assert results.shown_seed([("/tmp/p.jpg", results.INTERRUPTED)], None, 0) == gr.skip()
    # After a finished run of two images (local: seeds 7 and 8), then a stopped one (seed 40).
    run = {"recipe": {"seed": 7, "seeds": [7, 8]}}
    kept = results.before_run([("/tmp/1.png", "image 1"), ("/tmp/2.png", "image 2")], "details", run, "7")
    _status, gallery, _details, last_run, seed = results.after_stop(running, kept, "40")
    assert seed == "7"  # the kept result's, shown with it
    assert [caption for _p, caption in gallery] == ["image 1", "image 2", "interrupted preview · seed 40"]
    assert [results.shown_seed(gallery, last_run, i) for i in (0, 1, 2)] == ["7", "8", "40"]
    assert results.shown_seed(gallery, {"recipe": {"seed": 7, "seeds": []}}, 1) == "7"  # fal: the run's one seed
    # A History entry's recipe comes back from the browser: whatever it holds, no error, no made-up seed.
    for odd in ({"seeds": {"0": 1}}, {"seeds": "12", "seed": "9"}, {"seed": True}, "recipe", None):
        assert results.shown_seed(gallery, {"recipe": odd}, 0) == gr.skip()
    assert results.shown_seed(gallery, {"recipe": {"seeds": {"0": 1}, "seed": 5}}, 1) == "5"
