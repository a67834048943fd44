"""Inputs checked when they are given: LoRA links made usable, uploads checked with the run's
limits, and a refused run's problems mapped to the fields at fault."""

from __future__ import annotations

import io

import gradio as gr
import pytest
from PIL import Image

from backend import images
from backend.errors import AuthFailed, FieldProblem, InvalidInput
from backend.request import build_request, normalise_lora_path
from ui.field_checks import SHOWN, checked_upload, field_marks, lora_notes, page_run, upload_problem
from ui.results import finished_results

CIVITAI_EXPLAINED = "that is a Civitai model page; paste its download link"


@pytest.mark.parametrize(("typed", "used"), [
    ("https://huggingface.co/owner/repo/blob/main/x.safetensors",
     "https://huggingface.co/owner/repo/resolve/main/x.safetensors"),
    ("  https://huggingface.co/datasets/o/r/blob/v1/dir/x.safetensors ",
     "https://huggingface.co/datasets/o/r/resolve/v1/dir/x.safetensors"),
    ("https://civitai.com/models/12345/name?modelVersionId=678", "https://civitai.com/api/download/models/678"),
    ("https://huggingface.co/owner/repo/resolve/main/x.safetensors",
     "https://huggingface.co/owner/repo/resolve/main/x.safetensors"),
    ("owner/repo", "owner/repo"),
    ("https://example.com/blob/main/x.safetensors", "https://example.com/blob/main/x.safetensors"),
])
def test_a_lora_link_becomes_the_download_link(typed, used):
    assert normalise_lora_path(typed) == used


@pytest.mark.parametrize("page", ["https://civitai.com/models/12345/name", "https://www.civitai.com/models/1"])
def test_a_civitai_model_page_is_refused_with_the_way_to_its_download_link(page):
    with pytest.raises(ValueError, match=CIVITAI_EXPLAINED):
        normalise_lora_path(page)
    with pytest.raises(InvalidInput, match="LoRA 1 path: " + CIVITAI_EXPLAINED):
        build_request(prompt="x", image_urls=["a.png"], loras=[{"path": page}])


def test_the_request_carries_the_download_link():
    blob = "https://huggingface.co/owner/repo/blob/main/x.safetensors"
    request = build_request(prompt="x", image_urls=["a.png"], loras=[{"path": blob}])
    assert request.loras[0].path == "https://huggingface.co/owner/repo/resolve/main/x.safetensors"


def test_the_lora_note_says_what_is_wrong_and_what_will_change():
    rows = [{"path": "https://civitai.com/models/1/x"}, {"path": ""},
            {"path": "https://huggingface.co/o/r/blob/main/x.safetensors"}, {"path": "owner/repo"}]
    assert lora_notes(rows).splitlines() == [
        f"LoRA 1: {CIVITAI_EXPLAINED} (https://civitai.com/api/download/models/<version id>)",
        "LoRA 3: the download link will be used: https://huggingface.co/o/r/resolve/main/x.safetensors",
    ]
    assert lora_notes([{"path": "owner/repo"}]) == ""


def _png(path, size):
    Image.new("RGB", size, (10, 20, 30)).save(path)
    return str(path)


def test_an_upload_is_checked_with_the_run_limits(tmp_path):
    old = images.max_pixels()
    images.set_max_pixels(1_000_000)
    try:
        # Over the model's ~1 MP but within the server's limit: taken (the run shrinks it).
        assert upload_problem(_png(tmp_path / "ok.png", (1100, 900)), 2) is None
        assert "at most 1 MP is accepted" in upload_problem(_png(tmp_path / "big.png", (1500, 1500)), 2)
    finally:
        images.set_max_pixels(old)
    (tmp_path / "text.png").write_bytes(b"not an image at all")
    assert "is not an image file this app can read" in upload_problem(str(tmp_path / "text.png"), 1)
    buffer = io.BytesIO()
    Image.new("RGB", (900, 100)).save(buffer, format="PNG")
    (tmp_path / "wide.png").write_bytes(buffer.getvalue())
    assert "aspect ratio of 9.0:1" in upload_problem(str(tmp_path / "wide.png"), 1)
    assert upload_problem(None, 1) is None


