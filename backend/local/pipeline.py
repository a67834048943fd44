"""Loading a Flux2Pipeline, preparing it for the backend, and encoding its images.

Pipelines are typed `Any`: diffusers' pipeline classes give a type checker little to go on."""

from __future__ import annotations

import io
from collections import OrderedDict
from typing import Any, get_args

import torch
from diffusers import Flux2Pipeline
from PIL import Image

from ..errors import StudioError
from ..events import ResultImage
from . import diffusers_private as private
from .options import MemoryMode
from .speed import apply_speed, compile_fullgraph, load_quantization

MEMORY_MODES: tuple[str, ...] = get_args(MemoryMode)
OUTPUT_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}


def load_pipeline(model: str, memory: str, device: torch.device, speed: str = "quality") -> Any:
    """Load a Flux2Pipeline from a repo id or folder and place it by memory mode; an fp8
    preset's transformer is quantised while it loads (speed.py)."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    quantization = load_quantization(speed)
    try:
        pipe = Flux2Pipeline.from_pretrained(
            model, dtype=dtype, **({"quantization_config": quantization} if quantization else {}),
        )
    except Exception as error:
        raise StudioError(
            f"Could not load the model {model!r}: {type(error).__name__}: {error}. For the gated "
            "black-forest-labs repos, accept the licence on Hugging Face and set HF_TOKEN."[:500]
        ) from None
    if device.type != "cuda" or memory == "gpu":
        pipe.to(device)
    elif memory == "model_offload":
        pipe.enable_model_cpu_offload(device=device)
    elif memory == "group_offload":
        pipe.enable_group_offload(onload_device=device, offload_type="leaf_level", use_stream=True)
    else:
        raise StudioError(f"Unknown memory mode {memory!r}: use one of {', '.join(MEMORY_MODES)}")
    return pipe


def prepare_pipeline(
    pipe: Any, device: torch.device, compile_blocks: bool, speed: str = "quality", step_cache_interval: int = 4,
) -> Any:
    """What the backend needs of any pipeline it runs: previews, quiet progress, speed
    (the preset's fp8 and step cache first, then the regional compile)."""
    pipe.set_progress_bar_config(disable=True)  # progress goes to the page, not the server log
    # Let the step callback see the velocity and the token ids (read-only) for x0 previews.
    private.allow_step_tensors(pipe)
    apply_speed(pipe, speed, step_cache_interval)
    if compiles(device, compile_blocks):
        pipe.transformer.compile_repeated_blocks(fullgraph=compile_fullgraph(speed))
    return pipe


def compiles(device: torch.device, compile_blocks: bool) -> bool:
    """Whether the transformer's repeated blocks are compiled (CUDA only)."""
    return compile_blocks and device.type == "cuda"


def encode_prompt(pipe: Any, prompt: str, max_sequence_length: int, out_layers: tuple[int, ...]) -> Any:
    """The instruction's embeddings, on the pipeline's execution device."""
    embeds, _ = pipe.encode_prompt(
        prompt=prompt, device=private.execution_device(pipe),
        max_sequence_length=max_sequence_length, text_encoder_out_layers=out_layers,
    )
    return embeds


def encode_image(image: Image.Image, output_format: str) -> ResultImage:
    """A finished image as the bytes of the requested format."""
    pil_format, content_type = OUTPUT_FORMATS[output_format]
    buffer = io.BytesIO()
    # PNG level 3: about half level 6's time on small images, a few per cent larger.
    image.save(buffer, format=pil_format, **({"quality": 95} if pil_format != "PNG" else {"compress_level": 3}))
    return ResultImage(data=buffer.getvalue(), content_type=content_type, width=image.width, height=image.height)


class PromptCache:
    """Prompt embeddings by (model, prompt), the most recent `size` of them: a rerun
    that changes only the seed, scales, guidance or steps encodes nothing, and one
    model's embeddings never serve another model's run."""

    def __init__(self, size: int):
        self.size = size
        self._embeds: OrderedDict[tuple[str, str], Any] = OrderedDict()

    def get(self, model: str, prompt: str) -> Any:
        embeds = self._embeds.get((model, prompt))
        if embeds is not None:
            self._embeds.move_to_end((model, prompt))
        return embeds

    def put(self, model: str, prompt: str, embeds: Any) -> None:
        self._embeds[(model, prompt)] = embeds
        while len(self._embeds) > self.size:
            self._embeds.popitem(last=False)

    def clear(self) -> None:
        self._embeds.clear()
