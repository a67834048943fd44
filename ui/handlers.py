"""Event handlers: turn form values into an EditRequest, backend events into what a
person sees. No model or HTTP logic lives here; that is the backend's job.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from backend.base import Backend
from backend.errors import FieldProblem, InvalidInput, StudioError
from backend.events import Log, Preview, Progress, Queued, Result
from backend.grid import make_grid
from backend.outputs import atomic_write, enforce_cap, save_run
from backend.sweep import SweepAxis, plan_sweep, run_sweep
from backend.request import MAX_ACTIVE_LORAS, PRESET_SIZES, EditRequest, build_request

MATCH_FIRST = "match"
CUSTOM = "custom"
SIZE_CHOICES = [("Match image 1", MATCH_FIRST)] + [
    (f"{name} ({w}×{h})", name) for name, (w, h) in PRESET_SIZES.items()
] + [("Custom", CUSTOM)]
LOG_LINES_KEPT = 200


def normalise_loras(rows: Any) -> list[dict[str, Any]]:
    """The LoRA list as the editor and the API give it: [{path, scale, enabled}]."""
    if rows is None:
        return []
    if not isinstance(rows, list):
        raise InvalidInput.one("loras", "LoRAs", "must be a list of {path, scale, enabled}")
    out = []
    for index, row in enumerate(rows, start=1):
        if isinstance(row, str):
            row = {"path": row}
        if not isinstance(row, dict):
            raise InvalidInput.one("loras", f"LoRA {index}", "must be {path, scale, enabled}")
        out.append({
            "path": str(row.get("path") or ""),
            "scale": row.get("scale", 1.0),
            "enabled": bool(row.get("enabled", True)),
        })
    return out


def pack_images(*slots: str | None) -> list[str | None]:
    """Move images left over empty slots: the page numbers them in the order they are sent."""
    filled = [s for s in slots if s]
    return filled + [None] * (len(slots) - len(filled))


def swap_images(slots: tuple[str | None, ...], index: int) -> list[str | None]:
    """Swap image `index` with the next one (0-based), keeping them packed."""
    values = list(slots)
    values[index], values[index + 1] = values[index + 1], values[index]
    return pack_images(*values)


def active_loras(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows switched on and with a path: what is sent."""
    return [r for r in rows if r["enabled"] and r["path"].strip()]


def pick_backend(backends: dict[str, Backend], name: str | None, model: str, memory: str) -> Backend:
    """The backend a run goes to; for the local one, the model it should use."""
    name = name or next(iter(backends))
    if name not in backends:
        offered = ", ".join(backends)
        raise InvalidInput.one("backend", "Backend", f"this server offers {offered}, not {name!r}")
    backend = backends[name]
    if hasattr(backend, "use_model"):
        backend.use_model(model or "", memory or "gpu")
    return backend


def request_from_form(
    prompt: str, images: list[str | None], loras: Any, guidance_scale: float, num_inference_steps: float,
    size: str, width: float, height: float, seed: float | None, randomize_seed: bool, num_images: float,
    acceleration: str, enable_prompt_expansion: bool, enable_safety_checker: bool, output_format: str,
    sync_mode: bool,
) -> EditRequest:
    image_urls = [str(i) for i in images if i]
    if not image_urls:
        raise InvalidInput.one("image_urls", "Reference images", "add at least one image to edit")
    active = active_loras(normalise_loras(loras))
    if len(active) > MAX_ACTIVE_LORAS:
        raise InvalidInput.one(
            "loras", "LoRAs", f"at most {MAX_ACTIVE_LORAS} can be switched on ({len(active)} are)"
        )
    if size == MATCH_FIRST or not size:
        image_size: Any = None
    elif size == CUSTOM:
        image_size = {"width": width, "height": height}
    else:
        image_size = size
    return build_request(
        prompt=prompt or "",
        image_urls=image_urls,
        loras=[{"path": r["path"], "scale": r["scale"]} for r in active],
        guidance_scale=guidance_scale,
        num_inference_steps=num_inference_steps,
        image_size=image_size,
        num_images=num_images,
        seed=None if randomize_seed or seed is None or seed == "" else seed,
        acceleration=acceleration,
        enable_prompt_expansion=enable_prompt_expansion,
        enable_safety_checker=enable_safety_checker,
        output_format=output_format,
        sync_mode=sync_mode,
    )


