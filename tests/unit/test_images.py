"""Reference image preparation: what is sent for each kind of image a person drops in."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from backend.errors import InvalidInput
from backend.images import MAX_INPUT_PIXELS, TARGET_PIXELS, prepare_reference
from tests.helpers.images import bomb_png


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A photo-like image: smooth gradients plus grain (so JPEG sizes are realistic)."""
    rng = random.Random(seed)
    small = Image.new("RGB", (64, 48))
    small.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(64 * 48)])
    base = small.resize((width, height), Image.Resampling.BICUBIC)
    grain = Image.effect_noise((width, height), 40).convert("RGB")
    return Image.blend(base, grain, 0.25)


def decoded(prepared) -> Image.Image:
    return Image.open(io.BytesIO(prepared.data))


def test_large_photo_is_shrunk_to_about_one_megapixel_and_sent_as_jpeg():
    original = encode(photo(6000, 4000), "JPEG", quality=92)  # 24 MP
    prepared = prepare_reference(original, "image 1")
    assert prepared.content_type == "image/jpeg"
    assert prepared.original_size == (6000, 4000)
    assert 0.9 * TARGET_PIXELS <= prepared.width * prepared.height <= 1.05 * TARGET_PIXELS
    assert abs(prepared.width / prepared.height - 1.5) < 0.01
    assert len(prepared.data) < len(original) / 10


def test_small_png_keeps_its_size_and_stays_lossless():
    image = photo(300, 200)
    prepared = prepare_reference(encode(image, "PNG"), "image 1")
    assert prepared.content_type == "image/png"
    assert (prepared.width, prepared.height) == (300, 200)
    assert not prepared.downscaled
    assert list(decoded(prepared).getdata()) == list(image.getdata())


def test_exif_rotation_is_applied():
    image = photo(400, 200)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    prepared = prepare_reference(encode(image, "JPEG", exif=exif), "image 1")
    assert (prepared.width, prepared.height) == (200, 400)
    assert prepared.original_size == (200, 400)


def test_transparency_is_composited_on_white():
    image = Image.new("RGBA", (100, 100), (255, 0, 0, 0))
    image.paste((0, 0, 255, 255), (0, 0, 50, 100))
    result = decoded(prepare_reference(encode(image, "PNG"), "image 1")).convert("RGB")
    assert result.getpixel((75, 50)) == (255, 255, 255)
    assert result.getpixel((25, 50)) == (0, 0, 255)


def test_palette_with_transparency_cmyk_and_16_bit_are_converted():
    palette = Image.new("P", (80, 80), 1)
    palette.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    palette.info["transparency"] = 0
    converted = decoded(prepare_reference(encode(palette, "PNG", transparency=0), "i")).convert("RGB")
    assert converted.getpixel((5, 5)) == (200, 10, 10)

    cmyk = Image.new("CMYK", (80, 80), (0, 255, 255, 0))  # pure red in CMYK
    red = decoded(prepare_reference(encode(cmyk, "JPEG", quality=100), "i")).convert("RGB").getpixel((40, 40))
    assert red[0] > 200 and red[1] < 60 and red[2] < 60

    sixteen = Image.new("I;16", (80, 80), 32768)  # mid grey in 16 bits
    grey = decoded(prepare_reference(encode(sixteen, "PNG"), "i")).convert("RGB").getpixel((40, 40))
    assert 120 <= grey[0] <= 136


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "image 2: is an empty file"),
        (b"this is not an image at all", "image 2: is not an image Pillow can read"),
        (encode(photo(63, 200), "PNG"), "image 2: is 63x200 px; each side must be at least 64 px"),
        (encode(photo(900, 100), "PNG"), "image 2: has an aspect ratio of 9.0:1; at most 8:1 is allowed"),
    ],
)
def test_bad_images_name_the_image_and_the_limit(data, message):
    with pytest.raises(InvalidInput) as caught:
        prepare_reference(data, "image 2")
    assert str(caught.value.problems[0]) == message


def test_truncated_png_is_refused():
    data = encode(photo(400, 400), "PNG")
    with pytest.raises(InvalidInput, match="damaged or truncated"):
        prepare_reference(data[: len(data) // 2], "image 1")


def test_decompression_bomb_is_refused_before_decoding():
    with pytest.raises(InvalidInput, match="more than 50 million pixels"):
        prepare_reference(bomb_png(20000, 20000), "image 1")
    assert MAX_INPUT_PIXELS == 50_000_000


def test_data_uri_and_path_sources(tmp_path):
    data = encode(photo(200, 100), "PNG")
    path = tmp_path / "ref.png"
    path.write_bytes(data)
    import base64
    from_uri = prepare_reference("data:image/png;base64," + base64.b64encode(data).decode(), "image 1")
    from_path = prepare_reference(str(path), "image 1")
    assert from_uri.data == from_path.data
    with pytest.raises(InvalidInput, match="file not found"):
        prepare_reference(str(tmp_path / "missing.png"), "image 1")


def test_a_file_that_needs_no_change_is_sent_as_it_is():
    original = encode(photo(800, 600), "JPEG", quality=90)
    prepared = prepare_reference(original, "image 1")
    assert prepared.data == original and prepared.content_type == "image/jpeg"
    exif = Image.Exif()
    exif[0x0112] = 3  # upside down: must be turned, so it is re-encoded
    rotated = encode(photo(800, 600), "JPEG", exif=exif)
    assert prepare_reference(rotated, "image 1").data != rotated
