"""From the form's values to a run, and from the run's events to what a person sees.

    plan = plan_run(values, backends)      # backend, request, options, key: all checked
    yield from run_edit(plan, outputs)     # page updates until the saved result

No model or HTTP logic lives here; that is the backend's job.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from backend.base import Backend, BackendOptions
from backend.errors import FieldProblem, InvalidInput, MissingKey, StudioError
from backend.events import Log, Preview, Progress, Queued, Result
from backend.outputs import enforce_cap, save_run
from backend.redact import redact
from backend.region import DEFAULT_FEATHER, MAX_FEATHER, Region, RegionRun, mask_image
from backend.request import MAX_ACTIVE_LORAS, EditRequest, build_request
from ui.details import describe_run, fal_cost_micros, run_extras, shown_images, skipped_lora_rows
from ui.form import CUSTOM, FIELDS, IMAGE_FIELDS, MATCH_FIRST
from ui.key_box import LABEL as KEY_LABEL
from ui.results import PREVIEW, result_caption
from ui.text import as_text, error_text

LOG_LINES_KEPT = 200
MAX_KEY_LENGTH = 256  # a fal key (id:secret) is about 70 characters
MAX_LORA_ROWS = 16  # rows in the LoRA list, switched on or off (at most MAX_ACTIVE_LORAS on)
NO_KEY = "none given, and this server has none: paste one from fal.ai (Dashboard → API keys)"
FORM_ERROR_TITLE = "Please check the form"
RUN_FAILED_TITLE = "The run did not finish"


@dataclass(frozen=True)
class Outputs:
    """Where finished runs are saved, the folder's size cap and that of its starred runs
    (bytes; None: no cap)."""

    root: Path
    max_bytes: int | None = None
    starred_max_bytes: int | None = None

    def enforce_cap(self) -> None:
        enforce_cap(self.root, self.max_bytes, starred_max_bytes=self.starred_max_bytes)


@dataclass(frozen=True)
class RunPlan:
    """Everything one run needs, fixed when it is submitted: nothing another visitor
    picks afterwards can change it."""

    backend: Backend
    request: EditRequest
    options: BackendOptions
    key: str | None = field(default=None, repr=False)
    skipped: tuple[str, ...] = ()  # LoRA rows not sent, said on the status line and in the details
    region: Region | None = None  # a region edit: only the painted area of image 1 changes


def normalise_loras(rows: Any) -> list[dict[str, Any]]:
    """The LoRA list as the editor and the API give it: [{path, scale, enabled}], at most
    MAX_LORA_ROWS rows (refused before any row is looked at)."""
    if rows is None:
        return []
    if not isinstance(rows, list):
        raise InvalidInput.one("loras", "LoRAs", "must be a list of {path, scale, enabled}")
    if len(rows) > MAX_LORA_ROWS:
        raise InvalidInput.one("loras", "LoRAs", f"at most {MAX_LORA_ROWS} rows (got {len(rows)})")
    out = []
    for index, row in enumerate(rows, start=1):
        if isinstance(row, str):
            row = {"path": row}
        if not isinstance(row, dict):
            raise InvalidInput.one("loras", f"LoRA {index}", "must be {path, scale, enabled}")
        if not isinstance(enabled := row.get("enabled", True), bool):  # "false" is text, and bool("false") is True
            raise InvalidInput.one("loras", f"LoRA {index} on", "must be true or false")
        out.append({"path": str(row.get("path") or ""), "scale": row.get("scale", 1.0), "enabled": enabled})
    return out


def active_loras(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows switched on and with a path: what is sent."""
    return [r for r in rows if r["enabled"] and r["path"].strip()]


def request_from_values(values: Mapping[str, Any]) -> EditRequest:
    """The request from the form's values: the fields that go in as they are, and the
    few the page spells differently (images, LoRA rows, size, seed)."""
    image_urls = [str(values[name]) for name in IMAGE_FIELDS if values.get(name)]
    try:
        request = _build(values, image_urls)
    except InvalidInput as error:
        # No image is said our way, together with every other problem (not one at a time).
        problems = [p for p in error.problems if p.field != "image_urls" or image_urls]
        if not image_urls:
            problems.insert(0, FieldProblem("image_urls", "Reference images", "add at least one image to edit"))
        raise InvalidInput(problems) from None
    if not image_urls:
        raise InvalidInput.one("image_urls", "Reference images", "add at least one image to edit")
    return request


