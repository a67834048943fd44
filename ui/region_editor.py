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
from PIL import Image, ImageChops

HINT = ("Paint over the part of image 1 to change, then tick the box: the rest stays image 1 pixel for "
        "pixel (the edit fades out over the feather's width around what you painted).")


def region_editor(place: Callable[[str], Any]) -> tuple[gr.Accordion, gr.ImageEditor, gr.Checkbox]:
    """The region panel's components; `place` makes a form field's component (ui/layout.py).
    Returns (panel, editor, only_painted) for the page's events."""
    with gr.Accordion("Edit only a region", open=False, elem_id="region-panel") as panel:
        gr.Markdown(HINT, elem_classes=["hint"])
        editor = gr.ImageEditor(
            label="Paint the area to change", type="pil", image_mode="RGBA", sources=(), elem_id="region-editor",
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
EDITOR, ONLY_PAINTED = "region_editor", "region_only"
PAGE_EXTRA = ((EDITOR, None), (ONLY_PAINTED, False))


def take_painted_region(values: dict[str, Any]) -> None:
    """Move the editor's strokes into the run's `mask` (in place) when the box is ticked:
    with nothing painted, an empty mask, which the run refuses naming the mask."""
    editor, only_painted = values.pop(EDITOR, None), values.pop(ONLY_PAINTED, False)
    if only_painted:
        values["mask"] = painted_mask(editor, True) or Image.new("L", (1, 1), 0)


def follow_image_1(image_1: Any) -> Any:
    """The editor's picture when image 1 changes: image 1 with no strokes (None: empty)."""
    if not image_1:
        return None
    return {"background": image_1, "layers": [], "composite": image_1}


def shown_again(image_1: Any, current: Any) -> Any:
    """The editor's picture when its panel opens (an editor set while folded away shows
    nothing): image 1 again, unless strokes were painted (they are kept)."""
    layers = current.get("layers") if isinstance(current, dict) else None
    if any(isinstance(layer, Image.Image) and layer.getbbox() for layer in layers or []):
        return current
    return follow_image_1(image_1)


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
