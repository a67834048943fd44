"""The labelled grid image of a parameter sweep (like A1111's X/Y plot).

    grid, layout = make_grid(cells, Axis("LoRA 1 scale", ("0.4", "0.7", "1.0", "1.3")),
                             Axis("Seed", ("1", "2")))

The grid is a white RGB image: a top margin holds the X axis name and one value
label above each column; with a Y axis, a left margin holds the Y axis name
(rotated 90°) and one value label left of each row. `GridLayout` reports where
every cell and every label went, so tests (and the UI) need not guess.

Pillow only: no numpy, no torch, so the hosted app can import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

MAX_CELLS = 16  # the app's cap on a sweep
FAILED_GREY = (160, 160, 160)
BLACK = (0, 0, 0)
WHITE = (255, 255, 255)

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Axis:
    name: str  # e.g. "LoRA 1 scale", "Guidance", "Seed", "Steps"
    values: tuple[str, ...]  # the labels, already formatted, e.g. ("0.4", "0.7")


@dataclass(frozen=True)
class GridLayout:
    cell_boxes: tuple[Box, ...]  # (left, top, right, bottom) of each cell, in cell order
    labels: tuple[tuple[str, Box], ...]  # every text drawn and its ink box


def _check(cells: list, x: Axis, y: Axis | None, cell_size: int) -> None:
    if cell_size < 16:
        raise ValueError(f"cell_size must be at least 16 pixels, got {cell_size}")
    for axis in (x, y):
        if axis is not None and not axis.values:
            raise ValueError(f"axis {axis.name!r} has no values")
    expected = len(x.values) * (len(y.values) if y else 1)
    if max(expected, len(cells)) > MAX_CELLS:
        raise ValueError(f"a grid holds at most {MAX_CELLS} cells, got {max(expected, len(cells))}")
    if len(cells) != expected:
        shape = f"{len(x.values)} x {len(y.values)}" if y else f"{len(x.values)}"
        raise ValueError(f"a {shape} grid needs {expected} cells, got {len(cells)}")


def _cell_shape(cells: list[Image.Image | None], size: int) -> tuple[int, int]:
    """A cell's width and height: the first image's shape with its long side `size` (a sweep's
    images share one size, so a grid of wide results is not half white bands); square when
    every cell failed."""
    first = next((cell for cell in cells if cell is not None), None)
    if first is None or first.width == first.height:
        return size, size
    if first.width > first.height:
        return size, max(16, round(size * first.height / first.width))
    return max(16, round(size * first.width / first.height)), size


def _fit(image: Image.Image, shape: tuple[int, int]) -> Image.Image:
    """The image scaled (up or down) to fit the cell's shape, centered on white."""
    width, height = shape
    scale = min(width / image.width, height / image.height)
    w, h = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    # RGBA so transparent pixels become white rather than black.
    scaled = image.convert("RGBA").resize((w, h), Image.Resampling.LANCZOS)
    out = Image.new("RGB", shape, WHITE)
    out.paste(scaled, ((width - w) // 2, (height - h) // 2), scaled)
    return out


def _missing(shape: tuple[int, int], font: ImageFont.FreeTypeFont | ImageFont.ImageFont, word: str) -> Image.Image:
    out = Image.new("RGB", shape, FAILED_GREY)
    ImageDraw.Draw(out).text((shape[0] / 2, shape[1] / 2), word, fill=WHITE, font=font, anchor="mm")
    return out


def make_grid(
    cells: list[Image.Image | None], x: Axis, y: Axis | None = None, cell_size: int = 384,
    missing: Mapping[int, str] | None = None,
) -> tuple[Image.Image, GridLayout]:
    """cells are in row-major order: cell (row r, column c) is cells[r * len(x.values) + c];
    with y None there is one row. A None cell (a run that failed, or that a Stop left undone) is
    drawn as a grey box with the word `missing` gives for its index ('failed' by default).
    Cells have the first image's shape, its long side cell_size; each image is scaled to fit its
    cell keeping its aspect ratio (centered on white)."""
    _check(cells, x, y, cell_size)
    cols, rows = len(x.values), (len(y.values) if y else 1)
    cell_w, cell_h = _cell_shape(cells, cell_size)
    font = ImageFont.load_default(size=max(10, cell_size // 16))
    pad = max(4, cell_size // 48)  # space around labels
    gap = max(2, cell_size // 64)  # space between cells

    # Measure every text first (ink boxes), so the margins fit the longest label.
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def size_of(text: str) -> tuple[int, int]:
        left, top, right, bottom = measure.textbbox((0, 0), text, font=font)
        return int(right - left), int(bottom - top)

    line_h = max(size_of(t)[1] for t in (x.name, *x.values, *(y.values if y else ())))
    top_margin = pad + line_h + pad + line_h + pad  # X name, then the column values
    left_margin = 0
    if y:
        y_name_w, y_name_h = size_of(y.name)
        # The rotated Y name is y_name_h wide; the row values sit to its right.
        left_margin = pad + y_name_h + pad + max(size_of(v)[0] for v in y.values) + pad
    grid_w = cols * cell_w + (cols - 1) * gap
    grid_h = rows * cell_h + (rows - 1) * gap
    width = max(left_margin + grid_w, size_of(x.name)[0] + 2 * pad, *(
        left_margin + c * (cell_w + gap) + (cell_w + size_of(v)[0]) // 2 + pad
        for c, v in enumerate(x.values)))
    height = top_margin + grid_h
    if y:  # a long rotated Y name may need more height than the rows give
        height = max(height, top_margin + y_name_w + pad)
    image = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(image)
    labels: list[tuple[str, Box]] = []

    def put(text: str, left: int, top: int) -> None:
        """Draw text so its ink box starts exactly at (left, top), and record that box."""
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        draw.text((left - x0, top - y0), text, fill=BLACK, font=font)
        labels.append((text, (left, top, int(left + x1 - x0), int(top + y1 - y0))))

    # X axis name centered over the grid; clamped so it stays inside the image.
    name_w = size_of(x.name)[0]
    put(x.name, max(pad, left_margin + (grid_w - name_w) // 2), pad)
    for c, value in enumerate(x.values):
        center = left_margin + c * (cell_w + gap) + cell_w // 2
        put(value, max(0, center - size_of(value)[0] // 2), pad + line_h + pad)

    if y:
        # Rotated text: render on its own strip, turn it, paste it centred on the rows.
        strip = Image.new("RGB", (y_name_w, y_name_h), WHITE)
        x0, y0, _, _ = draw.textbbox((0, 0), y.name, font=font)
        ImageDraw.Draw(strip).text((-x0, -y0), y.name, fill=BLACK, font=font)
        strip = strip.rotate(90, expand=True)
        top = top_margin + max(0, (grid_h - strip.height) // 2)
        image.paste(strip, (pad, top))
        labels.append((y.name, (pad, top, pad + strip.width, top + strip.height)))
        for r, value in enumerate(y.values):
            value_w, value_h = size_of(value)
            middle = top_margin + r * (cell_h + gap) + cell_h // 2
            put(value, left_margin - pad - value_w, middle - value_h // 2)

    boxes: list[Box] = []
    for i, cell in enumerate(cells):
        r, c = divmod(i, cols)
        left = left_margin + c * (cell_w + gap)
        top = top_margin + r * (cell_h + gap)
        shape = (cell_w, cell_h)
        word = (missing or {}).get(i, "failed")
        image.paste(_fit(cell, shape) if cell is not None else _missing(shape, font, word), (left, top))
        boxes.append((left, top, left + cell_w, top + cell_h))

    return image, GridLayout(cell_boxes=tuple(boxes), labels=tuple(labels))
