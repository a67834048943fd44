"""Region edits on the page: paint on image 1, tick "Edit only the painted area".

The editor shows image 1 (it follows the first slot) with a brush layer (brush sizes,
eraser, clear from the editor's own tools); the strokes become the form's `mask` field (a
hidden image: white = change), which the run reads like any field, so the API's `mask`
argument and the page take the same path (backend/region.py does the edit).

The editor is never an input or output of a server event, only of events that run in the
browser. Gradio's page re-reads every component that a server event ever read or wrote, and
the layouts around it, at each status message of any event (its loading status), and reading
this editor uploads its picture twice over (background and composite) and its strokes: one
restore and one run made about 250 uploads, and on a busy server Run waited over a minute
behind them. So the strokes are copied, in the browser, into a hidden image (`strokes`) when Run,
Queue or Run sweep is clicked after something was painted (assets/region_sync.js clicks `take`
and holds the click until the copy is done), and runs read that; a restored mask comes back
through a hidden image too (`tint`). Not at each stroke: each copy uploads the picture too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr
from PIL import Image, ImageOps

HINT = ("Paint over the part of image 1 to change, then tick the box: the rest stays image 1 pixel for "
        "pixel (the edit fades out over the feather's width around what you painted). A run restored from "
        "History shows its mask tinted on image 1 and uses it until you paint a new one.")


@dataclass(frozen=True)
class RegionEditor:
    """The region panel's components (see the module's docstring for why the editor is never an
    input or output of a server event)."""

    panel: gr.Accordion
    editor: gr.ImageEditor
    only_painted: gr.Checkbox
    strokes: gr.Image  # the editor's brush layer, copied in the browser before a run, after painting
    take: gr.Button  # clicked by assets/region_sync.js before a run, after painting: copies the strokes
    tint: gr.Image  # a restored mask tinted on image 1, made by the server, shown in the browser


def region_editor(place: Callable[[str], Any]) -> RegionEditor:
    """The region panel's components; `place` makes a form field's component (ui/layout.py)."""
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
    take = gr.Button("", visible="hidden", elem_id="region-take")
    strokes = gr.Image(type="pil", image_mode="RGBA", visible=False, elem_id="region-strokes")
    tint = gr.Image(type="filepath", visible=False, elem_id="region-tint")
    return RegionEditor(panel, editor, only_painted, strokes, take, tint)


# The page's run and sweep take the strokes and the box too (not the API's): the mask is made
# from what was painted when Run is clicked.
STROKES, ONLY_PAINTED, RESTORED = "region_strokes", "region_only", "restored_mask"
PAGE_EXTRA = ((STROKES, None), (ONLY_PAINTED, False), (RESTORED, None))


def take_painted_region(values: dict[str, Any]) -> None:
    """Move the painted strokes into the run's `mask` (in place) when the box is ticked, else
    the mask of a run restored from History (shown tinted on image 1); with neither, an empty
    mask, which the run refuses naming the mask."""
    strokes, only_painted = values.pop(STROKES, None), values.pop(ONLY_PAINTED, False)
    restored = values.pop(RESTORED, None)
    if only_painted:
        values["mask"] = painted_mask(strokes, True) or restored or Image.new("L", (1, 1), 0)


# The editor follows image 1 in the browser, at once (a server answer could land after the first
# strokes and wipe them), at most 1536 pixels a side, set afresh only for another picture, its
# copied strokes dropped then (assets/region_sync.js studioEditorFollow).
FOLLOW_IMAGE_1_JS = "(image) => window.studioEditorFollow(image)"
# The strokes: the editor's brush layer (uploaded by the editor as it is read), or none.
TAKE_STROKES_JS = "(value) => (value && value.layers && value.layers[0]) || null"
# Run, held while strokes are being copied, may go (assets/region_sync.js).
STROKES_TAKEN_JS = "() => window.studioRegionSynced && window.studioRegionSynced()"
# A restored mask, tinted on image 1, goes into the editor (its own strokes dropped); no tint
# leaves the editor as it is, or shows plain image 1 where a tint was (studioEditorTint).
SHOW_TINT_JS = "(tint, image) => window.studioEditorTint(tint, image)"
# ... and the region panel opens to show a new tint (a step of its own: opening the panel makes
# the editor hand over its picture, which must be the tinted one by then).
OPEN_PANEL_JS = "() => window.studioEditorOpenPanel() ? {__type__: 'update', open: true} : undefined"


def tinted(image_1: Any, restored_mask: str) -> Any:
    """Image 1 tinted where a restored run's mask is (the run uses that mask until strokes are
    painted or another image 1 is uploaded)."""
    with Image.open(image_1) as opened:
        picture = ImageOps.exif_transpose(opened).convert("RGB")
    with Image.open(restored_mask) as opened:
        mask = opened.convert("L").resize(picture.size, Image.Resampling.NEAREST)
    tint = Image.new("RGB", picture.size, (255, 45, 85))
    return Image.composite(Image.blend(picture, tint, 0.5), picture, mask)


def show_restored(image_1: Any, restored_mask: str | None) -> Any:
    """When image 1 changes or a run is restored: with a restored mask, image 1 tinted where it
    is (for the editor: SHOW_TINT_JS), else None (the editor already shows image 1:
    FOLLOW_IMAGE_1_JS)."""
    return tinted(image_1, restored_mask) if image_1 and restored_mask else None


def painted_mask(strokes: Any, only_painted: bool) -> Image.Image | None:
    """The strokes (the editor's brush layer) as a mask (white where painted), when the box is
    ticked and something is painted; None otherwise (the run is then an ordinary edit)."""
    if not only_painted or not isinstance(strokes, Image.Image):
        return None
    mask = strokes.convert("RGBA").getchannel("A").point(lambda v: 255 if v else 0)
    return mask if mask.getbbox() else None