def run_edit(
    backend: Backend, outputs_root: Path, endpoint: str, request: EditRequest, key: str | None,
    outputs_max_bytes: int | None = None,
) -> Iterator[tuple[Any, str, str, str, Any]]:
    """Run one edit, yielding (gallery, status, logs, details, seed_used, last_run) updates.

    `last_run` (for the history) is {recipe, images, references} of the saved run.

    Every update carries the current value of each output rather than `gr.skip()`:
    Gradio makes a new component for each skipped output and keeps it in the
    session for as long as the session lives (about 75 KB per run, found by
    bench/bench_soak.py). Previews are written once as files, so that repeating them
    with each status costs a hash of the file, not a new encoding. (`last_run` is a
    gr.State, which skips for free.)

    Closing this generator (Stop, or the tab closing) closes the backend's run, which
    cancels the job there.
    """
    started = time.monotonic()
    logs: list[str] = []
    gallery: list = []  # a new run starts with an empty gallery, then its previews
    keep = gr.skip()
    preview_folder = Path(tempfile.mkdtemp(prefix="studio-previews-"))
    saved = None
    events = backend.run(request, key=key)
    try:
        for event in events:
            # Log lines are collected and go out with the next status: every yield
            # redraws the page (and costs the server), so one per backend update.
            if isinstance(event, Log):
                logs.append(event.message)
                del logs[:-LOG_LINES_KEPT]
                continue
            log_text = "\n".join(logs)
            if isinstance(event, Queued):
                where = "next in line" if event.position == 0 else f"position {event.position + 1}"
                yield gallery, f"⏳ Queued at {backend.name}: {where}", log_text, "", None, keep
            elif isinstance(event, Progress):
                yield gallery, "⚙️ " + event.message, log_text, "", None, keep
            elif isinstance(event, Preview):
                gallery = save_previews(event, preview_folder)
                step = f" (step {event.step} of {event.total})" if event.step else ""
                yield gallery, f"🖼️ Intermediate result{step}", log_text, "", None, keep
            elif isinstance(event, Result):
                saved = save_run(outputs_root, request, event, backend.name, endpoint)
                elapsed = time.monotonic() - started
                gallery = [
                    (str(path), f"image {i}" + (" ⚠ flagged" if img.nsfw else ""))
                    for i, (path, img) in enumerate(zip(saved.image_paths, event.images), start=1)
                ]
                # Every output gets a real value at the end: API callers read only the last one.
                last_run = {
                    "recipe": saved.recipe,
                    "images": [str(p) for p in saved.image_paths],
                    "references": [str(p) for p in saved.reference_paths],
                }
                yield (gallery, f"✅ Done in {elapsed:.1f} s", log_text,
                       describe_result(event, saved.folder.relative_to(outputs_root)), event.seed, last_run)
    except InvalidInput as error:
        raise gr.Error(format_problems(error.problems), title="Please check the form") from None
    except StudioError as error:
        raise gr.Error(error.message, title="The run did not finish") from None
    finally:
        events.close()
        # Gradio has copied every preview it showed into its cache by now.
        shutil.rmtree(preview_folder, ignore_errors=True)
        if saved is not None:  # after the result is shown: the cap walks the whole folder
            enforce_cap(outputs_root, outputs_max_bytes)


def save_previews(preview: Preview, folder: Path) -> list[str]:
    """The preview's images as JPEG files (previews are thrown away: no need for PNG)."""
    paths = []
    for index, image in enumerate(preview.images, start=1):
        path = folder / f"preview-{preview.step or 0}-{index}.jpg"
        image.convert("RGB").save(path, format="JPEG", quality=90)
        paths.append(str(path))
    return paths


def format_problems(problems: list[FieldProblem]) -> str:
    return "\n".join(f"{p.label}: {p.message}" for p in problems)


def describe_result(result: Result, folder: Path) -> str:
    if len(result.seeds) > 1:
        lines = ["**Seeds:** " + ", ".join(f"`{s}`" for s in result.seeds)]
    else:
        lines = [f"**Seed:** `{result.seed}`" if result.seed is not None else "**Seed:** not reported"]
    first = result.images[0]
    lines.append(f"**Images:** {len(result.images)} × {first.width}×{first.height} ({first.extension})")
    if result.timings:
        lines.append("**Timings:** " + ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items()))
    flagged = [str(i) for i, img in enumerate(result.images, start=1) if img.nsfw]
    lines.append(
        f"**Safety checker:** flagged image {', '.join(flagged)}" if flagged else "**Safety checker:** nothing flagged"
    )
    if result.prompt:
        lines.append(f"**Prompt used:** {result.prompt}")
    lines += [f"**Note:** {note}" for note in result.notes]
    lines.append(f"**Saved as:** `{folder}` in the outputs folder")
    return "  \n".join(lines)


