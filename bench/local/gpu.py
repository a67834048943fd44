"""bench_local.py --gpu (and --gpu --small): bare diffusers, the speed presets and LoRA hot-swaps on one transformer."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

import backend.local.speed as speed_mod
from backend.local.backend import LocalBackend, LocalSettings
from backend.local.hotswap import HotswapAdapters
from backend.request import build_request
from bench.local.common import (
    DECODE_EVERY,
    GUIDANCE,
    PROMPT,
    RESULTS_DIR,
    ROOT,
    SEED,
    bare_call,
    drive,
    median,
    meets,
    patched,
    peak_rss_mib,
    result_pixels,
)
from bench.local.gpu_model import (
    DEV_SCHEDULER,
    DEV_TEXT_TOKENS,
    DEV_TRANSFORMER,
    DEV_VAE,
    GPU_SIDE,
    LORA_MAX_RANK,
    SMALL_SIDE,
    SMALL_SWAP_STEPS,
    SMALL_TRANSFORMER,
    SMALL_VAE,
    STEP_CACHE_INTERVAL,
    SWAP_STEPS,
    TARGETS_GPU,
    WEIGHT_STD,
    StepClock,
    build_random_components,
    compiled_blocks,
    fp8_linears,
    graphs_compiled,
    make_pipe,
    uncompile,
    write_hotswap_loras,
)
from bench.local.gpu_table import gpu_table, preset_rows
from bench.local.timers import Timer
from tests.helpers.tiny_flux2 import reference_image


def main_gpu(small: bool, steps: int, runs: int, fell_back: bool) -> dict:
    started = time.perf_counter()
    cuda = not small
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    tcfg = SMALL_TRANSFORMER if small else DEV_TRANSFORMER
    vcfg = SMALL_VAE if small else DEV_VAE
    side = SMALL_SIDE if small else GPU_SIDE
    label = "scaled-down CPU check, not a GPU figure" if small else "GPU"
    swap_steps = SMALL_SWAP_STEPS if small else SWAP_STEPS
    results: dict = {
        "mode": "gpu-small-cpu" if small else "gpu", "label": label, "fell_back_from_gpu": fell_back,
        "python": sys.version.split()[0], "torch": torch.__version__, "diffusers": __import__("diffusers").__version__,
        "torchao": _version("torchao"), "peft": _version("peft"),
        "device": torch.cuda.get_device_name(0) if cuda else f"CPU ({os.cpu_count()} cores)",
        "dtype": str(dtype).removeprefix("torch."), "size": f"{side}x{side}", "reference": f"{side}x{side}",
        "steps": steps, "runs": runs, "decode_every": DECODE_EVERY, "transformer_config": tcfg,
        "vae_config": {"AutoencoderKLFlux2() defaults, except": vcfg}, "scheduler_config": DEV_SCHEDULER,
        "prompt_embeds_shape": [1, DEV_TEXT_TOKENS, tcfg["joint_attention_dim"]], "weight_std": WEIGHT_STD,
        "step_cache_interval": STEP_CACHE_INTERVAL, "hotswap_steps": swap_steps, "lora_max_rank": LORA_MAX_RANK,
    }
    print(f"--gpu{' --small' if small else ''}: {label}; {results['device']}, {results['dtype']}, "
          f"{side}x{side} + one {side}x{side} reference, {steps} steps", flush=True)
    t0 = time.perf_counter()
    transformer, vae = build_random_components(device, dtype, tcfg, vcfg)
    results["build_s"] = time.perf_counter() - t0
    results["transformer_params_b"] = sum(p.numel() for p in transformer.parameters()) / 1e9
    results["vae_params_m"] = sum(p.numel() for p in vae.parameters()) / 1e6
    if cuda:
        torch.cuda.synchronize()
        results["weights_gib"] = torch.cuda.memory_allocated() / 2**30
    print(f"built in {results['build_s']:.1f} s: transformer {results['transformer_params_b']:.3f} B params, "
          f"VAE {results['vae_params_m']:.1f} M", flush=True)
    embeds = torch.randn((1, DEV_TEXT_TOKENS, tcfg["joint_attention_dim"]),
                         generator=torch.Generator(device="cpu").manual_seed(1)).to(device, dtype)
    with tempfile.TemporaryDirectory(prefix="bench-local-gpu-") as tmp_name:
        world = GpuWorld(Path(tmp_name), transformer, vae, embeds, device, dtype, side, steps, runs, swap_steps)
        world.run_all(results)
    rows = preset_rows(world.paths, steps)
    results["paths"] = rows
    results["unavailable"] = world.unavailable
    results["hotswap"] = world.hotswap
    results["hotswap_fast"] = world.hotswap_fast
    fast, fastest = rows.get("fast"), rows.get("fastest")
    results["ratio_fast_per_step"] = fast["ratio_vs_bare"] if fast else None
    results["ratio_fastest_per_image"] = fastest["ratio_vs_bare"] if fastest else None
    results["hotswap_recompiles"] = vouched_recompiles(world.hotswap)
    results["hotswap_fast_recompiles"] = vouched_recompiles(world.hotswap_fast)
    results["targets"] = {
        k: {"op": op, "limit": limit, "value": results[k], "met": meets(op, limit, results[k])}
        for k, (op, limit) in TARGETS_GPU.items()
    }
    if small:
        results["targets_note"] = "scaled-down CPU check: the targets are GPU targets and are not judged here"
    results["peak_rss_mib"] = peak_rss_mib()
    results["total_bench_s"] = time.perf_counter() - started
    path = RESULTS_DIR / ("local-gpu-small.json" if small else "local-gpu.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str))
    print()
    print(gpu_table(results, label, small))
    print()
    print(f"peak RSS {results['peak_rss_mib']:.0f} MiB; "
          f"wrote {path.relative_to(ROOT)} in {results['total_bench_s']:.0f} s")
    return results


def vouched_recompiles(hotswap: dict) -> int | None:
    """The recompiles on swaps, or None (target not met) when the compile counter saw no graph
    when the slots were made: a counter that never counts would read 0 recompiles too."""
    if not hotswap.get("slot_creation_graphs"):
        return None
    return hotswap.get("recompiles_on_swaps")


def _version(name: str) -> str | None:
    try:
        return __import__(name).__version__
    except Exception:
        return None


class GpuWorld:
    """The --gpu run: bare diffusers, then each preset through the backend, then LoRA
    hot-swaps, all on one shared transformer (fp8 is applied in place, so bf16 comes first)."""

    def __init__(self, tmp: Path, transformer, vae, embeds, device, dtype, side, steps, runs, swap_steps):
        self.tmp, self.transformer, self.vae, self.embeds = tmp, transformer, vae, embeds
        self.device, self.cuda, self.side, self.steps, self.runs = device, device.type == "cuda", side, steps, runs
        self.swap_steps = swap_steps
        self.ref = tmp / "reference.png"
        reference_image(0, (side, side)).save(self.ref)
        self.loras = tmp / "loras"
        self.paths: dict[str, dict] = {}
        self.unavailable: dict[str, str] = {}
        self.hotswap: dict = {}
        self.hotswap_fast: dict = {}
        self.clock = StepClock(transformer, vae, self.cuda)
        self.fp8_applied = False

    def request(self, steps: int, loras=(), seed: int = SEED):
        return build_request(prompt=PROMPT, image_urls=[str(self.ref)], num_inference_steps=steps,
                             guidance_scale=GUIDANCE, seed=seed, loras=list(loras))

    def backend(self, speed: str) -> LocalBackend:
        settings = LocalSettings(
            device=str(self.device), decode_every=DECODE_EVERY, compile_blocks=True, speed=speed,  # type: ignore[arg-type]
            step_cache_interval=STEP_CACHE_INTERVAL, lora_dir=self.loras, lora_max_rank=LORA_MAX_RANK,
            lora_hotswap=True,  # as on CUDA with compiled blocks; on the CPU check too
        )
        pipe = make_pipe(self.transformer, self.vae)
        # The transformer is shared: once `fast` has made it fp8, `fastest` only adds its step cache.
        with patched(speed_mod, "uses_fp8", (lambda s: False) if self.fp8_applied else speed_mod.uses_fp8):
            backend = LocalBackend(settings, pipeline=pipe)
        self.fp8_applied = self.fp8_applied or speed_mod.uses_fp8(speed)
        if not self.cuda:
            # The app compiles only on CUDA; the benchmark does what prepare_pipeline does there.
            self.transformer.compile_repeated_blocks(fullgraph=speed_mod.compile_fullgraph(speed))
        backend._embeddings.put(backend.settings.model, PROMPT, self.embeds)  # never encodes: no text encoder
        return backend

    # -- measuring ----------------------------------------------------------------------
    def timed(self, runner) -> tuple[float, np.ndarray]:
        self.clock.start()
        t = time.perf_counter()
        pixels = runner()
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t, pixels

    def measure(self, name: str, runner) -> None:
        """One first run (compiling, if any), then --runs measured runs; the peak memory of all."""
        row = self.paths[name] = {"samples_s": [], "loop_s_per_step_samples": [], "latents": None}
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        row["first_run_s"], _ = self.timed(runner)
        print(f"  {name}: first run {row['first_run_s']:.1f} s", flush=True)
        for _ in range(self.runs):
            seconds, pixels = self.timed(runner)
            row["samples_s"].append(seconds)
            row["loop_s_per_step_samples"].append(self.clock.loop_s_per_step())
            print(f"  {name}: {seconds:.2f} s ({seconds / self.steps:.3f} s/step)", flush=True)
            if row["latents"] is None:  # the first measured run: kept for the output comparison
                row["latents"], row["pixels"] = self.clock.last_decoded.detach().float().cpu(), pixels
        row["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30 if self.cuda else None
        row["compiled_blocks"] = compiled_blocks(self.transformer)
        row["fp8_linears"] = fp8_linears(self.transformer)

    def run_bare(self) -> np.ndarray:
        return np.asarray(bare_call(make_pipe(self.transformer, self.vae), self.ref, self.steps, SEED,
                                    embeds=self.embeds).convert("RGB"))

    def drive_pixels(self, backend: LocalBackend, request) -> np.ndarray:
        result, _info = drive(backend, request)
        return result_pixels(result)

    def run_all(self, results: dict) -> None:
        support = speed_mod.speed_support(self.device)
        results["speed_support_note"] = support.note()
        print("bare diffusers (bf16, eager) …", flush=True)
        self.measure("bare", self.run_bare)
        for speed in speed_mod.SPEEDS:
            reason = support.refusal(speed)
            if reason:
                self.unavailable[speed] = reason
                print(f"  {speed}: unavailable: {reason}", flush=True)
                continue
            self.run_preset(speed)
            if speed in ("quality", "fast"):
                self.run_hotswap(speed)
        if not self.cuda and "fast" in self.unavailable:
            self.run_fp8_on_the_cpu()

    def run_fp8_on_the_cpu(self) -> None:
        """The CPU check of fast and fastest: the CPU multiplies fp8 matrices itself, so only the
        capability checks are passed over (the app's, and torchao's assertion); the transformer goes
        to bf16 first (fp8 per row is made from bf16 weights, as on a GPU). Then the same code as on
        the GPU: fp8 in place, compile, LoRA hot-swap on fast, the step cache on fastest.

        The VAE stays float32 and is handed the bf16 latents as float32 (the pipeline does not cast
        them): on a CPU without native bf16 (AVX2 only) one bf16 decode of 256x256 took 118 s against
        0.7 s in float32, which made this check half an hour long, and it checks the transformer."""
        import torchao.quantization.quant_api as quant_api

        print("fast and fastest with fp8 computed by the CPU (CPU check of the fp8 path) …", flush=True)
        self.transformer.to(torch.bfloat16)
        self.embeds = self.embeds.to(torch.bfloat16)
        decode = self.vae.decode  # StepClock's, which keeps the final latents (it removes this one at close)
        self.vae.decode = lambda z, *args, **kwargs: decode(z.float(), *args, **kwargs)
        with patched(quant_api, "_check_hardware_support", lambda granularity: None):
            for speed in ("fast", "fastest"):
                name = f"{speed} (fp8 on the CPU, CPU check)"
                self.run_preset(speed, name=name)
                if speed == "fast":
                    self.run_hotswap(name)

    def run_preset(self, speed: str, name: str | None = None) -> None:
        name = name or speed
        print(f"{name}: the first run compiles …", flush=True)
        uncompile(self.transformer)
        self._last_backend: LocalBackend | None = None
        try:
            t = time.perf_counter()
            backend = self.backend(speed)
            backend.speed_support = speed_mod.SpeedSupport({})  # the CPU check runs refused presets' code
            prepare_s = time.perf_counter() - t
            request = self.request(self.steps)
            self.measure(name, partial(self.drive_pixels, backend, request))
            self.paths[name]["prepare_s"] = prepare_s
            self.paths[name]["speed"] = speed
            self._last_backend = backend
        except Exception as error:  # reported in the table, the other presets still run
            self.paths.pop(name, None)
            self.unavailable[name] = f"failed: {type(error).__name__}: {error}"[:400]
            print(f"  {name}: FAILED {self.unavailable[name]}", flush=True)

    def run_hotswap(self, name: str) -> None:
        """On the compiled backend of preset `name`: no LoRA, then three LoRAs of different ranks over
        different layers one after another, all three at once, none, the first again (on `fast`, a
        shorter round). The first LoRA creates the slots (one recompile, expected); every later swap
        must compile nothing. A second run of that LoRA, before any swap, gives the step time the
        swaps' runs are compared with (the slots always compute the same: any LoRA, or none, is a
        rank-LORA_MAX_RANK product in each of them). On quality into self.hotswap, on fast into
        self.hotswap_fast."""
        backend = self._last_backend
        info: dict = {"runs": [], "preset": name}
        if name.startswith("quality"):
            self.hotswap = info
            plan = [("none", []), ("create slots + LoRA A", [0]), ("LoRA A again (before any swap)", [0]),
                    ("swap to B", [1]), ("swap to C", [2]), ("A + B + C", [0, 1, 2]), ("none", []),
                    ("swap to C again", [2])]
        else:
            self.hotswap_fast = info
            plan = [("none", []), ("create slots + LoRA A", [0]), ("LoRA A again (before any swap)", [0]),
                    ("swap to B", [1]), ("none", []), ("swap to C", [2])]
        if backend is None or name not in self.paths:
            info["error"] = f"{name} did not run"
            return
        print(f"LoRA hot-swap on {name} ({self.swap_steps} steps a run) …", flush=True)
        try:
            files = write_hotswap_loras(self.loras, self.transformer, self.cuda)
            info["loras"] = [{"file": f, "rank": r} for f, r in files]
            swaps = Timer(HotswapAdapters._swap_in)
            slots = Timer(HotswapAdapters._make_slots)
            if self.cuda:  # the slots' memory: does the round still fit an 80 GB card?
                torch.cuda.reset_peak_memory_stats()
            # Functions (not Timer instances) on the class, so that they bind to the adapters.
            with patched(HotswapAdapters, "_swap_in", lambda *a: swaps(*a)), \
                    patched(HotswapAdapters, "_make_slots", lambda *a: slots(*a)):
                for what, picks in plan:
                    loras = [{"path": files[k][0], "scale": 1.0} for k in picks]
                    request = self.request(self.swap_steps, loras)
                    swaps.calls.clear()
                    slots.calls.clear()
                    before = graphs_compiled()
                    seconds, _ = self.timed(partial(self.drive_pixels, backend, request))
                    entry = {"what": what, "run_s": seconds, "graphs_compiled": graphs_compiled() - before,
                             "swap_s": swaps.total(), "swaps": len(swaps.calls), "slots_s": slots.total(),
                             "loop_s_per_step": self.clock.loop_s_per_step()}
                    info["runs"].append(entry)
                    print(f"  {what}: {seconds:.2f} s, swaps {entry['swaps']} in {entry['swap_s']:.2f} s, "
                          f"graphs compiled {entry['graphs_compiled']}", flush=True)
            info["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30 if self.cuda else None
            later = info["runs"][2:]  # after the slots exist
            info["recompiles_on_swaps"] = sum(r["graphs_compiled"] for r in later)
            info["slot_creation_graphs"] = info["runs"][1]["graphs_compiled"]
            info["slot_creation_s"] = info["runs"][1]["slots_s"]
            per_swap = [r["swap_s"] / r["swaps"] for r in later if r["swaps"]]
            info["swap_s_median"] = median(per_swap) if per_swap else None
            info["loop_s_per_step_no_slots"] = info["runs"][0]["loop_s_per_step"]
            info["loop_s_per_step_before_swaps"] = before_s = info["runs"][2]["loop_s_per_step"]
            steps_after = [r["loop_s_per_step"] for r in info["runs"][3:] if r["loop_s_per_step"] is not None]
            info["loop_s_per_step_after_swaps"] = median(steps_after) if steps_after else None
            info["loop_s_per_step_after_swaps_range"] = [min(steps_after), max(steps_after)] if steps_after else None
            # The property: a step after a swap takes what a step before it took (ratio ~1).
            info["step_after_over_before"] = (info["loop_s_per_step_after_swaps"] / before_s
                                              if steps_after and before_s else None)
        except Exception as error:
            info["error"] = f"{type(error).__name__}: {error}"[:400]
            print(f"  hot-swap FAILED: {info['error']}", flush=True)
        try:  # the presets after this one run without the slots
            backend.pipe.unload_lora_weights()
            info["unloaded"] = True
        except Exception as error:
            info["unloaded"] = f"{type(error).__name__}: {error}"[:300]