def _build(values: Mapping[str, Any], image_urls: list[str]) -> EditRequest:
    active = active_loras(normalise_loras(values.get("loras")))
    if len(active) > MAX_ACTIVE_LORAS:
        raise InvalidInput.one("loras", "LoRAs", f"at most {MAX_ACTIVE_LORAS} can be switched on ({len(active)} are)")
    size = values.get("size")
    if size == MATCH_FIRST or not size:
        image_size: Any = None
    elif size == CUSTOM:
        image_size = {"width": values.get("width"), "height": values.get("height")}
    else:
        image_size = size
    seed = values.get("seed")
    straight = {name: values[name] for name, f in FIELDS.items()
                if f.owner == "request" and f.straight and values.get(name) is not None}
    return build_request(**{
        **straight,
        "prompt": values.get("prompt") or "",
        "image_urls": image_urls,
        "loras": [{"path": r["path"], "scale": r["scale"]} for r in active],
        "image_size": image_size,
        "seed": None if values.get("randomize_seed") or seed is None or seed == "" else seed,
    })


def pick_backend(backends: Mapping[str, Backend], name: str | None) -> Backend:
    name = name or next(iter(backends))
    if name not in backends:
        raise InvalidInput.one("backend", "Backend", f"this server offers {', '.join(backends)}, not {name!r}")
    return backends[name]


def plan_run(values: Mapping[str, Any], backends: Mapping[str, Backend]) -> RunPlan:
    """The backend, the request and its options, checked together: every problem is
    named at once (raises InvalidInput)."""
    backend = pick_backend(backends, values.get("backend"))
    problems: list[FieldProblem] = []
    request = options = None
    try:
        request = request_from_values(values)
    except InvalidInput as error:
        problems += error.problems
    try:
        options = backend.options(values)
    except InvalidInput as error:
        problems += error.problems
    key = visitor_key(given_key(values), problems)
    if backend.lacks_key(key):  # named with the rest: one look shows all there is to fill in
        problems.append(FieldProblem("fal_key", KEY_LABEL, NO_KEY))
    if problems or request is None or options is None:
        raise InvalidInput(problems)
    skipped = tuple(skipped_lora_rows(normalise_loras(values.get("loras"))))
    return RunPlan(backend, request, options, key=key, skipped=skipped, region=region_from_values(values))


def given_key(values: Mapping[str, Any]) -> str | None:
    """The visitor's fal key without the spaces a paste brings along (fal refuses it with
    them, and messages are redacted of the key as it is sent), or None."""
    return (values.get("fal_key") or "").strip() or None


def visitor_key(key: str | None, problems: list[FieldProblem]) -> str | None:
    """`key` (given_key), when it can be a key; one that cannot (not printable ASCII, or longer
    than any) is a problem that names the field and the limit, never the key."""
    key = key or ""
    if len(key) > MAX_KEY_LENGTH:
        problems.append(FieldProblem("fal_key", KEY_LABEL, f"must be at most {MAX_KEY_LENGTH} characters "
                                                           f"(got {len(key)})"))
    elif not all(" " < c <= "~" for c in key):
        problems.append(FieldProblem("fal_key", KEY_LABEL, "must be the key as fal shows it (id:secret): printable "
                                                           "characters, no spaces or line breaks"))
    return key or None


def region_from_values(values: Mapping[str, Any]) -> Region | None:
    """The region of a run whose `mask` is given (white = change), or None."""
    source = values.get("mask")
    if source is None or source == "":
        return None
    try:
        given = values.get("mask_feather")
        feather = int(DEFAULT_FEATHER if given is None else given)
        mask = mask_image(source, invert=bool(values.get("mask_invert")))
    except (TypeError, ValueError, OSError):
        raise InvalidInput.one("mask", "Mask", "is not an image (white = change, black = keep)") from None
    if not 0 <= feather <= MAX_FEATHER:
        raise InvalidInput.one("mask_feather", "Feather", f"must be 0 to {MAX_FEATHER} pixels (got {feather})")
    if mask is None:
        raise InvalidInput.one("mask", "Mask", "nothing is painted: paint the area to change")
    return Region(mask=mask, feather=feather)


