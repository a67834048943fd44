"""The results tools: chain edits (use as input, add as reference), compare, downloads.

Plain functions on the gallery's value; ui/wiring.py connects them to the page.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import unicodedata
import zipfile
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from backend.images import decoding
from backend.request import field_limits

RESULT_FORMATS = ("PNG", "JPEG", "WEBP")  # what fal and the local backend return


def pack_images(*slots: str | None) -> list[str | None]:
    """Move images left over empty slots: the page numbers them in the order they are sent."""
    filled = [s for s in slots if s]
    return filled + [None] * (len(slots) - len(filled))


def swap_images(slots: tuple[str | None, ...], index: int) -> list[str | None]:
    """Swap image `index` with the next one (0-based), keeping them packed."""
    values = list(slots)
    values[index], values[index + 1] = values[index + 1], values[index]
    return pack_images(*values)


def swap_buttons(*slots: str | None) -> list[Any]:
    """Swap i and i+1 is enabled while images i and i+1 are both there."""
    return [gr.update(interactive=bool(slots[i] and slots[i + 1])) for i in range(len(slots) - 1)]


def result_caption(number: int, flagged: bool) -> str:
    """A result's caption in the gallery, a fresh run's or a restored one's: "image 2 ⚠ flagged"."""
    return f"image {number}" + (" ⚠ flagged" if flagged else "")


PREVIEW = "preview"  # a running run's intermediate images are captioned "preview · step i of n"
INTERRUPTED = "interrupted preview"  # and, after Stop, this: neither is a result
NO_RESULT = ("There is no finished result to use yet (a stopped run leaves only its interrupted preview): "
             "run an edit first.")


def is_preview(caption: Any) -> bool:
    return isinstance(caption, str) and (caption.startswith(PREVIEW) or caption.startswith(INTERRUPTED))


def finished_results(gallery: Any) -> list[tuple[str, Any]]:
    """The finished results a gallery shows, as (path, caption): not a run's previews."""
    return [(str(path), caption) for path, caption in gallery_pairs(gallery) if path and not is_preview(caption)]


def before_run(gallery: Any, details: Any, last_run: Any, seed: Any) -> dict[str, Any]:
    """What the page shows when Run is clicked, for Stop to bring back (`after_stop`)."""
    return {"gallery": finished_results(gallery), "details": details, "last_run": last_run, "seed": seed}


def after_failure(kept: Any, last_run: Any) -> tuple:
    """After a run: one that made no result (failed, refused) has its page show again the results
    shown before it (ui/run.py); here their details, run and seed come back too (`before_run`),
    for the downloads' names and the code. Outputs: details, last_run, seed."""
    if last_run is not None or not isinstance(kept, dict):
        return gr.skip(), gr.skip(), gr.skip()
    return kept["details"], kept["last_run"], kept["seed"]


def after_stop(gallery: Any, kept: Any, seed: Any = None) -> tuple:
    """Stop: the page as it was before the run (its results, details, run and seed), then the
    run's interrupted preview, captioned so, with the run's seed where its previews said it
    (`seed`, "Seed used" at the moment of Stop: local), so that it can be finished later. A result
    that arrived just before Stop is left as it is, and so is a gallery a stopped sweep never
    touched. Outputs: status, gallery, details, last_run, seed."""
    items = gallery_pairs(gallery)
    if any(not is_preview(caption) for _, caption in items) or not isinstance(kept, dict):
        return "⏹ Stopped.", gr.skip(), gr.skip(), gr.skip(), gr.skip()
    caption = INTERRUPTED + (f" · seed {seed}" if str(seed or "").isdigit() else "")
    previews = [(path, caption) for path, _ in items]
    status = "⏹ Stopped." + (" The last finished result is shown again." if kept["gallery"] else "")
    return status, [*kept["gallery"], *previews], kept["details"], kept["last_run"], kept["seed"]


def gallery_pairs(gallery: Any) -> list[tuple[Any, Any]]:
    """A gallery's value as Gradio hands it to a handler, as (path, caption) pairs."""
    return [(item[0], item[1] if len(item) > 1 else None) if isinstance(item, (tuple, list)) else (item, None)
            for item in gallery or []]


def result_paths(gallery: Any) -> list[str]:
    """The finished results shown in the results gallery, in order (Gradio gives (path, caption)
    pairs): a preview, running or interrupted, is not one."""
    paths = []
    for item in gallery or []:
        if isinstance(item, (tuple, list)) and len(item) > 1 and is_preview(item[1]):
            continue
        path = item[0] if isinstance(item, (tuple, list)) else item
        if isinstance(path, dict):
            path = path.get("path") or path.get("image", {}).get("path")
        if path:
            paths.append(str(path))
    return paths


def result_place(paths: list[str], index: Any) -> int:
    """The selected result's place among `paths` (the first when none or out of range is given)."""
    return min(max(int(index or 0), 0), len(paths) - 1)


def selected_result(gallery: Any, index: int | None) -> str:
    paths = result_paths(gallery)
    if not paths:
        raise gr.Error(NO_RESULT, title="No result")
    return paths[result_place(paths, index)]


def use_as_input(gallery: Any, index: int | None, slot_count: int) -> list[str | None]:
    """The selected result becomes image 1; the other references are cleared."""
    return [selected_result(gallery, index)] + [None] * (slot_count - 1)


def add_as_reference(gallery: Any, index: int | None, slots: list[str | None], limit: int) -> list[Any]:
    """The selected result goes into the first free slot the backend takes; with none free, a
    warning and the slots as they are (a raised error showed a red "Error" notice, though
    nothing had failed)."""
    packed = pack_images(*slots)
    filled = sum(1 for s in packed if s)
    if filled >= limit:
        gr.Warning(f"This backend takes at most {limit} reference images: remove one first.", title="No free slot")
        return [gr.skip()] * len(slots)
    packed[filled] = selected_result(gallery, index)
    return packed


