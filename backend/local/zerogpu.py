"""Running the local backend on a Hugging Face ZeroGPU Space.

On ZeroGPU (the Space sets SPACES_ZERO_GPU=true) a GPU exists only inside functions
decorated with the `spaces` package's `@spaces.GPU(duration=...)`. Each call runs in
a forked worker process, with its arguments and every value it yields pickled across,
and is charged against the visitor's daily GPU quota for the duration it asks for
(a longer duration also waits longer in line). So:

- the denoising asks for what the run needs: `edit_seconds` grows with steps, the
  number of images, the output size and the references (the reference tokens join
  the image tokens in every step), from the H200 timings in bench/README.md;
- the instruction is encoded in its own short call (`ENCODE_SECONDS`), and only when
  the prompt is not cached, so the edit's call never spends time on the text encoder;
- `spaces` is imported only on ZeroGPU (it is not a dependency elsewhere);
- the card is not assumed (`start_on_zerogpu`): at start-up a short slot reads it
  (`DeviceInfo`), `device_plan.plan_for` picks the memory mode and speed preset that fit it,
  the model is loaded so, and a warm-up slot measures one step on that card at the reference
  size; `edit_seconds` scales that measured step (STUDIO_STEP_SECONDS skips the warm-up).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from ..settings import on_zerogpu
from .device_plan import DeviceInfo, DevicePlan, PlanSettings, plan_for

__all__ = ["ENCODE_SECONDS", "GpuSlot", "edit_seconds", "on_zerogpu", "start_on_zerogpu"]
log = logging.getLogger(__name__)

ENCODE_SECONDS = 30  # one text-encoder pass, loading it onto the GPU included
PROBE_SECONDS = 30  # reading the card's name, memory and capability
WARM_UP_SECONDS = 240  # moving the weights on, compiling the blocks, two steps
# Used only until a step is measured on the card (or given as STUDIO_STEP_SECONDS).
# bench/README.md, `--gpu` on an H200: 1.12 s per step for a 1024x1024 image with one
# 1024x1024 reference (4096 + 4096 image tokens and 512 text tokens), compile off.
SECONDS_PER_STEP_AT_REFERENCE = 1.12
REFERENCE_TOKENS = 4096 + 4096 + 512
FIXED_SECONDS = 15  # LoRA loading, VAE decodes, moving weights onto the GPU
MARGIN = 1.3  # a call that runs past its duration is killed: ask for a little more
MAX_SECONDS = 300


def edit_seconds(
    steps: int, num_images: int, width: int, height: int, reference_sizes: list[tuple[int, int]],
    seconds_per_step: float = SECONDS_PER_STEP_AT_REFERENCE,
) -> int:
    """The GPU seconds to ask for: every step attends over the output's tokens, each
    reference's tokens and the text's (one token per 16x16 pixels); `seconds_per_step` is
    one step at REFERENCE_TOKENS on this card (measured at start-up)."""
    tokens = width * height // 256 + sum(w * h // 256 for w, h in reference_sizes) + 512
    per_step = seconds_per_step * tokens / REFERENCE_TOKENS
    seconds = (FIXED_SECONDS + num_images * steps * per_step) * MARGIN
    return int(min(MAX_SECONDS, math.ceil(seconds)))


class GpuSlot:
    """Wraps functions with `spaces.GPU`: `slot.wrap(fn, duration)` where `duration` is
    seconds or a function of fn's arguments (as `spaces` takes it)."""

    def __init__(self, spaces_module: Any = None, size: str | None = "xlarge"):
        # A full card ("xlarge"), not the default half: FLUX.2 [dev]'s text encoder alone
        # (~48 GB) fills half of a 96 GB card (device_plan.py).
        self.spaces = spaces_module or importlib.import_module("spaces")
        self.size = size

    def wrap(self, fn: Callable, duration: int | Callable[..., int]) -> Callable:
        kwargs: dict[str, Any] = {"duration": duration}
        if self.size:
            kwargs["size"] = self.size
        return self.spaces.GPU(**kwargs)(fn)


def measure_step_seconds(pipe: Any, clock: Callable[[], float] = time.perf_counter, **call: Any) -> float:
    """One step's seconds on this card at the reference size (a 1024x1024 image, one 1024x1024
    reference): a two-step call, timed between the ends of its steps, so the first (the
    warm-up: compiling, cuBLAS's choices) is not counted. Nothing is decoded."""
    from PIL import Image

    from .speed import step_cache_context

    marks: list[float] = []

    def mark(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
        marks.append(clock())
        return {}

    with step_cache_context(pipe):
        pipe(image=[Image.new("RGB", (1024, 1024), "gray")], prompt="warm-up", height=1024, width=1024,
             num_inference_steps=2, callback_on_step_end=mark, output_type="latent", **call)
    return marks[1] - marks[0]


def start_on_zerogpu(
    local: Any, slot: GpuSlot, operator: PlanSettings, step_seconds: float | None = None,
    read_device: Callable[[], DeviceInfo] = DeviceInfo.from_torch,
    measure: Callable[..., float] = measure_step_seconds,
) -> tuple[DeviceInfo | None, DevicePlan | None]:
    """At start-up: read the card in a slot, choose the plan that fits it, load the default
    model so (outside any slot: ZeroGPU hands those weights to every slot), then measure a
    step on the card unless `step_seconds` is given. `read_device` and `measure` are
    injectable (tests: a made-up card, a made-up step)."""
    try:
        device: DeviceInfo | None = slot.wrap(read_device, PROBE_SECONDS)()
    except Exception as error:  # no CUDA in the slot (a stand-in on a CPU): the operator's settings as they are
        log.warning("ZeroGPU: the GPU could not be read (%s: %s); keeping STUDIO_MEMORY and STUDIO_SPEED",
                    type(error).__name__, error)
        device = None
        local.plan_line = "GPU: not readable at start-up; memory and speed as set."
    plan = None
    if device is not None:
        plan = plan_for(device, dataclasses.replace(operator, speeds=local.speed_support.available,
                                                      lora_rank=local.settings.lora_max_rank))
        log.info("ZeroGPU: %s", plan.line(device))
        local.settings = dataclasses.replace(local.settings, memory=plan.memory, speed=plan.speed)
        local.plan_line = plan.line(device)
    local.preload()
    if step_seconds is None:
        def _warm_up() -> float:
            s = local.settings
            return measure(local.pipe, max_sequence_length=s.max_sequence_length,
                           text_encoder_out_layers=s.text_encoder_out_layers)

        try:
            step_seconds = slot.wrap(_warm_up, WARM_UP_SECONDS)()
            log.info("ZeroGPU: one step at the reference size takes %.2f s on this card", step_seconds)
        except Exception as error:  # a refused or failed warm-up slot must not stop the Space: the H200's step
            log.warning("ZeroGPU: the warm-up step failed (%s: %s); slots assume %.2f s per step",
                        type(error).__name__, error, SECONDS_PER_STEP_AT_REFERENCE)
            step_seconds = SECONDS_PER_STEP_AT_REFERENCE
    local.step_seconds = step_seconds
    return device, plan
