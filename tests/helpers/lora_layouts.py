"""One LoRA for the tiny FLUX.2 transformer, written in each trainer's key layout.

The LoRA is made once in BFL's naming (the original FLUX.2 code's module names: fused
`img_attn.qkv`, `img_mlp.0`, `single_blocks.N.linear1`, ...), as ai-toolkit, kohya and PEFT
exports of it hold it; `as_diffusers` writes the very same weights in diffusers' own layout,
mapped here by hand from the model's module names (not by diffusers' converter), so that
loading each layout can be compared with loading this one.

Shapes are the tiny transformer's (tests/helpers/tiny_flux2.py): one double and one single
block, 32 wide, MLP 96 (gated: its first layer is 2 x 96 wide).
"""

from __future__ import annotations

import torch

WIDTH, MLP = 32, 96
# BFL module -> (in, out)
BFL_MODULES = {
    "double_blocks.0.img_attn.qkv": (WIDTH, 3 * WIDTH),
    "double_blocks.0.img_attn.proj": (WIDTH, WIDTH),
    "double_blocks.0.txt_attn.qkv": (WIDTH, 3 * WIDTH),
    "double_blocks.0.txt_attn.proj": (WIDTH, WIDTH),
    "double_blocks.0.img_mlp.0": (WIDTH, 2 * MLP),
    "double_blocks.0.img_mlp.2": (MLP, WIDTH),
    "double_blocks.0.txt_mlp.0": (WIDTH, 2 * MLP),
    "double_blocks.0.txt_mlp.2": (MLP, WIDTH),
    "single_blocks.0.linear1": (WIDTH, 3 * WIDTH + 2 * MLP),
    "single_blocks.0.linear2": (WIDTH + MLP, WIDTH),
}
# BFL module -> the diffusers modules it is (a fused qkv is three)
DIFFUSERS_MODULES = {
    "double_blocks.0.img_attn.qkv": ["transformer_blocks.0.attn.to_q", "transformer_blocks.0.attn.to_k",
                                     "transformer_blocks.0.attn.to_v"],
    "double_blocks.0.img_attn.proj": ["transformer_blocks.0.attn.to_out.0"],
    "double_blocks.0.txt_attn.qkv": ["transformer_blocks.0.attn.add_q_proj", "transformer_blocks.0.attn.add_k_proj",
                                     "transformer_blocks.0.attn.add_v_proj"],
    "double_blocks.0.txt_attn.proj": ["transformer_blocks.0.attn.to_add_out"],
    "double_blocks.0.img_mlp.0": ["transformer_blocks.0.ff.linear_in"],
    "double_blocks.0.img_mlp.2": ["transformer_blocks.0.ff.linear_out"],
    "double_blocks.0.txt_mlp.0": ["transformer_blocks.0.ff_context.linear_in"],
    "double_blocks.0.txt_mlp.2": ["transformer_blocks.0.ff_context.linear_out"],
    "single_blocks.0.linear1": ["single_transformer_blocks.0.attn.to_qkv_mlp_proj"],
    "single_blocks.0.linear2": ["single_transformer_blocks.0.attn.to_out"],
}
LAYOUTS = ("ai-toolkit", "peft", "kohya", "fal")

Pairs = dict[str, tuple[torch.Tensor, torch.Tensor]]  # module -> (A: rank x in, B: out x rank)


def bfl_lora(rank: int = 4, seed: int = 5) -> Pairs:
    """Random A and B for every BFL module (large enough to change the tiny model's image)."""
    generator = torch.Generator().manual_seed(seed)
    return {module: (torch.randn(rank, n_in, generator=generator) * 0.3,
                     torch.randn(n_out, rank, generator=generator) * 0.3)
            for module, (n_in, n_out) in BFL_MODULES.items()}


def in_layout(pairs: Pairs, layout: str) -> dict[str, torch.Tensor]:
    """The LoRA as `layout` writes it: "ai-toolkit" (diffusion_model.<BFL name>.lora_A/B),
    "peft" (base_model.model.<BFL name>), "kohya" (lora_unet_<BFL name, "_" for ".">.lora_down/up
    and .alpha = rank: a scale of 1) or "fal" (diffusers' module names under diffusion_model.,
    double blocks called sformer_blocks)."""
    state: dict[str, torch.Tensor] = {}
    for module, (a, b) in pairs.items():
        if layout == "kohya":
            stem = "lora_unet_" + module.replace(".", "_")
            state[f"{stem}.lora_down.weight"] = a
            state[f"{stem}.lora_up.weight"] = b
            state[f"{stem}.alpha"] = torch.tensor(float(a.shape[0]))
        elif layout == "fal":
            for name, (part_a, part_b) in zip(DIFFUSERS_MODULES[module], _split(module, a, b)):
                name = name.replace("transformer_blocks.", "sformer_blocks.", 1) if name.startswith("transformer_") \
                    else name
                state[f"diffusion_model.{name}.lora_A.weight"] = part_a
                state[f"diffusion_model.{name}.lora_B.weight"] = part_b
        else:
            prefix = {"ai-toolkit": "diffusion_model.", "peft": "base_model.model."}[layout]
            state[f"{prefix}{module}.lora_A.weight"] = a
            state[f"{prefix}{module}.lora_B.weight"] = b
    return state


def as_diffusers(pairs: Pairs) -> dict[str, torch.Tensor]:
    """The same weights in diffusers' layout (transformer.<module>.lora_A/B.weight): a fused
    qkv's A serves each of q, k and v, its B is split in three."""
    state: dict[str, torch.Tensor] = {}
    for module, (a, b) in pairs.items():
        for name, (part_a, part_b) in zip(DIFFUSERS_MODULES[module], _split(module, a, b)):
            state[f"transformer.{name}.lora_A.weight"] = part_a
            state[f"transformer.{name}.lora_B.weight"] = part_b
    return state


def _split(module: str, a: torch.Tensor, b: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    if module.endswith(".qkv"):
        return [(a.clone(), part.clone()) for part in b.chunk(3, dim=0)]
    return [(a, b)]