COMPARE_LABEL = "Compare"


def compare_shown(pair: tuple[str, str] | None, left: str = "", right: str = "") -> Any:
    """The compare slider's pair, its label naming each side ("Left: image 1 · right: result 2"):
    the slider shows two pictures and nothing else says which is which (the A/B picks stay as they
    were when History's "Compare with the selected result" fills it). Short: it fits a phone's slider."""
    if pair is None:
        return gr.update(value=None, label=COMPARE_LABEL)
    return gr.update(value=pair, label=f"Left: {left} · right: {right}")


def compare_pair(gallery: Any, index: int | None, reference: str | None, mode: str, a: Any, b: Any):
    """What the compare slider shows: before/after (image 1 vs the selected result) or A/B."""
    paths = result_paths(gallery)
    if not paths:
        return compare_shown(None)
    if mode == "ab":
        a, b = result_place(paths, a), result_place(paths, b)
        return compare_shown((paths[a], paths[b]), f"result {a + 1} (A)", f"result {b + 1} (B)")
    if not reference:
        return compare_shown(None)
    place = result_place(paths, index)
    return compare_shown((reference, paths[place]), "image 1", f"result {place + 1}")


SLUG_CHARS = 40  # a file name's instruction part, at most
FALLBACK_SLUG = "edit"  # an instruction with no latin letters or digits


def slug(prompt: str | None) -> str:
    """The instruction as a file name part: ascii lower case words joined by "-", cut at a word
    within SLUG_CHARS ("Make this donut realistic!" -> "make-this-donut-realistic")."""
    ascii_text = unicodedata.normalize("NFKD", prompt or "").encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    text = ""
    for word in words:
        joined = f"{text}-{word}" if text else word
        if len(joined) > SLUG_CHARS:
            text = text or word[:SLUG_CHARS]
            break
        text = joined
    return text or FALLBACK_SLUG


def download_name(prompt: str | None, seed: Any, index: int | None, ext: str) -> str:
    """A download named for what it holds: "make-this-donut-realistic_seed-42_2.png" (image 2 of
    the run), or "make-this-donut-realistic_seed-42.zip" (index None: the whole run)."""
    parts = [slug(prompt)]
    if isinstance(seed, int) and not isinstance(seed, bool):
        parts.append(f"seed-{seed}")
    if index is not None:
        parts.append(str(index))
    return "_".join(parts) + "." + ext.lstrip(".").lower()


def as_png(path: str, folder: Path, name: str | None = None) -> str:
    """The image as a PNG file in `folder`, named `name` (else the image's own name; results
    in jpeg/webp are converted, PNGs copied byte for byte, their recipe chunks kept)."""
    target = folder / (name or Path(path).stem + ".png")
    if path.lower().endswith(".png"):
        if name is None:
            return path
        shutil.copyfile(path, target)
        return str(target)
    # The path comes from the browser's gallery (any file in Gradio's cache): only the formats
    # results come in are opened, in one of the few decode slots.
    with decoding(), Image.open(path, formats=RESULT_FORMATS) as image:
        image.save(target, format="PNG")
    return str(target)


def fresh_folder(root: Path, keep_seconds: float = 86_400) -> Path:
    """A new folder under `root` for a download, removing those older than a day (as Gradio
    keeps what it serves; `root` is in Gradio's cache, whose cap may remove them sooner)."""
    now = time.time()
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        if old.is_dir() and now - old.stat().st_mtime > keep_seconds:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=root))


# A run makes at most this many images: a gallery the browser sends back with more (the same
# big file listed a thousand times) does not make a zip of a thousand copies.
MAX_ZIPPED = int(field_limits("num_images")["maximum"])


def zip_results(paths: list[str], folder: Path, prompt: str | None = None, run: Any = None) -> str | None:
    """All results in one zip named for the run (`run`: its last_run), its images named like
    "Selected as PNG" names them, each for its own seed (stored, not recompressed: the images are
    compressed already)."""
    paths = list(dict.fromkeys(paths))[:MAX_ZIPPED]
    if not paths:
        return None
    target = folder / download_name(prompt, image_seed(run, 0), None, "zip")
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        for index, path in enumerate(paths, start=1):
            name = download_name(prompt, image_seed(run, index - 1), index, Path(path).suffix or "png")
            archive.write(path, arcname=name)
    return str(target)


def image_seed(run: Any, index: Any) -> int | None:
    """The seed that made image `index` (from 0) of `run` (a last_run): its own where the backend
    knows each image's (local: seed, seed + 1, …, so that seed alone makes that image again),
    else the run's (fal makes all of a run's images from its one seed)."""
    recipe = run.get("recipe") if isinstance(run, dict) else None
    if not isinstance(recipe, dict):
        return None
    seeds = recipe.get("seeds")  # a History entry's recipe comes back from the browser: anything
    seeds = seeds if isinstance(seeds, list) else []
    place = index if isinstance(index, int) else 0
    seed = seeds[place] if 0 <= place < len(seeds) else recipe.get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def shown_seed(gallery: Any, run: Any, index: Any) -> Any:
    """"Seed used" for the selected image: a result's own seed (image_seed), an interrupted
    preview's from its caption ("interrupted preview · seed 42"); left as it is when neither
    says one."""
    items = gallery_pairs(gallery)
    place = index if isinstance(index, int) and 0 <= index < len(items) else 0
    if items and is_preview(items[place][1]):
        said = re.search(r"· seed (\d+)$", str(items[place][1]))
        return said[1] if said else gr.skip()
    seed = image_seed(run, place)
    return gr.skip() if seed is None else str(seed)
