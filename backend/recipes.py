"""Recipes inside PNGs: every saved PNG carries how it was made, and can be read back.

Two text chunks are added (the pixels are not touched: chunks are inserted before
IEND): `flux2-studio-recipe`, the recipe as JSON, and `parameters`, the A1111-style
text that other tools (A1111, Forge, ComfyUI loaders, image viewers) show; a region
edit's PNG carries its mask too (`flux2-studio-mask`: the mask's PNG in base64). A recipe
holds settings only: never a key, never local file paths.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

RECIPE_KEY = "flux2-studio-recipe"
MASK_KEY = "flux2-studio-mask"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_RECIPE_BYTES = 1 << 20  # a recipe (or a mask: a PNG of two values) is a few KB; a larger chunk is not ours


def png_with_text(data: bytes, texts: dict[str, str]) -> bytes:
    """The same PNG with UTF-8 text chunks (iTXt) added before IEND."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG")
    end = data.rfind(b"IEND") - 4  # the IEND chunk starts with its 4-byte length
    if end < len(PNG_SIGNATURE):
        raise ValueError("PNG without IEND")
    chunks = b"".join(_itxt(key, value) for key, value in texts.items())
    return data[:end] + chunks + data[end:]


def _itxt(key: str, value: str) -> bytes:
    # keyword, null, compression flag 0, method 0, empty language tag, empty translated keyword
    body = key.encode("latin-1") + b"\x00\x00\x00\x00\x00" + value.encode("utf-8")
    return struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", zlib.crc32(b"iTXt" + body))


def a1111_parameters(recipe: dict[str, Any]) -> str:
    """The recipe as A1111's `parameters` text: prompt, then 'Key: value, ...'."""
    request = recipe["request"]
    size = request.get("image_size")
    if isinstance(size, dict):
        size_text = f"{size['width']}x{size['height']}"
    else:
        size_text = size or "match image 1"
    fields = [
        ("Steps", request["num_inference_steps"]),
        ("Sampler", "FLUX.2 flow matching"),
        ("Guidance", request["guidance_scale"]),
        ("Seed", recipe.get("seed")),
        ("Size", size_text),
        ("Model", recipe.get("endpoint")),
        ("Backend", recipe.get("backend")),
    ]
    loras = ", ".join(f"{lora['path']}:{lora['scale']:g}" for lora in request.get("loras", []))
    if loras:
        fields.append(("LoRAs", loras))
    return request["prompt"] + "\n" + ", ".join(f"{k}: {v}" for k, v in fields if v is not None)


def embed_recipe(data: bytes, recipe: dict[str, Any], mask_png: bytes | None = None) -> bytes:
    texts = {RECIPE_KEY: json.dumps(recipe), "parameters": a1111_parameters(recipe)}
    if mask_png is not None:
        texts[MASK_KEY] = base64.b64encode(mask_png).decode("ascii")
    return png_with_text(data, texts)


def read_mask(data: bytes) -> bytes | None:
    """The mask's PNG bytes a region edit's PNG carries, or None. Not decoded here: the caller
    opens it as a PNG only (it comes from a visitor, like the recipe)."""
    text = _text_chunk(data, MASK_KEY)
    if not text:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None


def read_recipe(data: bytes) -> dict[str, Any] | None:
    """The recipe a PNG made here carries, or None (another PNG, or not a PNG).

    The PNG comes from a visitor: its chunks are walked as bytes and no pixel is decoded
    (Pillow is not involved, so no decoder of any format can be reached from here). Only
    an uncompressed recipe chunk of at most MAX_RECIPE_BYTES is read, as embed_recipe writes it."""
    text = _text_chunk(data, RECIPE_KEY)
    if not text:
        return None
    try:
        recipe = json.loads(text)
    except ValueError:
        return None
    return recipe if isinstance(recipe, dict) and isinstance(recipe.get("request"), dict) else None


def _text_chunk(data: bytes, key: str) -> str | None:
    """The text of the PNG's uncompressed iTXt/tEXt chunk `key` (the recipe's, the mask's), if any."""
    if not data.startswith(PNG_SIGNATURE):
        return None
    position, wanted = len(PNG_SIGNATURE), key.encode("latin-1") + b"\x00"
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IEND" or len(body) < length:
            return None
        position += 12 + length
        if kind not in (b"iTXt", b"tEXt") or not body.startswith(wanted) or length > MAX_RECIPE_BYTES:
            continue
        rest = body[len(wanted):]
        if kind == b"tEXt":
            return rest.decode("latin-1")
        if rest[:1] != b"\x00":  # compressed: not written here
            continue
        parts = rest[2:].split(b"\x00", 2)  # language tag, translated keyword, text
        if len(parts) == 3:
            return parts[2].decode("utf-8", errors="replace")
    return None
