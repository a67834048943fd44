"""What a LoRA is, from its safetensors header alone: no tensor is read.

A safetensors file starts with 8 bytes (the header's length, little-endian) and then a JSON
object: each tensor's name, dtype, shape and byte offsets, plus `__metadata__` (strings the
trainer wrote, such as trigger words). From that alone this module says:

- the layout (`format`): diffusers, PEFT, kohya (`lora_unet_*`, `lora_down`/`lora_up`),
  ai-toolkit/BFL (`diffusion_model.double_blocks.*`), fal-trained (`sformer_blocks`), LoKr;
- its rank (the inner size of its `lora_A`/`lora_B` pairs) and its size in bytes;
- its trigger words;
- the model it was made for (`made_for`), from tensor names and shapes. FLUX.2 [dev] has 8
  double and 48 single blocks, 6144 wide; FLUX.2 [klein] 4B and 9B are 3072 and 4096 wide;
  FLUX.1 has 19 double and 38 single blocks, 3072 wide, with modulation layers per block
  (FLUX.2 shares them); SDXL and SD 1.x/2.x LoRAs name U-Net blocks and text encoders;
  Qwen-Image names `img_mlp`/`txt_mlp` in `transformer_blocks`.
`fits(model)` says why a LoRA cannot be applied to a model (None when it can).
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HEADER_LIMIT = 100 * 2**20  # safetensors' own limit on the header
TRIGGER_KEYS = ("trigger_word", "trigger_words", "instance_prompt", "activation_text")


class NotSafetensors(ValueError):
    """Bytes that do not start with a safetensors header."""


@dataclass(frozen=True)
class ModelShape:
    """The part of a FLUX.2 transformer a LoRA must match: block counts and width (None: any
    FLUX.2 model, for a model not loaded yet)."""

    name: str
    double_blocks: int = 0
    single_blocks: int = 0
    width: int | None = None


FLUX2_DEV = ModelShape("FLUX.2 [dev]", 8, 48, 6144)
ANY_FLUX2 = ModelShape("FLUX.2")
_FLUX2_BY_WIDTH = {6144: "FLUX.2 [dev]", 4096: "FLUX.2 [klein] 9B", 3072: "FLUX.2 [klein] 4B"}
# FLUX.1 at 3072: single blocks' linear1 is 3*3072 + 4*3072 wide, the MLP 4*3072 (no gate);
# FLUX.2 [klein] 4B's are 3*3072 + 2*9216 and 2*9216 (gated, ratio 3).
_FLUX1_LINEAR1, _FLUX1_MLP_IN = 21504, 12288
_KLEIN4B_LINEAR1, _KLEIN4B_MLP_IN = 27648, 18432

_DOUBLE = re.compile(r"(?:^|[._])(?:double_blocks|transformer_blocks|sformer_blocks)[._](\d+)[._]")
_SINGLE = re.compile(r"(?:^|[._])(?:single_blocks|single_transformer_blocks)[._](\d+)[._]")
# Layers whose input is the model's width: their lora_A (lora_down) is (rank, width).
_ATTN_IN = re.compile(r"(img_attn[._]qkv|txt_attn[._]qkv|img_attn[._]proj|attn[._]to_[qkv]|attn[._]to_out[._]0|"
                      r"linear1|to_qkv_mlp_proj|img_mlp[._]0|ff[._]linear_in)[._](lora_A|lora_down)[._]")
_LINEAR1_OUT = re.compile(r"(linear1|to_qkv_mlp_proj)[._](lora_B|lora_up)[._]")
_MLP_IN_OUT = re.compile(r"(img_mlp[._]0|ff[._]linear_in)[._](lora_B|lora_up)[._]")
_CROSS_ATTN_IN = re.compile(r"attn2[._]to_k[._](lora_A|lora_down)[._]")  # SDXL's text width is 2048
_SD_MARKERS = ("lora_te", "text_encoder", "down_blocks", "up_blocks", "mid_block", "input_blocks", "output_blocks")
_QWEN_MARKERS = ("img_mlp.net", "img_mlp_net", "txt_mlp.net", "txt_mlp_net", "img_mod.1", "img_mod_1")
_FLUX2_MARKERS = ("to_qkv_mlp_proj", "linear_in", "linear_out", "stream_modulation", "sformer_blocks")
_FLUX1_MARKERS = ("proj_mlp", "ff.net", "ff_net", "ff_context.net", "norm1.linear", "norm1_linear",
                  "norm1_context", "img_mod", "txt_mod")
_FLUX1_SINGLE_MOD = re.compile(r"single_(?:transformer_)?blocks[._]\d+[._](?:modulation|norm)[._]")


@dataclass(frozen=True)
class LoraHeader:
    """A LoRA as its header describes it."""

    format: str  # "diffusers", "PEFT", "kohya", "ai-toolkit", "fal-trained", "LoKr" or "unknown layout"
    family: str  # "FLUX.2", "FLUX.1", "FLUX.1 or FLUX.2 [klein] 4B", "SDXL", ..., "unknown"
    rank: int  # 0: no lora_A/lora_B pairs (LoKr)
    size_bytes: int
    trigger_words: tuple[str, ...]
    width: int | None  # the model width its attention layers take; None: not seen
    double_blocks: int  # the highest double (joint) block it targets, plus one
    single_blocks: int
    layers: int  # tensors that belong to an adapter

    @property
    def made_for(self) -> str:
        if self.family == "FLUX.2" and self.width is not None:
            return _FLUX2_BY_WIDTH.get(self.width, f"a FLUX.2 model {self.width} wide")
        return self.family

    def fits(self, model: ModelShape) -> str | None:
        """Why this LoRA cannot be applied to `model`; None when it can."""
        if self.layers == 0:
            return "is a safetensors file but holds no LoRA weights"
        if self.family != "FLUX.2":
            if self.family == "unknown":
                return f"its layers are not those of {model.name} (not a FLUX.2 LoRA)"
            return f"was made for {self.made_for}, not {model.name}"
        if model.width is None:
            return None
        if self.width is not None and self.width != model.width:
            return f"was made for {self.made_for} ({self.width} wide), not {model.name} ({model.width} wide)"
        if self.double_blocks > model.double_blocks or self.single_blocks > model.single_blocks:
            return (f"targets {self.double_blocks} double and {self.single_blocks} single blocks; "
                    f"{model.name} has {model.double_blocks} and {model.single_blocks}")
        return None

    def summary(self) -> str:
        """One line a person reads before anything is spent: format, rank, size, triggers."""
        parts = [f"{self.format} LoRA" if self.format != "LoKr" else "LoKr",
                 f"rank {self.rank}" if self.rank else "", _megabytes(self.size_bytes),
                 f"for {self.made_for}"]
        text = ", ".join(part for part in parts if part)
        if self.trigger_words:
            text += "; trigger words: " + ", ".join(self.trigger_words[:5])
        return text


def header_length(first_bytes: bytes) -> int:
    """The JSON header's length, from a file's first 8 bytes."""
    if len(first_bytes) < 8:
        raise NotSafetensors("too short to be a safetensors file")
    (length,) = struct.unpack("<Q", first_bytes[:8])
    if length < 2 or length > HEADER_LIMIT:
        raise NotSafetensors("not a safetensors file (no header at its start)")
    return length


def parse_header(header_json: bytes, size_bytes: int | None = None) -> LoraHeader:
    """A LoRA from its JSON header (the bytes after the first 8). `size_bytes`: the file's
    size where known; otherwise worked out from the tensors' offsets."""
    try:
        header = json.loads(header_json)
    except (ValueError, UnicodeDecodeError):
        raise NotSafetensors("not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise NotSafetensors("not a safetensors file (its header is not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    tensors = {name: entry for name, entry in header.items() if isinstance(entry, dict)}
    if size_bytes is None:  # a header is the stranger's: offsets that are not [start, end] count as 0
        ends = [entry.get("data_offsets") for entry in tensors.values()]
        size_bytes = 8 + len(header_json) + max(
            (e[-1] for e in ends if isinstance(e, list) and e and isinstance(e[-1], int)), default=0)
    return classify(tensors, metadata if isinstance(metadata, dict) else {}, size_bytes)


def read_file_header(file: str | Path) -> LoraHeader:
    """The header of a local safetensors file."""
    path = Path(file)
    with path.open("rb") as handle:
        length = header_length(handle.read(8))
        return parse_header(handle.read(length), path.stat().st_size)


def classify(tensors: dict[str, Any], metadata: dict[str, Any], size_bytes: int) -> LoraHeader:
    """A LoRA from its tensors' names and shapes (`{name: {"shape": [...]}}`) and metadata."""
    names = list(tensors)
    shapes = {name: _shape(entry) for name, entry in tensors.items()}
    doubles = [int(m.group(1)) + 1 for n in names if (m := _DOUBLE.search(n)) and not _SINGLE.search(n)]
    singles = [int(m.group(1)) + 1 for n in names if (m := _SINGLE.search(n))]
    layers = sum(1 for n in names if _is_adapter(n))
    width = _first_dim(shapes, _ATTN_IN, 1)
    return LoraHeader(
        format=_format(names), family=_family(names, shapes, width, max(doubles, default=0), max(singles, default=0)),
        rank=max((_rank(n, s) for n, s in shapes.items()), default=0), size_bytes=size_bytes,
        trigger_words=trigger_words(metadata), width=width, double_blocks=max(doubles, default=0),
        single_blocks=max(singles, default=0), layers=layers,
    )


def trigger_words(metadata: dict[str, Any]) -> tuple[str, ...]:
    """Trigger words from a LoRA's metadata (trainers store them differently)."""
    words: list[str] = []
    for key in TRIGGER_KEYS:
        value = metadata.get(key)
        if value and isinstance(value, str):
            words += [w.strip() for w in re.split(r"[,\n]", value) if w.strip()]
    if not words and metadata.get("ss_tag_frequency"):  # kohya: the most frequent tags
        try:
            counts: dict[str, int] = {}
            for tags in json.loads(metadata["ss_tag_frequency"]).values():
                for tag, n in tags.items():
                    counts[tag.strip()] = counts.get(tag.strip(), 0) + int(n)
            words = sorted(counts, key=lambda tag: counts[tag], reverse=True)[:3]
        except (ValueError, AttributeError, TypeError):
            pass
    return tuple(dict.fromkeys(words))


def _format(names: list[str]) -> str:
    def any_name(test: Any) -> bool:
        return any(test(n) for n in names)

    if any_name(lambda n: ".lokr_" in n):
        return "LoKr"
    if any_name(lambda n: n.startswith(("lora_unet_", "lora_te"))):
        return "kohya"
    if any_name(lambda n: "sformer_blocks" in n and "transformer_blocks" not in n):
        return "fal-trained"
    if any_name(lambda n: n.startswith("diffusion_model.")):
        return "ai-toolkit"
    if any_name(lambda n: n.startswith("base_model.model.")):
        return "PEFT"
    if any_name(lambda n: n.startswith(("transformer.", "unet.", "text_encoder")) or ".lora_A." in n):
        return "diffusers"
    return "unknown layout"


def _family(names: list[str], shapes: dict[str, list[int]], width: int | None, doubles: int, singles: int) -> str:
    text = "\n".join(names)
    if any(marker in text for marker in _SD_MARKERS):
        sdxl = "lora_te2_" in text or "text_encoder_2" in text or _first_dim(shapes, _CROSS_ATTN_IN, 1) == 2048
        return "SDXL" if sdxl else "Stable Diffusion 1.x/2.x"
    if "transformer_blocks" in text and any(marker in text for marker in _QWEN_MARKERS):
        return "Qwen-Image"
    if not (doubles or singles or any(m in text for m in _FLUX2_MARKERS)):
        return "unknown"
    if any(marker in text for marker in _FLUX1_MARKERS) or _FLUX1_SINGLE_MOD.search(text):
        return "FLUX.1"
    if any(marker in text for marker in _FLUX2_MARKERS) or width != 3072:
        return "FLUX.2"
    # 3072 wide with the names both share: the block counts and MLP widths tell them apart.
    linear1, mlp_in = _first_dim(shapes, _LINEAR1_OUT, 0), _first_dim(shapes, _MLP_IN_OUT, 0)
    if doubles > 5 or singles > 20 or linear1 == _FLUX1_LINEAR1 or mlp_in == _FLUX1_MLP_IN:
        return "FLUX.1"
    if linear1 == _KLEIN4B_LINEAR1 or mlp_in == _KLEIN4B_MLP_IN:
        return "FLUX.2"
    return "FLUX.1 or FLUX.2 [klein] 4B"


def _first_dim(shapes: dict[str, list[int]], pattern: re.Pattern[str], axis: int) -> int | None:
    for name, shape in shapes.items():
        if pattern.search(name) and len(shape) == 2:
            return shape[axis]
    return None


def _is_adapter(name: str) -> bool:
    return any(part in name for part in ("lora_A", "lora_B", "lora_down", "lora_up", ".lokr_", ".hada_"))


def _shape(entry: dict[str, Any]) -> list[int]:
    shape = entry.get("shape")
    if isinstance(shape, list) and all(isinstance(n, int) for n in shape):
        return shape
    return []


def _rank(name: str, shape: list[int]) -> int:
    if len(shape) < 2:
        return 0
    lowered = name.lower()
    if "lora_a" in lowered or "lora_down" in lowered:
        return shape[0]
    if "lora_b" in lowered or "lora_up" in lowered:
        return shape[1]
    return 0


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.0f} MB" if size >= 2**20 else f"{max(size, 1) / 1024:.0f} KB"
