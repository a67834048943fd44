"""The LoRA adapters loaded into one pipeline: loaded once, kept in a bounded cache,
and switched per run by setting the active adapters and their scales.

An `Adapters` belongs to one pipeline: a new pipeline (another model) gets a new,
empty one, so one model's adapters can never serve another model's run.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..events import Log, Progress
from ..lora_header import FLUX2_DEV, ModelShape
from ..request import EditRequest
from .lora_sources import LoraError, LoraFetcher

Emit = Callable[[Any], None]


class Adapters:
    def __init__(self, pipe: Any, fetcher: LoraFetcher, max_loras: int, max_rank: int = 128):
        self.pipe = pipe
        self.fetcher = fetcher
        self.max_loras = max_loras
        self.max_rank = max_rank  # STUDIO_LORA_MAX_RANK
        self._names: OrderedDict[str, str] = OrderedDict()  # LoRA path -> adapter name
        self._trigger_words: dict[str, tuple[str, ...]] = {}
        self.loads = 0  # how many LoRA files were loaded into the pipeline

    def activate(self, request: EditRequest, emit: Emit) -> list[str]:
        """Load what is new (once), then set the adapters and scales for this run.
        Returns the notes for the result (the LoRAs' trigger words)."""
        notes: list[str] = []
        names, weights = [], []
        for index, lora in enumerate(request.loras, start=1):
            name = self._names.get(lora.path)
            if name is None:
                emit(Progress(f"Loading LoRA {index} (once)…"))
                name = self.load(index, lora.path)
            self._names.move_to_end(lora.path)
            triggers = self._trigger_words.get(lora.path)
            if triggers:
                notes.append(f"LoRA {index} trigger words: {', '.join(triggers)}")
                emit(Log(notes[-1]))
            names.append(name)
            weights.append(lora.scale)
        self.evict(keep=set(names))
        if names:
            self.pipe.enable_lora()
            self.pipe.set_adapters(names, adapter_weights=weights)
        elif self._names:
            self.pipe.disable_lora()
        return notes

    def read(self, index: int, path: str) -> tuple[dict[str, Any], tuple[str, ...], str]:
        """Fetch LoRA `index` and read its weights (its model and rank checked from the header
        first), its trigger words and its layout."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        lora = self.fetcher.fetch(index, path)
        rank = lora.header.rank
        unfit = lora.header.fits(model_shape(self.pipe))
        if unfit:
            raise LoraError(index, path, unfit)
        if rank > self.max_rank:
            raise LoraError(index, path, f"rank {rank} is more than this server's limit of {self.max_rank} "
                                         "(STUDIO_LORA_MAX_RANK)")
        try:
            state = load_file(str(lora.file))
        except (SafetensorError, OSError, ValueError) as error:
            raise LoraError(index, path, f"is not a readable safetensors file ({error})"[:300]) from None
        if not any(is_lora_key(k) for k in state):
            raise LoraError(index, path, "is a safetensors file but holds no LoRA weights")
        return state, lora.trigger_words, lora.header.format

    def load(self, index: int, path: str) -> str:
        """Fetch LoRA `index` and load it as a named adapter; its name."""
        state, trigger_words, layout = self.read(index, path)
        name = "lora_" + hashlib.sha256(path.encode()).hexdigest()[:12]
        try:
            self.pipe.load_lora_weights(state, adapter_name=name)
        except Exception as error:
            self.forget(name)
            raise LoraError(index, path, f"its {layout} layout could not be converted for this model "
                                         f"({type(error).__name__}: {error})"[:300]) from None
        if name not in adapter_names(self.pipe):  # diffusers skips keys it cannot place without a word
            raise LoraError(index, path, f"none of its layers ({layout} layout) matched this model's")
        self._names[path] = name
        self._trigger_words[path] = trigger_words
        self.loads += 1
        return name

    def evict(self, keep: set[str]) -> None:
        """Unload the least recently used adapters beyond `max_loras`, except `keep`."""
        while len(self._names) > self.max_loras:
            path, name = next((p, n) for p, n in self._names.items() if n not in keep)
            del self._names[path]
            self._trigger_words.pop(path, None)
            self.forget(name)

    def forget(self, name: str) -> None:
        """Delete adapter `name` from the pipeline, if it is there (a failed load may
        leave part of it)."""
        if name in adapter_names(self.pipe):
            self.pipe.delete_adapters(name)


def adapter_names(pipe: Any) -> set[str]:
    """The adapters loaded into any of the pipeline's models."""
    return {n for names in pipe.get_list_adapters().values() for n in names}


def model_shape(pipe: Any) -> ModelShape:
    """The served transformer's block counts and width, which a LoRA must match."""
    config = pipe.transformer.config
    width = config.num_attention_heads * config.attention_head_dim
    shape = (config.num_layers, config.num_single_layers, width)
    name = FLUX2_DEV.name if shape == (FLUX2_DEV.double_blocks, FLUX2_DEV.single_blocks, FLUX2_DEV.width) \
        else "the served model"
    return ModelShape(name, *shape)


def is_lora_key(key: str) -> bool:
    key = key.lower()
    return any(part in key for part in ("lora_a", "lora_b", "lora_down", "lora_up", "lokr_", ".alpha"))
