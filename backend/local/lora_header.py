"""A LoRA's rank, read from its safetensors header alone (no tensor is loaded).

The header is the file's first 8 bytes (its length, little-endian) and then a JSON object
of tensor names, dtypes and shapes. A LoRA pair's rank is the inner size of the pair:
`lora_A`/`lora_down` is (rank, in), `lora_B`/`lora_up` is (out, rank). LoKr files and
others without such pairs have rank 0 here (nothing to pad, nothing to refuse).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own limit on the header


def lora_rank(file: str | Path) -> int:
    """The largest rank of the LoRA pairs in a safetensors file (0: none found). A file
    whose header cannot be read gives 0: loading it then says what is wrong with it."""
    try:
        with open(file, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > MAX_HEADER_BYTES:
                return 0
            header = json.loads(handle.read(length))
    except (OSError, struct.error, ValueError):
        return 0
    ranks = [_rank(name, entry.get("shape")) for name, entry in header.items() if isinstance(entry, dict)]
    return max(ranks, default=0)


def _rank(name: str, shape: object) -> int:
    if not isinstance(shape, list) or len(shape) < 2 or not all(isinstance(n, int) for n in shape):
        return 0
    lowered = name.lower()
    if "lora_a" in lowered or "lora_down" in lowered:
        return shape[0]
    if "lora_b" in lowered or "lora_up" in lowered:
        return shape[1]
    return 0
