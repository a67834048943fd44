"""Reference image preparation: what is sent for each kind of image a person drops in."""

from __future__ import annotations

import io
import random
import threading
import time

import pytest
from PIL import Image

from backend import images as images_module
from backend.errors import InvalidInput
from backend.images import DEFAULT_MAX_PIXELS, MAX_DECODES, TARGET_PIXELS, max_pixels, prepare_reference
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
        (b"this is not an image at all",
         "image 2: is not an image file this app can read (accepted: PNG, JPEG, WebP, AVIF, GIF (still), BMP or TIFF)"),
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
    with pytest.raises(InvalidInput, match="more than 25 million pixels"):
        prepare_reference(bomb_png(20000, 20000), "image 1")
    assert max_pixels() == DEFAULT_MAX_PIXELS == 25_000_000 == Image.MAX_IMAGE_PIXELS


# pytest resets the app's "warning is an error" filter: Pillow only warns here, and the app's own
# check from the header refuses the image all the same.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_7000_by_7000_png_is_refused_from_its_header_and_a_24_mp_photo_still_shrunk(monkeypatch):
    """A real 49 MP PNG (a few KB of file) is refused naming the image and the limit, and no
    pixel is decoded; a 24 MP photo is under the default and still arrives at ~1 MP."""
    big = encode(Image.new("1", (7000, 7000)), "PNG")
    assert len(big) < 200_000
    decodes = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decodes.append(self.size) or real_load(self))
    with pytest.raises(InvalidInput) as caught:
        prepare_reference(big, "image 3")
    assert str(caught.value.problems[0]) == (
        "image 3: has more than 25 million pixels; at most 25 MP is accepted: shrink it first")
    assert (7000, 7000) not in decodes
    prepared = prepare_reference(encode(photo(6000, 4000), "JPEG", quality=80), "image 1")
    assert prepared.original_size == (6000, 4000) and prepared.width * prepared.height <= TARGET_PIXELS * 1.01


ACCEPTED = "PNG, JPEG, WebP, AVIF, GIF (still), BMP or TIFF"


@pytest.mark.parametrize("fmt", ["PCX", "ICNS", "PSD", "TGA", "PPM", "DDS"])
def test_formats_outside_the_allow_list_are_refused_naming_the_format(fmt, monkeypatch):
    """Only PNG, JPEG, WebP, AVIF, GIF, BMP and TIFF are ever handed to a decoder: any other
    format Pillow reads is refused by name (or, without a signature, as unreadable)."""
    if fmt == "PSD":  # Pillow cannot write PSD: its signature and a minimal header
        header = b"8BPS\x00\x01" + b"\x00" * 6 + b"\x00\x03" + b"\x00\x00\x00\x80" * 2 + b"\x00\x08\x00\x03"
        data = header + b"\x00" * 64
    else:
        data = encode(Image.new("RGB", (128, 128), (9, 90, 200)), fmt)
    opened = []
    monkeypatch.setattr(Image.Image, "load", lambda self: opened.append(self.format))
    with pytest.raises(InvalidInput) as caught:
        prepare_reference(data, "image 1")
    message = str(caught.value.problems[0])
    assert message.endswith(ACCEPTED)
    if fmt != "TGA":  # TGA has no signature of its own to be named by (its first bytes may look like CUR's)
        assert message == f"image 1: is in {fmt} format; accepted formats: " + ACCEPTED
    assert opened == []


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "AVIF", "GIF", "BMP", "TIFF"])
def test_every_allowed_format_is_read(fmt):
    prepared = prepare_reference(encode(Image.new("RGB", (128, 96), (200, 40, 40)), fmt), "image 1")
    assert (prepared.width, prepared.height) == (128, 96)


def test_an_avif_saved_from_a_web_page_is_sent_upright_as_a_jpeg_fal_takes():
    """Chrome saves many web images as AVIF: one taken sideways arrives upright, in its colours,
    re-encoded (fal's page names no AVIF among the formats it reads)."""
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    sideways = Image.new("RGB", (300, 200), (200, 40, 40))
    sideways.paste((20, 40, 220), (0, 0, 150, 200))  # blue on the left: on top once upright
    prepared = prepare_reference(encode(sideways, "AVIF", quality=95, exif=exif), "image 1")
    assert prepared.content_type == "image/jpeg" and (prepared.width, prepared.height) == (200, 300)
    upright = decoded(prepared).convert("RGB")
    top, bottom = upright.getpixel((100, 40)), upright.getpixel((100, 260))
    assert top[2] > 180 > top[0] and bottom[0] > 160 > bottom[2]


@pytest.mark.parametrize("major", [b"heic", b"mif1"])
def test_an_iphone_heic_photo_is_named_with_what_to_do(major):
    """Pillow reads no HEIC, and takes a HEIF file whose first brand is the generic mif1 for an
    AVIF: either way the message names HEIC and says to save it as JPEG."""
    data = (24).to_bytes(4, "big") + b"ftyp" + major + b"\0\0\0\0" + b"mif1heic" + b"\0" * 200
    with pytest.raises(InvalidInput) as caught:
        prepare_reference(data, "image 2")
    assert str(caught.value.problems[0]) == (
        "image 2: is in HEIC format (an iPhone's photo format), which cannot be read here: save it as JPEG "
        "(accepted: PNG, JPEG, WebP, AVIF, GIF (still), BMP or TIFF)")


def test_at_most_a_few_references_are_decoded_at_once(monkeypatch):
    """Eight threads prepare large references together: never more than MAX_DECODES are
    in their decode (which holds the decoded pixels) at the same time."""
    inside, most, lock = [0], [0], threading.Lock()
    real_to_rgb = images_module._to_rgb

    def slow_to_rgb(image):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.05)
        try:
            return real_to_rgb(image)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(images_module, "_to_rgb", slow_to_rgb)
    data = encode(photo(300, 300), "PNG")
    workers = [threading.Thread(target=prepare_reference, args=(data, "image 1")) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert most[0] == MAX_DECODES == 2


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
