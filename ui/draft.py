"""The form as the visitor left it, back after a reload they did not ask for.

When its connection to the server breaks (a Space restarting or waking, a phone changing
networks), Gradio's page tries to reconnect and, once it can, reloads itself
(`window.location.reload()`): the instruction being written, the images, the LoRA stack and the
settings were gone, unasked. The page now keeps the form for its tab as it changes
(assets/draft.js: the settings in sessionStorage, the images in IndexedDB, this tab's only, the
fal key never), and after that reload (or after the browser brings back a tab it had discarded)
puts the images back into their slots as uploads and hands the settings to `restore_draft`,
which sets them as History's restore does: each checked as the form checks it (a draft comes
from the browser and can say anything). A reload the visitor asks for (F5) starts a fresh form,
as before (History keeps the runs).
"""

from __future__ import annotations

import json
from typing import Any

import gradio as gr

from ui.form import RESTORED_FIELDS, SKIP, PageSetup
from ui.layout import Page
from ui.restored_values import as_updates, checked, left_out
from ui.text import as_text

RESTORED_NOTE = ("↺ The page reloaded by itself (its connection to the server was lost, or the browser had put "
                 "this tab to sleep): the form is as you left it.")
TAKE_JS = "(draft, version) => [window.studioDraft.take(), version]"
READY_JS = "() => { window.studioDraft.ready(); return []; }"
PRIVATE: dict[str, Any] = dict(api_visibility="private", show_progress="hidden")


def save_js(names: list[str]) -> str:
    """The form's values (in `names` order) into the tab's draft, as they change (no server call)."""
    return f"(...values) => {{ window.studioDraft.save({json.dumps(names)}, values); return []; }}"


def restore_draft(draft: Any, version: float, setup: PageSetup) -> tuple:
    """The draft's settings into the form (outputs: RESTORED_FIELDS, the LoRA rows' version, the
    status line). A setting that fails the form's checks stays as a fresh page has it, named."""
    if not isinstance(draft, dict):
        return (*[gr.skip()] * len(RESTORED_FIELDS), gr.skip(), gr.skip())
    values, notes = checked({name: draft.get(name, SKIP) for name in RESTORED_FIELDS}, setup)
    status = RESTORED_NOTE + (" " + as_text(left_out(notes)) if notes else "")  # the notes quote the draft: text
    return (*as_updates(values), version + 1, status)


def wire_draft(demo: gr.Blocks, page: Page, setup: PageSetup) -> None:
    """Keep the form for this tab as it changes; restore it when page.js asks (see the module)."""
    names = [*RESTORED_FIELDS, *(f"image_{n}" for n in range(1, len(page.slots) + 1))]
    kept = [*(page.form[name] for name in RESTORED_FIELDS), *page.slots]
    gr.on([field.change for field in kept], None, kept, None, js=save_js(names), **PRIVATE)
    # "hidden": in the page (draft.js clicks the button), not shown.
    restore, draft = gr.Button("", visible="hidden", elem_id="draft-restore"), gr.JSON(None, visible="hidden")
    restore.click(lambda value, version: restore_draft(value, version, setup), [draft, page.lora_version],
                  [*(page.form[name] for name in RESTORED_FIELDS), page.lora_version, page.status],
                  js=TAKE_JS, **PRIVATE)
    demo.load(None, None, None, js=READY_JS, **PRIVATE)
