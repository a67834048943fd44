"""bench_local.py --gpu: the configuration, the random FLUX.2 [dev] model, and what measures it."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from diffusers import (
    AutoencoderKLFlux2,
    FlowMatchEulerDiscreteScheduler,
    Flux2Pipeline,
    Flux2Transformer2DModel,
)

# --gpu: FLUX.2 [dev]'s transformer config.  It equals Flux2Transformer2DModel's class
# defaults in diffusers 0.42.1 and the "flux2-dev" entry of diffusers'
# scripts/convert_flux2_to_diffusers.py (8 double + 48 single blocks, 48 heads x 128 =
# 6144 wide, joint_attention_dim 15360 = 3 x Mistral-Small's 5120, 32.2 B parameters).
DEV_TRANSFORMER = dict(
    patch_size=1, in_channels=128, out_channels=None, num_layers=8, num_single_layers=48,
    attention_head_dim=128, num_attention_heads=48, joint_attention_dim=15360,
    timestep_guidance_channels=256, mlp_ratio=3.0, axes_dims_rope=(32, 32, 32, 32),
    rope_theta=2000, eps=1e-6, guidance_embeds=True,
)
# The VAE: AutoencoderKLFlux2() defaults (what the conversion script instantiates: 128/256/512/512
# channels, 2 layers per block, 32 latent channels, 84 M parameters).
DEV_VAE: dict = {}
# FLUX.2-dev's scheduler/scheduler_config.json (see /work/shared/notes/flux2-local.md).
DEV_SCHEDULER = dict(
    num_train_timesteps=1000, base_image_seq_len=256, base_shift=0.5, max_image_seq_len=4096,
    max_shift=1.15, shift=3.0, use_dynamic_shifting=True,
)
DEV_TEXT_TOKENS = 512  # the pipeline's max_sequence_length: prompt embeddings are (1, 512, 15360)
SMALL_TRANSFORMER = dict(DEV_TRANSFORMER, num_layers=1, num_single_layers=2, num_attention_heads=4,
                         joint_attention_dim=768)
# The VAE's layout kept (4 blocks = 8x, 32 latent channels), its width cut 4x: the default VAE
# alone takes ~10 s a run on 2 CPU cores at 256x256.
SMALL_VAE = dict(block_out_channels=(32, 64, 128, 128))
GPU_SIDE = 1024
SMALL_SIDE = 256
SMALL_STEPS = 14  # past the step cache's 10 full steps, so the CPU check exercises its predicted steps
RUNS_GPU = 1  # measured runs per path after its first run: the whole --gpu run must fit ~8 min on an H200
WEIGHT_STD = 0.02
NOTES_BARE_S_PER_STEP = 1.118  # notes: bare diffusers, 1024x1024 + one reference, H200
STEP_CACHE_INTERVAL = 4  # LocalSettings' default (STUDIO_STEP_CACHE_INTERVAL)
LORA_MAX_RANK = 128  # LocalSettings' default (STUDIO_LORA_MAX_RANK): the slots' rank
# The hot-swap LoRAs: (name, rank, layers); different ranks over different layers.
HOTSWAP_LORAS = (("lora_a", 128, "double_qkv"), ("lora_b", 32, "single_out"), ("lora_c", 8, "both"))
SWAP_STEPS = 4  # steps per hot-swap run on the GPU: a swap's recompile shows at the first step
SMALL_SWAP_STEPS = 4  # the request's minimum

TARGETS_GPU = {
    "ratio_fast_per_step": ("<=", 0.60),  # fast / bare bf16, seconds per step
    "ratio_fastest_per_image": ("<=", 0.45),  # fastest / bare bf16, seconds per image
    "hotswap_recompiles": ("==", 0),  # graphs compiled while swapping LoRAs, after the slots exist
    "hotswap_fast_recompiles": ("==", 0),  # the same on fast's fp8 transformer
}


def new_scheduler() -> FlowMatchEulerDiscreteScheduler:
    return FlowMatchEulerDiscreteScheduler(**DEV_SCHEDULER)


def build_random_components(device: torch.device, dtype: torch.dtype, tcfg: dict, vcfg: dict) -> tuple:
    """The transformer and VAE built straight on `device` in `dtype` (no float32 copy of 32 B
    parameters), matrices re-drawn from N(0, 0.02); norms keep their ones."""
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            transformer = Flux2Transformer2DModel(**tcfg)
            vae = AutoencoderKLFlux2(**vcfg)
    finally:
        torch.set_default_dtype(previous)
    with torch.no_grad():
        for param in transformer.parameters():
            if param.ndim >= 2:
                param.normal_(0.0, WEIGHT_STD)
    transformer.eval().requires_grad_(False)
    vae.eval().requires_grad_(False)
    return transformer, vae


def make_pipe(transformer, vae) -> Flux2Pipeline:
    """A pipeline without a text encoder; the components are shared, the scheduler is not."""
    pipe = Flux2Pipeline(scheduler=new_scheduler(), vae=vae, text_encoder=None, tokenizer=None, transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    return pipe


class StepClock:
    """A timestamp at every transformer call (CUDA events on the GPU, perf_counter on the CPU),
    and the latents the VAE decodes last (the run's final latents)."""

    def __init__(self, transformer, vae, cuda: bool):
        self.cuda, self.marks, self.last_decoded = cuda, [], None
        self.hook = transformer.register_forward_pre_hook(self._mark)
        self.vae, inner = vae, vae.decode

        def decode(z, *args, **kwargs):
            self.last_decoded = z
            return inner(z, *args, **kwargs)

        vae.decode = decode

    def _mark(self, *args):
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append(event)
        else:
            self.marks.append(time.perf_counter())

    def start(self):
        self.marks, self.last_decoded = [], None

    def loop_s_per_step(self) -> float | None:
        """Mean time between consecutive transformer calls: a step's transformer, scheduler
        step and step callback (previews), without the reference encode and the final decode."""
        if len(self.marks) < 2:
            return None
        if self.cuda:
            torch.cuda.synchronize()
            return self.marks[0].elapsed_time(self.marks[-1]) / 1000 / (len(self.marks) - 1)
        return (self.marks[-1] - self.marks[0]) / (len(self.marks) - 1)

    def close(self):
        self.hook.remove()
        del self.vae.decode


def rel_diff(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    a = torch.as_tensor(np.asarray(a) if isinstance(a, np.ndarray) else a.detach().float().cpu()).float()
    b = torch.as_tensor(np.asarray(b) if isinstance(b, np.ndarray) else b.detach().float().cpu()).float()
    return float((a - b).abs().mean() / b.abs().mean().clamp_min(1e-12))


def graphs_compiled() -> int:
    """Graphs torch._dynamo has compiled in this process (a recompile adds one): the
    counter torch 2.13 keeps in `torch._dynamo.utils.counters["stats"]["unique_graphs"]`."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def uncompile(transformer) -> None:
    """Undo `compile_repeated_blocks` (each block's `_compiled_call_impl`) and drop dynamo's
    caches, so that the next preset compiles its own graphs and its first run pays for them."""
    for module in transformer.modules():
        if getattr(module, "_compiled_call_impl", None) is not None:
            module._compiled_call_impl = None
    torch._dynamo.reset()


def fp8_linears(transformer) -> tuple[int, int]:
    """(linear layers whose weight is fp8, linear layers): proof that a preset's rows ran fp8
    (torchao swaps the weight for a Float8Tensor; a layer that kept bf16 would not count)."""
    linears = [m for m in transformer.modules() if isinstance(m, torch.nn.Linear)]
    return sum(1 for m in linears if "Float8" in type(m.weight).__name__), len(linears)


def compiled_blocks(transformer) -> int:
    return sum(1 for m in transformer.modules() if getattr(m, "_compiled_call_impl", None) is not None)




def write_hotswap_loras(folder: Path, transformer, cuda: bool) -> list[tuple[str, int]]:
    """Three diffusers-format LoRAs of different ranks over DIFFERENT layers (the slots must
    take any of them): the double blocks' q/k/v, the single blocks' output projection, both."""
    from safetensors.torch import save_file

    double = [f"transformer_blocks.{i}.attn.to_{p}" for i in range(len(transformer.transformer_blocks))
              for p in ("q", "k", "v")]
    single = [f"single_transformer_blocks.{i}.attn.to_out" for i in range(len(transformer.single_transformer_blocks))]
    modules = dict(transformer.named_modules())
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    generator = torch.Generator().manual_seed(3)
    for name, rank, targets in HOTSWAP_LORAS:
        layer_names = {"double_qkv": double, "single_out": single, "both": double + single}[targets]
        state = {}
        for layer in layer_names:
            linear = modules[layer]
            state[f"transformer.{layer}.lora_A.weight"] = (
                torch.randn(rank, linear.in_features, generator=generator) * 0.01).to(torch.bfloat16)
            state[f"transformer.{layer}.lora_B.weight"] = (
                torch.randn(linear.out_features, rank, generator=generator) * 0.01).to(torch.bfloat16)
        save_file(state, str(folder / f"{name}.safetensors"))
        written.append((f"{name}.safetensors", rank))
    return written

