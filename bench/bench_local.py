"""Benchmark of the local backend (backend/local/) against bare diffusers.

Run from the repository root:

    python bench/bench_local.py                 # CPU, tiny random pipeline (~45 s on 2 cores)
    python bench/bench_local.py --gpu           # CUDA: the real FLUX.2 [dev] shapes, random bf16 weights
    python bench/bench_local.py --gpu --small   # the --gpu code path scaled down to run on a CPU
    options: --steps N (default 28; 4 with --small), --runs N (default 21; 2 with --gpu)

No weights are downloaded (HF_HUB_OFFLINE=1 is set): every model is built in code.
Each figure with a target is a ratio against a baseline measured in the same run,
in the same process, on the same inputs, or a count.

Default (CPU, the tiny pipeline of tests/helpers/tiny_flux2.py, saved to a temp folder and
loaded through the backend's own path, `LocalBackend(LocalSettings(model=folder,
device="cpu", ..., decode_every=4))`):

(a) Overhead of one run.  One 256x256 reference, output size "match image 1",
    28 steps, guidance 2.5, a fixed seed.  The backend WITH previews (iterate
    `backend.run(request, options)` to the Result; that includes reading and checking the
    reference file, the step previews and PNG-encoding the result) against what a
    script using diffusers directly does for the same file: a bare
    `Flux2Pipeline.__call__` of a second pipeline loaded from the same folder, on
    the same inputs (the reference opened from the same file inside the timed part),
    then saving its image as the same PNG (save_png).  The bare call runs in a fresh
    thread, like the backend's pipeline (see bare_call), and is timed twice: with
    `prompt=` (it encodes the prompt every run) and with precomputed `prompt_embeds=`
    (like with like: the backend uses its cached embeddings).  One warm-up each, then
    --runs alternating runs of each.  Target: the median of the run-by-run ratios
    backend / bare-with-embeds (each backend run against the bare run right after it)
    <= 1.05; the ratio of the medians is reported too.  Also reported: against the bare
    call alone, its image left in memory (the PNG is ~2.7 % of a tiny 0.27 s run, ~0.3 %
    of a real one).  Also checked:
    the backend's image is pixel-identical to the bare call's.
(b) Rerun.  A fresh backend's first run (loads the pipeline, encodes the prompt,
    loads a LoRA; LoRA scale 0.5) against its second run (same prompt, another seed,
    LoRA scale 1.0, nothing to load): rerun / first, and the counters after the
    rerun (must be 1 pipeline load, 1 prompt encode, 1 LoRA load).  The first
    run's one-time phases come from the timestamps of its Progress events.
(c) Preview cost.  `StepPreviews.__call__` (and previews.py's `decode_full` /
    `decode_linear`, to know which one ran) wrapped with timers in this process
    (the app code is not changed): seconds in the step callback per step, for
    linear-preview steps and full-VAE-decode steps.  The same instrumented runs
    split the backend's run and the bare run into transformer, callback, the
    pipeline's own final decode, reference read, PNG encode and the rest.

--gpu (CUDA): the real FLUX.2 [dev] transformer (`Flux2Transformer2DModel` with the
FLUX.2-dev config, 32.2 B parameters) and VAE (`AutoencoderKLFlux2()` defaults) with
random bf16 weights built on the GPU, FLUX.2-dev's scheduler config, no text encoder
(`Flux2Pipeline(..., text_encoder=None, tokenizer=None, ...)`) and random prompt
embeddings of the real shape (1, 512, 15360) (the backend gets them in its prompt
cache, so it never encodes).  1024x1024, one 1024x1024 reference, 28 steps, one table:
bare bf16 diffusers (the pipeline called directly), then each speed preset through the
backend (`LocalSettings(speed=..., compile_blocks=True)`), in the order quality, fast,
fastest, on ONE shared transformer (fp8 is applied in place, so bf16 comes first; the
blocks are uncompiled and dynamo reset between presets, so each first run pays its own
compile).  Per preset: s/step and ratio to bare, s/step of the denoising loop alone
(CUDA events at each transformer call), peak GPU memory, the first run and its compile
time (first run - measured run), the relative difference of the final latents against
`quality` at the same seed (mean |diff| / mean |quality|).  A preset this device cannot
run is reported "unavailable: <reason>" (backend/local/speed.py); a preset that fails is
reported "failed: <error>", and the others still run.  After `quality`: LoRA hot-swap on
the compiled quality backend (4-step runs): no LoRA, then three LoRAs of ranks 128/32/8
over different layers, one after another, all three, none, one again; per run the swap
time (HotswapAdapters._swap_in, timed in this process) and the graphs torch._dynamo
compiled (`counters["stats"]["unique_graphs"]`); creating the slots compiles once, every
later swap must compile nothing.  The slots are unloaded before `fast`; right after `fast`, a
shorter round (none, A, B, none, C) checks the same on the fp8 transformer, then unloads.
Targets: fast <= 0.60x bare per step, fastest <= 0.45x bare per image, zero recompiles on
swaps (on quality and on fast).  Written to bench/results/local-gpu.json.  About 7-8
minutes on an H200 (see bench/README.md).

--gpu --small (and --gpu without CUDA, with a note): the same code, float32 on the
CPU, the architecture scaled down (1 double + 2 single blocks, 4 heads x 128,
joint_attention_dim 768 = the fake embeddings' width; the VAE's layout at a quarter of
its width), 256x256, 14 steps (past the step cache's 10 full steps).  It proves that the
--gpu code path runs end to end; its figures are NOT GPU figures.  The app compiles only
on CUDA, so here the benchmark calls `compile_repeated_blocks(fullgraph=...)` itself, as
prepare_pipeline does on CUDA.  fast and fastest are refused on a CPU (the app's rule), so
the check then runs them anyway as "fast (fp8 on the CPU, CPU check)" and "fastest (...)":
the transformer and VAE go to bf16, the capability checks (the app's and torchao's) are
passed over, and the CPU multiplies the fp8 matrices itself; fp8 in place, the compile, the
LoRA hot-swap round on fast and fastest's step cache are the code the GPU runs.  Written to
bench/results/local-gpu-small.json.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded: every model is built in code
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from functools import partial  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from diffusers import (  # noqa: E402
    AutoencoderKLFlux2,
    FlowMatchEulerDiscreteScheduler,
    Flux2Pipeline,
    Flux2Transformer2DModel,
)
from diffusers.utils import logging as diffusers_logging  # noqa: E402
from PIL import Image  # noqa: E402

import backend.local.backend as lb  # noqa: E402
import backend.local.previews as pv  # noqa: E402
import backend.local.speed as speed_mod  # noqa: E402
from backend.events import Preview, Progress, Result  # noqa: E402
from backend.local.backend import LocalBackend, LocalSettings  # noqa: E402
from backend.local.hotswap import HotswapAdapters  # noqa: E402
from backend.local.pipeline import encode_image  # noqa: E402
from backend.request import build_request  # noqa: E402
from tests.helpers.tiny_flux2 import (  # noqa: E402
    MAX_SEQUENCE_LENGTH,
    TEXT_ENCODER_OUT_LAYERS,
    make_tiny_lora,
    reference_image,
    save_tiny_pipeline,
)

PROMPT = "make this donut realistic"
GUIDANCE = 2.5
SEED = 7
DECODE_EVERY = 4
RESULTS_DIR = ROOT / "bench" / "results"

# Default (CPU, tiny pipeline)
REF_SIDE_CPU = 256
STEPS_DEFAULT = 28
RUNS_CPU = 21  # tiny runs (~0.3 s) on a shared machine: more of them steady the medians (11 swung by +-3 %)
RERUN_PAIRS = 3  # fresh backends for (b); each gives one first run and one rerun

TARGETS_CPU = {
    "a_ratio_pairs_median": ("<=", 1.05),
    "a_same_image": ("==", True),
    "b_counters_after_rerun": ("==", [1, 1, 1]),
}

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

# Projection for (c) from the notes' H200 figures (not measured here).
NOTES_DECODE_S = 0.087
NOTES_STEP_S = 1.118


# ------------------------------------------------------------------------------ helpers
def median(values: list[float]) -> float:
    return statistics.median(values)


def meets(op: str, limit, value) -> bool:
    if value is None:
        return False
    return {"<=": lambda: value <= limit, "<": lambda: value < limit, "==": lambda: value == limit}[op]()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def quiet() -> None:
    """Progress bars and the pipeline's warnings would drown the table."""
    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    try:
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
    except Exception:
        pass
    warnings.filterwarnings("ignore")


