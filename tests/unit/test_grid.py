"""Tests for backend.grid: cell order, label placement, failed cells, aspect ratio, limits."""

from __future__ import annotations

import pytest
from PIL import Image

from backend.grid import FAILED_GREY, Axis, make_grid

CELL = 64  # small cells keep the tests fast

X4 = Axis("LoRA 1 scale", ("0.4", "0.7", "1.0", "1.3"))
Y2 = Axis("Seed", ("1", "2"))


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> Image.Image:
    return Image.new("RGB", size, colour)


def distinct_colours(n: int) -> list[tuple[int, int, int]]:
    # Far apart channels, so resampling can never blur one into another.
    return [(20 + 25 * i, 200 - 20 * (i % 5), 40 * (i % 6)) for i in range(n)]


def centre(box):
    left, top, right, bottom = box
    return (left + right) // 2, (top + bottom) // 2


def intersects(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_cells_are_in_row_major_order():
    colours = distinct_colours(8)
    grid, layout = make_grid([solid(c) for c in colours], X4, Y2, cell_size=CELL)
    assert grid.mode == "RGB"
    assert len(layout.cell_boxes) == 8
    for colour, box in zip(colours, layout.cell_boxes):
        assert grid.getpixel(centre(box)) == colour
    # Row-major: cell 1 is right of cell 0, cell 4 is below cell 0.
    boxes = layout.cell_boxes
    assert boxes[1][0] > boxes[0][2] and boxes[1][1] == boxes[0][1]
    assert boxes[4][1] > boxes[0][3] and boxes[4][0] == boxes[0][0]


@pytest.mark.parametrize("cell_size", [CELL, 200])
def test_labels_are_the_axes_and_stay_off_the_cells(cell_size):
    y = Axis("Guidance scale (long name)", ("2.5", "10.0"))
    grid, layout = make_grid([solid((255, 0, 0))] * 8, X4, y, cell_size=cell_size)
    texts = [text for text, _ in layout.labels]
    assert texts == [X4.name, *X4.values, y.name, *y.values]
    for text, box in layout.labels:
        left, top, right, bottom = box
        assert 0 <= left < right <= grid.width and 0 <= top < bottom <= grid.height, text
        for cell in layout.cell_boxes:
            assert not intersects(box, cell), (text, box, cell)
    # Column labels sit above their column, row labels left of their row.
    for (_, box), cell in zip(layout.labels[1:5], layout.cell_boxes[:4]):
        assert box[3] <= cell[1] and cell[0] <= centre(box)[0] <= cell[2]
    for (_, box), cell in zip(layout.labels[6:], layout.cell_boxes[::4]):
        assert box[2] <= cell[0] and cell[1] <= centre(box)[1] <= cell[3]


def test_labels_have_ink_inside_their_boxes():
    grid, layout = make_grid([solid((255, 255, 255))] * 8, X4, Y2, cell_size=CELL)
    for text, box in layout.labels:
        colours = grid.crop(box).getcolors(maxcolors=1 << 16)
        assert any(sum(c) < 300 for _, c in colours), text  # some dark pixels drawn


def test_one_axis_grid_is_one_row_without_y_labels():
    colours = distinct_colours(3)
    x = Axis("Steps", ("10", "20", "30"))
    grid, layout = make_grid([solid(c) for c in colours], x, cell_size=CELL)
    assert [text for text, _ in layout.labels] == ["Steps", "10", "20", "30"]
    assert len({box[1] for box in layout.cell_boxes}) == 1
    for colour, box in zip(colours, layout.cell_boxes):
        assert grid.getpixel(centre(box)) == colour
    # No left margin beyond what the cells need.
    assert layout.cell_boxes[0][0] == 0


def test_none_cells_are_grey():
    cells = [solid((255, 0, 0)), None, solid((0, 0, 255)), None]
    grid, layout = make_grid(cells, X4, cell_size=CELL)
    for i in (1, 3):
        left, top, _, _ = layout.cell_boxes[i]
        assert grid.getpixel((left + 2, top + 2)) == FAILED_GREY
    left, top, _, _ = layout.cell_boxes[0]
    assert grid.getpixel((left + 2, top + 2)) == (255, 0, 0)


def test_cells_take_the_results_shape_and_a_different_one_fits_inside_with_white_bands():
    """Square cells left a sweep of wide results half white; the cells now have the first
    result's shape, and an image of another shape is fitted whole inside its cell."""
    wide = solid((0, 128, 0), size=(200, 100))  # 2:1
    tall = solid((0, 0, 128), size=(50, 100))  # 1:2
    grid, layout = make_grid([wide, wide, tall], Axis("Seed", ("1", "2", "3")), cell_size=CELL)
    for box in layout.cell_boxes:
        left, top, right, bottom = box
        assert (right - left, bottom - top) == (CELL, CELL // 2)
    left, top, right, bottom = layout.cell_boxes[0]
    for corner in ((left + 1, top + 1), (right - 2, bottom - 2)):
        assert grid.getpixel(corner) == (0, 128, 0)  # no white band: the whole cell is the image
    left, top, right, bottom = layout.cell_boxes[2]
    cx, cy = centre(layout.cell_boxes[2])
    assert grid.getpixel((left + 2, cy)) == (255, 255, 255)  # band left
    assert grid.getpixel((right - 2, cy)) == (255, 255, 255)  # band right
    assert grid.getpixel((cx, top + 1)) == (0, 0, 128)  # full height used
    assert grid.getpixel((cx, bottom - 2)) == (0, 0, 128)
    tall_grid, tall_layout = make_grid([tall, None], Axis("Seed", ("1", "2")), cell_size=CELL)
    assert [(r - lft, b - t) for lft, t, r, b in tall_layout.cell_boxes] == [(CELL // 2, CELL)] * 2
    left, top, _, _ = tall_layout.cell_boxes[1]
    assert tall_grid.getpixel((left + 2, top + 2)) == FAILED_GREY


def test_a_cell_a_stop_left_undone_says_so_in_its_own_box_only():
    x3 = Axis("Seed", ("1", "2", "3"))
    cells = [solid((200, 0, 0)), None, None]
    failed, layout = make_grid(cells, x3, cell_size=CELL)
    stopped, same_layout = make_grid(cells, x3, cell_size=CELL, missing={1: "stopped"})
    assert same_layout == layout
    box = layout.cell_boxes[1]
    changed = [(px, py) for px in range(failed.width) for py in range(failed.height)
               if failed.getpixel((px, py)) != stopped.getpixel((px, py))]
    assert changed  # another word ...
    assert all(box[0] <= px < box[2] and box[1] <= py < box[3] for px, py in changed)  # ... in cell 2 alone
    assert stopped.getpixel((box[0] + 2, box[1] + 2)) == FAILED_GREY  # the same grey box


def test_small_images_are_scaled_up_to_the_cell():
    grid, layout = make_grid([solid((0, 128, 0), size=(8, 8))], Axis("Seed", ("1",)), cell_size=CELL)
    left, top, right, bottom = layout.cell_boxes[0]
    assert grid.getpixel((left + 1, top + 1)) == (0, 128, 0)


@pytest.mark.parametrize(
    ("n_cells", "x", "y", "message"),
    [
        (7, X4, Y2, "needs 8 cells, got 7"),
        (9, X4, Y2, "needs 8 cells, got 9"),
        (2, X4, None, "needs 4 cells, got 2"),
        (0, Axis("Seed", ()), None, "has no values"),
        (0, X4, Axis("Seed", ()), "has no values"),
        (20, X4, Axis("Seed", ("1", "2", "3", "4", "5")), "at most 16"),
        (17, Axis("Seed", tuple(str(i) for i in range(17))), None, "at most 16"),
    ],
)
def test_bad_shapes_raise(n_cells, x, y, message):
    with pytest.raises(ValueError, match=message):
        make_grid([solid((0, 0, 0))] * n_cells, x, y, cell_size=CELL)


def test_sixteen_cells_is_allowed():
    x = Axis("Guidance", ("1", "2", "3", "4"))
    y = Axis("Steps", ("10", "20", "30", "40"))
    _, layout = make_grid([None] * 16, x, y, cell_size=32)
    assert len(layout.cell_boxes) == 16
