#!/usr/bin/env bash
# Runs `bench/bench_local.py --gpu` on a GPU machine with no package registry: installs the
# wheels of bench/gpu_wheels.sh (DIR, default .whl) into a folder of their own, checks that the
# benchmark's imports and the GPU are there, then runs it, writing its log and JSON to $OUT
# (default bench/results). Extra arguments go to bench_local.py (`--small` checks the script on
# a CPU first).
#
#   bash bench/gpu_run.sh [DIR] [bench_local.py arguments]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dir=${1:-.whl}
shift || true
out=${OUT:-bench/results}
mkdir -p "$out"
if compgen -G "$dir/*.whl" >/dev/null; then
  site=${STUDIO_BENCH_SITE:-/tmp/studio-bench-site}
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
    "$dir"/*.whl || exit 1
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
python3 - <<'PY' || exit 1
import importlib.metadata as md
import torch
for name in ("torch", "diffusers", "torchao", "peft", "transformers", "accelerate", "huggingface_hub", "pydantic"):
    print(f"{name} {md.version(name)}", end="; ")
print()
import importlib.util, torchao  # noqa: F401, E401  (a missing package fails here, before any GPU time)
spec = importlib.util.spec_from_file_location("bench_local", "bench/bench_local.py")
spec.loader.exec_module(importlib.util.module_from_spec(spec))  # the benchmark's own imports
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability {p.major}.{p.minor}")
else:
    print("no CUDA device: bench_local.py --gpu falls back to its scaled-down CPU check")
PY
export PYTHONUNBUFFERED=1
python3 bench/bench_local.py --gpu "$@" 2>&1 | tee "$out/bench-local-gpu.log"
status=${PIPESTATUS[0]}
[ "$out" = bench/results ] || cp bench/results/local-gpu*.json "$out"/ 2>/dev/null
exit "$status"