def drive(backend: LocalBackend, request) -> tuple[Result, dict]:
    """Iterate one backend run to its Result; wall time, previews and Progress timestamps."""
    marks: list[tuple[float, str]] = []
    seen: set[str] = set()
    previews = 0
    t0 = time.perf_counter()
    for event in backend.run(request, backend.options({})):
        now = time.perf_counter() - t0
        if isinstance(event, Preview):
            previews += 1
        elif isinstance(event, Progress) and event.step is None and event.message not in seen:
            seen.add(event.message)  # the backend repeats its latest status while a step runs
            marks.append((now, event.message))
        elif isinstance(event, Result):
            return event, {"seconds": now, "previews": previews, "marks": marks}
    raise RuntimeError("the backend ended without a Result")


def result_pixels(result: Result) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(result.images[0].data)).convert("RGB"))


def bare_call(pipe: Flux2Pipeline, ref_path: Path, steps: int, seed: int, *, embeds=None, **extra) -> Image.Image:
    """What a script using diffusers directly does: open the reference, call the pipeline.

    It runs in a fresh thread, as the backend runs its pipeline (one new worker thread per
    run): on a busy 2-core machine, the same call in the main thread was measured far more
    variable (0.24-4 s against 0.29-1.2 s for one 28-step tiny call, OpenMP teams under
    contention), which would make the baseline, not the backend, the noisy side."""
    def call() -> Image.Image:
        image = Image.open(ref_path).convert("RGB")
        kwargs = dict(
            image=[image], num_inference_steps=steps, guidance_scale=GUIDANCE,
            generator=torch.Generator(device="cpu").manual_seed(seed), output_type="pil", **extra,
        )
        if embeds is None:
            kwargs["prompt"] = PROMPT
        else:
            kwargs["prompt_embeds"] = embeds
        return pipe(**kwargs).images[0]

    return in_fresh_thread(call)


