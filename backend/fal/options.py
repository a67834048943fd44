"""fal's own settings for a run: the fields of fal's input schema that the local
pipeline does not have. fal's payload is the EditRequest plus these."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..base import BackendOptions

Acceleration = Literal["none", "regular", "high"]


class FalOptions(BackendOptions):
    acceleration: Acceleration = Field(
        default="regular", title="Acceleration", description="Faster generation at some cost in quality.",
    )
    enable_prompt_expansion: bool = Field(
        default=False, title="Prompt expansion", description="Let fal rewrite the instruction in more detail.",
    )
    enable_safety_checker: bool = Field(
        default=True, title="Safety checker", description="Flag images that may contain NSFW content.",
    )
    sync_mode: bool = Field(
        default=False, title="Sync mode",
        description="fal returns the images inline and keeps no copy in its request history.",
    )
