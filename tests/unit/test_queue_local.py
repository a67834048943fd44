"""Queued runs (ui/queue_view.py, backend/jobs.py) on the REAL local backend, with the tiny random
FLUX.2 pipeline on the CPU: runs one visitor queues take the GPU in the order they were queued, and
meanwhile the cards of those waiting say their place in the GPU's line; every finished run is saved
and goes into History exactly once; a run cancelled while it waits for the GPU stops without images
and the runs around it finish.

Each run is held on the GPU (just before it denoises) until the test lets it go, so that what the
panel shows while one run holds the GPU is checked without timing. The runs are queued through the
Queue event's own function (`api_function` around `queue_run`, as ui/wiring_queue.py wires it), the
panel is read and History filled by `poll`, as the page's timer does.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import gradio as gr
import pytest

from backend.jobs import DONE, FINISHED, STOPPED, JobBoard
from backend.local.backend import LocalBackend, LocalSettings
from backend.spending import DATABASE_NAME, Limits, SpendingPolicy, Visitor
from tests.helpers.tiny_flux2 import MAX_SEQUENCE_LENGTH, TEXT_ENCODER_OUT_LAYERS, reference_image
from ui import field_checks
from ui.form import PageSetup, api_function
from ui.other_tabs import merge_history
from ui.queue_view import cancel_job, panel, poll, queue_run
from ui.region_editor import PAGE_EXTRA
from ui.run import Outputs
from ui.wiring_common import Context

PATIENCE = 120.0  # seconds a wait may take before the test fails (never reached when all is well)
RED, GREEN, BLUE = "make it red", "make it green", "make it blue"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("queue-local") / "reference.png"
    reference_image(0).save(path)  # 64x64: the runs make 64x64 images
    return path


class Studio:
    """The page's context on the local backend (tiny model, CPU), one visitor's Queue button,
    panel and History, and a gate per instruction that holds its run on the GPU until opened."""

    def __init__(self, model: Path, reference: Path, root: Path, monkeypatch: pytest.MonkeyPatch):
        self.backend = LocalBackend(LocalSettings(
            model=str(model), device="cpu", decode_every=0,
            max_sequence_length=MAX_SEQUENCE_LENGTH, text_encoder_out_layers=TEXT_ENCODER_OUT_LAYERS,
        ))
        setup = PageSetup(backends=("local",), default_backend="local", needs_visitor_key=False,
                          models=(self.backend.settings.model,), default_model=self.backend.settings.model,
                          default_memory="gpu")
        # Concurrency 3: the visitor's three runs are all admitted; the GPU's line orders them.
        spending = SpendingPolicy(Limits(runs_per_hour=0, concurrency=3, daily_budget_usd=0), root / DATABASE_NAME)
        self.ctx = Context(setup, {"local": self.backend}, Outputs(root / "outputs"), root / "downloads",
                           spending, JobBoard())
        self.queue_event = api_function(
            "page_queue", lambda values: iter([queue_run(self.ctx, values)]), setup, "Queue a run.",
            extra=[(field_checks.SHOWN, None), *PAGE_EXTRA, ("jobs_token", ""), ("run_label", "")],
        )
        self.reference = reference
        self.token = ""  # the browser's jobs token, made by the first Queue
        self.history: list = []
        self.seen = 0
        self.gates = {prompt: threading.Event() for prompt in (RED, GREEN, BLUE)}
        self.on_gpu: list[str] = []  # the instructions, in the order their runs reached the pipeline
        denoise = self.backend._denoise

        def held(loaded, job, *args):  # runs holding the GPU (the backend's worker thread)
            self.on_gpu.append(job.request.prompt)
            self.gates[job.request.prompt].wait(PATIENCE)
            return denoise(loaded, job, *args)

        monkeypatch.setattr(self.backend, "_denoise", held)

    def queue(self, prompt: str, seed: int) -> str:
        """Click Queue with this instruction; the job's id."""
        token, note, _panel, ids, *_timer_and_status = next(self.queue_event(
            prompt=prompt, image_1=str(self.reference), num_inference_steps=4, seed=seed, randomize_seed=False,
            jobs_token=self.token,
        ))
        assert note.startswith("➕ Queued"), note
        self.token = token
        return ids[-1]

    def open_gates(self, *prompts: str) -> None:
        for prompt in prompts or tuple(self.gates):
            self.gates[prompt].set()

    def poll(self) -> None:
        """What the page's timer does: redraw the panel, and put the runs that finished into History."""
        # Outputs: the panel (items, ids) and the picked run's line and buttons, then the runs for
        # History, the version seen, the timer.
        *_panel, landed, self.seen, _timer = poll(self.ctx.jobs, self.token, self.history, self.seen, None)
        if landed != gr.skip():  # the runs for History, merged in as the page merges them
            self.history = merge_history(self.history, landed["value"], set())

    def captions(self) -> list[str]:
        shown, _ids = panel(self.ctx.jobs, self.token)
        items = shown["value"] if isinstance(shown, dict) else shown  # the gallery's update, or its items
        return [caption for _picture, caption in items]

    def jobs(self):
        return self.ctx.jobs.jobs(self.token)

    def wait_until(self, condition, what: str) -> None:
        """Poll as the page does until `condition()`; fail, saying `what` and the panel, after PATIENCE."""
        end = time.monotonic() + PATIENCE
        while not condition():
            self.poll()
            if time.monotonic() > end:
                pytest.fail(f"waited in vain for {what}; the panel says {self.captions()}")
            time.sleep(0.05)
        self.poll()

    def all_finished(self) -> bool:
        return all(job.state in FINISHED for job in self.jobs())

    def saved_images(self) -> set[str]:
        """Every result image in the outputs folder (the references are kept apart, in references/)."""
        return {str(path) for path in self.ctx.outputs.root.glob("*/*/image-*")}