def save_png(image: Image.Image) -> bytes:
    """What a script does with its result: the same PNG the backend delivers (its level)."""
    return encode_image(image, "png").data


def in_fresh_thread(fn):
    """fn() in a new thread, joined; its result or its exception."""
    out: dict = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as error:  # handed to the caller
            out["error"] = error

    thread = threading.Thread(target=target, name="bench-bare")
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


class Timer:
    """Wraps a callable and records (seconds, label) per call; `label()` may read state."""

    def __init__(self, fn, label=lambda *a, **k: None):
        self.fn, self.label, self.calls = fn, label, []

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.calls.append((time.perf_counter() - t0, self.label(*args, **kwargs)))

    def total(self) -> float:
        return sum(s for s, _ in self.calls)


@contextmanager
def instrumented(*pipes: Flux2Pipeline):
    """Timers around the step callback, the two preview decoders, the transformer, the VAE
    decode, the reference read and the PNG encode, in this process only; restored after."""
    state = threading.local()
    originals = {
        "__call__": pv.StepPreviews.__call__, "decode_full": pv.decode_full, "decode_linear": pv.decode_linear,
        "read_source": lb.read_source, "open_reference": lb.open_reference, "_encode": lb.encode_image,
    }

    def mark(kind):
        def wrapped(*args, **kwargs):
            state.kind = kind
            return originals[f"decode_{kind}"](*args, **kwargs)
        return wrapped

    callback = Timer(
        originals["__call__"], label=lambda self, pipe, i, t, tensors: (i + 1, getattr(state, "kind", None))
    )

    def call(self, pipe, i, t, tensors):
        state.kind, state.in_callback = None, True
        try:
            return callback(self, pipe, i, t, tensors)
        finally:
            state.in_callback = False

    rec = {
        "callback": callback,
        "read_ref": Timer(lambda *a, **k: originals["read_source"](*a, **k)),
        "open_ref": Timer(lambda *a, **k: originals["open_reference"](*a, **k)),
        "encode_png": Timer(lambda *a, **k: originals["_encode"](*a, **k)),
        "transformer": [],
        "vae_decode_outside_callback": [],
    }
    pv.StepPreviews.__call__ = call
    pv.decode_full, pv.decode_linear = mark("full"), mark("linear")
    lb.read_source, lb.open_reference, lb.encode_image = rec["read_ref"], rec["open_ref"], rec["encode_png"]
    hooks, vaes = [], []
    for pipe in pipes:
        starts: list[float] = []
        hooks.append(pipe.transformer.register_forward_pre_hook(lambda *a, s=starts: s.append(time.perf_counter())))
        hooks.append(pipe.transformer.register_forward_hook(
            lambda *a, s=starts: rec["transformer"].append(time.perf_counter() - s.pop())))
        vae = pipe.vae
        if id(vae) not in {id(v) for v, _ in vaes}:
            vaes.append((vae, vae.decode))
            inner = vae.decode

            def decode(*args, _inner=inner, **kwargs):
                t0 = time.perf_counter()
                try:
                    return _inner(*args, **kwargs)
                finally:
                    if not getattr(state, "in_callback", False):
                        rec["vae_decode_outside_callback"].append(time.perf_counter() - t0)

            vae.decode = decode
    try:
        yield rec
    finally:
        pv.StepPreviews.__call__ = originals["__call__"]
        pv.decode_full, pv.decode_linear = originals["decode_full"], originals["decode_linear"]
        lb.read_source, lb.open_reference, lb.encode_image = (
            originals["read_source"], originals["open_reference"], originals["_encode"])
        for hook in hooks:
            hook.remove()
        for vae, _ in vaes:
            del vae.decode  # the instance attribute; the class method shows through again


def reset(rec: dict) -> None:
    for key in ("callback", "read_ref", "open_ref", "encode_png"):
        rec[key].calls.clear()
    rec["transformer"].clear()
    rec["vae_decode_outside_callback"].clear()


# ------------------------------------------------------------------------------ default: CPU, tiny pipeline
def make_world(tmp: Path) -> dict:
    model = save_tiny_pipeline(tmp / "model")
    loras = tmp / "loras"
    make_tiny_lora(model, loras / "style.safetensors", seed=1)
    ref = tmp / "reference.png"
    reference_image(0, (REF_SIDE_CPU, REF_SIDE_CPU)).save(ref)
    return {"model": model, "loras": loras, "ref": ref}


def tiny_backend(world: dict) -> LocalBackend:
    return LocalBackend(LocalSettings(
        model=str(world["model"]), device="cpu", lora_dir=world["loras"], decode_every=DECODE_EVERY,
        max_sequence_length=MAX_SEQUENCE_LENGTH, text_encoder_out_layers=TEXT_ENCODER_OUT_LAYERS,
    ))


