"""The ZeroGPU path: the GPU durations the app asks for, the plan chosen for the card the Space
got, and what a ZeroGPU Space offers and needs. The app run as on a ZeroGPU Space, with a
stand-in for the `spaces` package: tests/app/test_zerogpu.py."""

from __future__ import annotations

import importlib.util
import io
import json
import threading
from pathlib import Path

import pytest

import backend.local.backend as local_backend
from backend.events import Progress, Queued, Result
from backend.local.backend import LocalBackend, LocalSettings
from backend.local.device_plan import DeviceInfo, PlanSettings, plan_for
from backend.local.zerogpu import GpuSlot, edit_seconds, measure_step_seconds, on_zerogpu, start_on_zerogpu
from backend.request import build_request
from backend.settings import Settings, SettingsError
from tests.helpers.tiny_flux2 import (
    MAX_SEQUENCE_LENGTH,
    TEXT_ENCODER_OUT_LAYERS,
    build_tiny_pipeline,
    reference_image,
    save_tiny_pipeline,
)

STAND_INS = Path(__file__).resolve().parents[1] / "helpers" / "stand_ins"
# As torch reports them (GiB): an H200, an RTX Pro 6000 Blackwell, half of one, an A100 (no fp8).
H200 = DeviceInfo("NVIDIA H200", 139.8, (9, 0))
RTX_PRO_6000 = DeviceInfo("NVIDIA RTX PRO 6000 Blackwell Server Edition", 94.97, (12, 0))
HALF_CARD = DeviceInfo("NVIDIA RTX PRO 6000 Blackwell (half)", 47.5, (12, 0))
A100 = DeviceInfo("NVIDIA A100-SXM4-80GB", 79.2, (8, 0))


def test_the_duration_grows_with_steps_images_size_and_references():
    base = edit_seconds(28, 1, 1024, 1024, [(1024, 1024)])
    assert 40 <= base <= 90  # ~31 s of denoising on an H200, plus loading and a margin
    assert edit_seconds(50, 1, 1024, 1024, [(1024, 1024)]) > base
    assert edit_seconds(28, 2, 1024, 1024, [(1024, 1024)]) > base
    assert edit_seconds(28, 1, 1440, 1440, [(1024, 1024)]) > base
    assert edit_seconds(28, 1, 1024, 1024, [(1024, 1024)] * 3) > base
    assert edit_seconds(28, 1, 512, 512, [(512, 512)]) < base
    assert edit_seconds(50, 4, 2048, 2048, [(1024, 1024)] * 6) == 300  # capped


def test_a_zerogpu_space_offers_the_local_backend_and_needs_spaces():
    assert on_zerogpu({"SPACES_ZERO_GPU": "true"}) and not on_zerogpu({})
    # Without `spaces` installed (this environment), the start says what to add.
    with pytest.raises(SettingsError, match="needs the spaces package: add spaces to requirements.txt"):
        Settings.from_env({"SPACES_ZERO_GPU": "true"})
    hosted = Settings.from_env({"SPACES_ZERO_GPU": "true", "STUDIO_BACKENDS": "fal"})
    assert hosted.backends == ("fal",) and hosted.default_backend == "fal"


def test_each_card_gets_the_plan_that_fits_it():
    h200 = plan_for(H200, PlanSettings())
    assert (h200.memory, h200.speed) == ("gpu", "quality")  # bf16, everything on the card
    # 96 GB: bf16 does not fit whole, nor fp8 with the text encoder beside it: the fp8
    # transformer on the card, the text encoder moved on only to encode.
    rtx = plan_for(RTX_PRO_6000, PlanSettings())
    assert (rtx.memory, rtx.speed) == ("model_offload", "fast")
    assert "gpu + quality needs ~125 GB" in rtx.reason and "gpu + fast needs ~93 GB" in rtx.reason
    # 48 GB: the text encoder alone (~48 GB) fills it: layers streamed.
    half = plan_for(HALF_CARD, PlanSettings())
    assert (half.memory, half.speed) == ("group_offload", "quality")
    assert "model_offload + fast needs ~56 GB" in half.reason
    # No fp8 matrix units: never an fp8 preset (and bf16 whole components need ~77 GB of its 71).
    a100 = plan_for(A100, PlanSettings())
    assert (a100.memory, a100.speed) == ("group_offload", "quality")
    assert "fast" not in a100.reason
    # The page's line names the card and the plan.
    assert rtx.line(RTX_PRO_6000).startswith(
        "GPU: NVIDIA RTX PRO 6000 Blackwell Server Edition (95 GB, compute 12.0, fp8 and fp4). "
        "Plan: model_offload, fast.")
    assert "fp8" in H200.describe() and "fp4" not in H200.describe()