def format_problems(problems: list[FieldProblem]) -> str:
    return "\n".join(f"{p.label}: {p.message}" for p in problems)


def form_error(error: InvalidInput) -> gr.Error:
    # The problems carry the visitor's values and fal's words: text, not HTML, and no key
    # (Gradio also prints the message to the server's log).
    return gr.Error(error_text(redact(format_problems(error.problems))), title=FORM_ERROR_TITLE)


def run_error(error: StudioError, key: str | None) -> gr.Error:
    """A refused or failed run as the error an API caller gets."""
    if isinstance(error, InvalidInput):
        return form_error(error)
    return gr.Error(error_text(redact(error.message, key)), title=RUN_FAILED_TITLE)


def run_warning(error: StudioError, key: str | None) -> None:
    """The same as a warning, for the page: a raised error would put Gradio's red "Error" pill
    on every output of the run (the gallery, the status, the marked fields)."""
    if isinstance(error, InvalidInput):
        gr.Warning(error_text(redact(format_problems(error.problems), key)), title=FORM_ERROR_TITLE)
    else:
        gr.Warning(error_text(redact(error.message, key)), title=RUN_FAILED_TITLE)


def refused_status(refusal: gr.Error) -> str:
    """The status line after the spending policy refused a run: its title and message."""
    return "⛔ " + as_text(f"{refusal.title}: {refusal.message}" if refusal.title else refusal.message)


def form_error_status(error: InvalidInput) -> str:
    """The status line after a form error: every problem, as text (it stays until the next run)."""
    return "⚠️ " + FORM_ERROR_TITLE + ": " + as_text(redact(format_problems(error.problems)))


class StatusLine:
    """The run's one status text, true at every moment: a backend repeats its last Progress
    while it waits (a heartbeat), and a Progress seen before, or a step older than the one
    shown, never replaces what the page says now (no flicker back to "waiting")."""

    def __init__(self) -> None:
        self.text = ""
        self.seen: set[tuple[str, int | None]] = set()
        self.step = 0

    def update(self, event: Queued | Progress, backend_name: str) -> str:
        if isinstance(event, Queued):
            where = "next in line" if event.position == 0 else f"position {event.position + 1}"
            self.text = f"⏳ Queued at {backend_name}: {where}"
            return self.text
        key = (event.message, event.step)
        if key in self.seen or (event.step is not None and event.step < self.step):
            return self.text
        self.seen.add(key)
        self.step = max(self.step, event.step or 0)
        self.text = "⚙️ " + event.message
        return self.text

    def preview(self, event: Preview) -> str:
        if event.step is not None and event.step < self.step:
            return self.text
        self.step = max(self.step, event.step or 0)
        step = f" (step {event.step} of {event.total})" if event.step else ""
        self.text = f"🖼️ Intermediate result{step}"
        return self.text