def tiny_request(world: dict, steps: int, seed: int = SEED, loras=()):
    return build_request(
        prompt=PROMPT, image_urls=[str(world["ref"])], num_inference_steps=steps,
        guidance_scale=GUIDANCE, seed=seed, loras=list(loras),
    )


TINY_EXTRA = dict(max_sequence_length=MAX_SEQUENCE_LENGTH, text_encoder_out_layers=TEXT_ENCODER_OUT_LAYERS)


def bench_overhead(world: dict, steps: int, runs: int) -> tuple[dict, LocalBackend, Flux2Pipeline, torch.Tensor]:
    backend = tiny_backend(world)
    bare = Flux2Pipeline.from_pretrained(str(world["model"]))
    bare.set_progress_bar_config(disable=True)
    embeds, _ = bare.encode_prompt(
        prompt=PROMPT, device=bare._execution_device, max_sequence_length=MAX_SEQUENCE_LENGTH,
        text_encoder_out_layers=TEXT_ENCODER_OUT_LAYERS,
    )
    request = tiny_request(world, steps)

    def run_backend():
        t0 = time.perf_counter()
        result, info = drive(backend, request)
        return time.perf_counter() - t0, result, info

    def run_bare(embeds_or_none):
        t0 = time.perf_counter()
        image = bare_call(bare, world["ref"], steps, SEED, embeds=embeds_or_none, **TINY_EXTRA)
        called = time.perf_counter() - t0
        save_png(image)
        return time.perf_counter() - t0, image, called

    warm = {"backend": run_backend()[0], "bare_prompt": run_bare(None)[0], "bare_embeds": run_bare(embeds)[0]}
    samples: dict[str, list[float]] = {"backend": [], "bare_prompt": [], "bare_embeds": [], "bare_embeds_in_memory": []}
    same = True
    previews = None
    for _ in range(runs):
        seconds, result, info = run_backend()
        samples["backend"].append(seconds)
        previews = info["previews"]
        # bare_embeds right after the backend: each starts after the other pipeline ran (caches
        # cold alike); after bare_prompt, the same pipeline's weights were still warm.
        seconds, image_embeds, called = run_bare(embeds)
        samples["bare_embeds"].append(seconds)
        samples["bare_embeds_in_memory"].append(called)
        seconds, image_prompt, _called = run_bare(None)
        samples["bare_prompt"].append(seconds)
        pixels = result_pixels(result)
        same = same and np.array_equal(pixels, np.asarray(image_embeds.convert("RGB"))) \
            and np.array_equal(pixels, np.asarray(image_prompt.convert("RGB")))
    med = {k: median(v) for k, v in samples.items()}
    return {
        "a_steps": steps, "a_reference": f"{REF_SIDE_CPU}x{REF_SIDE_CPU}", "a_output": "match image 1",
        "a_backend_median_s": med["backend"], "a_bare_prompt_median_s": med["bare_prompt"],
        "a_bare_embeds_median_s": med["bare_embeds"],
        "a_ratio_vs_bare_embeds": med["backend"] / med["bare_embeds"],
        "a_ratio_vs_bare_prompt": med["backend"] / med["bare_prompt"],
        # The bare call's image left in memory (not saved): the backend's PNG counts against it.
        "a_ratio_vs_bare_embeds_in_memory": med["backend"] / med["bare_embeds_in_memory"],
        # The fastest run of each: less sensitive to other processes on a shared machine.
        "a_ratio_vs_bare_embeds_fastest": min(samples["backend"]) / min(samples["bare_embeds"]),
        # The target: each backend run against the bare run right after it, the median of those
        # ratios. The ratio of the two medians moved by up to 4 % between runs of this bench as
        # the machine's speed drifted (later runs 10 % slower for both paths).
        "a_ratio_pairs_median": median([x / y for x, y in zip(samples["backend"], samples["bare_embeds"])]),
        "a_same_image": same, "a_previews_per_run": previews,
        "a_warmup_s": warm, "a_samples": samples,
    }, backend, bare, embeds


def bench_rerun(world: dict, steps: int, pairs: int) -> dict:
    firsts, reruns, counters, phases = [], [], [], []
    for k in range(pairs):
        backend = tiny_backend(world)  # fresh: nothing loaded, nothing cached
        first_request = tiny_request(
            world, steps, seed=SEED + 100 + k, loras=[{"path": "style.safetensors", "scale": 0.5}]
        )
        rerun_request = tiny_request(
            world, steps, seed=SEED + 200 + k, loras=[{"path": "style.safetensors", "scale": 1.0}]
        )
        _, first = drive(backend, first_request)
        _, again = drive(backend, rerun_request)
        firsts.append(first["seconds"])
        reruns.append(again["seconds"])
        counters.append([backend.pipeline_loads, backend.prompt_encodes, backend.lora_loads])
        phases.append(first_run_phases(first["marks"], first["seconds"]))
    first_s, rerun_s = median(firsts), median(reruns)
    phase_medians = {p: median([ph[p] for ph in phases if p in ph]) for p in phases[0]}
    return {
        "b_first_run_median_s": first_s, "b_rerun_median_s": rerun_s, "b_ratio": rerun_s / first_s,
        "b_saved_s": first_s - rerun_s,
        "b_counters_after_rerun": counters[0] if all(c == counters[0] for c in counters) else counters,
        "b_counters_order": ["pipeline_loads", "prompt_encodes", "lora_loads"],
        "b_first_run_phases_s": phase_medians, "b_samples": {"first": firsts, "rerun": reruns, "counters": counters},
    }


