"""The local backend's preview budget and Stop, counted in decodes on the tiny pipeline.

Decodes are counted by wrapping previews.decode_full (the callback's full previews and the
final image) and the VAE's own decode, never by timing thresholds; a cheap decode is made
by replacing the cost estimate, not by waiting for a fast machine."""

from __future__ import annotations

import math

import pytest

from backend.events import Preview
from backend.local import previews
from backend.local.backend import LocalBackend, LocalSettings
from backend.local.previews import DecodeCost, StepPreviews
from backend.request import build_request
from tests.helpers.tiny_flux2 import (
    MAX_SEQUENCE_LENGTH,
    TEXT_ENCODER_OUT_LAYERS,
    build_tiny_pipeline,
    reference_image,
    save_tiny_pipeline,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("previews")
    model = save_tiny_pipeline(root / "model")
    ref = root / "ref.png"
    reference_image(0).save(ref)
    return {"model": model, "ref": str(ref)}


def new_backend(world, decode_every: int) -> LocalBackend:
    return LocalBackend(LocalSettings(
        model=str(world["model"]), device="cpu", decode_every=decode_every,
        max_sequence_length=MAX_SEQUENCE_LENGTH, text_encoder_out_layers=TEXT_ENCODER_OUT_LAYERS,
    ))


def edit(world, steps: int):
    return build_request(prompt="make it blue", image_urls=[world["ref"]], num_inference_steps=steps, seed=5)


@pytest.fixture
def full_decodes(monkeypatch) -> list[int | None]:
    """The step of every full decode: a step number inside the callback, None outside it."""
    seen: list[int | None] = []
    step: list[int | None] = [None]
    decode, call = previews.decode_full, StepPreviews.__call__

    def counted_decode(*args, **kwargs):
        seen.append(step[0])
        return decode(*args, **kwargs)

    def counted_call(self, pipe, i, t, tensors):
        step[0] = i + 1
        try:
            return call(self, pipe, i, t, tensors)
        finally:
            step[0] = None

    monkeypatch.setattr(previews, "decode_full", counted_decode)
    monkeypatch.setattr(StepPreviews, "__call__", counted_call)
    return seen


def vae_decodes(backend: LocalBackend) -> list[bool]:
    """Count the VAE's decodes from now on; each entry: was the pipeline interrupted then."""
    pipe, calls = backend.pipe, []
    inner = pipe.vae.decode

    def decode(*args, **kwargs):
        calls.append(bool(pipe.interrupt))
        return inner(*args, **kwargs)

    pipe.vae.decode = decode
    return calls


def test_a_decode_dearer_than_its_budget_never_runs_before_the_end(world, full_decodes):
    """On the CPU the tiny VAE's decode costs more than several steps: from the first run
    of a fresh backend, with every step eligible, the only full decode is the final image."""
    backend = new_backend(world, decode_every=1)
    events = list(backend.run(edit(world, 6), backend.options({})))
    steps = [e.step for e in events if isinstance(e, Preview)]
    # Step 1 always shows the linear preview; later ones only while the previews'
    # share of the time stays within budget; the last is the final image.
    assert steps[0] == 1 and steps[-1] == 6 and steps == sorted(set(steps))
    assert full_decodes == [None]  # the final image, after the steps
    cost = backend._loaded.decode_cost  # calibrated at the first run, before its first step
    assert cost.per_token is not None and cost.per_token > 0 and not cost.measured
    full_decodes.clear()
    calls = vae_decodes(backend)
    list(backend.run(edit(world, 6), backend.options({})))
    assert full_decodes == [None] and len(calls) == 1  # no second calibration


def test_a_cheap_decode_runs_every_k_steps_from_the_first_eligible_step(world, full_decodes, monkeypatch):
    """Previews cheap next to a step, as on a GPU: a decode estimated free, and no limit
    on the previews' share (on the CPU even the linear map costs a sixth of a tiny step)."""
    monkeypatch.setattr(DecodeCost, "seconds", lambda self, tokens: 0.0)
    monkeypatch.setattr(StepPreviews, "PREVIEW_BUDGET", math.inf)
    backend = new_backend(world, decode_every=2)
    list(backend.run(edit(world, 7), backend.options({})))
    assert full_decodes == [2, 4, 6, None]
    full_decodes.clear()
    list(backend.run(edit(world, 6), backend.options({"preview_decode_every": 1})))
    assert full_decodes == [1, 2, 3, 4, 5, None]  # the last step's preview is the final image


class StepClock:
    """previews.py's clock, moved only by what a run would take: each step 1 s, each linear
    preview `linear` s (1 ms on a GPU), each full decode `full` s (timings without timing
    thresholds)."""

    def __init__(self, monkeypatch, full: float, linear: float = 0.001):
        self.now = 0.0
        monkeypatch.setattr(previews, "time", self)
        call, linear_decode, decode = StepPreviews.__call__, previews.decode_linear, previews.decode_full

        def stepped(preview, pipe, i, t, tensors):
            self.now += 1.0  # the transformer's step, before its callback
            return call(preview, pipe, i, t, tensors)

        monkeypatch.setattr(StepPreviews, "__call__", stepped)
        monkeypatch.setattr(previews, "decode_linear", self.taking(linear, linear_decode))
        monkeypatch.setattr(previews, "decode_full", self.taking(full, decode))
        monkeypatch.setattr(DecodeCost, "seconds", lambda cost, tokens: full)  # known before paying it

    def perf_counter(self) -> float:
        return self.now

    def taking(self, seconds: float, inner):
        def timed(*args, **kwargs):
            self.now += seconds
            return inner(*args, **kwargs)
        return timed


def test_a_decode_dearer_than_k_steps_budget_comes_as_often_as_the_budget_allows(world, full_decodes, monkeypatch):
    """A decode of 8 % of a step (an H200's 1024x1024 decode) with steps every 1 s and a 3 %
    budget: asked for every 2 steps, it fits every third (the previews so far plus it within
    3 % of the steps' time), rather than never, and each linear preview still shows."""
    StepClock(monkeypatch, full=0.08)
    backend = new_backend(world, decode_every=2)
    events = list(backend.run(edit(world, 10), backend.options({})))
    assert full_decodes == [3, 6, 9, None]
    assert [e.step for e in events if isinstance(e, Preview)] == list(range(1, 11))  # a preview at every step


def test_linear_previews_dear_next_to_a_step_keep_to_their_share(world, monkeypatch):
    """As on a tiny CPU model, where the linear map costs a sixth of a step and slows the steps
    around it about as much again: linear previews of 1.8 % of a step keep to their 1 % of the
    steps' time (a third of the previews' 3 %), every other step, the final image last."""
    StepClock(monkeypatch, full=1.0, linear=0.018)
    backend = new_backend(world, decode_every=0)
    events = list(backend.run(edit(world, 9), backend.options({})))
    assert [e.step for e in events if isinstance(e, Preview)] == [1, 2, 4, 6, 8, 9]


def test_a_decode_that_fits_comes_every_k_steps_and_never_sooner(world, full_decodes, monkeypatch):
    StepClock(monkeypatch, full=0.03)  # three steps' budget: it could come every step after the first
    backend = new_backend(world, decode_every=4)
    list(backend.run(edit(world, 13), backend.options({})))
    assert full_decodes == [4, 8, 12, None]


def test_stop_decodes_nothing_after_the_interrupt(world, full_decodes, monkeypatch):
    monkeypatch.setattr(StepPreviews, "PREVIEW_BUDGET", 1e6)  # previews at steps 1, 2, …: Stop at step 2
    monkeypatch.setattr(DecodeCost, "seconds", lambda self, tokens: math.inf)  # and no full decodes
    backend = new_backend(world, decode_every=2)
    list(backend.run(edit(world, 4), backend.options({})))  # loaded and calibrated
    calls = vae_decodes(backend)
    full_decodes.clear()
    events = backend.run(edit(world, 40), backend.options({}))
    seen = 0
    for event in events:
        if isinstance(event, Preview):
            seen += 1
            if seen == 2:
                break
    events.close()  # Stop: returns once the pipeline has stopped
    assert backend.pipe.interrupt  # it was interrupted, not run to the end
    assert calls == [] and full_decodes == []
    after = list(backend.run(edit(world, 4), backend.options({})))  # the next run decodes its image
    assert after[-1].images and calls == [False]


def test_the_decode_cost_is_calibrated_once_and_scales_with_the_tokens():
    pipe = build_tiny_pipeline()
    cost = DecodeCost()
    assert cost.seconds(16) == math.inf  # unknown: no full decode
    calls: list[int] = []
    inner = pipe.vae.decode
    pipe.vae.decode = lambda *a, **k: calls.append(1) or inner(*a, **k)
    cost.calibrate(pipe)
    cost.calibrate(pipe)
    assert len(calls) == 2  # a warm-up and a timed decode, once
    assert cost.per_token is not None and cost.per_token > 0
    assert cost.seconds(1024) == pytest.approx(4 * cost.seconds(256)) == pytest.approx(1024 * cost.per_token)
    assert cost.seconds(16) == cost.seconds(256)  # smaller than the calibration: no cheaper per image
    cost.observe(16, 0.5)
    assert cost.seconds(16) == 0.5 and cost.seconds(1024) == pytest.approx(1024 * cost.per_token)
