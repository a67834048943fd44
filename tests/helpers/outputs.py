"""Run folders in an outputs folder, made as `backend.outputs.save_run` leaves them."""

from __future__ import annotations

import os
import time
from pathlib import Path

from backend import outputs

HOUR = 3600.0


def make_run(root: Path, day: str, name: str, size: int, *, age: float, starred=False, complete=True) -> Path:
    """A run folder as save_run leaves it, `size` bytes of image, finished `age` seconds ago."""
    folder = root / day / name
    folder.mkdir(parents=True)
    (folder / "image-1.png").write_bytes(b"x" * size)
    if complete:
        (folder / "recipe.json").write_text("{}")
    if starred:
        (folder / outputs.STAR_MARKER).touch()
    finished = time.time() - age
    os.utime(folder, (finished, finished))
    return folder