def first_run_phases(marks: list[tuple[float, str]], total: float) -> dict:
    """Seconds between the first run's Progress messages: load, encode, LoRA, generation."""
    times = {}
    for at, message in marks:
        if message.startswith("Loading LoRA"):
            times.setdefault("lora", at)
        elif message.startswith("Loading "):
            times.setdefault("load", at)
        elif message.startswith("Encoding"):
            times.setdefault("encode", at)
        elif message.startswith("Image 1 of"):
            times.setdefault("image", at)
    order = [k for k in ("load", "encode", "lora", "image") if k in times]
    phases = {}
    for here, after in zip(order, [*order[1:], "end"], strict=True):
        phases[f"{here}_s"] = (times[after] if after != "end" else total) - times[here]
    phases["before_load_s"] = times[order[0]] if order else total
    return phases


def bench_previews(world: dict, backend: LocalBackend, bare: Flux2Pipeline, embeds, steps: int, runs: int) -> dict:
    """(c): the instrumented runs; the split of one backend run and one bare run."""
    request = tiny_request(world, steps)
    split_runs = max(2, runs)
    per_run = {"backend": [], "bare_embeds": []}
    linear, full = [], []
    with instrumented(backend.pipe, bare) as rec:
        for _ in range(split_runs):
            reset(rec)
            _, info = drive(backend, request)
            calls = rec["callback"].calls
            linear += [s for s, (_step, kind) in calls if kind == "linear"]
            full += [s for s, (_step, kind) in calls if kind == "full"]
            per_run["backend"].append({
                "total_s": info["seconds"],
                "transformer_s": sum(rec["transformer"]),
                "callback_linear_s": sum(s for s, (_st, kind) in calls if kind == "linear"),
                "callback_full_s": sum(s for s, (_st, kind) in calls if kind == "full"),
                "pipeline_final_decode_s": sum(rec["vae_decode_outside_callback"]),
                "reference_read_check_s": rec["read_ref"].total() + rec["open_ref"].total(),
                "png_encode_s": rec["encode_png"].total(),
                "full_decode_steps": [st for _s, (st, kind) in calls if kind == "full"],
            })
            reset(rec)
            t0 = time.perf_counter()
            image = bare_call(bare, world["ref"], steps, SEED, embeds=embeds, **TINY_EXTRA)
            t1 = time.perf_counter()
            save_png(image)
            per_run["bare_embeds"].append({
                "total_s": time.perf_counter() - t0,
                "transformer_s": sum(rec["transformer"]),
                "pipeline_final_decode_s": sum(rec["vae_decode_outside_callback"]),
                "png_encode_s": time.perf_counter() - t1,
            })
    split = {}
    for kind, rows in per_run.items():
        keys = [k for k in rows[0] if k != "full_decode_steps"]
        split[kind] = {k: median([r[k] for r in rows]) for k in keys}
        split[kind]["other_s"] = split[kind]["total_s"] - sum(v for k, v in split[kind].items() if k != "total_s")
    n_full = len(per_run["backend"][0]["full_decode_steps"])
    return {
        "c_callback_linear_step_median_s": median(linear),
        "c_callback_full_step_median_s": median(full) if full else None,  # none when a decode is over budget
        "c_full_decode_steps": per_run["backend"][0]["full_decode_steps"],
        "c_linear_steps_per_run": steps - n_full,
        "c_callback_share_of_run": (split["backend"]["callback_linear_s"] + split["backend"]["callback_full_s"])
        / split["backend"]["total_s"],
        "c_split_medians_s": split,
        # At the real scale (notes' H200 figures): full decodes / (steps x s/step + the final decode).
        "c_projected_h200_preview_share": n_full * NOTES_DECODE_S / (steps * NOTES_STEP_S + NOTES_DECODE_S),
        "c_instrumented_runs": split_runs,
        # What the backend costs apart from its previews: (run - step callbacks) / bare.
        "c_ratio_less_callbacks": (split["backend"]["total_s"] - split["backend"]["callback_linear_s"]
                                   - split["backend"]["callback_full_s"]) / split["bare_embeds"]["total_s"],
    }


