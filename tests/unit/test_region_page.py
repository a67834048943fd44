"""The page's side of region edits (ui/region_editor.py): the copied strokes become the run's
mask only when the box is ticked; a restored run's mask is used until strokes are painted; the
tint for the editor exists only for a restored mask."""

from __future__ import annotations

from PIL import Image

from ui.region_editor import ONLY_PAINTED, RESTORED, STROKES, show_restored, take_painted_region


def strokes(painted: bool) -> Image.Image:
    """The editor's brush layer as the page copies it: transparent, a red stroke when painted."""
    layer = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    if painted:
        layer.paste((255, 45, 85, 255), (10, 10, 20, 15))
    return layer


def test_the_strokes_are_the_mask_only_when_the_box_is_ticked():
    values = {STROKES: strokes(True), ONLY_PAINTED: True, RESTORED: None}
    take_painted_region(values)
    assert values["mask"].getbbox() == (10, 10, 20, 15) and STROKES not in values
    unticked = {STROKES: strokes(True), ONLY_PAINTED: False, RESTORED: None}
    take_painted_region(unticked)
    assert "mask" not in unticked  # an ordinary edit of the whole image


def test_a_restored_mask_is_used_until_strokes_are_painted_and_nothing_painted_is_refused_later(tmp_path):
    restored = str(tmp_path / "mask.png")
    Image.new("L", (40, 30), 255).save(restored)
    kept = {STROKES: strokes(False), ONLY_PAINTED: True, RESTORED: restored}
    take_painted_region(kept)
    assert kept["mask"] == restored
    painted = {STROKES: strokes(True), ONLY_PAINTED: True, RESTORED: restored}
    take_painted_region(painted)
    assert painted["mask"].getbbox() == (10, 10, 20, 15)
    nothing = {STROKES: None, ONLY_PAINTED: True, RESTORED: None}
    take_painted_region(nothing)
    assert nothing["mask"].getbbox() is None  # the run then says "Mask: nothing is painted"


def test_the_editor_gets_a_tint_only_for_a_restored_mask(tmp_path):
    image_1, mask = tmp_path / "image-1.png", tmp_path / "mask.png"
    Image.new("RGB", (40, 30), (0, 0, 255)).save(image_1)
    shape = Image.new("L", (20, 15), 0)
    shape.paste(255, (0, 0, 10, 15))  # the left half, at half the size: scaled to image 1
    shape.save(mask)
    assert show_restored(str(image_1), None) is None and show_restored(None, str(mask)) is None
    tint = show_restored(str(image_1), str(mask))
    assert tint.size == (40, 30)
    assert tint.getpixel((5, 5)) != (0, 0, 255) and tint.getpixel((35, 5)) == (0, 0, 255)
