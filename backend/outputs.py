"""Saving finished runs so that nothing produced is lost when the page reloads.

Layout: OUTPUTS/YYYY-MM-DD/<time>-<id>/image-1.png ... plus recipe.json (the
request, the seed used, timings, backend; never a key). PNGs also carry their own
recipe (backend/recipes.py). Every write is atomic: written to a temporary name in
the same folder, then renamed.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .events import Result
from .recipes import embed_recipe
from .request import EditRequest


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


def recipe_for(request: EditRequest, result: Result, backend: str, endpoint: str) -> dict[str, Any]:
    """Everything needed to redo the run. Local image paths are reduced to file names."""
    fields = request.model_dump(mode="json")
    fields["image_urls"] = [
        u if u.startswith(("http://", "https://")) else Path(u).name if not u.startswith("data:") else "data-uri"
        for u in request.image_urls
    ]
    return {
        "request": fields,
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


def save_run(root: Path, request: EditRequest, result: Result, backend: str, endpoint: str) -> SavedRun:
    now = time.localtime()
    folder = Path(root) / time.strftime("%Y-%m-%d", now) / (
        time.strftime("%H%M%S", now) + "-" + secrets.token_hex(4)
    )
    folder.mkdir(parents=True, exist_ok=True)
    recipe = recipe_for(request, result, backend, endpoint)
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
    atomic_write(folder / "recipe.json", json.dumps(recipe, indent=2).encode())
    # The references too, so that restoring the run from history gives back every input.
    references = []
    for index, source in enumerate(request.image_urls, start=1):
        if source.startswith(("http://", "https://", "data:")) or not Path(source).is_file():
            continue
        path = folder / f"reference-{index}{Path(source).suffix.lower() or '.png'}"
        atomic_write(path, Path(source).read_bytes())
        references.append(path)
    return SavedRun(folder=folder, image_paths=tuple(paths), recipe=recipe, reference_paths=tuple(references))
