"""Bad input through the API: each case gets a message naming the field (or the image)
and the limit, nothing is sent to fal, and the server keeps serving. Odd but valid images
(CMYK, 16-bit, palette, alpha, EXIF-rotated) reach fal converted correctly."""

from __future__ import annotations

import base64
import io

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.helpers.api import edit_args, local_args, sent_image
from tests.helpers.app import connect
from tests.helpers.images import bomb_png


def png(size, mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return buffer.getvalue()


def gif_frames(count: int) -> bytes:
    frames = [Image.new("RGB", (200, 200), (60 * i, 0, 0)) for i in range(count)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def pcx() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (200, 200), (0, 90, 200)).save(buffer, format="PCX")
    return buffer.getvalue()


BAD = {
    "not-an-image.png": (b"hello, not an image", "image 1: is not an image file this app can read"),
    "empty.png": (b"", "image 1: is an empty file"),
    "bomb.png": (bomb_png(20000, 20000), "image 1: has more than 25 million pixels"),
    "7000x7000.png": (png((7000, 7000), "1"), "image 1: has more than 25 million pixels; at most 25 MP is accepted"),
    "picture.pcx": (pcx(), r"image 1: is in PCX format; accepted formats: PNG, JPEG, WebP, AVIF, GIF \(still\), BMP "
                           r"or TIFF"),
    "truncated.png": (png((400, 400))[:300], "image 1: is damaged or truncated"),
    "tiny.png": (png((40, 200)), r"image 1: is 40x200 px; each side must be at least 64 px"),
    "wide.png": (png((900, 100)), r"image 1: has an aspect ratio of 9.0:1; at most 8:1 is allowed"),
    "animated.gif": (gif_frames(3), r"image 1: is animated \(3 frames\); only still images can be edited"),
    "IMG_0042.HEIC": ((24).to_bytes(4, "big") + b"ftypheic" + bytes(4) + b"mif1heic" + bytes(4000),
                      r"image 1: is in HEIC format \(an iPhone's photo format\), which cannot be read here: "
                      r"save it as JPEG"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_a_bad_reference_is_named_with_its_limit(app, fake, images, tmp_path, name):
    data, message = BAD[name]
    path = tmp_path / name
    path.write_bytes(data)
    client = connect(app)
    with pytest.raises(AppError, match=message):
        client.predict(**edit_args(images, image_1=handle_file(str(path))), api_name="/edit")
    assert not fake.jobs
    assert client.predict(**edit_args(images), api_name="/edit")[1].startswith("✅ Done")


def test_an_avif_saved_from_the_web_is_edited_and_reaches_fal_as_a_jpeg(app, fake, images, tmp_path):
    path = tmp_path / "saved-from-chrome.avif"
    Image.new("RGB", (480, 320), (30, 120, 200)).save(path, format="AVIF", quality=90)
    status = connect(app).predict(**edit_args(images, image_1=handle_file(str(path))), api_name="/edit")[1]
    assert status.startswith("✅ Done")
    (job,) = fake.jobs.values()
    sent = sent_image(job.input["image_urls"][0], fake)
    assert sent.format == "JPEG" and sent.size == (480, 320)
    assert all(abs(a - b) < 8 for a, b in zip(sent.convert("RGB").getpixel((240, 160)), (30, 120, 200)))


def test_a_bomb_sent_inline_as_a_data_url_is_refused_before_decoding(app, fake, images):
    inline = "data:image/png;base64," + base64.b64encode(bomb_png(20000, 20000)).decode()
    client = connect(app)
    with pytest.raises(AppError, match="image 1: has more than 25 million pixels"):
        client.predict(**edit_args(images, image_1={"url": inline, "meta": {"_type": "gradio.FileData"}}),
                       api_name="/edit")
    assert not fake.jobs


def test_an_image_written_as_a_data_url_in_place_of_a_file_is_taken(app, fake, images):
    """A bare string where a file goes: a data: URL is an image inline (any other text is
    refused by name, in FORM below); Gradio refused both with no message."""
    inline = "data:image/png;base64," + base64.b64encode(images["red"].read_bytes()).decode()
    status = connect(app).predict(**edit_args(images, image_1=inline), api_name="/edit")[1]
    assert status.startswith("✅ Done") and len(fake.jobs) == 1


FORM = {
    "empty prompt": ({"prompt": ""}, "Instruction: must not be empty"),
    "20,000 characters": ({"prompt": "x" * 20000}, r"Instruction: must be at most 5000 characters \(got 20000\)"),
    "control characters": ({"prompt": "make it\x07 blue\x00"}, "Instruction: must not contain control characters"),
    "guidance too high": ({"guidance_scale": 25}, r"Guidance: must be at most 20 \(got 25\)"),
    "guidance not a number": ({"guidance_scale": "abc"}, r"Guidance: must be a number \(got 'abc'\)"),
    "steps too many": ({"num_inference_steps": 51}, r"Steps: must be at most 50 \(got 51\)"),
    "steps not whole": ({"num_inference_steps": 10.5}, "Steps: must be a whole number"),
    "steps as text": ({"num_inference_steps": "ten"}, r"Steps: must be a number \(got 'ten'\)"),
    "width too large": ({"size": "custom", "width": 3000}, r"Width: must be at most 2048 \(got 3000\)"),
    "height too small": ({"size": "custom", "height": 256}, r"Height: must be at least 512 \(got 256\)"),
    "width not a multiple of 16": ({"size": "custom", "width": 1000}, r"Width: must be a multiple of 16 \(got 1000\)"),
    "unknown size": ({"size": "huge"}, r"Size: must be one of match, square_hd, .* \(got 'huge'\)"),
    "negative seed": ({"seed": -1, "randomize_seed": False}, r"Seed: must be at least 0 \(got -1\)"),
    "seed too large": ({"seed": 2**33, "randomize_seed": False}, r"Seed: must be at most 4294967295"),
    "five images": ({"num_images": 5}, r"Images: must be at most 4 \(got 5\)"),
    "unknown format": ({"output_format": "gif"}, r"Output format: must be one of png, jpeg, webp \(got 'gif'\)"),
    "four LoRAs": (
        {"loras": [{"path": f"o/l{i}"} for i in range(4)]}, r"LoRAs: at most 3 can be switched on \(4 are\)"
    ),
    "an image as text": (
        {"image_1": "https://example.com/donut.png"},
        r"image 1: send the image as a file, not the text 'https://example.com/donut.png' \(gradio_client: handle_file",
    ),
    "a second image as text": (
        {"image_2": "donut.png"}, r"image 2: send the image as a file, not the text 'donut.png'",
    ),
    "LoRA scale 5": ({"loras": [{"path": "o/l", "scale": 5}]}, r"LoRA 1 scale: must be at most 4 \(got 5\)"),
    "LoRA scale as text": ({"loras": [{"path": "o/l", "scale": "big"}]}, "LoRA 1 scale: must be a number"),
    "LoRAs not a list": ({"loras": "o/l"}, "LoRAs: must be a list"),
    "LoRA switched off as text": ({"loras": [{"path": "o/l", "enabled": "false"}]}, "LoRA 1 on: must be true or false"),
    "a thousand LoRA rows": (
        {"loras": [{"path": "o/l", "enabled": False}] * 1000}, r"LoRAs: at most 16 rows \(got 1000\)"
    ),
}


@pytest.mark.parametrize("case", list(FORM))
def test_bad_form_values_are_named_with_their_limit_and_nothing_is_sent(app, fake, images, case):
    overrides, message = FORM[case]
    client = connect(app)
    with pytest.raises(AppError, match=message):
        client.predict(**edit_args(images, **overrides), api_name="/edit")
    assert not fake.jobs and not fake.uploads


def test_more_images_than_fal_takes_is_refused(app, fake, images):
    four = {f"image_{i}": handle_file(str(images["red"])) for i in range(1, 5)}
    client = connect(app)
    with pytest.raises(AppError, match=r"Reference images: fal takes at most 3 images \(got 4\)"):
        client.predict(**edit_args(images, **four), api_name="/edit")
    assert not fake.jobs


def encoded(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def test_cmyk_16_bit_palette_alpha_and_exif_rotated_images_reach_fal_converted(app, fake, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    palette = Image.new("P", (120, 120), 1)
    palette.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    alpha = Image.new("RGBA", (120, 120), (0, 0, 255, 0))  # fully transparent blue: white on white
    files = {
        "cmyk.jpg": (encoded(Image.new("CMYK", (120, 120), (0, 255, 255, 0)), "JPEG", quality=100), (120, 120)),
        "grey16.png": (encoded(Image.new("I;16", (120, 120), 32768), "PNG"), (120, 120)),
        "palette.png": (encoded(palette, "PNG", transparency=0), (120, 120)),
        "alpha.png": (encoded(alpha, "PNG"), (120, 120)),
        "rotated.jpg": (encoded(Image.new("RGB", (240, 120), (10, 200, 10)), "JPEG", exif=exif), (120, 240)),
    }
    expected = {
        "cmyk.jpg": lambda p: p[0] > 200 and p[1] < 60 and p[2] < 60,
        "grey16.png": lambda p: all(120 <= c <= 136 for c in p),
        "palette.png": lambda p: p == (200, 10, 10),
        "alpha.png": lambda p: p == (255, 255, 255),
        "rotated.jpg": lambda p: p[1] > 180,
    }
    client = connect(app)
    for name, (data, size) in files.items():
        fake.reset()
        path = tmp_path / name
        path.write_bytes(data)
        result = client.predict(**edit_args({"red": path}), api_name="/edit")
        assert result[1].startswith("✅ Done"), name
        [job] = fake.jobs.values()
        sent = sent_image(job.input["image_urls"][0], fake)
        assert sent.mode == "RGB" and sent.size == size, (name, sent.mode, sent.size)
        assert expected[name](sent.getpixel((size[0] // 2, size[1] // 2))), (name, sent.getpixel((60, 60)))


LORA_PATHS = {
    "../outside.safetensors": "is outside the LoRA folder",
    "/etc/passwd.safetensors": "is outside the LoRA folder",
    "file:///etc/passwd.safetensors": "only https:// URLs are fetched",
    "http://example.com/a.safetensors": "only https:// URLs are fetched",
    "https://127.0.0.1/a.safetensors": "only public addresses are fetched",
    "https://10.0.0.5/a.safetensors": "only public addresses are fetched",
    "https://example.com/a.bin": "only .safetensors files are loaded",
    "style.pt": "only .safetensors files are loaded",
    "not-a-lora.safetensors": "holds no LoRA weights",
    "someone/no-such-flux2-lora": "could not be fetched from Hugging Face",  # offline here; see test_local_backend
}


@pytest.mark.parametrize("path", list(LORA_PATHS))
def test_bad_lora_paths_on_the_local_backend_name_the_lora_and_the_reason(local_app, images, path):
    client = connect(local_app)
    with pytest.raises(AppError, match=r"LoRA 1 \(") as caught:
        client.predict(**local_args(images, loras=[{"path": path, "scale": 1, "enabled": True}]), api_name="/edit")
    assert LORA_PATHS[path] in str(caught.value)
    # The server keeps serving: the next run works.
    assert client.predict(**local_args(images), api_name="/edit")[1].startswith("✅ Done")
