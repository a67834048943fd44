"""The local backend's own settings for a run. Importing this module imports no torch.

The model is the operator's choice: `LocalBackend.options` accepts only the models
named in STUDIO_MODELS (in their canonical spelling, see `backend.settings.canonical_model`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..base import BackendOptions
from ..settings import DEFAULT_MODEL

MemoryMode = Literal["gpu", "model_offload", "group_offload"]
# The speed presets (backend/settings.py SPEEDS says what each does; speed.py applies them).
Speed = Literal["quality", "fast", "fastest"]


class LocalOptions(BackendOptions):
    model: str = Field(
        default=DEFAULT_MODEL, min_length=1, max_length=1024, title="Model",
        description="The FLUX.2 [dev] pipeline to run, one of the models this server offers.",
    )
    memory: MemoryMode = Field(
        default="gpu", title="Memory mode",
        description="gpu: everything on the GPU; model_offload: ~62 GB GPU; group_offload: ~8 GB GPU + 32 GB RAM.",
    )
    preview_decode_every: int = Field(
        default=4, ge=0, le=50, title="Preview decode cadence",
        description="A full VAE decode of the preview at most every k steps, when it fits the previews' budget "
        "(0: linear previews only).",
    )
    speed: Speed = Field(
        default="quality", title="Speed",
        description="quality: bf16; fast: fp8 linear layers; fastest: fp8 and a step cache (judge its quality).",
    )