def test_an_upload_taken_as_it_is_leaves_every_slot_as_the_page_has_it(tmp_path):
    """The page's image 1 is not set again to the file it already shows (the server's copy of it
    looks like a change to the page, which re-reads the slot: a loop of changes once in a while)."""
    red, blue = _png(tmp_path / "red.png", (96, 64)), _png(tmp_path / "blue.png", (64, 96))
    *slots, status = checked_upload(1, red, None, None)
    assert all(slot is gr.skip() or slot == gr.skip() for slot in slots) and status is None
    *slots, status = checked_upload(3, red, None, blue)  # dropped into slot 3: moved up to slot 2
    assert slots[0] == gr.skip() and slots[1:] == [blue, None] and status is None
    (tmp_path / "text.png").write_bytes(b"not an image at all")
    with pytest.warns(UserWarning, match="Image 2"):  # the page's warning (outside a page: a Python warning)
        *slots, status = checked_upload(2, red, str(tmp_path / "text.png"), None)  # refused: leaves its slot
    assert slots[0] == gr.skip() and slots[1] is None and slots[2] == gr.skip() and "Image 2" in status


def test_problems_mark_the_fields_at_fault():
    problems = [
        FieldProblem("image_urls", "Reference images", "add at least one image to edit"),
        FieldProblem("prompt", "Instruction", "must not be empty"),
        FieldProblem("image_size", "Width", "must be at least 512 (got 100)"),
        FieldProblem("loras", "LoRA 2 path", "Could not load LoRA weights"),
        FieldProblem("request", "request", "is not valid"),
    ]
    assert field_marks(problems, [None] * 6) == {
        "image_1": "Reference images: add at least one image to edit",
        "prompt": "Instruction: must not be empty",
        "width": "Width: must be at least 512 (got 100)",
        "loras": "LoRA 2 path: Could not load LoRA weights",
    }
    # A named image marks its slot; with images in slots 1-2, "no image" marks slot 3.
    assert field_marks([FieldProblem("image_urls", "image 2", "is damaged or truncated")], ["a", "b"]) == {
        "image_2": "image 2: is damaged or truncated"}
    assert list(field_marks([FieldProblem("image_urls", "Reference images", "x")], ["a", "b", None])) == ["image_3"]
    assert field_marks([FieldProblem("image_size", "Size", "must be one of …")], []) == {
        "size": "Size: must be one of …"}


def test_a_failed_run_shows_the_finished_results_not_the_previews():
    gallery = [("/o/a.png", "image 1"), ("/o/b.png", None), ("/t/p.jpg", "preview · step 2 of 4")]
    assert finished_results(gallery) == [("/o/a.png", "image 1"), ("/o/b.png", None)]
    assert finished_results([("/t/p.jpg", "interrupted preview")]) == []
    assert finished_results(None) == []


def test_a_refused_visitor_key_marks_the_key_box_and_the_server_key_marks_nothing():
    """fal's 401 for the key the visitor pasted: the key box is marked (they can fix it); for
    the server's key nothing is (the operator must), and a key never goes into a mark."""
    def refused(values, previous):
        yield from ()
        raise AuthFailed(401)

    def marks_after(key: str) -> dict:
        *_, last = page_run(refused, {"fal_key": key, SHOWN: None})
        return last[-1]

    assert marks_after("visitor-id:visitor-secret") == {"fal_key": AuthFailed(401).message}
    assert "visitor-secret" not in marks_after("visitor-id:visitor-secret")["fal_key"]
    assert marks_after("") == {}
    assert marks_after("   ") == {}  # spaces are no key: the server's was refused
