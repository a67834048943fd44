"""A picture dragged from another site onto an image slot. The browser's drag carries its address,
not a file, and Gradio's slots take only files: such a drop did nothing but show a note. Now the
page hands the address to the server (assets/page.js), which fetches it as it fetches an API
caller's image URL, in Gradio's preparation of the event's inputs (backend/input_urls.py, app.py
bound_url_inputs: https only, public addresses, an upload's size and time, the cache's room and the
visitor's upload share); the file comes back named by its format, and the page puts it into the
slot as an upload, through the slot's own checks (ui/field_checks.py). A refusal says why, with the
address, and the slot keeps what it holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from backend.images import ALLOWED_FORMATS, ALLOWED_NAMES, sniff_format
from ui.components import ReferenceImage

SUFFIXES = {"JPEG": ".jpg", "TIFF": ".tif"}  # else the format's name, e.g. ".png"
MIME_SUBTYPES = {"JPEG": "jpeg", "TIFF": "tiff"}  # image/<this>; else the format's name
# The address waiting (assets/page.js studioDrop.take): as a file to fetch, and {slot, address}.
TAKE_JS = "() => window.studioDrop.take()"
PUT_JS = "(file, drop) => { window.studioDrop.put(file, drop); return []; }"
REFUSED_JS = "() => { window.studioDrop.refused(); return []; }"
PRIVATE: dict[str, Any] = dict(api_visibility="private")  # as ui/wiring_common.py (which imports the layout)


@dataclass
class DropInputs:
    """Hidden parts of the page that page.js works when a picture from another site is dropped."""

    fetch: gr.Button  # clicked with an address waiting
    picture: ReferenceImage  # the address, as a file Gradio fetches; the fetched file's path reaches the handler
    drop: gr.JSON  # {slot: 1-based, address}; back with the picture's name and type
    fetched: gr.File  # the fetched file, served to the page


def drop_inputs() -> DropInputs:
    # "hidden": in the page (the script clicks the button), not shown.
    return DropInputs(
        fetch=gr.Button("", visible="hidden", elem_id="dropped-fetch"),
        picture=ReferenceImage(label="dropped picture", type="filepath", visible="hidden"),
        drop=gr.JSON(None, visible="hidden", elem_id="dropped-drop"),
        fetched=gr.File(visible="hidden", elem_id="dropped-fetched"),
    )


def fetched_picture(path: str | None, drop: Any) -> tuple[str, dict]:
    """The fetched file (`path`) and, for the page, the slot `drop` names, the picture's name and
    type (the file keeps the name its address gave it, which need not say its format); a file
    that is not one of the formats the slots take is refused naming the slot and the address."""
    slot, address = _slot_and_address(drop)
    if not path or not Path(path).is_file():
        raise gr.Error(f"image {slot}: nothing came from {address}.", title="Please check the form")
    with open(path, "rb") as handle:
        found = sniff_format(handle.read(64))
    if found not in ALLOWED_FORMATS:
        what = f"a {found} file" if found else "not a picture"
        raise gr.Error(f"image {slot}: {address} is {what} ({ALLOWED_NAMES} are taken). Save the picture and drop "
                       "the file, or copy it and press Ctrl/Cmd+V.", title="Please check the form")
    kind = MIME_SUBTYPES.get(found, found.lower())
    name = Path(path).stem + SUFFIXES.get(found, "." + found.lower())
    return path, {"slot": slot, "address": address, "name": name, "type": f"image/{kind}"}


def _slot_and_address(drop: Any) -> tuple[int, str]:
    """The slot and address the page sent (anything a stranger's page could send is checked)."""
    slot = drop.get("slot") if isinstance(drop, dict) else None
    address = drop.get("address") if isinstance(drop, dict) else None
    if not isinstance(slot, int) or isinstance(slot, bool) or not 1 <= slot <= 6:
        raise gr.Error("A dropped picture came without the image slot it was dropped on.",
                       title="Please check the form")
    return slot, str(address)[:200] if isinstance(address, str) else "the dropped address"


def wire_drop(inputs: DropInputs) -> None:
    """The fetch, then the file into its slot (page.js); a refusal (the message says why) leaves
    the slot as it was and says what to do instead."""
    # Queued: its refusal is a toast. "multiple": each drop is fetched, each taking its own address (page.js).
    fetched = inputs.fetch.click(fetched_picture, [inputs.picture, inputs.drop], [inputs.fetched, inputs.drop],
                                 js=TAKE_JS, trigger_mode="multiple", show_progress="hidden", **PRIVATE)
    fetched.success(None, [inputs.fetched, inputs.drop], None, js=PUT_JS, **PRIVATE)
    fetched.failure(None, None, None, js=REFUSED_JS, **PRIVATE)
