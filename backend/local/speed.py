"""The speed presets (`LocalOptions.speed`): which this machine can run, and what each does
to a pipeline.

- `quality`: today's path: bf16 weights, the repeated blocks compiled (STUDIO_COMPILE).
- `fast`: the transformer's linear layers in fp8, weights and activations (torchao's
  `Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())`), then compiled the same way.
  Needs an NVIDIA GPU of compute capability 8.9 or newer (H100/H200 9.0, RTX Pro 6000 12.0).
- `fastest`: `fast` plus diffusers' TaylorSeer step cache on the transformer
  (`TaylorSeerCacheConfig(cache_interval=STUDIO_STEP_CACHE_INTERVAL, disable_cache_before_step=10,
  max_order=1)`): after 10 full steps, the transformer runs fully every k-th step and its
  outputs in between are extrapolated (first-order Taylor). Chosen over diffusers 0.42.1's
  `FirstBlockCacheConfig`, which fails on Flux2 ("unsupported operand type(s) for -: 'Tensor'
  and 'list'": its tail hook mixes the double blocks' pair with the single blocks' tensor).

A preset is fixed when the pipeline is loaded (fp8 cannot be undone): the loaded pipeline is
identified by model, memory mode and preset, and a run with another preset loads its own.

Why `fastest` is not offered without fp8: the presets are steps on one ladder (each adds to the
one before), so a machine without fp8 offers `quality` only. The step cache alone runs on a CPU,
and the tests exercise it there through `enable_step_cache`, the function `fastest` uses.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, get_args

import torch

from . import diffusers_private as private
from .options import Speed

SPEEDS: tuple[str, ...] = get_args(Speed)
STEP_CACHE_WARMUP = 10  # full steps before the cache predicts any (the composition forms early)
FP8_CAPABILITY = (8, 9)  # fp8 matrix units: Ada, Hopper, Blackwell
NO_FP8 = "needs an NVIDIA GPU with fp8 (compute capability 8.9 or newer)"
_CACHE_MARK = "_studio_step_cache"  # set on a transformer whose step cache this module enabled


def uses_fp8(speed: str) -> bool:
    return speed in ("fast", "fastest")


def uses_step_cache(speed: str) -> bool:
    return speed == "fastest"


def compile_fullgraph(speed: str) -> bool:
    """The step cache's hooks decide in Python, per step, whether a module runs (a graph
    break inside the compiled blocks): compile them without fullgraph then."""
    return not uses_step_cache(speed)


@dataclass(frozen=True)
class SpeedSupport:
    """Which presets this server can run; for the others, why not."""

    refusals: dict[str, str] = field(default_factory=dict)  # preset -> the reason, "needs …"

    @property
    def available(self) -> tuple[str, ...]:
        return tuple(s for s in SPEEDS if s not in self.refusals)

    def refusal(self, speed: str) -> str | None:
        """The message for a run that asks for `speed` here, None when it can run."""
        reason = self.refusals.get(speed)
        return f"{speed} {reason}" if reason else None

    def note(self) -> str:
        """The page's info text: what runs here, and why the rest does not."""
        text = f"Available here: {', '.join(self.available)}."
        reasons: dict[str, list[str]] = {}
        for speed, reason in self.refusals.items():
            reasons.setdefault(reason, []).append(speed)
        for reason, speeds in reasons.items():
            if len(speeds) > 1 and reason.startswith("needs "):  # "fast and fastest need …"
                reason = "need " + reason.removeprefix("needs ")
            text += f" {' and '.join(speeds)} {reason}."
        return text + " fastest trades some fidelity for time: judge it on your own images."


def speed_support(device: torch.device) -> SpeedSupport:
    """The presets `device` can run (fp8 matrix units, torchao, diffusers' cache hooks)."""
    refusals: dict[str, str] = {}
    fp8 = _fp8_refusal(device)
    if fp8:
        refusals["fast"] = refusals["fastest"] = fp8
    elif not _step_cache_present():
        refusals["fastest"] = "needs diffusers' cache hooks (TaylorSeerCacheConfig); this diffusers has none"
    return SpeedSupport(refusals)


