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
- `spaces` is imported only on ZeroGPU (it is not a dependency elsewhere).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import Any

from ..settings import on_zerogpu

__all__ = ["ENCODE_SECONDS", "GpuSlot", "edit_seconds", "on_zerogpu"]

ENCODE_SECONDS = 30  # one text-encoder pass, loading it onto the GPU included
# bench/README.md, `--gpu` on an H200: 1.12 s per step for a 1024x1024 image with one
# 1024x1024 reference (4096 + 4096 image tokens and 512 text tokens), compile off.
SECONDS_PER_STEP_AT_REFERENCE = 1.12
REFERENCE_TOKENS = 4096 + 4096 + 512
FIXED_SECONDS = 15  # LoRA loading, VAE decodes, moving weights onto the GPU
MARGIN = 1.3  # a call that runs past its duration is killed: ask for a little more
MAX_SECONDS = 300


def edit_seconds(steps: int, num_images: int, width: int, height: int, reference_sizes: list[tuple[int, int]]) -> int:
    """The GPU seconds to ask for: every step attends over the output's tokens, each
    reference's tokens and the text's (one token per 16x16 pixels)."""
    tokens = width * height // 256 + sum(w * h // 256 for w, h in reference_sizes) + 512
    per_step = SECONDS_PER_STEP_AT_REFERENCE * tokens / REFERENCE_TOKENS
    seconds = (FIXED_SECONDS + num_images * steps * per_step) * MARGIN
    return int(min(MAX_SECONDS, math.ceil(seconds)))


class GpuSlot:
    """Wraps functions with `spaces.GPU`: `slot.wrap(fn, duration)` where `duration` is
    seconds or a function of fn's arguments (as `spaces` takes it)."""

    def __init__(self, spaces_module: Any = None, size: str | None = "xlarge"):
        # FLUX.2 [dev] needs ~62 GB for the transformer alone (bf16): the full H200
        # ("xlarge"), not the default half of one.
        self.spaces = spaces_module or importlib.import_module("spaces")
        self.size = size

    def wrap(self, fn: Callable, duration: int | Callable[..., int]) -> Callable:
        kwargs: dict[str, Any] = {"duration": duration}
        if self.size:
            kwargs["size"] = self.size
        return self.spaces.GPU(**kwargs)(fn)