def run_edit(plan: RunPlan, outputs: Outputs, price_per_mp: float | None = None, previous: Sequence[Any] = (),
             ) -> Iterator[tuple[Any, str, str, str, Any, Any]]:
    """Run one edit, yielding (gallery, status, logs, details, seed_used, last_run) updates.
    `price_per_mp`: fal's price, for the estimated cost in the details. `previous`: the results
    the gallery showed before (its previews replace them while the run goes): a run that fails
    shows them again, says why on the status line, and raises its StudioError (`run_error`).

    `last_run` (for the history) is {recipe, images, references, token} of the saved run
    (the token stars the run: only this session gets it).

    Every update carries the current value of each output rather than `gr.skip()`:
    Gradio makes a new component for each skipped output and keeps it in the
    session for as long as the session lives (about 75 KB per run, found by
    bench/bench_soak.py). Previews are written once as files, so that repeating them
    with each status costs a hash of the file, not a new encoding. (`last_run` is a
    gr.State: None until the result, so that a stopped run adds nothing to History.)

    Closing this generator (Stop, or the tab closing) closes the backend's run, which cancels the job there.
    """
    started = time.monotonic()
    backend = plan.backend
    logs: list[str] = []
    gallery: list = []  # a new run starts with an empty gallery, then its previews
    keep = None  # `last_run` is None until this run's result: a stopped run adds nothing to History
    preview_folder = Path(tempfile.mkdtemp(prefix="studio-previews-"))
    saved, seed = None, None  # seed: "Seed used" once a preview says it (local); a Stop leaves it there
    status = StatusLine()
    # LoRA rows that are not sent are said from the first status to the last.
    skipped = "".join(f" · {as_text(note)}" for note in plan.skipped)
    if plan.region is not None:  # the backend edits a crop; its images go back into image 1
        region_run = RegionRun.plan(plan.request, plan.region, str(preview_folder / "region.png"))
        events = region_run.events(backend.run(region_run.request, plan.options, key=plan.key))
    else:
        events = backend.run(plan.request, plan.options, key=plan.key)
    try:
        for event in events:
            # Log lines are collected and go out with the next status: every yield
            # redraws the page (and costs the server), so one per backend update.
            if isinstance(event, Log):
                logs.append(event.message)
                del logs[:-LOG_LINES_KEPT]
                continue
            log_text = "\n".join(logs)
            if isinstance(event, (Queued, Progress)):
                yield gallery, status.update(event, backend.name) + skipped, log_text, "", seed, keep
            elif isinstance(event, Preview):
                gallery = save_previews(event, preview_folder)
                seed = event.seed if event.seed is not None else seed
                yield gallery, status.preview(event) + skipped, log_text, "", seed, keep
            elif isinstance(event, Result):
                saved = save_run(outputs.root, plan.request, plan.options, event, backend.name,
                                 backend.source(plan.options), region=plan.region)
                gallery = [
                    (str(path), result_caption(i, img.nsfw))
                    for i, (path, img) in enumerate(zip(saved.image_paths, event.images), start=1)
                ]
                # Every output gets a real value at the end: API callers read only the last one.
                seconds = time.monotonic() - started
                recipe = {**saved.recipe, **run_extras(seconds, [*event.notes, *plan.skipped],
                                                       fal_cost_micros(plan.request, backend.name, price_per_mp))}
                last_run = {"recipe": recipe, "images": [str(p) for p in saved.image_paths],
                            "references": [str(p) for p in saved.reference_paths], "token": saved.token}
                yield (gallery, f"✅ Done in {seconds:.1f} s" + skipped, log_text,
                       describe_run(recipe, shown_images(event), saved.folder.relative_to(outputs.root)),
                       event.seed, last_run)
    except InvalidInput as error:
        yield list(previous), form_error_status(error), "\n".join(logs), "", None, keep
        raise
    except StudioError as error:
        message = as_text(redact(error.message, plan.key))
        # A missing key is a field to fill in (the page marks it: ui/field_checks.py), not a failure.
        said = "🔑 " + message if isinstance(error, MissingKey) else "❌ Failed: " + message
        yield list(previous), said, "\n".join(logs), "", None, keep
        raise
    finally:
        events.close()
        # Gradio has copied every preview it showed into its cache by now.
        shutil.rmtree(preview_folder, ignore_errors=True)
        if saved is not None:  # after the result is shown: the cap walks the whole folder
            outputs.enforce_cap()


def save_previews(preview: Preview, folder: Path) -> list[tuple[str, str]]:
    """The preview's images as JPEG files (previews are thrown away: no need for PNG), captioned
    "preview · step i of n" (the results tools leave previews alone: ui/results.py)."""
    caption = PREVIEW + (f" · step {preview.step} of {preview.total}" if preview.step else "")
    paths = []
    for index, image in enumerate(preview.images, start=1):
        path = folder / f"preview-{preview.step or 0}-{index}.jpg"
        image.convert("RGB").save(path, format="JPEG", quality=90)
        paths.append((str(path), caption))
    return paths
