"""A dropped PNG's recipe is shown before anything changes, and Apply sets the form from it."""

from __future__ import annotations

import io

import gradio as gr
from PIL import Image

from backend.recipes import embed_recipe
from backend.request import build_request
from ui import png_restore
from ui.form import RESTORED_FIELDS, PageSetup

SETUP = PageSetup(backends=("fal",), default_backend="fal", needs_visitor_key=False, models=("owner/model",),
                  default_model="owner/model", default_memory="auto")


def png_with(recipe: dict, folder) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(buffer, format="PNG")
    path = folder / "made-here.png"
    path.write_bytes(embed_recipe(buffer.getvalue(), recipe))
    return str(path)


def a_recipe() -> dict:
    request = build_request(prompt="make it a watercolor", image_urls=["red.png", "blue.jpg"],
                            loras=[{"path": "https://example.com/w.safetensors", "scale": 0.8}],
                            guidance_scale=4.5, num_inference_steps=20).model_dump(mode="json")
    return {"request": request, "options": {}, "seed": 42, "backend": "fal", "endpoint": "fal-ai/flux-2/lora/edit"}


def test_the_preview_shows_the_recipe_and_the_references_to_add_without_changing_the_form(tmp_path):
    recipe, text, apply = png_restore.preview_png(png_with(a_recipe(), tmp_path))
    assert recipe["seed"] == 42
    for shown in ("make it a watercolor", "w.safetensors", "0.8", "4.5", "20", "42", "red.png", "blue.jpg",
                  "Add the reference images again"):
        assert shown in text, shown
    assert apply["interactive"] is True


def test_a_recipe_that_names_no_endpoint_shows_no_empty_code(tmp_path):
    recipe = {key: value for key, value in a_recipe().items() if key != "endpoint"}
    _read, text, _apply = png_restore.preview_png(png_with(recipe, tmp_path))
    assert "**Backend:** fal" in text and "``" not in text  # not "fal (``)"


def test_a_png_without_a_recipe_says_so_and_leaves_apply_off(tmp_path):
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    recipe, text, apply = png_restore.preview_png(str(plain))
    assert recipe is None and png_restore.NO_RECIPE in text and apply["interactive"] is False


def test_apply_sets_the_fields_and_says_which_references_to_add():
    setup = SETUP
    *values, version, status = png_restore.apply_png(a_recipe(), 3, setup)
    by_name = dict(zip(RESTORED_FIELDS, values))
    assert by_name["prompt"] == "make it a watercolor" and by_name["guidance_scale"] == 4.5
    assert version == 4 and "Add the 2 reference images again" in status


def test_apply_with_nothing_read_changes_nothing():
    setup = SETUP
    assert all(v == gr.skip() for v in png_restore.apply_png(None, 3, setup))


def test_a_region_edits_png_brings_its_mask_back_with_image_1(tmp_path):
    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (20, 10, 40, 30))
    mask_bytes = io.BytesIO()
    mask.save(mask_bytes, format="PNG")
    result = io.BytesIO()
    Image.new("RGB", (64, 48), (1, 2, 3)).save(result, format="PNG")
    recipe = {**a_recipe(), "region": {"mask": "mask.png", "feather": 12}}
    path = tmp_path / "region.png"
    path.write_bytes(embed_recipe(result.getvalue(), recipe, mask_bytes.getvalue()))
    _read, summary, _apply = png_restore.preview_png(str(path))
    assert "feather 12 px" in summary and "the mask is in this PNG" in summary
    assert "Its mask comes back with image 1" in png_restore.apply_png(recipe, 0, SETUP)[-1]
    restored = png_restore.mask_file(str(path), lambda: tmp_path)
    assert restored and Image.open(restored).tobytes() == mask.tobytes()  # the same mask, pixel for pixel

    image_1, other = tmp_path / "image-1.png", tmp_path / "other.png"
    Image.new("RGB", (64, 48)).save(image_1)
    Image.new("RGB", (48, 64)).save(other)
    # Apply before image 1 is there: the mask waits for it and the box is ticked.
    shown, waiting, ticked = png_restore.apply_mask(restored, None)
    assert (shown, waiting, ticked) == (gr.skip(), restored, True)
    assert png_restore.mask_for_upload(str(image_1), waiting) == (restored, None)  # image 1 again: its mask
    assert png_restore.mask_for_upload(str(other), waiting) == (None, None)  # another image: no mask
    assert png_restore.mask_for_upload(str(image_1), None) == (None, None)  # a plain upload: no mask
    assert png_restore.apply_mask(restored, str(image_1)) == (restored, None, True)  # image 1 already there


def test_a_png_whose_mask_chunk_is_not_a_mask_restores_no_mask(tmp_path):
    def no_folder():
        raise AssertionError("a folder is made only for a mask")

    result = io.BytesIO()
    Image.new("RGB", (8, 8)).save(result, format="PNG")
    for junk in (b"not a png at all", b"GIF89a" + bytes(40)):
        path = tmp_path / "odd.png"
        path.write_bytes(embed_recipe(result.getvalue(), a_recipe(), junk))
        assert png_restore.mask_file(str(path), no_folder) is None
    assert png_restore.mask_file(png_with(a_recipe(), tmp_path), no_folder) is None  # a PNG without a region
