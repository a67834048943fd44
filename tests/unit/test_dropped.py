"""A picture dropped from another site: once the server has fetched it, the page is told which
slot it goes to and what kind of picture it is (its file is named by its address, which need not
say); what is not a picture the slots take is refused naming the slot and the address."""

from __future__ import annotations

import gradio as gr
import pytest
from PIL import Image

from ui.dropped import fetched_picture

ADDRESS = "https://images.example/img?id=3"


@pytest.mark.parametrize(("format", "name", "kind"), [("PNG", "img.png", "image/png"),
                                                      ("JPEG", "img.jpg", "image/jpeg"),
                                                      ("WEBP", "img.webp", "image/webp")])
def test_a_fetched_picture_goes_to_its_slot_named_by_its_format(tmp_path, format, name, kind):
    fetched = tmp_path / "img"  # what the address's last part gave it: no suffix
    Image.new("RGB", (80, 60), (30, 140, 200)).save(fetched, format=format)
    path, drop = fetched_picture(str(fetched), {"slot": 2, "address": ADDRESS})
    assert path == str(fetched)
    assert drop == {"slot": 2, "address": ADDRESS, "name": name, "type": kind}


@pytest.mark.parametrize(("body", "what"), [(b"<!doctype html><html>a page</html>", "is not a picture"),
                                            (b"\0\0\0\x18ftypheic\0\0\0\0mif1heic", "is a HEIC file")])
def test_what_is_not_a_picture_the_slots_take_is_refused_naming_the_slot_and_address(tmp_path, body, what):
    fetched = tmp_path / "page.html"
    fetched.write_bytes(body)
    with pytest.raises(gr.Error) as refused:
        fetched_picture(str(fetched), {"slot": 3, "address": ADDRESS})
    assert str(refused.value.message).startswith(f"image 3: {ADDRESS} {what} (PNG, JPEG")


@pytest.mark.parametrize("drop", [None, {}, {"slot": 0, "address": ADDRESS}, {"slot": 7, "address": ADDRESS},
                                  {"slot": True, "address": ADDRESS}, {"slot": "1", "address": ADDRESS}, [1, ADDRESS]])
def test_a_drop_without_its_slot_is_refused(tmp_path, drop):
    """What a stranger's page could send instead of a slot number."""
    fetched = tmp_path / "picture.png"
    Image.new("RGB", (80, 60)).save(fetched)
    with pytest.raises(gr.Error, match="without the image slot it was dropped on"):
        fetched_picture(str(fetched), drop)
