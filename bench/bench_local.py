"""Benchmark of the local backend (backend/local/) against bare diffusers.

Run from the repository root:

    python bench/bench_local.py                 # CPU, tiny random pipeline (~45 s on 2 cores)
    python bench/bench_local.py --gpu           # CUDA: the real FLUX.2 [dev] shapes, random bf16 weights
    python bench/bench_local.py --gpu --small   # the --gpu code path scaled down to run on a CPU
    options: --steps N (default 28; 4 with --small), --runs N (default 21; 2 with --gpu)

No weights are downloaded (HF_HUB_OFFLINE=1 is set): every model is built in code.
The code lives in bench/local/: common.py (the inputs, driving the backend, the bare call),
timers.py and cpu.py (the default run), gpu_model.py, gpu.py and gpu_table.py (--gpu).
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
over different layers, one after another (the first twice: its second run, before any swap,
is the step time the swaps are compared with), all three, none, one again; per run the swap
time (HotswapAdapters._swap_in, timed in this process) and the graphs torch._dynamo
compiled (`counters["stats"]["unique_graphs"]`); creating the slots compiles once, every
later swap must compile nothing, and a step after the swaps must take what one before them
took (the loop's s/step, after / before).  The slots are unloaded before `fast`; right after `fast`, a
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

from backend.local import quiet_dependency_notices  # noqa: E402

quiet_dependency_notices()  # before diffusers and torchao are imported: their start-up notices

import torch  # noqa: E402

from bench.local.common import quiet  # noqa: E402
from bench.local.cpu import RUNS_CPU, STEPS_DEFAULT, main_cpu  # noqa: E402
from bench.local.gpu import main_gpu  # noqa: E402
from bench.local.gpu_model import RUNS_GPU, SMALL_STEPS  # noqa: E402


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
