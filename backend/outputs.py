"""Saving finished runs so that nothing produced is lost when the page reloads.

Layout: OUTPUTS/YYYY-MM-DD/<time>-<id>/image-1.png ... plus `.token` (the run's star
token) and recipe.json (the request, the backend's options, the seed used, timings,
backend, the references it used; never a key). PNGs also carry their own recipe
(backend/recipes.py), without the references. Every write is atomic: written to a
temporary name in the same folder, then renamed, and recipe.json is written last, so
a run folder with a recipe.json is complete.

References are kept once per content, as they were sent (prepared by
backend/images.py: at most about a megapixel), in OUTPUTS/references/<sha256>.<ext>,
shared by every run that used them; a run's recipe.json lists the ones it used.

The folder has a size cap (STUDIO_OUTPUTS_MAX_MB): after each saved run the oldest
complete runs are removed until the total fits, except starred runs (a `.starred`
marker written when a run is starred in the history, only with the run's token) and
runs of the last few minutes (their files may still be on their way to a browser). A
reference goes when no remaining run uses it. Starred runs have a cap of their own
(STUDIO_STARRED_MAX_MB): past it, the runs starred longest ago lose their star.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .errors import StudioError
from .events import Result
from .images import prepare_reference, read_source
from .recipes import embed_recipe
from .request import EditRequest

log = logging.getLogger(__name__)

STAR_MARKER = ".starred"
TOKEN_FILE = ".token"  # the token issued with the run's result: only it can star the run
MASK_FILE = "mask.png"  # a region edit's mask (white = changed), beside its images
REFERENCES = "references"  # OUTPUTS/references/<sha256>.<ext>: each reference once, shared by runs
RECENT_SECONDS = 600.0  # runs (and references used) younger than this are never removed by the cap
_prune_lock = threading.Lock()  # two runs finishing together prune one at a time
_store_lock = threading.Lock()  # storing a reference and removing an unused one never interleave
# sha256 of a reference as uploaded -> the name it is stored under: a rerun stores without decoding
_known: OrderedDict[str, str] = OrderedDict()
KNOWN_MAX = 512


@dataclass(frozen=True)
class SavedRun:
    folder: Path
    image_paths: tuple[Path, ...]
    recipe: dict[str, Any]
    reference_paths: tuple[Path, ...] = ()
    token: str = field(default="", repr=False)  # stars the run (set_starred); sent only to the session


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
    references: Sequence[Path] | None = None, region: Any = None,
) -> SavedRun:
    """Save a finished run. `references`: the run's stored references, when the caller
    stored them already (a sweep, once for all its cells); else they are stored here.
    `region` (backend/region.py): its mask is saved beside the images as mask.png (at the
    images' size, which is image 1's: the page paints on a smaller picture, and the API takes a
    mask of any size) and the recipe says so, with the feather."""
    now = time.localtime()
    folder = Path(root) / time.strftime("%Y-%m-%d", now) / (
        time.strftime("%H%M%S", now) + "-" + secrets.token_hex(4)
    )
    folder.mkdir(parents=True, exist_ok=True)
    recipe = recipe_for(request, options, result, backend, endpoint)
    mask_png = None
    if region is not None:
        buffer = io.BytesIO()
        (region.mask_like(result.images[0].data) if result.images else region.mask).save(buffer, format="PNG")
        mask_png = buffer.getvalue()  # each PNG carries it too, for a restore from the PNG
        atomic_write(folder / MASK_FILE, mask_png)
        recipe = {**recipe, "region": {"mask": MASK_FILE, "feather": region.feather}}
    paths = []
    for index, image in enumerate(result.images, start=1):
        path = folder / f"image-{index}.{image.extension}"
        data = image.data
        if image.content_type == "image/png":
            # Each PNG carries the recipe that remakes it: its own seed, one image.
            seed = result.seeds[index - 1] if len(result.seeds) >= index else result.seed
            own = {**recipe, "seed": seed, "image": index}
            data = embed_recipe(data, own, mask_png)
        atomic_write(path, data)
        paths.append(path)
    # The references too, so that restoring the run from history gives back every input.
    if references is None:
        references = store_references(root, request.image_urls)
    token = secrets.token_urlsafe(24)
    atomic_write(folder / TOKEN_FILE, token.encode())
    listed = {**recipe, "references": [f"{REFERENCES}/{path.name}" for path in references]}
    atomic_write(folder / "recipe.json", json.dumps(listed, indent=2).encode())  # last: the run is complete
    return SavedRun(folder=folder, image_paths=tuple(paths), recipe=recipe, reference_paths=tuple(references),
                    token=token)


def store_references(root: Path, sources: Sequence[str]) -> tuple[Path, ...]:
    """Each reference given as a file or a data: URI (a URL is fal's to fetch) as it was
    sent: prepared (backend/images.py), stored once as OUTPUTS/references/<sha256>.<ext>.
    One that cannot be kept (its upload gone) is left out, with a warning in the log."""
    stored = []
    for index, source in enumerate(sources, start=1):
        if source.startswith(("http://", "https://")):
            continue
        try:
            stored.append(_store_reference(Path(root), source, f"image {index}"))
        except (StudioError, OSError) as error:
            log.warning("reference %d of a run was not kept: %s", index, getattr(error, "message", error))
    return tuple(stored)


def _store_reference(root: Path, source: str, label: str) -> Path:
    raw = read_source(source, label)
    raw_key = hashlib.sha256(raw).hexdigest()
    folder = root / REFERENCES
    with _store_lock:
        name = _known.get(raw_key)
        if name and _touch(folder / name):
            _known.move_to_end(raw_key)
            return folder / name
    prepared = prepare_reference(raw, label)  # in one of the few decode slots
    extension = prepared.content_type.removeprefix("image/").replace("jpeg", "jpg")
    path = folder / f"{hashlib.sha256(prepared.data).hexdigest()}.{extension}"
    with _store_lock:
        folder.mkdir(parents=True, exist_ok=True)
        if not _touch(path):
            atomic_write(path, prepared.data)
        _known[raw_key] = path.name
        while len(_known) > KNOWN_MAX:
            _known.popitem(last=False)
    return path


def _touch(path: Path) -> bool:
    """Mark a stored reference as just used (the cap keeps recent ones); False when it is gone."""
    try:
        os.utime(path)
    except OSError:
        return False
    return True


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


def set_starred(root: Path, path: str | Path, starred: bool, token: str | None = None) -> bool:
    """Mark (or unmark) the run holding `path` as starred, which keeps it from the size cap.

    Only with the token issued with the run's result (SavedRun.token, kept in the history
    of the session that made it): without it (a raw HTTP call naming any run) nothing changes."""
    folder = run_folder_of(root, path)
    if folder is None or not _token_matches(folder, token):
        return False
    marker = folder / STAR_MARKER
    if starred:
        marker.touch()
    else:
        marker.unlink(missing_ok=True)
    return True


def _token_matches(folder: Path, token: str | None) -> bool:
    try:
        issued = (folder / TOKEN_FILE).read_bytes().strip()
    except OSError:  # a run saved before tokens, or not a run
        return False
    given = token.encode("utf-8", "replace") if isinstance(token, str) else b""
    return bool(issued) and hmac.compare_digest(issued, given)


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
            if not entry.is_dir() or entry.name.startswith(".") or entry.name == REFERENCES:
                continue
            folders = [entry] if entry.name.startswith("sweep-") else [r for r in entry.iterdir() if r.is_dir()]
            found.extend((folder.stat().st_mtime, folder) for folder in folders)
        except OSError:  # removed meanwhile
            continue
    return sorted(found)


@dataclass
class _Scan:
    """What the outputs folder holds: its runs (oldest first) and stored references."""

    runs: list[tuple[float, Path]]
    sizes: dict[Path, int]  # bytes of each run folder
    uses: dict[Path, list[str]]  # the stored references each run lists
    stored: dict[str, int]  # bytes of each stored reference
    users: Counter[str]  # how many runs use each stored reference

    @classmethod
    def of(cls, root: Path) -> _Scan:
        runs = _candidates(root)
        uses = {folder: _references_of(folder) for _, folder in runs}
        stored: dict[str, int] = {}
        store = root / REFERENCES
        for path in store.iterdir() if store.is_dir() else ():
            try:
                if not path.name.startswith("."):
                    stored[path.name] = path.stat().st_size
            except OSError:  # removed meanwhile
                continue
        return cls(runs, {folder: folder_bytes(folder) for _, folder in runs}, uses, stored,
                   Counter(name for names in uses.values() for name in names))

    def total(self) -> int:
        return sum(self.sizes.values()) + sum(self.stored.values())

    def starred_bytes(self, folders: list[Path]) -> int:
        shared = {name for folder in folders for name in self.uses[folder]}
        return sum(self.sizes[f] for f in folders) + sum(self.stored.get(name, 0) for name in shared)


def _references_of(folder: Path) -> list[str]:
    """The stored references a run lists in its recipe.json (none for sweeps and older runs)."""
    try:
        listed = json.loads((folder / "recipe.json").read_text()).get("references")
    except (OSError, ValueError, AttributeError):
        return []
    return [Path(name).name for name in listed if isinstance(name, str)] if isinstance(listed, list) else []


def _drop_unused(root: Path, scan: _Scan, names: Sequence[str], now: float) -> int:
    """Remove those of `names` that no run uses any more (and not used in the last
    RECENT_SECONDS: a run being saved may be about to list it). Returns the bytes freed."""
    freed = 0
    for name in dict.fromkeys(names):
        if scan.users[name] > 0 or name not in scan.stored:
            continue
        path = root / REFERENCES / name
        with _store_lock:
            try:
                if now - path.stat().st_mtime < RECENT_SECONDS:
                    continue
                path.unlink()
            except OSError:
                continue
        freed += scan.stored.pop(name)
    return freed


def _limit_starred(scan: _Scan, max_bytes: int) -> list[Path]:
    """Unstar the runs starred longest ago until the starred ones hold at most `max_bytes`
    (their folders and the references they use). Returns the folders unstarred."""
    starred = []
    for _, folder in scan.runs:
        try:
            starred.append(((folder / STAR_MARKER).stat().st_mtime, folder))
        except OSError:  # not starred
            continue
    folders = [folder for _, folder in sorted(starred)]
    unstarred = []
    while folders and scan.starred_bytes(folders) > max_bytes:
        folder = folders.pop(0)
        (folder / STAR_MARKER).unlink(missing_ok=True)
        unstarred.append(folder)
    if unstarred:
        log.info("starred cap: %d runs starred longest ago lost their star", len(unstarred))
    return unstarred


def enforce_cap(
    root: Path, max_bytes: int | None, now: float | None = None, starred_max_bytes: int | None = None,
) -> list[Path]:
    """Remove the oldest complete, unstarred runs (and sweeps) until the outputs folder
    holds at most `max_bytes` (None or 0: no cap). Returns the folders removed, oldest first.

    Oldest means the earliest finished: a folder's time is when its last file (the
    recipe, written last) was added. Starred runs and folders of the last
    RECENT_SECONDS are kept even if the folder stays over the cap; but first, past
    `starred_max_bytes` of starred runs, the runs starred longest ago lose their star.
    A stored reference goes once no remaining run uses it."""
    root = Path(root)
    if not (max_bytes or starred_max_bytes) or not root.is_dir():
        return []
    now = time.time() if now is None else now
    with _prune_lock:
        scan = _Scan.of(root)
        if starred_max_bytes:
            _limit_starred(scan, starred_max_bytes)
        if not max_bytes:
            return []
        total = scan.total()
        if total > max_bytes:  # references no run uses (their runs removed while they were recent)
            total -= _drop_unused(root, scan, list(scan.stored), now)
        removed = []
        for finished, folder in scan.runs:
            if total <= max_bytes:
                break
            complete = (folder / "recipe.json").is_file() or (folder / "sweep.json").is_file()
            if not complete or now - finished < RECENT_SECONDS or (folder / STAR_MARKER).exists():
                continue
            shutil.rmtree(folder, ignore_errors=True)
            total -= scan.sizes[folder]
            scan.users.subtract(scan.uses[folder])
            total -= _drop_unused(root, scan, scan.uses[folder], now)
            removed.append(folder)
            if folder.parent != root:
                try:
                    folder.parent.rmdir()  # the day's folder, once empty
                except OSError:
                    pass
        if removed:
            log.info("outputs cap: removed %d oldest runs; %.0f MB kept", len(removed), total / 2**20)
        return removed
