"""Saving finished runs so that nothing produced is lost when the page reloads.

Layout: OUTPUTS/YYYY-MM-DD/<time>-<id>/image-1.png ... plus recipe.json (the
request, the backend's options, the seed used, timings, backend; never a key). PNGs also carry their own
recipe (backend/recipes.py). Every write is atomic: written to a temporary name in
the same folder, then renamed, and recipe.json is written last, so a run folder with
a recipe.json is complete.

The folder has a size cap (STUDIO_OUTPUTS_MAX_MB): after each saved run the oldest
complete runs are removed until the total fits, except starred runs (a `.starred`
marker the page writes when a run is starred in the history) and runs of the last
few minutes (their files may still be on their way to a browser).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .events import Result
from .recipes import embed_recipe
from .request import EditRequest

log = logging.getLogger(__name__)

STAR_MARKER = ".starred"
RECENT_SECONDS = 600.0  # runs younger than this are never removed by the cap
_prune_lock = threading.Lock()  # two runs finishing together prune one at a time


@dataclass(frozen=True)
class SavedRun:
    folder: Path
    image_paths: tuple[Path, ...]
    recipe: dict[str, Any]
    reference_paths: tuple[Path, ...] = ()


def atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def recipe_for(
    request: EditRequest, options: BaseModel, result: Result, backend: str, endpoint: str,
) -> dict[str, Any]:
    """Everything needed to redo the run: the request and the backend's options.
    Local image paths are reduced to file names. `endpoint` is what made the images:
    fal's endpoint, or the local model."""
    fields = request.model_dump(mode="json")
    fields["image_urls"] = [
        u if u.startswith(("http://", "https://")) else Path(u).name if not u.startswith("data:") else "data-uri"
        for u in request.image_urls
    ]
    return {
        "request": fields,
        "options": options.model_dump(mode="json"),
        "seed": result.seed,
        "seeds": list(result.seeds),
        "prompt_used": result.prompt,
        "timings": result.timings,
        "nsfw": [img.nsfw for img in result.images],
        "backend": backend,
        "endpoint": endpoint,
        "request_id": result.request_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def save_run(
    root: Path, request: EditRequest, options: BaseModel, result: Result, backend: str, endpoint: str,
) -> SavedRun:
    now = time.localtime()
    folder = Path(root) / time.strftime("%Y-%m-%d", now) / (
        time.strftime("%H%M%S", now) + "-" + secrets.token_hex(4)
    )
    folder.mkdir(parents=True, exist_ok=True)
    recipe = recipe_for(request, options, result, backend, endpoint)
    paths = []
    for index, image in enumerate(result.images, start=1):
        path = folder / f"image-{index}.{image.extension}"
        data = image.data
        if image.content_type == "image/png":
            # Each PNG carries the recipe that remakes it: its own seed, one image.
            seed = result.seeds[index - 1] if len(result.seeds) >= index else result.seed
            own = {**recipe, "seed": seed, "image": index}
            data = embed_recipe(data, own)
        atomic_write(path, data)
        paths.append(path)
    # The references too, so that restoring the run from history gives back every input.
    references = []
    for index, source in enumerate(request.image_urls, start=1):
        if source.startswith(("http://", "https://", "data:")) or not Path(source).is_file():
            continue
        path = folder / f"reference-{index}{Path(source).suffix.lower() or '.png'}"
        atomic_write(path, Path(source).read_bytes())
        references.append(path)
    atomic_write(folder / "recipe.json", json.dumps(recipe, indent=2).encode())  # last: the run is complete
    return SavedRun(folder=folder, image_paths=tuple(paths), recipe=recipe, reference_paths=tuple(references))


def is_inside(root: Path, path: str | Path) -> bool:
    """Whether `path` (after resolving `..` and links) lies in the outputs folder `root`.

    Paths come back from the browser (the history is kept there), so every file the
    server reads or marks on a browser's word is checked with this first."""
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
    except (ValueError, OSError):
        return False
    return True


def run_folder_of(root: Path, path: str | Path) -> Path | None:
    """The complete run folder (OUTPUTS/DATE/RUN, with a recipe.json) holding `path`, or None."""
    if not path or not is_inside(root, path):
        return None
    folder = Path(path).resolve()
    if folder.is_file():
        folder = folder.parent
    root = Path(root).resolve()
    if folder.parent.parent != root or not (folder / "recipe.json").is_file():
        return None
    return folder


def set_starred(root: Path, path: str | Path, starred: bool) -> bool:
    """Mark (or unmark) the run holding `path` as starred, which keeps it from the size cap."""
    folder = run_folder_of(root, path)
    if folder is None:
        return False
    marker = folder / STAR_MARKER
    if starred:
        marker.touch()
    else:
        marker.unlink(missing_ok=True)
    return True


def folder_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:  # removed meanwhile
                pass
    return total


def _candidates(root: Path) -> list[tuple[float, Path]]:
    """(time, folder) of every run folder (OUTPUTS/DATE/RUN) and sweep folder (OUTPUTS/sweep-*)."""
    found: list[tuple[float, Path]] = []
    for entry in root.iterdir():
        try:
            if not entry.is_dir() or entry.name.startswith("."):
                continue
            folders = [entry] if entry.name.startswith("sweep-") else [r for r in entry.iterdir() if r.is_dir()]
            found.extend((folder.stat().st_mtime, folder) for folder in folders)
        except OSError:  # removed meanwhile
            continue
    return sorted(found)


def enforce_cap(root: Path, max_bytes: int | None, now: float | None = None) -> list[Path]:
    """Remove the oldest complete, unstarred runs (and sweeps) until the outputs folder
    holds at most `max_bytes` (None or 0: no cap). Returns the folders removed, oldest first.

    Oldest means the earliest finished: a folder's time is when its last file (the
    recipe, written last) was added. Starred runs and folders of the last
    RECENT_SECONDS are kept even if the folder stays over the cap."""
    root = Path(root)
    if not max_bytes or not root.is_dir():
        return []
    now = time.time() if now is None else now
    with _prune_lock:
        candidates = _candidates(root)
        sizes = {folder: folder_bytes(folder) for _, folder in candidates}
        total = sum(sizes.values())
        removed = []
        for finished, folder in candidates:
            if total <= max_bytes:
                break
            complete = (folder / "recipe.json").is_file() or (folder / "sweep.json").is_file()
            if not complete or now - finished < RECENT_SECONDS or (folder / STAR_MARKER).exists():
                continue
            shutil.rmtree(folder, ignore_errors=True)
            total -= sizes[folder]
            removed.append(folder)
            if folder.parent != root:
                try:
                    folder.parent.rmdir()  # the day's folder, once empty
                except OSError:
                    pass
        if removed:
            log.info("outputs cap: removed %d oldest runs; %.0f MB kept", len(removed), total / 2**20)
        return removed
