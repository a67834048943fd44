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

from __future__ import annotations

import logging
import sys

# Warnings of the local backend's dependencies that say nothing about this server (seen with
# diffusers 0.42.1, torchao 0.18 and torch 2.13 at every start), each dropped by its own words:
DEPENDENCY_NOTICES = {
    # diffusers registers torchao's tensor types for loading checkpoints saved by torchao, and one
    # of them is gone from torchao 0.18. This app never loads such a checkpoint: it quantises bf16.
    "diffusers.quantizers.torchao.torchao_quantizer": "Unable to import `torchao` Tensor objects",
    # torchao 0.18 registers its enums with torch's pytree, which torch now deprecates: a notice
    # for torchao's maintainers, not for this server's operator.
    "torch.utils._pytree": "is an Enum subclass and is now natively supported",
}
# torchao 0.18 at import, with a PyTorch built without CUDA: a warning for each of its compiled CUDA
# kernels (_C_mxfp8, _C_cutlass_90a), which cannot load there, and one that Triton (a GPU compiler)
# is missing. Nothing that runs there uses them: the fp8 presets need an NVIDIA GPU. With a CUDA
# PyTorch these lines stay, as there they would be news.
CPU_TORCH_NOTICES = {"torchao": "Failed to load", "torchao.kernel.intmm": "Detected no triton"}


def quiet_dependency_notices() -> None:
    """Drop DEPENDENCY_NOTICES from the server's log (every other line of those loggers stays).
    Called before anything imports diffusers or torchao."""
    for logger_name, words in DEPENDENCY_NOTICES.items():
        logging.getLogger(logger_name).addFilter(_WithoutWords(words))
    for logger_name, words in CPU_TORCH_NOTICES.items():
        logging.getLogger(logger_name).addFilter(_WithoutWordsOnCpuTorch(words))


class _WithoutWords(logging.Filter):
    def __init__(self, words: str):
        super().__init__()
        self.words = words

    def filter(self, record: logging.LogRecord) -> bool:
        return self.words not in record.getMessage()


class _WithoutWordsOnCpuTorch(_WithoutWords):
    def filter(self, record: logging.LogRecord) -> bool:
        # The record comes while torchao imports, so torch is imported already; asked here rather
        # than at start-up, as a server with only the hosted backend never imports torch.
        torch = sys.modules.get("torch")
        on_cpu_torch = torch is not None and torch.version.cuda is None
        return not on_cpu_torch or super().filter(record)