def limit_active_loras(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """Keep at most MAX_ACTIVE_LORAS rows switched on; returns (rows, warning)."""
    on = 0
    out, switched_off = [], False
    for row in rows:
        if row["enabled"]:
            on += 1
            if on > MAX_ACTIVE_LORAS:
                row = {**row, "enabled": False}
                switched_off = True
        out.append(row)
    if switched_off:
        return out, f"At most {MAX_ACTIVE_LORAS} LoRAs can be on at once: the new one was added switched off."
    return out, None


def form_from_recipe(recipe: dict[str, Any], offered: list[str]) -> dict[str, Any]:
    """The form values that remake a recipe's image: its settings, seed and backend.

    Reference images are not in recipes (only their names): the person adds them.
    """
    request = recipe["request"]
    size = request.get("image_size")
    if isinstance(size, dict):
        size_choice, width, height = CUSTOM, size["width"], size["height"]
    else:
        size_choice, width, height = size or MATCH_FIRST, gr.skip(), gr.skip()
    backend = recipe.get("backend")
    return {
        "prompt": request["prompt"],
        "loras": [{"path": l["path"], "scale": l["scale"], "enabled": True} for l in request.get("loras", [])],
        "guidance_scale": request["guidance_scale"],
        "num_inference_steps": request["num_inference_steps"],
        "size": size_choice, "width": width, "height": height,
        "seed": recipe.get("seed") if recipe.get("seed") is not None else gr.skip(),
        "randomize_seed": recipe.get("seed") is None,
        "num_images": 1,  # the recipe remakes this one image
        "acceleration": request.get("acceleration", "regular"),
        "enable_prompt_expansion": request.get("enable_prompt_expansion", False),
        "enable_safety_checker": request.get("enable_safety_checker", True),
        "output_format": request.get("output_format", "png"),
        "sync_mode": request.get("sync_mode", False),
        "backend": backend if backend in offered else gr.skip(),
    }


# -- results tools: chain edits, compare, downloads ----------------------------------------


def result_paths(gallery: Any) -> list[str]:
    """The files shown in the results gallery, in order (Gradio gives (path, caption) pairs)."""
    paths = []
    for item in gallery or []:
        path = item[0] if isinstance(item, (tuple, list)) else item
        if isinstance(path, dict):
            path = path.get("path") or path.get("image", {}).get("path")
        if path:
            paths.append(str(path))
    return paths


def selected_result(gallery: Any, index: int | None) -> str:
    paths = result_paths(gallery)
    if not paths:
        raise gr.Error("Run an edit first: there is no result to use yet.", title="No result")
    return paths[min(max(index or 0, 0), len(paths) - 1)]


def use_as_input(gallery: Any, index: int | None, slot_count: int) -> list[str | None]:
    """The selected result becomes image 1; the other references are cleared."""
    return [selected_result(gallery, index)] + [None] * (slot_count - 1)


def add_as_reference(gallery: Any, index: int | None, slots: list[str | None], limit: int) -> list[str | None]:
    """The selected result goes into the first free slot the backend takes."""
    packed = pack_images(*slots)
    filled = sum(1 for s in packed if s)
    if filled >= limit:
        raise gr.Error(f"This backend takes at most {limit} reference images: remove one first.",
                       title="No free slot")
    packed[filled] = selected_result(gallery, index)
    return packed


def compare_pair(gallery: Any, index: int | None, reference: str | None, mode: str, a: Any, b: Any):
    """What the compare slider shows: before/after (image 1 vs the selected result) or A/B."""
    paths = result_paths(gallery)
    if not paths:
        return None
    if mode == "ab":
        pick = lambda i: paths[min(int(i or 0), len(paths) - 1)]  # noqa: E731
        return (pick(a), pick(b))
    if not reference:
        return None
    return (reference, selected_result(gallery, index))


def as_png(path: str, folder: Path) -> str:
    """The image as a PNG file (results in jpeg/webp are converted; PNGs are served as they are)."""
    if path.lower().endswith(".png"):
        return path
    target = folder / (Path(path).stem + ".png")
    with Image.open(path) as image:
        image.save(target, format="PNG")
    return str(target)


def fresh_folder(root: Path, keep_seconds: float = 3600) -> Path:
    """A new folder under `root` for a download, removing those older than an hour
    (Gradio has copied them into its cache by then)."""
    now = time.time()
    for old in root.iterdir():
        if old.is_dir() and now - old.stat().st_mtime > keep_seconds:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=root))


