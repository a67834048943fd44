"""Bad reference images through the API: each gets a message naming the image and the
limit, nothing is sent to fal, and the server keeps serving."""

from __future__ import annotations

import base64
import io

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.test_app_hosted import edit_args
from tests.test_images import bomb_png


def png(size, mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return buffer.getvalue()


BAD = {
    "not-an-image.png": (b"hello, not an image", "image 1: is not an image Pillow can read"),
    "empty.png": (b"", "image 1: is an empty file"),
    "bomb.png": (bomb_png(20000, 20000), "image 1: has more than 50 million pixels"),
    "truncated.png": (png((400, 400))[:300], "image 1: is damaged or truncated"),
    "tiny.png": (png((40, 200)), r"image 1: is 40x200 px; each side must be at least 64 px"),
    "wide.png": (png((900, 100)), r"image 1: has an aspect ratio of 9.0:1; at most 8:1 is allowed"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_a_bad_reference_is_named_with_its_limit(app, fake, images, tmp_path, name):
    data, message = BAD[name]
    path = tmp_path / name
    path.write_bytes(data)
    client = Client(app.url, verbose=False)
    with pytest.raises(AppError, match=message):
        client.predict(**edit_args(images, image_1=handle_file(str(path))), api_name="/edit")
    assert not fake.jobs
    assert client.predict(**edit_args(images), api_name="/edit")[1].startswith("✅ Done")


def test_a_bomb_sent_inline_as_a_data_url_is_refused_before_decoding(app, fake, images):
    inline = "data:image/png;base64," + base64.b64encode(bomb_png(20000, 20000)).decode()
    client = Client(app.url, verbose=False)
    with pytest.raises(AppError, match="image 1: has more than 50 million pixels"):
        client.predict(**edit_args(images, image_1={"url": inline, "meta": {"_type": "gradio.FileData"}}),
                       api_name="/edit")
    assert not fake.jobs
