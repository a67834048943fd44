"""Which memory mode and speed preset fit the GPU a ZeroGPU Space was given.

A ZeroGPU Space does not choose its card: Hugging Face's page now names RTX Pro 6000 Blackwell
cards (96 GB, or half of one), older ones H200s (141 GB). So at start-up the app reads the card
(`DeviceInfo`, in a short GPU slot: zerogpu.py) and `plan_for` picks the first plan that fits it:

1. `gpu` + `quality`: everything on the card in bf16 (no fidelity lost, nothing moved per run);
2. `gpu` + `fast`: fp8 transformer, everything on the card;
3. `model_offload` + `fast`: the fp8 transformer on the card while it denoises, the text encoder
   moved on only to encode (the edit's slot never runs it: zerogpu.py);
4. `model_offload` + `quality`;
5. `group_offload` + `quality`: layers streamed onto the card as they run (slow, but fits a card
   smaller than the text encoder). fp8 is not chosen here by itself: torchao's fp8 tensors
   through group offloading's streams are unmeasured.

The sizes are FLUX.2 [dev]'s (../shared notes, flux2-local.md): transformer ~64 GB in bf16 and
~32 GB in fp8, Mistral text encoder ~48 GB in bf16, plus working memory, plus the LoRAs a run may
hold beside the transformer (hotswap.py's three slots of rank STUDIO_LORA_MAX_RANK over every
linear layer: ~4.6 GB at rank 128). So an H200 runs plan 1, an RTX Pro 6000 (96 GB) plan 3, and a
48 GB half card plan 5 (its text encoder alone fills it).

An operator's STUDIO_MEMORY / STUDIO_SPEED is kept when it fits; when it does not, the plan says
so in its reason and the first plan that fits is used instead (a Space that cannot load its
model helps nobody). Pure functions, no torch: tested with made-up cards.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..request import MAX_ACTIVE_LORAS

GB = 2**30  # torch reports bytes; the cards' "96 GB" are GiB
TRANSFORMER_GB = {"bf16": 64.0, "fp8": 32.0}
TEXT_ENCODER_GB = 48.0
WORKING_GB = 8.0  # activations at 1024x1024 with references, the VAE, cuBLAS and compile workspaces
STREAMED_GB = 4.0  # group_offload: the few layers on the card at once
USABLE = 0.9  # of the card's memory: the CUDA context and the allocator's fragmentation take the rest
LINEAR_SIDES = 6_491_904  # in + out features, summed over FLUX.2 [dev]'s 203 linear layers
FP8_SPEEDS = ("fast", "fastest")  # the presets with an fp8 transformer (speed.py)
ALL_SPEEDS = ("quality", "fast", "fastest")
# In order of preference (see the module doc); `fastest` only when the operator asks for it.
CANDIDATES: tuple[tuple[str, str], ...] = (
    ("gpu", "quality"), ("gpu", "fast"), ("model_offload", "fast"), ("model_offload", "quality"),
    ("group_offload", "quality"), ("group_offload", "fast"),
    ("gpu", "fastest"), ("model_offload", "fastest"), ("group_offload", "fastest"),
)


@dataclass(frozen=True)
class DeviceInfo:
    """The GPU a run gets: its name, memory and compute capability (picklable: it is read in
    a ZeroGPU slot and sent back)."""

    name: str
    total_gb: float
    capability: tuple[int, int]

    @property
    def fp8(self) -> bool:  # Ada, Hopper, Blackwell
        return self.capability >= (8, 9)

    @property
    def fp4(self) -> bool:  # Blackwell
        return self.capability >= (10, 0)

    def describe(self) -> str:
        kinds = [k for k, ok in (("fp8", self.fp8), ("fp4", self.fp4)) if ok]
        extra = f", {' and '.join(kinds)}" if kinds else ""
        major, minor = self.capability
        return f"{self.name} ({self.total_gb:.0f} GB, compute {major}.{minor}{extra})"

    @classmethod
    def from_torch(cls, index: int = 0) -> DeviceInfo:
        """The CUDA device `index` as torch sees it."""
        import torch

        props = torch.cuda.get_device_properties(index)
        return cls(props.name, props.total_memory / GB, (props.major, props.minor))


@dataclass(frozen=True)
class PlanSettings:
    """What the operator set (None: left to the plan) and the presets this server can run at
    all (speed.py: torchao, diffusers' cache hooks)."""

    memory: str | None = None
    speed: str | None = None
    speeds: tuple[str, ...] = ALL_SPEEDS
    lora_rank: int = 128  # STUDIO_LORA_MAX_RANK


@dataclass(frozen=True)
class DevicePlan:
    memory: str
    speed: str
    reason: str  # why this plan, in a sentence or two

    def line(self, device: DeviceInfo) -> str:
        """The page's line: the card and the plan."""
        return f"GPU: {device.describe()}. Plan: {self.memory}, {self.speed}. {self.reason}"


def lora_slots_gb(rank: int) -> float:
    """The LoRAs beside the transformer: three of `rank` over every linear layer, in bf16 (the
    hot-swap slots; named adapters never hold more)."""
    return MAX_ACTIVE_LORAS * rank * LINEAR_SIDES * 2 / GB  # hotswap.py: one slot per LoRA a run may hold


def needed_gb(memory: str, speed: str, lora_rank: int = 0) -> float:
    """The card memory FLUX.2 [dev] needs in `memory` mode at `speed`, with LoRA slots of `lora_rank`."""
    transformer = TRANSFORMER_GB["fp8" if speed in FP8_SPEEDS else "bf16"] + lora_slots_gb(lora_rank)
    if memory == "gpu":
        return transformer + TEXT_ENCODER_GB + WORKING_GB
    if memory == "model_offload":  # one component on the card at a time
        return max(transformer, TEXT_ENCODER_GB) + WORKING_GB
    return STREAMED_GB + WORKING_GB


def plan_for(device: DeviceInfo, settings: PlanSettings) -> DevicePlan:
    """The first plan (CANDIDATES' order) that runs and fits `device`; the operator's choice
    first when it fits."""
    usable = device.total_gb * USABLE

    def need(memory: str, speed: str) -> float:
        return needed_gb(memory, speed, settings.lora_rank)

    runnable = [(m, s) for m, s in CANDIDATES if s in settings.speeds and (device.fp8 or s not in FP8_SPEEDS)]
    fitting = [(m, s) for m, s in runnable if need(m, s) <= usable]
    wanted = [(m, s) for m, s in fitting
              if settings.memory in (None, m) and settings.speed in (None, s)
              and (settings.speed is not None or s != "fastest")]
    operator = _operator_text(settings)
    if wanted:
        memory, speed = wanted[0]
        why = f"~{need(memory, speed):.0f} of {usable:.0f} GB usable"
        if operator:
            return DevicePlan(memory, speed, f"{operator} fits ({why}).")
        skipped = runnable[:runnable.index(wanted[0])]
        too_big = "; ".join(f"{m} + {s} needs ~{need(m, s):.0f} GB" for m, s in skipped)
        return DevicePlan(memory, speed, f"{too_big}, more than fits; this plan needs {why}." if too_big
                          else f"The best plan fits ({why}).")
    fallback = next((p for p in fitting if p[1] != "fastest"), ("group_offload", "quality"))
    memory, speed = fallback
    if operator:
        asked = (settings.memory or memory, settings.speed or speed)
        if asked in runnable:
            problem = f"needs ~{need(*asked):.0f} GB, more than the {usable:.0f} GB usable here"
        else:
            problem = f"does not run on this card ({asked[1]} needs fp8, compute capability 8.9 or newer)"
        return DevicePlan(memory, speed, f"{operator} {problem}; using {memory} + {speed} instead.")
    return DevicePlan(memory, speed, f"Nothing is known to fit {usable:.0f} GB; trying the smallest plan.")


def _operator_text(settings: PlanSettings) -> str:
    parts = [f"STUDIO_MEMORY={settings.memory}" if settings.memory else "",
             f"STUDIO_SPEED={settings.speed}" if settings.speed else ""]
    return " and ".join(p for p in parts if p)