def zip_results(paths: list[str], folder: Path, name: str = "results.zip") -> str | None:
    """All results in one zip (stored, not recompressed: the images are compressed already)."""
    if not paths:
        return None
    target = folder / name
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        for index, path in enumerate(paths, start=1):
            archive.write(path, arcname=f"image-{index}{Path(path).suffix}")
    return str(target)


# -- sweeps ------------------------------------------------------------------------------


def sweep_cost(x_key: str, x_values: str, y_key: str | None, y_values: str) -> str:
    """What the page says before a sweep starts: how many runs it will make."""
    try:
        x = SweepAxis.parse(x_key, x_values)
        count = len(x.values)
        if y_key:
            count *= len(SweepAxis.parse(y_key, y_values).values)
    except InvalidInput as error:
        return f"⚠️ {format_problems(error.problems)}"
    note = " (at most 16)" if count > 16 else ""
    return f"This sweep makes **{count} run{'s' if count != 1 else ''}**{note}, one image each."


def run_sweep_view(
    backend: Backend, outputs_root: Path, source: str, request: EditRequest, key: str | None,
    x_key: str, x_values: str, y_key: str | None, y_values: str, outputs_max_bytes: int | None = None,
) -> Iterator[tuple[Any, str, Any, Any]]:
    """Run a sweep, yielding (cells gallery, status, grid image, zip) as cells finish."""
    try:
        x = SweepAxis.parse(x_key, x_values, "Sweep values (X)")
        y = SweepAxis.parse(y_key, y_values, "Sweep values (Y)") if y_key else None
        plan = plan_sweep(request, x, y)
    except InvalidInput as error:
        raise gr.Error(format_problems(error.problems), title="Please check the sweep") from None
    total = len(plan.cells)
    paths: list[str | None] = [None] * total
    failures: list[str] = []
    done: list[tuple[str, str]] = []
    yield [], f"⏳ Sweep: 0 of {total} cells", None, None
    for item in run_sweep(backend, plan, key=key):
        if item is None:  # still waiting: say where it stands (this yield lets a Stop in)
            # The current values, not gr.skip(): see run_edit.
            yield done, f"⚙️ Sweep: {len(done)} of {total} cells", None, None
            continue
        index, outcome = item
        if isinstance(outcome, Result):
            saved = save_run(outputs_root, plan.cells[index], outcome, backend.name, source)
            paths[index] = str(saved.image_paths[0])
        else:
            failures.append(f"{plan.captions[index]}: {outcome.message}")
        done = [(p, plan.captions[i]) for i, p in enumerate(paths) if p]
        yield done, f"⚙️ Sweep: {len(done)} of {total} cells", None, None
    cells = [Image.open(p) if p else None for p in paths]
    grid, _layout = make_grid(cells, x.axis(), y.axis() if y else None)
    folder = Path(tempfile.mkdtemp(prefix="sweep-", dir=outputs_root))
    grid_path = folder / "grid.png"
    grid.save(grid_path)
    atomic_write(folder / "sweep.json", json.dumps({
        "x": {"setting": x.key, "values": list(x.values)},
        "y": {"setting": y.key, "values": list(y.values)} if y else None,
        "cells": [{"caption": c, "image": p} for c, p in zip(plan.captions, paths)],
    }, indent=2).encode())
    zipped = zip_results([p for p in paths if p] + [str(grid_path)], folder, "sweep.zip")
    status = f"✅ Sweep done: {total - len(failures)} of {total} cells"
    if failures:
        status += " — failed: " + "; ".join(failures)
    yield [(p, plan.captions[i]) for i, p in enumerate(paths) if p], status, str(grid_path), zipped
    enforce_cap(outputs_root, outputs_max_bytes)  # once per sweep, after its results are shown
