"""Inputs checked when they are given, and problems kept on the field at fault.

- An uploaded reference is checked at once with the run's own limits (`check_upload`): a
  refused one leaves its slot, and the warning and the status line say why.
- The LoRA rows are checked as they are typed (`lora_notes`): a Civitai model page is
  explained, a Hugging Face file page is shown as the download link it becomes.
- A refused run marks the fields at fault (`field_marks` → `mark_fields`): a red outline
  and the problem as the field's help text, until that field changes or a run is planned.

Plain functions, except the three handlers at the end, which only turn them into updates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import gradio as gr

from backend.errors import AuthFailed, FieldProblem, InvalidInput, MissingKey, StudioError
from backend.images import check_upload
from backend.redact import redact
from backend.request import normalise_lora_path
from ui.form import FIELDS, IMAGE_FIELDS, NAMES, values_of
from ui.region_editor import take_painted_region
from ui.results import finished_results, pack_images
from ui.run import given_key, normalise_loras, pick_backend, run_warning
from ui.text import as_text

SHOWN = "shown_gallery"  # the page run's extra argument: what the results gallery showed before
FIELD_ERROR = "field-error"  # the class of a field at fault (assets/style.css)
IMAGE_LABEL = re.compile(r"^image (\d+)$")
SIZE_LABELS = {"Width": "width", "Height": "height"}
# The form names whose component shows the problem as its help text (`info`); the images
# have none (the outline and the status line say it), and the hidden LoRA list shows it in
# the note under the rows.
NO_INFO = {*IMAGE_FIELDS, "loras"}


def upload_problem(source: Any, slot: int) -> str | None:
    """Why the image uploaded into `slot` (1-based) is refused, or None when the run would take
    it (a large photo within the server's limit is taken: the run shrinks it to ~1 MP)."""
    if not source:
        return None
    try:
        check_upload(source, f"image {slot}")
    except InvalidInput as error:
        return "; ".join(p.message for p in error.problems)
    return None


def lora_notes(rows: Any) -> str:
    """What is wrong, or about to be changed, in the LoRA rows as typed: one line per row."""
    lines = []
    for index, row in enumerate(rows or [], start=1):
        path = str(row.get("path") or "").strip() if isinstance(row, dict) else ""
        if not path:
            continue
        try:
            normalised = normalise_lora_path(path)
        except ValueError as error:
            lines.append(f"LoRA {index}: {error}")
            continue
        if normalised != path:
            lines.append(f"LoRA {index}: the download link will be used: {normalised}")
    return "\n".join(lines)


def lora_checks(backends: Mapping[str, Any], *args: Any) -> str:
    """What each LoRA row's file is, from its header alone (format, rank, size, trigger words),
    and whether the chosen backend can use it: one line per row with a path. `args`: the form's
    values, in NAMES order."""
    values = values_of(args)
    try:
        backend = pick_backend(backends, values.get("backend"))
        options = backend.options(values)
    except StudioError:  # the form says what is wrong with the backend or its options
        return ""
    lines = []
    for index, row in enumerate(normalise_loras(values.get("loras")), start=1):
        path = row["path"].strip()
        if path:
            try:
                path = normalise_lora_path(path)
            except ValueError:
                continue  # lora_notes names it
            lines.append(backend.describe_lora(index, path, options))
    return as_text("\n".join(line for line in lines if line))


def field_marks(problems: Sequence[FieldProblem], images: Sequence[Any]) -> dict[str, str]:
    """The form fields at fault, by form name, each with its problems as one line.

    A problem names its request field (`image_urls`, `prompt`, `image_size`, ...): "image N"
    marks slot N; no image at all marks the first empty slot; a custom size's width or height
    marks that box. A field the page has no component for (the request as a whole) marks none.
    """
    marks: dict[str, list[str]] = {}
    for problem in problems:
        name = _form_name(problem, images)
        if name is not None:
            marks.setdefault(name, []).append(str(problem))
    return {name: "; ".join(lines) for name, lines in marks.items()}


def _form_name(problem: FieldProblem, images: Sequence[Any]) -> str | None:
    if problem.field == "image_urls":
        numbered = IMAGE_LABEL.match(problem.label)
        if numbered and int(numbered.group(1)) <= len(IMAGE_FIELDS):
            return IMAGE_FIELDS[int(numbered.group(1)) - 1]
        empty = [name for name, value in zip(IMAGE_FIELDS, images) if not value]
        return empty[0] if empty else None
    if problem.field == "image_size":
        return SIZE_LABELS.get(problem.label, "size")
    return problem.field if problem.field in FIELDS else None


def marks_of(error: InvalidInput, values: Mapping[str, Any]) -> dict[str, str]:
    """The marks of a refused run, from the form's values (which slots hold an image)."""
    return field_marks(error.problems, [values.get(name) for name in IMAGE_FIELDS])


# -- handlers ---------------------------------------------------------------------------


def checked_upload(slot: int, *slots: Any) -> tuple:
    """After an upload into `slot` (1-based): a refused image leaves the slot, with a warning
    and the status line naming the slot and the limit; the images stay packed to the left.
    Outputs: the slots, then the status line's text (None: unchanged)."""
    values = list(slots)
    problem = upload_problem(values[slot - 1], slot)
    if problem is None:
        return (*_moved(slots, pack_images(*values)), None)
    values[slot - 1] = None
    text = f"Image {slot}: {problem}"
    gr.Warning(text, title="Image not taken")
    return (*_moved(slots, pack_images(*values)), "⚠️ " + as_text(text))


def _moved(before: Sequence[Any], after: Sequence[Any]) -> list[Any]:
    """Only the slots whose image changed are set. Setting a slot to the file it already shows
    hands the page the server's copy of it (`size: null`), which the page takes for a change of
    image 1, and each such change re-reads it: once in a while (1 upload in 11 here; in CI the
    next upload never arrived) the two copies then took turns, dozens of changes a second."""
    return [gr.skip() if new == old else new for old, new in zip(before, after)]


def marked(marks: Mapping[str, str] | None, *, names: Sequence[str], components: Sequence[Any],
           note_classes: Sequence[str]) -> list:
    """The updates that show `marks` on the fields `names` (their `components`, whose own
    classes and help texts are kept), then on the LoRA note (its classes `note_classes`)."""
    marks = marks or {}
    updates = []
    for name, component in zip(names, components):
        classes = [c for c in _classes(component) if c != FIELD_ERROR]
        message = marks.get(name)
        update: dict[str, Any] = {"elem_classes": classes + [FIELD_ERROR] if message else classes}
        if name not in NO_INFO and FIELDS[name].owner == "request":
            update["info"] = message or component.info  # back to its own help text when fixed
        updates.append(gr.update(**update))
    lora = marks.get("loras")
    note = gr.update(value=as_text(redact(lora)), elem_classes=[*note_classes, FIELD_ERROR]) if lora else \
        gr.update(elem_classes=list(note_classes))
    return [*updates, note]


def unmark(marks: Mapping[str, str] | None, *, name: str) -> Any:
    """A field that changes loses its mark (the others keep theirs)."""
    if not marks or name not in marks:
        return gr.skip()
    return {k: v for k, v in marks.items() if k != name}


def _classes(component: Any) -> list[str]:
    classes = component.elem_classes or []
    return [classes] if isinstance(classes, str) else list(classes)


def page_run(body: Callable[[dict[str, Any], list], Iterator[tuple]], values: dict[str, Any]) -> Iterator[tuple]:
    """The run as the page shows it: `body(values, previous)` is the API's run (it raises a
    StudioError after saying it on the status line); here a refused or failed run is a warning,
    not an error (no red pills), the previous results are shown again, and the fields at fault
    are marked. Each update is the body's plus the marks (none once the run is planned)."""
    previous = finished_results(values.pop(SHOWN, None))
    take_painted_region(values)
    try:
        for update in body(values, previous):
            yield (*update, {})
    except StudioError as error:
        run_warning(error, given_key(values))
        marks = marks_of(error, values) if isinstance(error, InvalidInput) else {}
        if isinstance(error, MissingKey) or (isinstance(error, AuthFailed) and given_key(values)):
            marks = {"fal_key": error.message}  # the key box is the field to fill in (or to fix: the visitor's)
        yield (*[gr.skip()] * 6, marks)
    except gr.Error as refusal:  # the spending policy refused it (the body said so on the status line)
        gr.Warning(refusal.message, title=refusal.title or "The run did not start")
        yield (*[gr.skip()] * 6, {})


def wire_field_checks(page: Any, marks: gr.State) -> None:
    """Uploads checked at once; the marks of a refused run shown on the fields (`marks`: the
    page run's last output), each dropped when its field changes."""
    private: dict[str, Any] = dict(api_visibility="private")
    # Queued, for its warning; the status line is set after. Gradio draws an event's timer
    # ("queue: 1/1 | 0.1s") into its outputs even with show_progress="hidden": here into the slot.
    refused = gr.State(None)
    for slot, component in enumerate(page.slots, start=1):
        component.upload(partial(checked_upload, slot), page.slots, [*page.slots, refused],
                         show_progress="hidden", **private,
                         ).then(lambda text: text or gr.skip(), refused, page.status, queue=False,
                                show_progress="minimal", show_progress_on=[component], **private)
    names = [name for name in NAMES if name != "loras"]  # the LoRA list is hidden: its note shows it
    # The key's mark goes on its panel, and goes when the box the page holds changes (ui/key_box.py).
    components = [page.key_group if name == "fal_key" else page.form[name] for name in names]
    marks.change(partial(marked, names=names, components=components, note_classes=_classes(page.lora_note)),
                 marks, [*components, page.lora_note], queue=False, **private)
    for name in NAMES:
        # Queued: a gr.State's own change event follows only a queued event's update.
        changed = page.key_box if name == "fal_key" else page.form[name]
        changed.change(partial(unmark, name=name), marks, marks, **private)
