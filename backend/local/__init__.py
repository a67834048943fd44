"""The local backend: FLUX.2 [dev] through diffusers on this machine's GPU.

Importing this package imports nothing heavy: `backend.local.options` (the run's
options) and `backend.local.config` (the operator's settings) need no torch. The
backend itself is `backend.local.backend.LocalBackend`.

    backend.py           LocalBackend: options, the run, the pipeline worker
    config.py            LocalSettings: the models offered, memory, device, caches, deadline
    gpu_line.py          the line for the GPU, first come first served, with positions
    pipeline.py          loading and preparing a Flux2Pipeline, prompt cache, output encoding
    previews.py          the step callback: x0 previews (linear and full decodes), Stop
    adapters.py          the LoRA adapters loaded into one pipeline
    lora_sources.py      where a LoRA file comes from, safely (safetensors only)
    zerogpu.py           ZeroGPU Spaces: GPU seconds per edit, `spaces.GPU` slots
    diffusers_private.py every private diffusers name the backend relies on
    options.py           LocalOptions, the run's model, memory mode and preview cadence
"""
