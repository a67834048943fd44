"""The local backend's settings, from the operator (not from a visitor). Imports no torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..settings import DEFAULT_MODEL, canonical_model
from .options import MemoryMode, Speed


@dataclass(frozen=True)
class LocalSettings:
    model: str = DEFAULT_MODEL  # the default model: first of `models`
    # The models a visitor may pick (the allow-list); empty: `model` only. A `model` left
    # at its default and not among them becomes the first of them.
    models: tuple[str, ...] = ()
    memory: MemoryMode = "gpu"  # the default memory mode
    device: str | None = None  # None: cuda when available, else cpu
    lora_dir: Path | None = None
    decode_every: int = 4  # the default preview cadence: a full VAE decode every k steps (0: none)
    max_loras: int = 8  # adapters kept loaded
    max_prompts: int = 8  # prompt embeddings kept
    max_sequence_length: int = 512
    text_encoder_out_layers: tuple[int, ...] = (10, 20, 30)
    # Regional torch.compile of the transformer's repeated blocks on CUDA (~16 % per step
    # on an H200, ~20 s to compile at the first run); off: plain eager diffusers.
    compile_blocks: bool = True
    # The app's own deadline for the denoising (loading the model does not count): past
    # it the pipeline is interrupted after its current step.
    run_timeout: float = 600.0
    speed: Speed = "quality"  # the default speed preset (speed.py)
    step_cache_interval: int = 4  # "fastest": TaylorSeerCacheConfig's cache_interval
    lora_max_rank: int = 128  # a LoRA of a higher rank is refused; hot-swap slots are padded to it
    # LoRAs in fixed hot-swap slots (hotswap.py), so that a new LoRA never recompiles the
    # compiled blocks. None: exactly when the blocks are compiled (CUDA and compile_blocks).
    lora_hotswap: bool | None = None

    def __post_init__(self) -> None:
        """Canonical spellings (`canonical_model`), the default model first."""
        models = tuple(dict.fromkeys(canonical_model(m) for m in self.models if m.strip()))
        model = canonical_model(self.model) or DEFAULT_MODEL
        if models and model not in models and self.model == DEFAULT_MODEL:
            model = models[0]
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "models", tuple(dict.fromkeys((model, *models))))
