"""Region edits (backend/region.py) on both backends: outside the painted area widened by the
feather, the result is image 1 pixel for pixel, at image 1's size; inside it, the edit.

Image 1 is noise, so that any pixel a backend touched shows; the results are PNG (lossless).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from backend.errors import InvalidInput
from backend.events import Preview, Result
from backend.fal import FalBackend, FalSettings
from backend.local.backend import LocalBackend, LocalSettings
from backend.region import Region, RegionRun, blend_mask, mask_image, working_size
from backend.request import build_request
from tests.helpers.app import SERVER_KEY
from tests.helpers.tiny_flux2 import MAX_SEQUENCE_LENGTH, TEXT_ENCODER_OUT_LAYERS, build_tiny_pipeline
from ui.run import region_from_values

SIZE = (640, 480)
PAINTED = (200, 150, 330, 260)  # left, top, right, bottom (right and bottom excluded)
FEATHER = 12


@pytest.fixture(scope="module")
def image_1(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("region") / "noise.png"
    noise = np.random.default_rng(0).integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    return str(path)


def painted_mask() -> Image.Image:
    mask = Image.new("L", SIZE, 0)
    ImageDraw.Draw(mask).rectangle((PAINTED[0], PAINTED[1], PAINTED[2] - 1, PAINTED[3] - 1), fill=255)
    return mask


def untouched_everywhere_but_near_the_paint(result: bytes, image_1: str) -> None:
    """The property: outside the painted area widened by FEATHER, image 1 exactly; the painted
    area itself changed."""
    with Image.open(io.BytesIO(result)) as opened:
        got = np.asarray(opened.convert("RGB"))
    original = np.asarray(Image.open(image_1).convert("RGB"))
    assert got.shape == original.shape
    near = np.zeros(original.shape[:2], dtype=bool)
    near[PAINTED[1] - FEATHER:PAINTED[3] + FEATHER, PAINTED[0] - FEATHER:PAINTED[2] + FEATHER] = True
    assert np.array_equal(got[~near], original[~near])
    inside = (slice(PAINTED[1], PAINTED[3]), slice(PAINTED[0], PAINTED[2]))
    assert np.mean(np.any(got[inside] != original[inside], axis=-1)) > 0.9


def run_region(backend, request, tmp_path, **options) -> tuple[bytes, list]:
    region_run = RegionRun.plan(request, Region(painted_mask(), FEATHER), str(tmp_path / "crop.png"))
    events = list(region_run.events(backend.run(region_run.request, backend.options(options))))
    result = [e for e in events if isinstance(e, Result)][0]
    return result.images[0].data, [e for e in events if isinstance(e, Preview)]


def test_the_feathered_mask_is_full_on_the_paint_and_nothing_past_the_feather():
    region = Region(painted_mask(), feather=FEATHER)
    box = (0, 0, *SIZE)
    alpha = np.asarray(blend_mask(region, box))
    assert (alpha[PAINTED[1]:PAINTED[3], PAINTED[0]:PAINTED[2]] == 255).all()
    assert alpha[PAINTED[1] - FEATHER - 1, PAINTED[0] + 5] == 0 and alpha[PAINTED[1] - FEATHER, PAINTED[0] + 5] > 0
    ramp = [int(alpha[PAINTED[1] - d, PAINTED[0] + 5]) for d in range(1, FEATHER + 1)]
    assert ramp == sorted(ramp, reverse=True) and ramp[0] < 255


def test_on_the_local_backend_only_the_painted_area_changes(image_1, tmp_path):
    backend = LocalBackend(LocalSettings(
        model="tiny", device="cpu", decode_every=0, max_sequence_length=MAX_SEQUENCE_LENGTH,
        text_encoder_out_layers=TEXT_ENCODER_OUT_LAYERS,
    ), pipeline=build_tiny_pipeline())
    request = build_request(prompt="make it blue", image_urls=[image_1], num_inference_steps=4, seed=3)
    data, previews = run_region(backend, request, tmp_path)
    untouched_everywhere_but_near_the_paint(data, image_1)
    assert all(image.size == SIZE for preview in previews for image in preview.images)


def test_on_fal_only_the_painted_area_changes_and_fal_gets_the_crop(pointed, image_1, tmp_path):
    backend = FalBackend(FalSettings(poll_interval=0.05), server_key=SERVER_KEY)
    request = build_request(prompt="make it blue", image_urls=[image_1], seed=3)
    data, _ = run_region(backend, request, tmp_path)
    untouched_everywhere_but_near_the_paint(data, image_1)
    [job] = pointed.jobs.values()
    margin = max(48, 2 * FEATHER)
    crop = (PAINTED[2] - PAINTED[0] + 2 * margin, PAINTED[3] - PAINTED[1] + 2 * margin)
    assert job.input["image_size"] == dict(zip(("width", "height"), working_size(*crop)))


def test_a_mask_from_the_api_is_white_for_change_and_can_be_inverted(tmp_path):
    path = tmp_path / "mask.png"
    painted_mask().convert("RGB").save(path)
    region = region_from_values({"mask": str(path), "mask_feather": 8})
    assert region.mask.getbbox() == PAINTED and region.feather == 8
    inverted = region_from_values({"mask": str(path), "mask_invert": True})
    assert inverted.mask.getpixel((0, 0)) == 255 and inverted.mask.getpixel((PAINTED[0], PAINTED[1])) == 0
    assert mask_image(Image.new("L", SIZE, 0)) is None
    Image.new("L", SIZE, 0).save(tmp_path / "empty.png")
    with pytest.raises(InvalidInput, match="Mask: nothing is painted"):
        region_from_values({"mask": str(tmp_path / "empty.png")})
    with pytest.raises(InvalidInput, match="Feather: must be 0 to 256 pixels"):
        region_from_values({"mask": str(path), "mask_feather": 999})
