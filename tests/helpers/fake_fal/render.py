"""Making the fake's results: output sizes, deterministic images (see the package docstring),
previews, data URIs, and the events and log lines a job streams."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
import urllib.parse
from datetime import datetime, timezone
from typing import Any

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from tests.helpers.fake_fal.records import Job
from tests.helpers.fake_fal.schema import FORMATS, PRESETS


def output_size(image_size: Any, first_input: Image.Image) -> tuple[int, int]:
    """The preset / custom size, else the first input's size scaled into 512..2048 keeping aspect."""
    if isinstance(image_size, str):
        return PRESETS[image_size]
    if isinstance(image_size, dict):
        return int(image_size.get("width", 512)), int(image_size.get("height", 512))
    w, h = first_input.size
    scale = max(1.0, 512 / min(w, h))
    scale = min(scale, 2048 / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def render_image(inputs: list[Image.Image], size: tuple[int, int], digest: bytes, index: int) -> Image.Image:
    """A deterministic stand-in for a generated image (see the package docstring)."""
    img = ImageOps.fit(inputs[0].convert("RGB"), size)
    img = Image.blend(img, Image.new("RGB", size, tuple(digest[:3])), 0.4)
    w, h = size
    thumb = max(16, min(w, h) // 6)
    for k, extra in enumerate(inputs[1:]):  # show the other references, so they visibly matter
        img.paste(ImageOps.fit(extra.convert("RGB"), (thumb, thumb)), (8 + k * (thumb + 8), 8))
    band = max(8, h // 16)
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, h - band, w, h], fill=(16, 16, 16))
    for k in range(index + 1):  # index+1 white squares: which image of the batch this is
        x = 4 + k * (band + 4)
        draw.rectangle([x, h - band + 2, x + band - 4, h - 2], fill=(255, 255, 255))
    # The digest's next 24 bytes as the band's last 8 pixels: the blended colour alone takes
    # few enough values that among 200 jobs on flat references two matched about one run in 400.
    for k in range(min(8, w)):
        img.putpixel((w - 1 - k, h - 1), tuple(digest[3 + 3 * k:6 + 3 * k]))
    return img


def encode_image(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    pil_format = FORMATS[fmt][0]
    # compress_level=1 keeps PNG encoding fast; still lossless and deterministic
    img.save(buf, pil_format, **({"compress_level": 1} if pil_format == "PNG" else {}))
    return buf.getvalue()


def data_uri(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64," + base64.b64encode(data).decode("ascii")


def decode_data_uri(uri: str) -> bytes:
    header, _, payload = uri.partition(",")
    if header.endswith(";base64"):
        return base64.b64decode(payload, validate=False)
    return urllib.parse.unquote_to_bytes(payload)


def preview_of(img: Image.Image, step: int, total: int) -> Image.Image:
    """A smaller, blurred, darker version of ``img`` that sharpens as ``step`` approaches ``total``."""
    small = img.copy()
    small.thumbnail((256, 256))
    frac = step / max(1, total)
    small = small.filter(ImageFilter.GaussianBlur(radius=1 + 8 * (1 - frac)))
    return ImageEnhance.Brightness(small).enhance(0.4 + 0.5 * frac)


def now_iso(t: float | None = None) -> str:
    return datetime.fromtimestamp(t if t is not None else time.time(), timezone.utc).isoformat()



def log_entry(message: str, t: float) -> dict:
    return {"message": message, "level": "INFO", "source": "user", "timestamp": now_iso(t)}


def render_outputs(args: dict, inputs: list[Image.Image], seed: int, max_side: int | None) -> list[Image.Image]:
    """The pixels of each requested image: same arguments, references and seed, same pixels."""
    size = output_size(args["image_size"], inputs[0])
    if max_side and max(size) > max_side:
        scale = max_side / max(size)
        size = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
    h = hashlib.sha256(json.dumps([args["prompt"], seed, args["loras"]], sort_keys=True).encode())
    for img in inputs:
        h.update(f"{img.mode}{img.size}".encode())
        h.update(img.tobytes())
    return [render_image(inputs, size, hashlib.sha256(h.digest() + bytes([i])).digest(), i)
            for i in range(int(args["num_images"]))]


def progress_event(job: Job, output: dict, step: int, with_previews: bool) -> dict:
    """The streamed event of one step: its progress and log line, with previews when asked."""
    event: dict[str, Any] = {}
    if with_previews:
        images = []
        for img in job.prepared["rendered"]:
            preview = preview_of(img, step, job.steps)
            data = encode_image(preview, "jpeg")
            images.append({"url": data_uri(data, "image/jpeg"), "width": preview.width, "height": preview.height,
                           "content_type": "image/jpeg", "file_name": f"preview_{step}.jpg",
                           "file_size": len(data)})
        event.update(images=images, seed=output["seed"], prompt=output["prompt"],
                     has_nsfw_concepts=output["has_nsfw_concepts"])
    event["progress"] = {"step": step, "total": job.steps}
    event["logs"] = [log_entry(f"Step {step}/{job.steps}", time.time())]
    return event
