"""LoRAs in fixed hot-swap slots, for a transformer whose blocks are compiled.

With compiled blocks, loading a new adapter or calling `set_adapters` with new scales
changes the modules or their Python floats, and torch recompiles (tens of seconds). So
here the LoRAs live in fixed slots that never change shape, following diffusers' LoRA
hot-swap (`enable_lora_hotswap(target_rank=…)` before a slot's first load, then
`load_lora_weights(..., adapter_name=slot, hotswap=True)`):

- Three slots (the most LoRAs a run has), created at the first run with a LoRA: each is a
  zero LoRA of rank STUDIO_LORA_MAX_RANK over EVERY linear layer of the transformer
  (attention, MLP, embedders, modulation). So a LoRA may target any layers: peft's
  hot-swap zeroes the slot's layers the new LoRA leaves out, and no LoRA can name a layer
  the slot lacks. Creating the slots recompiles the blocks once; after that nothing does.
- LoRA k of a run goes into slot k (the order in which the pipeline adds them stays the
  request's), swapped in only when another LoRA is there. A smaller rank is zero-padded.
- All slots stay active; a slot the run does not use has scale 0 (adds exactly 0), and
  scales are written into the slots' scaling tensors in place, never as new floats.
The price: once the slots exist, every step also runs three rank-R products per linear
layer, LoRA or not (a lower STUDIO_LORA_MAX_RANK costs less).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..events import Log, Progress
from ..request import MAX_ACTIVE_LORAS, EditRequest
from .adapters import Adapters
from .lora_sources import LoraError

Emit = Callable[[Any], None]
SLOTS: tuple[str, ...] = tuple(f"slot{k}" for k in range(1, MAX_ACTIVE_LORAS + 1))


class HotswapAdapters(Adapters):
    """`Adapters` with the same `activate(request, emit)`, through fixed slots."""

    def __init__(self, pipe: Any, fetcher: Any, max_loras: int, max_rank: int = 128):
        super().__init__(pipe, fetcher, max_loras, max_rank)
        self.slots: list[str | None] | None = None  # the LoRA path in each slot; None: no slots yet
        self._scalings: dict[str, list[tuple[torch.Tensor, float]]] = {}  # slot -> (tensor, the LoRA's alpha/r)
        self._triggers: dict[str, tuple[str, ...]] = {}

    def activate(self, request: EditRequest, emit: Emit) -> list[str]:
        if not request.loras and self.slots is None:
            return []  # no LoRA since the load: the plain model, no slots
        if self.slots is None:
            emit(Progress("Preparing the LoRA slots (once)…"))
            self._make_slots()
        assert self.slots is not None
        notes: list[str] = []
        weights = [0.0] * len(SLOTS)
        for k, lora in enumerate(request.loras):
            if self.slots[k] != lora.path:
                emit(Progress(f"Loading LoRA {k + 1}…"))
                self._swap_in(k, lora.path)
            weights[k] = lora.scale
            triggers = self._triggers.get(lora.path)
            if triggers:
                notes.append(f"LoRA {k + 1} trigger words: {', '.join(triggers)}")
                emit(Log(notes[-1]))
        for slot, weight in zip(SLOTS, weights):
            for tensor, base in self._scalings[slot]:
                tensor.fill_(base * weight)
        return notes

    def _make_slots(self) -> None:
        """Each slot: a zero LoRA of the maximum rank over every linear layer, active."""
        from peft.tuners.tuners_utils import BaseTunerLayer

        transformer = self.pipe.transformer
        zero = _zero_lora(transformer, self.max_rank)
        for slot in SLOTS:
            # Before each slot's first load: diffusers then pads it and turns its scales into tensors.
            self.pipe.enable_lora_hotswap(target_rank=self.max_rank, check_compiled="ignore")
            # Copies: the loader may keep the tensors it is given, and the slots must not share storage.
            self.pipe.load_lora_weights({k: v.clone() for k, v in zero.items()}, adapter_name=slot)
        for module in transformer.modules():
            if isinstance(module, BaseTunerLayer):
                module.set_adapter(list(SLOTS))  # all slots active, scales untouched
        self.slots = [None] * len(SLOTS)
        for slot in SLOTS:
            self._record_scalings(slot)

    def _swap_in(self, k: int, path: str) -> None:
        assert self.slots is not None
        state, triggers, layout = self.read(k + 1, path)
        slot = SLOTS[k]
        self.slots[k] = None  # a failed swap leaves the slot unknown: the next run swaps again
        try:
            self.pipe.load_lora_weights(state, adapter_name=slot, hotswap=True)
        except Exception as error:
            raise LoraError(k + 1, path, f"its {layout} layout could not be converted for this model "
                                         f"({type(error).__name__}: {error})"[:300]) from None
        self.slots[k] = path
        self._triggers[path] = triggers
        self._record_scalings(slot)
        self.loads += 1

    def _record_scalings(self, slot: str) -> None:
        """The slot's scaling tensors and the values the swap gave them (the LoRA's alpha/r):
        a run's scale multiplies these."""
        from peft.tuners.lora import LoraLayer

        self._scalings[slot] = [
            (module.scaling[slot], float(module.scaling[slot]))
            for module in self.pipe.transformer.modules()
            if isinstance(module, LoraLayer) and isinstance(module.scaling.get(slot), torch.Tensor)
        ]


def _zero_lora(transformer: Any, rank: int) -> dict[str, torch.Tensor]:
    """A LoRA of `rank` with zero weights over every linear layer of `transformer`."""
    state: dict[str, torch.Tensor] = {}
    for name, module in transformer.named_modules():
        if isinstance(module, torch.nn.Linear):
            device, dtype = module.weight.device, module.weight.dtype
            if not dtype.is_floating_point or dtype.itemsize < 2:  # an fp8 weight: LoRAs stay in bf16
                dtype = torch.bfloat16
            state[f"transformer.{name}.lora_A.weight"] = torch.zeros(rank, module.in_features, device=device,
                                                                   dtype=dtype)
            state[f"transformer.{name}.lora_B.weight"] = torch.zeros(module.out_features, rank, device=device,
                                                                   dtype=dtype)
    return state
