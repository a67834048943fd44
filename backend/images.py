"""Reference image preparation: validate, orient, convert, downscale, encode.

FLUX.2 works at about one megapixel per reference: anything larger is wasted
upload time, so a 24 MP photo is shrunk before it leaves the machine. Importing
this module sets Pillow's decompression-bomb limit, so import it before any image
is opened (app.py does so first thing, then `set_max_pixels` from STUDIO_MAX_IMAGE_MP).

What a visitor's image may be: one of ALLOWED_FORMATS (Pillow's other decoders are
never tried: every open passes `formats=`), at most `max_pixels()` (checked from the
header, before decoding), and at most MAX_DECODES are decoded at once (`decoding()`),
so a burst of large images costs a bounded amount of memory.
"""

from __future__ import annotations

import base64
import binascii
import io
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps

from .errors import InvalidInput

# Largest image we agree to decode at all (a 24 MP photo passes, a 7000x7000 one does not):
# STUDIO_MAX_IMAGE_MP sets it at start-up (set_max_pixels), also as Pillow's own limit.
DEFAULT_MAX_PIXELS = 25_000_000
_limits = {"pixels": DEFAULT_MAX_PIXELS}
# Pillow only warns between 1x and 2x the limit; make that an error too.
warnings.simplefilter("error", Image.DecompressionBombWarning)
# The formats a visitor's reference may be in; Pillow's other decoders are never tried.
# AVIF: what Chrome saves from many web pages today (Pillow reads it since 11.2).
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "AVIF", "GIF", "BMP", "TIFF")
ALLOWED_NAMES = "PNG, JPEG, WebP, AVIF, GIF (still), BMP or TIFF"
# HEIF brands of HEVC-coded images (an iPhone's photos are "heic"): Pillow has no decoder for
# them, and its AVIF check takes a HEIF file whose first brand is the generic "mif1" for AVIF.
HEVC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
# Decodes of visitors' images at once (each may take a few hundred MB for a moment).
MAX_DECODES = 2
_decodes = threading.BoundedSemaphore(MAX_DECODES)

MIN_SIDE = 64
MAX_ASPECT = 8.0
# The model's working size per reference: larger images are downscaled to this area.
TARGET_PIXELS = 1024 * 1024
MAX_INPUT_BYTES = 64 * 1024 * 1024
JPEG_QUALITY = 95
# Formats whose pixels are exact: keep them lossless (PNG) so graphics stay crisp;
# lossy sources (JPEG photos) are re-encoded as high-quality JPEG, 5-10x smaller.
LOSSLESS_SOURCES = {"PNG", "GIF", "BMP", "TIFF"}
# Files in these formats are sent unchanged when nothing needs doing to them.
PASS_THROUGH = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def set_max_pixels(limit: int) -> None:
    """The largest image decoded at all, here and in Pillow (its decompression-bomb limit)."""
    _limits["pixels"] = int(limit)
    Image.MAX_IMAGE_PIXELS = int(limit)


def max_pixels() -> int:
    return _limits["pixels"]


set_max_pixels(DEFAULT_MAX_PIXELS)  # at import: before any image is opened


@contextmanager
def decoding() -> Iterator[None]:
    """Hold one of the MAX_DECODES decode slots: around decoding an image and the work
    on its pixels (others wait here, so only a few decoded images exist at once)."""
    with _decodes:
        yield


def _too_large(label: str, field_name: str) -> InvalidInput:
    return InvalidInput.one(field_name, label, f"has more than {max_pixels() / 1e6:g} million pixels; "
                            f"at most {max_pixels() / 1e6:g} MP is accepted: shrink it first")


def sniff_format(data: bytes) -> str | None:
    """The format a file's first bytes announce (Pillow's signature checks only, no decoder
    is run), to name a refused format; None when none matches."""
    if data[4:8] == b"ftyp":  # an ISO media file: its brands say what it holds
        size = int.from_bytes(data[:4], "big")
        brands = {data[8:12]} | {data[i:i + 4] for i in range(16, min(size, len(data), 64), 4)}
        if brands & HEVC_BRANDS and b"avif" not in brands:
            return "HEIC"
    Image.init()
    prefix = data[:16]
    for name in Image.ID:
        accept = Image.OPEN[name][1]
        if accept is not None and accept(prefix):
            return name
    return None


def open_image(
    data: bytes, label: str, formats: tuple[str, ...] = ALLOWED_FORMATS, field_name: str = "image_urls",
) -> Image.Image:
    """Open (the header only: nothing is decoded yet) a visitor's image in one of `formats`,
    at most max_pixels(); else InvalidInput naming the image and the format or limit."""
    try:
        image = Image.open(io.BytesIO(data), formats=formats)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large(label, field_name) from None
    except Exception:
        found = sniff_format(data)
        accepted = ALLOWED_NAMES if formats == ALLOWED_FORMATS else " or ".join(formats)
        if found == "HEIC":
            problem = f"is in HEIC format (an iPhone's photo format), which cannot be read here: save it as JPEG " \
                      f"(accepted: {accepted})"
        elif found and found not in formats:
            problem = f"is in {found} format; accepted formats: {accepted}"
        else:
            problem = f"is not an image file this app can read (accepted: {accepted})"
        raise InvalidInput.one(field_name, label, problem) from None
    width, height = image.size
    if width * height > max_pixels():
        image.close()
        raise _too_large(label, field_name)
    return image


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


def open_reference(data: bytes, label: str, full_size: bool = False) -> DecodedReference:
    """Decode, check and normalise one reference image to an RGB PIL image.

    Checks (check_reference): an allowed format, at most max_pixels(), at least MIN_SIDE
    px a side, aspect at most MAX_ASPECT:1, one frame. Applies the EXIF orientation and
    converts to RGB (alpha is composited onto white, 16-bit is scaled down, CMYK and
    palettes are converted). Callers hold a `decoding()` slot around it. `full_size`: every
    pixel, even of a large JPEG (a region edit pastes into the image itself).
    """
    image = check_reference(data, label)
    width, height = image.size
    source_format = image.format or ""
    drafted = False
    # JPEG can decode straight to a smaller size (DCT scaling): a 24 MP photo
    # decodes in a fraction of the time and memory when we only need ~1 MP.
    if not full_size and source_format == "JPEG" and width * height > 2 * TARGET_PIXELS:
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


def check_reference(data: bytes, label: str) -> Image.Image:
    """The reference opened and checked from its header (format, pixels, sides, aspect,
    frames), not decoded: cheap enough to run on every queued run."""
    image = open_image(data, label)
    _check_geometry(*image.size, label)
    frames = getattr(image, "n_frames", 1)
    if frames > 1:  # which frame would be meant is a guess: say so rather than pick one
        raise InvalidInput.one(
            "image_urls", label, f"is animated ({frames} frames); only still images can be edited: save one frame"
        )
    return image


def check_upload(source: str | Path | bytes, label: str) -> None:
    """The checks a run makes before it decodes a reference (size of the file, format, pixels,
    sides, aspect, frames), made when the image is uploaded: a refused image is refused at once,
    with the same message the run would give. An image larger than the model's ~1 MP passes:
    the run shrinks it (`downscale`)."""
    check_reference(read_source(source, label), label).close()


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
    with decoding():  # the decoded pixels live only inside the slot
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
