"""Region edits on the page: paint on image 1, tick "Edit only the painted area".

The editor shows image 1 (it follows the first slot) with a brush layer (brush sizes,
eraser, clear from the editor's own tools); the strokes become the form's `mask` field (a
hidden image: white = change), which the run reads like any field, so the API's `mask`
argument and the page take the same path (backend/region.py does the edit).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr
from PIL import Image, ImageChops, ImageOps

HINT = ("Paint over the part of image 1 to change, then tick the box: the rest stays image 1 pixel for "
        "pixel (the edit fades out over the feather's width around what you painted). A run restored from "
        "History shows its mask tinted on image 1 and uses it until you paint a new one.")


def region_editor(place: Callable[[str], Any]) -> tuple[gr.Accordion, gr.ImageEditor, gr.Checkbox]:
    """The region panel's components; `place` makes a form field's component (ui/layout.py).
    Returns (panel, editor, only_painted) for the page's events."""
    with gr.Accordion("Edit only a region", open=False, elem_id="region-panel") as panel:
        gr.Markdown(HINT, elem_classes=["hint"])
        editor = gr.ImageEditor(
            label="Area to change", type="pil", image_mode="RGBA", sources=(), elem_id="region-editor",
            brush=gr.Brush(colors=["#ff2d55"], default_size=32, color_mode="fixed"), eraser=gr.Eraser(default_size=32),
            layers=False, height=420, transforms=(),
        )
        only_painted = gr.Checkbox(label="Edit only the painted area", value=False, elem_id="region-only")
        place("mask_feather")
        place("mask_invert")
        place("mask")
    return panel, editor, only_painted


# The page's run and sweep take the editor and the box too (not the API's): the mask is made
# from what is on screen when Run is clicked, so no event has to carry it there first.
EDITOR, ONLY_PAINTED, RESTORED = "region_editor", "region_only", "restored_mask"
PAGE_EXTRA = ((EDITOR, None), (ONLY_PAINTED, False), (RESTORED, None))


def take_painted_region(values: dict[str, Any]) -> None:
    """Move the editor's strokes into the run's `mask` (in place) when the box is ticked, else
    the mask of a run restored from History (shown tinted on image 1); with neither, an empty
    mask, which the run refuses naming the mask."""
    editor, only_painted = values.pop(EDITOR, None), values.pop(ONLY_PAINTED, False)
    restored = values.pop(RESTORED, None)
    if only_painted:
        values["mask"] = painted_mask(editor, True) or restored or Image.new("L", (1, 1), 0)


# The editor follows image 1 in the browser, at once. A server round trip here could land after
# the first strokes and wipe them: on a busy machine the picture came back a second after the
# panel opened, over what had been painted on the still empty editor.
FOLLOW_IMAGE_1_JS = "(image) => image ? {background: image, layers: [], composite: image} : null"


def tinted(image_1: Any, restored_mask: str) -> Any:
    """The editor's picture for a restored run's mask: image 1 tinted where the mask is (the
    run uses that mask until strokes are painted or another image 1 is uploaded)."""
    with Image.open(image_1) as opened:
        picture = ImageOps.exif_transpose(opened).convert("RGB")
    with Image.open(restored_mask) as opened:
        mask = opened.convert("L").resize(picture.size, Image.Resampling.NEAREST)
    tint = Image.new("RGB", picture.size, (255, 45, 85))
    shown = Image.composite(Image.blend(picture, tint, 0.5), picture, mask)
    return {"background": shown, "layers": [], "composite": shown}


def show_restored(image_1: Any, restored_mask: str | None) -> Any:
    """When image 1 changes or a run is restored: with a restored mask, the editor shows it
    tinted on image 1 (also when image 1 did not change, so that no change event came);
    otherwise nothing to do (the browser already shows image 1: FOLLOW_IMAGE_1_JS)."""
    return tinted(image_1, restored_mask) if image_1 and restored_mask else gr.skip()


def painted_mask(value: Any, only_painted: bool) -> Image.Image | None:
    """The editor's strokes as a mask (white where painted), when the box is ticked and
    something is painted; None otherwise (the run is then an ordinary edit)."""
    if not only_painted or not isinstance(value, dict):
        return None
    mask: Image.Image | None = None
    for layer in value.get("layers") or []:
        if isinstance(layer, Image.Image):
            alpha = layer.convert("RGBA").getchannel("A").point(lambda v: 255 if v else 0)
            mask = alpha if mask is None else ImageChops.lighter(mask, alpha)
    return mask if mask is not None and mask.getbbox() else None
