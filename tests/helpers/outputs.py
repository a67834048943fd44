"""Run folders in an outputs folder, made as `backend.outputs.save_run` leaves them."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from backend import outputs

HOUR = 3600.0


def make_run(
    root: Path, day: str, name: str, size: int, *, age: float, starred=False, complete=True,
    token: str | None = None, references: tuple[str, ...] = (), starred_age: float | None = None,
) -> Path:
    """A run folder as save_run leaves it, `size` bytes of image, finished `age` seconds ago
    (starred `starred_age` seconds ago), with its star token and the stored references it lists."""
    folder = root / day / name
    folder.mkdir(parents=True)
    (folder / "image-1.png").write_bytes(b"x" * size)
    if token is not None:
        (folder / outputs.TOKEN_FILE).write_text(token)
    if complete:
        listed = [f"{outputs.REFERENCES}/{reference}" for reference in references]
        (folder / "recipe.json").write_text(json.dumps({"references": listed}) if listed else "{}")
    if starred:
        marker = folder / outputs.STAR_MARKER
        marker.touch()
        starred_at = time.time() - (age if starred_age is None else starred_age)
        os.utime(marker, (starred_at, starred_at))
    finished = time.time() - age
    os.utime(folder, (finished, finished))
    return folder