def table_cpu(r: dict) -> str:
    def target(name):
        op, limit = TARGETS_CPU[name]
        return f"{op} {'yes' if limit is True else limit}"

    def ok(name):
        return "yes" if r["targets"][name]["met"] else "NO"

    sp = r["c_split_medians_s"]
    full_s = r["c_callback_full_step_median_s"]
    rows = [
        (f"(a) backend run with previews, median ({r['a_steps']} steps, {r['a_reference']} ref)",
         f"{r['a_backend_median_s']:.3f} s", "", ""),
        ("(a) bare Flux2Pipeline + PNG save, prompt=, median", f"{r['a_bare_prompt_median_s']:.3f} s", "", ""),
        ("(a) bare Flux2Pipeline + PNG save, prompt_embeds=, median", f"{r['a_bare_embeds_median_s']:.3f} s", "", ""),
        ("(a) backend / bare (prompt=)", f"{r['a_ratio_vs_bare_prompt']:.3f}", "", ""),
        ("(a) backend / bare (prompt_embeds=), median of the run-by-run ratios", f"{r['a_ratio_pairs_median']:.3f}",
         target("a_ratio_pairs_median"), ok("a_ratio_pairs_median")),
        ("(a) backend / bare (prompt_embeds=), median / median", f"{r['a_ratio_vs_bare_embeds']:.3f}", "", ""),
        ("(a) backend / bare (prompt_embeds=), fastest run of each",
         f"{r['a_ratio_vs_bare_embeds_fastest']:.3f}", "", ""),
        ("(a) backend / bare (prompt_embeds=), its image left in memory (no PNG)",
         f"{r['a_ratio_vs_bare_embeds_in_memory']:.3f}", "", ""),
        ("(a) backend image == bare image (pixels)", "yes" if r["a_same_image"] else "no",
         target("a_same_image"), ok("a_same_image")),
        ("(b) fresh backend, first run (load + encode + LoRA), median", f"{r['b_first_run_median_s']:.3f} s", "", ""),
        ("(b) rerun (new seed, LoRA scale 0.5 -> 1.0), median", f"{r['b_rerun_median_s']:.3f} s", "", ""),
        ("(b) rerun / first run", f"{r['b_ratio']:.3f}", "", ""),
        ("(b) counters after rerun (loads, encodes, LoRA loads)", str(r["b_counters_after_rerun"]),
         target("b_counters_after_rerun"), ok("b_counters_after_rerun")),
        ("(c) step callback, linear-preview step, median",
         f"{r['c_callback_linear_step_median_s'] * 1000:.2f} ms", "", ""),
        ("(c) step callback, full-decode step, median", "none (over budget)" if full_s is None
         else f"{full_s * 1000:.2f} ms", "", ""),
        ("(c) transformer per step (backend run)",
         f"{sp['backend']['transformer_s'] / r['a_steps'] * 1000:.2f} ms", "", ""),
        (f"(c) callback share of a backend run ({len(r['c_full_decode_steps'])} full + "
         f"{r['c_linear_steps_per_run']} linear)", f"{r['c_callback_share_of_run']:.1%}", "", ""),
        ("(c) (backend run - step callbacks) / bare, instrumented runs", f"{r['c_ratio_less_callbacks']:.3f}", "", ""),
        ("(c) projected preview share on an H200 (notes' timings)",
         f"{r['c_projected_h200_preview_share']:.1%}", "", ""),
    ]
    lines = ["| figure | value | target | ok |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def split_table(split: dict) -> str:
    keys = ["total_s", "transformer_s", "callback_linear_s", "callback_full_s", "pipeline_final_decode_s",
            "reference_read_check_s", "png_encode_s", "other_s"]
    lines = ["| where the time goes (median, s) | " + " | ".join(split) + " |", "|---|" + "---|" * len(split)]
    for key in keys:
        cells = [f"{split[k][key]:.3f}" if key in split[k] else "—" for k in split]
        lines.append(f"| {key.removesuffix('_s').replace('_', ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main_cpu(steps: int, runs: int) -> dict:
    started = time.perf_counter()
    results: dict = {
        "mode": "cpu-tiny", "python": sys.version.split()[0], "torch": torch.__version__,
        "diffusers": __import__("diffusers").__version__, "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "decode_every": DECODE_EVERY, "runs": runs,
    }
    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp_name:
        world = make_world(Path(tmp_name))
        print(f"(a) backend vs bare Flux2Pipeline, {steps} steps, {runs} alternating runs …", flush=True)
        overhead, backend, bare, embeds = bench_overhead(world, steps, runs)
        results.update(overhead)
        print("(b) first run of a fresh backend vs a rerun …", flush=True)
        results.update(bench_rerun(world, steps, RERUN_PAIRS))
        print("(c) preview cost (instrumented runs) …", flush=True)
        results.update(bench_previews(world, backend, bare, embeds, steps, runs))
    results["targets"] = {
        k: {"op": op, "limit": limit, "value": results[k], "met": meets(op, limit, results[k])}
        for k, (op, limit) in TARGETS_CPU.items()
    }
    results["peak_rss_mib"] = peak_rss_mib()
    results["total_bench_s"] = time.perf_counter() - started
    path = RESULTS_DIR / "local.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str))
    print()
    print(table_cpu(results))
    print()
    print(split_table(results["c_split_medians_s"]))
    print()
    ph = results["b_first_run_phases_s"]
    print("(b) first-run phases (median s): " + ", ".join(f"{k.removesuffix('_s')} {v:.3f}" for k, v in ph.items()))
    print(f"(c) full decodes in the step callback at steps {results['c_full_decode_steps']} (the final image "
          "is decoded once, after the last step)")
    print(f"peak RSS {results['peak_rss_mib']:.0f} MiB; "
          f"wrote {path.relative_to(ROOT)} in {results['total_bench_s']:.0f} s")
    return results


# ------------------------------------------------------------------------------ --gpu (and --gpu --small)
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


def compiled_blocks(transformer) -> int:
    return sum(1 for m in transformer.modules() if getattr(m, "_compiled_call_impl", None) is not None)


@contextmanager
def patched(owner, name: str, value):
    old = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, old)


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
    results["hotswap_recompiles"] = world.hotswap.get("recompiles_on_swaps")
    results["hotswap_fast_recompiles"] = world.hotswap_fast.get("recompiles_on_swaps")
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
        capability checks are passed over (the app's, and torchao's assertion); the transformer and
        VAE go to bf16 first (fp8 per row is made from bf16 weights, as on a GPU). Then the same
        code as on the GPU: fp8 in place, compile, LoRA hot-swap on fast, the step cache on fastest."""
        import torchao.quantization.quant_api as quant_api

        print("fast and fastest with fp8 computed by the CPU (CPU check of the fp8 path) …", flush=True)
        self.transformer.to(torch.bfloat16)
        self.vae.to(torch.bfloat16)
        self.embeds = self.embeds.to(torch.bfloat16)
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
        must compile nothing. On quality into self.hotswap, on fast into self.hotswap_fast."""
        backend = self._last_backend
        info: dict = {"runs": [], "preset": name}
        if name.startswith("quality"):
            self.hotswap = info
            plan = [("none", []), ("create slots + LoRA A", [0]), ("swap to B", [1]), ("swap to C", [2]),
                    ("A + B + C", [0, 1, 2]), ("none", []), ("swap to C again", [2])]
        else:
            self.hotswap_fast = info
            plan = [("none", []), ("create slots + LoRA A", [0]), ("swap to B", [1]), ("none", []),
                    ("swap to C", [2])]
        if backend is None or name not in self.paths:
            info["error"] = f"{name} did not run"
            return
        print(f"LoRA hot-swap on {name} ({self.swap_steps} steps a run) …", flush=True)
        try:
            files = write_hotswap_loras(self.loras, self.transformer, self.cuda)
            info["loras"] = [{"file": f, "rank": r} for f, r in files]
            swaps = Timer(HotswapAdapters._swap_in)
            slots = Timer(HotswapAdapters._make_slots)
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
            later = info["runs"][2:]  # after the slots exist
            info["recompiles_on_swaps"] = sum(r["graphs_compiled"] for r in later)
            info["slot_creation_graphs"] = info["runs"][1]["graphs_compiled"]
            info["slot_creation_s"] = info["runs"][1]["slots_s"]
            per_swap = [r["swap_s"] / r["swaps"] for r in later if r["swaps"]]
            info["swap_s_median"] = median(per_swap) if per_swap else None
            info["loop_s_per_step_no_slots"] = info["runs"][0]["loop_s_per_step"]
            steps_after = [r["loop_s_per_step"] for r in later if r["loop_s_per_step"] is not None]
            info["loop_s_per_step_after_swaps"] = median(steps_after) if steps_after else None
            info["loop_s_per_step_after_swaps_range"] = [min(steps_after), max(steps_after)] if steps_after else None
        except Exception as error:
            info["error"] = f"{type(error).__name__}: {error}"[:400]
            print(f"  hot-swap FAILED: {info['error']}", flush=True)
        try:  # the presets after this one run without the slots
            backend.pipe.unload_lora_weights()
            info["unloaded"] = True
        except Exception as error:
            info["unloaded"] = f"{type(error).__name__}: {error}"[:300]


def preset_rows(paths: dict, steps: int) -> dict:
    base = paths["bare"]
    base_s = median(base["samples_s"])
    quality = paths.get("quality")
    rows = {}
    for name, row in paths.items():
        run_s = median(row["samples_s"])
        loops = [s for s in row["loop_s_per_step_samples"] if s is not None]
        rows[name] = {
            "run_median_s": run_s, "s_per_step": run_s / steps, "ratio_vs_bare": run_s / base_s,
            "loop_s_per_step": median(loops) if loops else None,
            "rel_diff_latents_vs_quality": rel_diff(row["latents"], quality["latents"]) if quality else None,
            "rel_diff_latents_vs_bare": rel_diff(row["latents"], base["latents"]),
            "rel_diff_pixels_vs_quality": rel_diff(row["pixels"].astype(np.float32),
                                                   quality["pixels"].astype(np.float32)) if quality else None,
            "first_run_s": row["first_run_s"],
            "compile_s": None if name == "bare" else row["first_run_s"] - run_s,  # bare compiles nothing
            "prepare_s": row.get("prepare_s"), "peak_gib": row["peak_gib"],
            "compiled_blocks": row["compiled_blocks"], "samples_s": row["samples_s"],
            "loop_s_per_step_samples": row["loop_s_per_step_samples"],
        }
    return rows


def hotswap_row(hs: dict, t: dict, small: bool, num, where: str) -> str:
    """The table's row for one hot-swap round (run_hotswap) on preset `where`."""
    where = hs.get("preset", where)
    ok = "n/a" if small else ("yes" if t["met"] else "NO")
    if "recompiles_on_swaps" not in hs:
        return f"| LoRA hot-swap on {where} | {hs.get('error', 'not run')} | | | | | | | == 0 | {ok} |"
    ranks = "/".join(str(lo["rank"]) for lo in hs["loras"])
    low_high = hs.get("loop_s_per_step_after_swaps_range")
    spread = f"{low_high[0]:.3f}-{low_high[1]:.3f}" if low_high else "—"
    return (f"| LoRA hot-swap on {where} (ranks {ranks}, and none) | swap {num(hs['swap_s_median'], '.2f')} s "
            f"(median) | slots once: {hs['slot_creation_s']:.1f} s, {hs['slot_creation_graphs']} graphs "
            f"| s/step (loop): no slots {num(hs['loop_s_per_step_no_slots'], '.3f')}, after swaps "
            f"{num(hs['loop_s_per_step_after_swaps'], '.3f')} ({spread}) "
            f" | | | recompiles on swaps: **{hs['recompiles_on_swaps']}** | | == 0 | {ok} |")


def gpu_table(r: dict, label: str, small: bool) -> str:
    def num(v, fmt):
        return "—" if v is None else format(v, fmt)

    lines = []
    if small:
        lines.append(f"** {label}: float32 on a CPU (the fp8 rows: bf16, fp8 computed by the CPU), a reduced "
                     "architecture; the benchmark compiles the blocks itself (the app compiles only on CUDA); "
                     "targets are not judged **")
    lines += [f"| ({label}) | s/step | vs bare | s/step (loop) | peak GPU | first run | compile (first - run) "
              "| rel. diff latents vs quality | target | ok |", "|---|---|---|---|---|---|---|---|---|---|"]
    targets = {"fast": "ratio_fast_per_step", "fastest": "ratio_fastest_per_image"}
    for name, row in r["paths"].items():
        key = targets.get(name)
        t = r["targets"][key] if key else None
        target = f"{'per step' if name == 'fast' else 'per image'} {t['op']} {t['limit']}" if t else ""
        ok = ("n/a" if small else ("yes" if t["met"] else "NO")) if t else ""
        peak = f"{row['peak_gib']:.1f} GiB" if row["peak_gib"] is not None else "n/a (CPU)"
        compile_s = "—" if row["compile_s"] is None else f"{row['compile_s']:.1f} s"
        lines.append(
            f"| {name} | {row['s_per_step']:.3f} | {row['ratio_vs_bare']:.3f} | {num(row['loop_s_per_step'], '.3f')} "
            f"| {peak} | {row['first_run_s']:.1f} s | {compile_s} "
            f"| {num(row['rel_diff_latents_vs_quality'], '.2e')} | {target} | {ok} |")
    for name, reason in r["unavailable"].items():
        key = targets.get(name)
        target = f"{r['targets'][key]['op']} {r['targets'][key]['limit']}" if key else ""
        lines.append(f"| {name} | unavailable: {reason} | | | | | | | {target} | {'n/a' if small else 'NO'} |")
    for hs, key, where in ((r["hotswap"], "hotswap_recompiles", "quality"),
                           (r["hotswap_fast"], "hotswap_fast_recompiles", "fast")):
        lines.append(hotswap_row(hs, r["targets"][key], small, num, where))
    if not small:
        lines.append(f"| (notes: bare diffusers on an H200) | {NOTES_BARE_S_PER_STEP:.3f} | | | | | | | | |")
    lines.append("")
    lines.append(f"{r['speed_support_note']} Step cache interval {STEP_CACHE_INTERVAL}; hot-swap runs of "
                 f"{r['hotswap_steps']} steps; 'loop' = time between transformer calls.")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", action="store_true",
                        help="the real FLUX.2 [dev] shapes with random bf16 weights on CUDA")
    parser.add_argument("--small", action="store_true",
                        help="with --gpu: the same code scaled down, float32 on the CPU")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"steps per run (default {STEPS_DEFAULT}; {SMALL_STEPS} with --small)")
    parser.add_argument("--runs", type=int, default=None,
                        help=f"measured runs per path (default {RUNS_CPU}; {RUNS_GPU} with --gpu)")
    args = parser.parse_args()
    quiet()
    torch.set_grad_enabled(False)  # building weights; the pipeline runs under its own no_grad
    if args.small and not args.gpu:
        parser.error("--small goes with --gpu")
    if not args.gpu:
        main_cpu(args.steps or STEPS_DEFAULT, args.runs or RUNS_CPU)
        return 0
    small, fell_back = args.small, False
    if not small and not torch.cuda.is_available():
        print("NOTE: --gpu asked for, but CUDA is not available here: running the scaled-down CPU check "
              "(--gpu --small) instead. Its figures are not GPU figures.", flush=True)
        small, fell_back = True, True
    steps = args.steps or (SMALL_STEPS if small else STEPS_DEFAULT)
    main_gpu(small, steps, args.runs or RUNS_GPU, fell_back)
    return 0


if __name__ == "__main__":
    sys.exit(main())