def _fp8_refusal(device: torch.device) -> str | None:
    if device.type != "cuda" or not torch.cuda.is_available():
        return f"{NO_FP8}; this server has none"
    capability = torch.cuda.get_device_capability(device)
    if capability < FP8_CAPABILITY:
        name = torch.cuda.get_device_name(device)
        return f"{NO_FP8}; this server's {name} is {capability[0]}.{capability[1]}"
    if importlib.util.find_spec("torchao") is None:
        return "needs torchao: pip install -r requirements-local.txt"
    return None


def _step_cache_present() -> bool:
    import diffusers

    return hasattr(diffusers, "TaylorSeerCacheConfig") and hasattr(diffusers.Flux2Transformer2DModel, "enable_cache")


# -- applying a preset ----------------------------------------------------------------------


FP8_ACTIVATION_FLOOR = 1e-12  # the smallest row maximum an activation's fp8 scale is made from


def fp8_config() -> Any:
    """torchao's fp8 recipe for the transformer's linear layers (torchao 0.18).

    Each activation row gets the scale max|row| / 448. A row of zeros (padding can give one)
    would get 0 and quantise to 0/0 = NaN, which attention spreads to every token: a black
    image. The floor makes that row's scale tiny instead, so it stays zeros; any row with a
    value above 1e-12 is scaled exactly as without it."""
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow

    return Float8DynamicActivationFloat8WeightConfig(granularity=PerRow(), activation_value_lb=FP8_ACTIVATION_FLOOR)


def load_quantization(speed: str) -> Any:
    """`from_pretrained`'s quantization_config for `speed` (None for bf16): diffusers then
    quantises the transformer while loading it, never holding all of it in bf16."""
    if not uses_fp8(speed):
        return None
    from diffusers import PipelineQuantizationConfig, TorchAoConfig

    fp8: Any = TorchAoConfig(fp8_config())  # a QuantizationConfigMixin; its stubs say otherwise
    return PipelineQuantizationConfig(quant_mapping={"transformer": fp8})


def apply_speed(pipe: Any, speed: str, step_cache_interval: int) -> None:
    """What `speed` does to an already placed pipeline, before compiling: fp8 for a
    transformer not quantised at load (a pipeline built in code), the step cache for
    `fastest`."""
    if uses_fp8(speed) and getattr(pipe.transformer, "hf_quantizer", None) is None:
        from torchao.quantization import quantize_

        quantize_(pipe.transformer, fp8_config())
    if uses_step_cache(speed):
        enable_step_cache(pipe, step_cache_interval)


def enable_step_cache(pipe: Any, interval: int, full_steps_first: int = STEP_CACHE_WARMUP) -> None:
    """diffusers' TaylorSeer cache on the transformer (what `fastest` adds to `fast`): the
    first `full_steps_first` steps run fully, then one step in `interval`."""
    from diffusers import TaylorSeerCacheConfig

    pipe.transformer.enable_cache(TaylorSeerCacheConfig(
        cache_interval=interval, disable_cache_before_step=full_steps_first, max_order=1,
        taylor_factors_dtype=pipe.transformer.dtype,
    ))
    setattr(pipe.transformer, _CACHE_MARK, True)


@contextmanager
def step_cache_context(pipe: Any) -> Iterator[None]:
    """Around one pipeline call: a step cache starts empty (a run never reuses another
    image's residuals, so a seed gives the same image whatever ran before) and gets the
    cache context Flux2Pipeline does not set itself."""
    transformer = pipe.transformer
    if getattr(transformer, _CACHE_MARK, False):
        private.reset_step_cache(transformer)
        with transformer.cache_context("cond"):
            yield
    else:
        yield
