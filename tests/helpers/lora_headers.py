"""Header-only LoRA files, built in code, as trainers lay them out for each model.

A file here is a real safetensors header (8 bytes of length, then the JSON of names,
dtypes, shapes and offsets) with no tensor data after it: what a header check reads is all
there, and a file for FLUX.2 [dev] at rank 16 costs a few KB instead of hundreds of MB.
Shapes are the models' own: FLUX.2 [dev] 8 double + 48 single blocks, 6144 wide (MLP 3x,
gated); FLUX.2 [klein] 4B 5 + 20 blocks, 3072 wide, and 9B 8 + 24 blocks, 4096 wide; FLUX.1
19 + 38 blocks, 3072 wide (MLP 4x, not gated, modulation in each block); SDXL (a U-Net and
two text encoders); Qwen-Image (60 blocks, 3072 wide, img_mlp/txt_mlp).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator

Layer = tuple[str, int, int]  # module name, input width, output width


def _flux2_bfl(width: int, doubles: int, singles: int) -> Iterator[Layer]:
    mlp = 3 * width
    for i in range(doubles):
        yield f"double_blocks.{i}.img_attn.qkv", width, 3 * width
        yield f"double_blocks.{i}.img_attn.proj", width, width
        yield f"double_blocks.{i}.img_mlp.0", width, 2 * mlp
        yield f"double_blocks.{i}.txt_attn.qkv", width, 3 * width
    for i in range(singles):
        yield f"single_blocks.{i}.linear1", width, 3 * width + 2 * mlp
        yield f"single_blocks.{i}.linear2", width + mlp, width


def _flux2_diffusers(width: int, doubles: int, singles: int, block: str = "transformer_blocks") -> Iterator[Layer]:
    mlp = 3 * width
    for i in range(doubles):
        for projection in ("to_q", "to_k", "to_v", "add_q_proj"):
            yield f"{block}.{i}.attn.{projection}", width, width
        yield f"{block}.{i}.ff.linear_in", width, 2 * mlp
    for i in range(singles):
        yield f"single_transformer_blocks.{i}.attn.to_qkv_mlp_proj", width, 3 * width + 2 * mlp
        yield f"single_transformer_blocks.{i}.attn.to_out", width + mlp, width


def _flux1_bfl() -> Iterator[Layer]:
    width = 3072
    for i in range(19):
        yield f"double_blocks.{i}.img_attn.qkv", width, 3 * width
        yield f"double_blocks.{i}.img_mod.lin", width, 6 * width
        yield f"double_blocks.{i}.img_mlp.0", width, 4 * width
    for i in range(38):
        yield f"single_blocks.{i}.linear1", width, 3 * width + 4 * width
        yield f"single_blocks.{i}.modulation.lin", width, 3 * width


def _flux1_diffusers() -> Iterator[Layer]:
    width = 3072
    for i in range(19):
        for projection in ("to_q", "to_k", "to_v"):
            yield f"transformer_blocks.{i}.attn.{projection}", width, width
        yield f"transformer_blocks.{i}.ff.net.0.proj", width, 4 * width
    for i in range(38):
        yield f"single_transformer_blocks.{i}.attn.to_q", width, width
        yield f"single_transformer_blocks.{i}.proj_mlp", width, 4 * width


def _qwen_image() -> Iterator[Layer]:
    for i in range(60):
        for projection in ("to_q", "to_k", "to_v", "add_q_proj"):
            yield f"transformer_blocks.{i}.attn.{projection}", 3072, 3072
        yield f"transformer_blocks.{i}.img_mlp.net.0.proj", 3072, 12288


def _sdxl() -> Iterator[Layer]:
    for block, width in ((1, 640), (2, 1280)):
        for attention in ("attn1", "attn2"):
            source = 2048 if attention == "attn2" else width
            yield f"down_blocks_{block}_attentions_0_transformer_blocks_0_{attention}_to_k", source, width
    yield "te1_text_model_encoder_layers_0_self_attn_q_proj", 768, 768
    yield "te2_text_model_encoder_layers_0_self_attn_q_proj", 1280, 1280


def layers(model: str) -> tuple[str, list[Layer]]:
    """(naming, layers) for `model`: "flux2-dev", "klein-4b", "klein-9b", "flux1", "flux1-diffusers",
    "qwen-image", "sdxl"; naming is "bfl", "diffusers" or "kohya-sd"."""
    table = {
        "flux2-dev": ("bfl", list(_flux2_bfl(6144, 8, 48))),
        "flux2-dev-diffusers": ("diffusers", list(_flux2_diffusers(6144, 8, 48))),
        "klein-4b": ("bfl", list(_flux2_bfl(3072, 5, 20))),
        "klein-9b": ("bfl", list(_flux2_bfl(4096, 8, 24))),
        "flux1": ("bfl", list(_flux1_bfl())),
        "flux1-diffusers": ("diffusers", list(_flux1_diffusers())),
        "qwen-image": ("diffusers", list(_qwen_image())),
        "sdxl": ("kohya-sd", list(_sdxl())),
    }
    return table[model]


def tensor_names(module: str, layout: str, naming: str) -> tuple[str, str, str | None]:
    """(down, up, alpha) tensor names of one module as `layout` writes them."""
    if layout == "kohya":
        prefix = "lora_" if naming == "kohya-sd" else "lora_unet_"
        if naming == "kohya-sd" and not module.startswith("te"):
            prefix = "lora_unet_"
        stem = prefix + module.replace(".", "_")
        return f"{stem}.lora_down.weight", f"{stem}.lora_up.weight", f"{stem}.alpha"
    prefix = {"diffusers": "transformer.", "peft": "base_model.model.", "ai-toolkit": "diffusion_model.",
              "fal": "diffusion_model."}[layout]
    if layout == "fal" and module.startswith("transformer_blocks."):
        module = "s" + module.removeprefix("tran")  # fal's trainer writes "sformer_blocks"
    return f"{prefix}{module}.lora_A.weight", f"{prefix}{module}.lora_B.weight", None


def lora_header_file(model: str, layout: str, rank: int = 16, metadata: dict[str, str] | None = None,
                     every: int = 1) -> bytes:
    """A header-only safetensors file of a rank-`rank` LoRA for `model` in `layout` ("diffusers",
    "peft", "kohya", "ai-toolkit", "fal"); `every`: keep every n-th layer (a smaller header)."""
    naming, found = layers(model)
    header: dict[str, dict] = {}
    offset = 0

    def add(name: str, shape: list[int]) -> None:
        nonlocal offset
        size = 2
        for n in shape:
            size *= n
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size

    for module, width_in, width_out in found[::every]:
        down, up, alpha = tensor_names(module, layout, naming)
        add(down, [rank, width_in])
        add(up, [width_out, rank])
        if alpha:
            add(alpha, [])
    if metadata:
        header["__metadata__"] = metadata
    body = json.dumps(header).encode()
    return struct.pack("<Q", len(body)) + body


def declared_size(file: bytes) -> int:
    """The size the whole file would have: header plus every tensor's bytes."""
    (length,) = struct.unpack("<Q", file[:8])
    header = json.loads(file[8:8 + length])
    ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
    return 8 + length + max(ends, default=0)