def test_the_lora_slots_count_against_the_card():
    """Three LoRAs of STUDIO_LORA_MAX_RANK beside the transformer (the hot-swap slots): ~4.6 GB at
    rank 128, which an H200 still holds with everything in bf16; at rank 256 (~9.3 GB) it does not,
    and the fp8 transformer is planned instead, saying why."""
    assert plan_for(H200, PlanSettings()).speed == "quality"
    wide = plan_for(H200, PlanSettings(lora_rank=256))
    assert (wide.memory, wide.speed) == ("gpu", "fast")
    assert wide.reason.startswith("gpu + quality needs ~129 GB, more than fits")


def test_the_operators_choice_is_kept_when_it_fits_and_replaced_when_not():
    kept = plan_for(RTX_PRO_6000, PlanSettings(speed="quality"))
    assert (kept.memory, kept.speed) == ("model_offload", "quality")
    assert kept.reason.startswith("STUDIO_SPEED=quality fits")
    too_big = plan_for(RTX_PRO_6000, PlanSettings(memory="gpu", speed="quality"))
    assert (too_big.memory, too_big.speed) == ("model_offload", "fast")
    assert too_big.reason == ("STUDIO_MEMORY=gpu and STUDIO_SPEED=quality needs ~125 GB, more than the 85 GB "
                              "usable here; using model_offload + fast instead.")
    no_fp8 = plan_for(A100, PlanSettings(speed="fast"))
    assert no_fp8.speed == "quality" and "does not run on this card" in no_fp8.reason
    # A server that cannot run fp8 at all (no torchao) is never planned onto it.
    assert plan_for(RTX_PRO_6000, PlanSettings(speeds=("quality",))).speed == "quality"
    # `fastest` only when asked for.
    assert plan_for(H200, PlanSettings(speed="fastest")).speed == "fastest"


def test_the_slot_scales_the_step_measured_on_the_card():
    h200 = edit_seconds(28, 1, 1024, 1024, [(1024, 1024)], seconds_per_step=1.12)
    assert h200 == edit_seconds(28, 1, 1024, 1024, [(1024, 1024)])  # the figure used until a step is measured
    slower = edit_seconds(28, 1, 1024, 1024, [(1024, 1024)], seconds_per_step=2.0)
    assert slower == 93  # (15 s + 28 steps x 2.0 s) x 1.3
    assert edit_seconds(28, 2, 1024, 1024, [(1024, 1024)], seconds_per_step=2.0) == 166


def test_one_step_is_timed_after_a_warm_up_step():
    ticks = iter([100.0, 103.5])  # the ends of step 1 (compiling, warming up) and step 2
    seconds = measure_step_seconds(
        build_tiny_pipeline(), clock=lambda: next(ticks),
        max_sequence_length=MAX_SEQUENCE_LENGTH, text_encoder_out_layers=TEXT_ENCODER_OUT_LAYERS,
    )
    assert seconds == 3.5


