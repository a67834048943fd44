#!/usr/bin/env bash
# Downloads, on a machine that reaches PyPI, the wheels that `bench/bench_local.py --gpu` needs
# on a GPU machine that has PyTorch (and transformers, accelerate, numpy, Pillow, safetensors,
# huggingface_hub) but no package registry, as many lent or air-gapped GPU boxes do. The
# versions are this project's pins (requirements-local.txt, requirements.txt); torch itself is
# the GPU machine's own (torchao 0.18 needs torch >= 2.11).
#
#   bash bench/gpu_wheels.sh [DIR] [PYTHON_VERSION]   # defaults: .whl and 3.12 (the GPU machine's Python)
#
# Then copy DIR beside the checkout on the GPU machine and run `bash bench/gpu_run.sh DIR`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dir=${1:-.whl}
python_version=${2:-3.12}

pin() {  # the version pinned for package $1 in the requirements files
  grep -hiE "^$1(\[[^]]*\])?==" requirements-local.txt requirements.txt | head -1 | sed -E 's/^[^=]*==([^ #]*).*/\1/'
}
wheels=(
  "diffusers==$(pin diffusers)" "torchao==$(pin torchao)" "peft==$(pin peft)"
  "pydantic==$(pin pydantic)" "pydantic-settings==$(pin pydantic-settings)"
  # what those need that a PyTorch image may lack, at the versions pydantic 2.12.5 and
  # pydantic-settings 2.14.1 were tested with here
  pydantic-core==2.41.5 annotated-types==0.7.0 typing-inspection==0.4.2 python-dotenv==1.2.2
  importlib-metadata==10.2.0 zipp==4.1.2 typing-extensions==4.16.0
)
mkdir -p "$dir"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$python_version" \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform any -d "$dir" "${wheels[@]}"
ls -s "$dir"
