"""Region edits: only the painted area of image 1 changes, on either backend.

FLUX.2 [dev] has no inpainting pipeline, so a region edit is crop-and-stitch around any
backend's run:
1. the painted area's bounding box, widened by a margin, is cut from image 1;
2. that crop is sent as image 1 (the other references go along unchanged) at the model's
   working size (about a megapixel, the crop's shape);
3. each result (previews too) is scaled back to the crop's size and pasted into image 1
   through the mask, feathered: fully changed inside the painted area, fading to unchanged
   over `feather` pixels outside it.
Beyond the painted area widened by `feather`, a result is image 1 pixel for pixel (after
EXIF orientation, in RGB), and it has image 1's size.
"""

from __future__ import annotations

import io
import math
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from typing import Any

from PIL import Image, ImageChops, ImageFilter

from .errors import InvalidInput
from .events import Event, Preview, Result, ResultImage
from .images import decoding, open_reference, read_source
from .request import EditRequest, ImageSize

WORKING_PIXELS = 1024 * 1024  # the model's working size
MIN_SIDE, MAX_SIDE = 512, 2048  # a custom size's limits (fal's schema)
MAX_FEATHER = 256
DEFAULT_FEATHER = 24


@dataclass(frozen=True)
class Region:
    """The painted area (`mask`: mode L, 255 = change; image 1's size, or scaled to it) and the feather."""

    mask: Image.Image = field(repr=False)
    feather: int = DEFAULT_FEATHER

    def mask_like(self, image_data: bytes) -> Image.Image:
        """The mask at the size of the image in `image_data` (a region edit's result: image 1
        with the edit pasted in); as it is when that cannot be read."""
        try:
            with Image.open(io.BytesIO(image_data)) as image:
                size = image.size
        except Exception:
            return self.mask
        return self.mask if self.mask.size == size else self.mask.resize(size, Image.Resampling.NEAREST)

    @property
    def margin(self) -> int:
        """Context around the painted area that the model sees (and the feather needs)."""
        return max(48, 2 * self.feather)


def mask_image(value: Any, invert: bool = False) -> Image.Image | None:
    """A mask from what the page or the API gives: an image or its path (white = change; a
    painted layer's alpha counts as white), at its own size (RegionRun.plan scales it to
    image 1); None when nothing is painted."""
    if value is None:
        return None
    image = value if isinstance(value, Image.Image) else Image.open(value)
    if image.mode in ("RGBA", "LA") or "transparency" in image.info:
        gray = image.convert("RGBA").getchannel("A")
    else:
        gray = image.convert("L")
    mask = gray.point(lambda v: 255 if v >= 128 else 0)
    if invert:
        mask = ImageChops.invert(mask)
    return mask if mask.getbbox() else None


def crop_box(region: Region, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The painted area's bounding box widened by the margin, inside image 1."""
    box = region.mask.getbbox()
    if box is None:
        raise InvalidInput.one("mask", "Mask", "nothing is painted: paint the area to change")
    left, top, right, bottom = box
    m = region.margin
    return max(0, left - m), max(0, top - m), min(size[0], right + m), min(size[1], bottom + m)


def working_size(width: int, height: int) -> tuple[int, int]:
    """The crop's shape at about WORKING_PIXELS, each side a multiple of 16 within fal's limits."""
    scale = math.sqrt(WORKING_PIXELS / (width * height))

    def side(n: float) -> int:
        return int(min(MAX_SIDE, max(MIN_SIDE, round(n * scale / 16) * 16)))

    return side(width), side(height)


def blend_mask(region: Region, box: tuple[int, int, int, int]) -> Image.Image:
    """The mask inside `box`, feathered outward: 255 on the painted area, falling linearly to 0
    at `feather` pixels from it, 0 beyond (grown one pixel ring at a time, never blurred past)."""
    painted = region.mask.crop(box)
    alpha, ring = painted, painted
    for step in range(1, region.feather + 1):
        ring = ring.filter(ImageFilter.MaxFilter(3))
        level = round(255 * (region.feather + 1 - step) / (region.feather + 1))
        alpha = ImageChops.lighter(alpha, ring.point(lambda v, level=level: level if v else 0))
    return alpha


def paste_back(original: Image.Image, edited: Image.Image, box: tuple[int, int, int, int],
               alpha: Image.Image) -> Image.Image:
    """`edited` (the crop's result, any size) scaled to the crop and blended into `original`."""
    crop = original.crop(box)
    patch = edited.convert("RGB").resize(crop.size, Image.Resampling.LANCZOS)
    out = original.copy()
    out.paste(Image.composite(patch, crop, alpha), box[:2])
    return out


@dataclass(frozen=True)
class RegionRun:
    """One region edit: the request the backend runs (image 1 cropped, the working size) and
    how its images come back into image 1."""

    request: EditRequest
    original: Image.Image = field(repr=False)
    box: tuple[int, int, int, int]
    alpha: Image.Image = field(repr=False)

    @classmethod
    def plan(cls, request: EditRequest, region: Region, crop_path: str) -> "RegionRun":
        """Crop image 1 (written to `crop_path` as PNG) and make the request for the crop."""
        if region.feather < 0 or region.feather > MAX_FEATHER:
            raise InvalidInput.one("mask_feather", "Feather", f"must be 0 to {MAX_FEATHER} pixels")
        with decoding():
            original = open_reference(read_source(request.image_urls[0], "image 1"), "image 1", full_size=True).image
        if region.mask.size != original.size:
            region = replace(region, mask=region.mask.resize(original.size, Image.Resampling.NEAREST))
        box = crop_box(region, original.size)
        original.crop(box).save(crop_path, format="PNG")
        width, height = working_size(box[2] - box[0], box[3] - box[1])
        cropped = request.model_copy(update={
            "image_urls": (crop_path, *request.image_urls[1:]), "image_size": ImageSize(width=width, height=height),
        })
        return cls(cropped, original, box, blend_mask(region, box))

    def events(self, run: Generator[Event, None, None]) -> Generator[Event, None, None]:
        """The backend's events with every image put back into image 1; closing this closes `run`."""
        try:
            for event in run:
                if isinstance(event, Preview):
                    yield replace(event, images=tuple(self._paste(image) for image in event.images))
                elif isinstance(event, Result):
                    yield replace(event, images=tuple(self._result_image(image) for image in event.images))
                else:
                    yield event
        finally:
            run.close()

    def _paste(self, image: Any) -> Any:
        if isinstance(image, Image.Image):
            return paste_back(self.original, image, self.box, self.alpha)
        return image

    def _result_image(self, image: ResultImage) -> ResultImage:
        with Image.open(io.BytesIO(image.data)) as opened:
            out = paste_back(self.original, opened, self.box, self.alpha)
        kind = image.content_type.removeprefix("image/").upper()
        buffer = io.BytesIO()
        out.save(buffer, format={"JPG": "JPEG"}.get(kind, kind if kind in ("PNG", "JPEG", "WEBP") else "PNG"))
        return replace(image, data=buffer.getvalue(), width=out.width, height=out.height)