def stand_in_spaces():
    spec = importlib.util.spec_from_file_location("spaces_stand_in", STAND_INS / "spaces" / "__init__.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_at_start_up_the_card_is_read_the_plan_chosen_and_a_step_measured(tmp_path, monkeypatch):
    log = tmp_path / "spaces.jsonl"
    monkeypatch.setenv("SPACES_STAND_IN_LOG", str(log))
    model = save_tiny_pipeline(tmp_path / "model")
    reference_image(0).save(tmp_path / "ref.png")
    local = LocalBackend(LocalSettings(
        model=str(model), device="cpu", max_sequence_length=MAX_SEQUENCE_LENGTH,
        text_encoder_out_layers=TEXT_ENCODER_OUT_LAYERS,
    ), gpu_slot=GpuSlot(stand_in_spaces()))
    measured: list = []

    def measure(pipe, **call) -> float:
        measured.append(pipe)
        return 2.0

    device, plan = start_on_zerogpu(local, GpuSlot(stand_in_spaces()), PlanSettings(),
                                    read_device=lambda: RTX_PRO_6000, measure=measure)
    # This CPU server runs no fp8: the RTX card's plan without it.
    assert device == RTX_PRO_6000 and plan is not None
    assert (local.settings.memory, local.settings.speed) == (plan.memory, plan.speed) == ("model_offload", "quality")
    assert local.pipeline_loads == 1 and measured == [local.pipe]  # measured on the loaded model
    assert "Plan: model_offload, quality" in local.plan_line
    assert [json.loads(line)["function"] for line in log.read_text().splitlines()] == ["<lambda>", "_warm_up"]

    request = build_request(prompt="make it blue", image_urls=[str(tmp_path / "ref.png")], num_inference_steps=4,
                            image_size={"width": 512, "height": 512}, seed=1)
    events = list(local.run(request, local.options({})))
    assert isinstance(events[-1], Result)
    edit = [json.loads(line) for line in log.read_text().splitlines()][-1]
    assert edit["function"] == "_edit"
    assert edit["duration"] == edit_seconds(4, 1, 512, 512, [(64, 64)], seconds_per_step=2.0)
    assert edit["duration"] > edit_seconds(4, 1, 512, 512, [(64, 64)])  # not the H200's step


def test_a_stopped_run_whose_step_outlives_it_keeps_the_gpu_until_it_ends(tmp_path, monkeypatch):
    """Handlers run at once (ZeroGPU, or any queue with concurrency): a run stopped while its
    step cannot end yet must not hand the pipeline (adapters, scales, its interrupt flag) to
    the next run while that step still runs: the next run waits in line, then makes the same
    image as on its own."""
    model = save_tiny_pipeline(tmp_path / "model")
    reference_image(0).save(tmp_path / "ref.png")
    local = LocalBackend(LocalSettings(
        model=str(model), device="cpu", max_sequence_length=MAX_SEQUENCE_LENGTH,
        text_encoder_out_layers=TEXT_ENCODER_OUT_LAYERS, decode_every=0,
    ))
    request = build_request(prompt="make it blue", image_urls=[str(tmp_path / "ref.png")], num_inference_steps=4,
                            seed=5)
    alone = list(local.run(request, local.options({})))[-1]
    gate, calls = threading.Event(), []
    real_denoise = local_backend.denoise

    def denoise(*args, **kwargs):  # the first call's step hangs until the gate opens
        calls.append(1)
        if len(calls) == 1:
            gate.wait()
        return real_denoise(*args, **kwargs)

    monkeypatch.setattr(local_backend, "denoise", denoise)
    monkeypatch.setattr(local_backend, "WORKER_JOIN_SECONDS", 0.1)
    stopped = local.run(request, local.options({}))
    for event in stopped:
        if isinstance(event, Progress) and event.message.startswith("Image 1 of 1"):
            break
    stopped.close()  # Stop, while the step is stuck
    following = local.run(request, local.options({}))
    assert isinstance(next(following), Queued)  # the stopped run's step still holds the GPU
    assert len(calls) == 1
    gate.set()  # the step ends (interrupted), the GPU passes on
    result = [e for e in following][-1]
    assert isinstance(result, Result) and len(calls) == 2

    def pixels(r: Result) -> bytes:
        from PIL import Image

        return Image.open(io.BytesIO(r.images[0].data)).tobytes()

    assert isinstance(alone, Result) and pixels(result) == pixels(alone)
