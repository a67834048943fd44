"""Reference image preparation: validate, orient, convert, downscale, encode.

FLUX.2 works at about one megapixel per reference: anything larger is wasted
upload time, so a 24 MP photo is shrunk before it leaves the machine. Importing
this module sets Pillow's decompression-bomb limit, so import it before any image
is opened (app.py does so first thing).
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps

from .errors import InvalidInput

# Largest image we agree to decode at all (a 50 MP photo passes, a 20000x20000 bomb does not).
MAX_INPUT_PIXELS = 50_000_000
Image.MAX_IMAGE_PIXELS = MAX_INPUT_PIXELS
# Pillow only warns between 1x and 2x the limit; make that an error too.
warnings.simplefilter("error", Image.DecompressionBombWarning)

MIN_SIDE = 64
MAX_ASPECT = 8.0
# The model's working size per reference: larger images are downscaled to this area.
TARGET_PIXELS = 1024 * 1024
MAX_INPUT_BYTES = 64 * 1024 * 1024
JPEG_QUALITY = 95
# Formats whose pixels are exact: keep them lossless (PNG) so graphics stay crisp;
# lossy sources (JPEG photos) are re-encoded as high-quality JPEG, 5-10x smaller.
LOSSLESS_SOURCES = {"PNG", "GIF", "BMP", "TIFF", "PPM", "TGA", "ICO"}
# Files in these formats are sent unchanged when nothing needs doing to them.
PASS_THROUGH = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


@dataclass(frozen=True)
class PreparedImage:
    """An encoded reference ready to send, and what was done to it."""

    data: bytes = field(repr=False)
    content_type: str
    width: int
    height: int
    original_size: tuple[int, int]

    @property
    def downscaled(self) -> bool:
        return (self.width, self.height) != self.original_size

    def data_uri(self) -> str:
        return f"data:{self.content_type};base64,{base64.b64encode(self.data).decode()}"


def read_source(source: str | Path | bytes, label: str) -> bytes:
    """The raw bytes of a reference given as a path, a data URI or bytes."""
    if isinstance(source, bytes):
        data = source
    elif isinstance(source, str) and source.startswith("data:"):
        header, _, payload = source.partition(",")
        if ";base64" not in header:
            raise InvalidInput.one("image_urls", label, "is a data URI without base64 data")
        if len(payload) > MAX_INPUT_BYTES * 4 // 3 + 4:
            raise InvalidInput.one("image_urls", label, f"is larger than {MAX_INPUT_BYTES // 2**20} MB")
        try:
            data = base64.b64decode(payload, validate=False)
        except (binascii.Error, ValueError):
            raise InvalidInput.one("image_urls", label, "is not valid base64 data") from None
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError:
            raise InvalidInput.one("image_urls", label, "could not be read (file not found)") from None
        if size > MAX_INPUT_BYTES:
            raise InvalidInput.one("image_urls", label, f"is larger than {MAX_INPUT_BYTES // 2**20} MB")
        data = path.read_bytes()
    if not data:
        raise InvalidInput.one("image_urls", label, "is an empty file")
    return data


@dataclass(frozen=True)
class DecodedReference:
    """A reference decoded and normalised, and what the file was."""

    image: Image.Image = field(repr=False)  # RGB, oriented
    original_size: tuple[int, int]  # as a person sees the file (after EXIF rotation)
    source_format: str
    unchanged: bool  # the file's pixels are exactly `image` (no rotation, conversion or draft)


def open_reference(data: bytes, label: str) -> DecodedReference:
    """Decode, check and normalise one reference image to an RGB PIL image.

    Checks: decodable, at most MAX_INPUT_PIXELS, at least MIN_SIDE px a side, aspect
    at most MAX_ASPECT:1. Applies the EXIF orientation and converts to RGB (alpha is
    composited onto white, 16-bit is scaled down, CMYK and palettes are converted).
    """
    try:
        image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidInput.one(
            "image_urls", label, f"has more than {MAX_INPUT_PIXELS // 1_000_000} million pixels"
        ) from None
    except Exception:
        raise InvalidInput.one("image_urls", label, "is not an image Pillow can read") from None
    width, height = image.size
    _check_geometry(width, height, label)
    frames = getattr(image, "n_frames", 1)
    if frames > 1:  # which frame would be meant is a guess: say so rather than pick one
        raise InvalidInput.one(
            "image_urls", label, f"is animated ({frames} frames); only still images can be edited: save one frame"
        )
    source_format = image.format or ""
    drafted = False
    # JPEG can decode straight to a smaller size (DCT scaling): a 24 MP photo
    # decodes in a fraction of the time and memory when we only need ~1 MP.
    if source_format == "JPEG" and width * height > 2 * TARGET_PIXELS:
        scale = (TARGET_PIXELS / (width * height)) ** 0.5
        image.draft("RGB", (max(1, int(width * scale)), max(1, int(height * scale))))
        drafted = True
    try:
        image.load()
        orientation = image.getexif().get(0x0112, 1)
        oriented = ImageOps.exif_transpose(image)
    except Exception:
        raise InvalidInput.one("image_urls", label, "is damaged or truncated") from None
    rotated = orientation in (5, 6, 7, 8)
    converted = _to_rgb(oriented)
    return DecodedReference(
        image=converted,
        original_size=(height, width) if rotated else (width, height),
        source_format=source_format,
        unchanged=not drafted and orientation in (None, 1) and image.mode == "RGB" and converted is oriented,
    )


def _check_geometry(width: int, height: int, label: str) -> None:
    if min(width, height) < MIN_SIDE:
        raise InvalidInput.one(
            "image_urls", label, f"is {width}x{height} px; each side must be at least {MIN_SIDE} px"
        )
    aspect = max(width, height) / min(width, height)
    if aspect > MAX_ASPECT:
        raise InvalidInput.one(
            "image_urls", label, f"has an aspect ratio of {aspect:.1f}:1; at most {MAX_ASPECT:g}:1 is allowed"
        )


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit greyscale: scale to 8 bits rather than clipping everything to white.
        image = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "PA", "La"):
        image = image.convert("RGBA")
    if image.mode == "RGBA" or image.mode == "RGBa":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image


def downscale(image: Image.Image, target_pixels: int = TARGET_PIXELS) -> Image.Image:
    """Shrink to about `target_pixels`, keeping the aspect ratio; never enlarge."""
    width, height = image.size
    if width * height <= target_pixels:
        return image
    scale = (target_pixels / (width * height)) ** 0.5
    size = (max(MIN_SIDE, round(width * scale)), max(MIN_SIDE, round(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def prepare_reference(source: str | Path | bytes, label: str) -> PreparedImage:
    """Everything above in order: the reference as the bytes we send to fal.

    A PNG, JPEG or WebP that needs no change (RGB, upright, within the model's size)
    is sent as it is: no re-encoding, the smallest and fastest option.
    """
    data = read_source(source, label)
    decoded = open_reference(data, label)
    image = downscale(decoded.image)
    if decoded.unchanged and image is decoded.image and decoded.source_format in PASS_THROUGH:
        return PreparedImage(
            data=data, content_type=PASS_THROUGH[decoded.source_format],
            width=image.width, height=image.height, original_size=decoded.original_size,
        )
    buffer = io.BytesIO()
    if decoded.source_format in LOSSLESS_SOURCES:
        image.save(buffer, format="PNG", compress_level=6)
        content_type = "image/png"
    else:
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        content_type = "image/jpeg"
    return PreparedImage(
        data=buffer.getvalue(), content_type=content_type,
        width=image.width, height=image.height, original_size=decoded.original_size,
    )