@pytest.fixture
def studio(tiny_model, reference, tmp_path, monkeypatch):
    made = Studio(tiny_model["model"], reference, tmp_path, monkeypatch)
    yield made
    made.open_gates()  # a failed test leaves no run going: none waits at its gate, all are stopped
    for job in made.jobs():
        made.ctx.jobs.cancel(made.token, job.id)
    end = time.monotonic() + PATIENCE
    while not made.all_finished() and time.monotonic() < end:
        time.sleep(0.05)


def test_queued_local_runs_take_the_gpu_in_queue_order_and_the_waiting_ones_show_their_place(studio):
    studio.queue(RED, seed=1)
    studio.wait_until(lambda: studio.on_gpu == [RED], "the first run to hold the GPU")
    studio.queue(GREEN, seed=2)
    studio.queue(BLUE, seed=3)
    studio.wait_until(lambda: studio.captions()[1:] == [f"▶️ waiting, next in line · {GREEN}",
                                                        f"▶️ waiting, position 2 · {BLUE}"],
                      "the two runs behind it to show their place in the GPU's line")
    assert studio.captions()[0].startswith("▶️ ") and studio.on_gpu == [RED]
    studio.open_gates(RED)
    studio.wait_until(lambda: studio.on_gpu == [RED, GREEN], "the second run to take the GPU")
    studio.wait_until(lambda: studio.captions()[2] == f"▶️ waiting, next in line · {BLUE}",
                      "the last run to move up the line")
    studio.open_gates(GREEN, BLUE)
    studio.wait_until(studio.all_finished, "every run to finish")
    assert studio.on_gpu == [RED, GREEN, BLUE]
    assert studio.captions() == [f"✅ done · {RED}", f"✅ done · {GREEN}", f"✅ done · {BLUE}"]
    assert [job.result["recipe"]["request"]["prompt"] for job in studio.jobs()] == [RED, GREEN, BLUE]
    assert [job.result["recipe"]["seed"] for job in studio.jobs()] == [1, 2, 3]


def test_every_finished_queued_run_is_saved_and_goes_into_history_exactly_once(studio):
    studio.open_gates()  # the runs go through unheld
    ids = [studio.queue(prompt, seed) for seed, prompt in enumerate((RED, GREEN, BLUE), start=1)]
    studio.wait_until(studio.all_finished, "every run to finish")
    jobs = studio.jobs()
    assert [job.id for job in jobs] == ids and [job.state for job in jobs] == [DONE, DONE, DONE]
    results = [job.result for job in jobs]
    for result in results:
        assert result["images"] and all(Path(image).is_file() for image in result["images"])
    assert studio.saved_images() == {image for result in results for image in result["images"]}
    assert len(list(studio.ctx.outputs.root.glob("*/*/recipe.json"))) == 3  # three saved runs
    # History: each run once, the newest on top (the page polled while they ran, and once more after).
    assert [entry["images"] for entry in studio.history] == [r["images"] for r in reversed(results)]
    assert [entry["recipe"]["request"]["prompt"] for entry in studio.history] == [BLUE, GREEN, RED]
    before = list(studio.history)
    studio.poll()
    studio.poll()
    assert studio.history == before  # nothing is added twice
    assert studio.ctx.jobs.deliver(studio.token) == []


def test_a_queued_local_run_cancelled_while_waiting_for_the_gpu_stops_without_images_and_the_others_finish(studio):
    studio.queue(RED, seed=1)
    studio.wait_until(lambda: studio.on_gpu == [RED], "the first run to hold the GPU")
    green = studio.queue(GREEN, seed=2)
    studio.queue(BLUE, seed=3)
    studio.wait_until(lambda: studio.captions()[1:] == [f"▶️ waiting, next in line · {GREEN}",
                                                        f"▶️ waiting, position 2 · {BLUE}"],
                      "the two runs behind it to wait for the GPU")
    note, _cancel, _timer = cancel_job(studio.ctx.jobs, studio.token, green)
    assert note == "⏹ Cancelled."
    studio.wait_until(lambda: studio.captions()[1:] == [f"⏹ stopped · {GREEN}",
                                                        f"▶️ waiting, next in line · {BLUE}"],
                      "the cancelled run to stop and the one behind it to move up")
    studio.open_gates()
    studio.wait_until(studio.all_finished, "the other runs to finish")
    red, stopped, blue = studio.jobs()
    assert (red.state, stopped.state, blue.state) == (DONE, STOPPED, DONE)
    assert stopped.result is None
    assert studio.on_gpu == [RED, BLUE]  # the cancelled run never reached the pipeline
    assert studio.saved_images() == {*red.result["images"], *blue.result["images"]}
    assert [entry["recipe"]["request"]["prompt"] for entry in studio.history] == [BLUE, RED]
    assert studio.ctx.spending.in_flight(Visitor.of(None, None)) == 0  # every slot given back
    assert studio.backend._line.waiting == 0 and not studio.backend._line.locked()


def test_on_a_zerogpu_space_a_local_run_is_not_queued_and_says_to_press_run(studio, monkeypatch):
    # ZeroGPU lends the GPU to a page's own request: a run waiting with no page behind it would get none.
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    with pytest.warns(UserWarning, match="Press Run instead"):  # gr.Warning, outside an event
        token, note, _panel, ids, _timer, status = next(studio.queue_event(
            prompt=RED, image_1=str(studio.reference), num_inference_steps=4, seed=1, randomize_seed=False))
    assert note.startswith("⚠️ Not queued") and "Press Run instead" in note and status == note
    assert ids == [] and studio.ctx.jobs.jobs(token) == []
