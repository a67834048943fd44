"""The LoRA list editor: rows built from data (no copy-pasted slots).

`rows` (a hidden JSON value, also the `loras` argument of the API) holds
[{path, scale, enabled}]. Row edits update it in place; adding or removing a row
bumps `version`, which re-renders the rows.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from backend.request import MAX_ACTIVE_LORAS, LoraWeight, field_limits
from ui.components import LoraList
from ui.field_checks import lora_notes
from ui.run import MAX_LORA_ROWS, normalise_loras
from ui.text import as_text

# A row edit rebuilds the list in the browser (no round trip to the server): a Run clicked right
# after an edit, however busy the server, sends the rows as they are on screen.
# (An array returned by a js event is read as the list of its outputs' values: hence [rows].)
COLLECT_ROWS_JS = """(...values) => {
  const rows = [];
  for (let i = 0; i + 2 < values.length; i += 3) {
    rows.push({path: values[i], scale: values[i + 1], enabled: values[i + 2]});
  }
  return [rows];
}"""
ADDED_OFF = f"At most {MAX_ACTIVE_LORAS} LoRAs can be on at once: the new one was added switched off."
KEPT_OFF = f"At most {MAX_ACTIVE_LORAS} LoRAs can be on at once: switch one off first."


def limit_active_loras(rows: list[dict[str, Any]], message: str = ADDED_OFF) -> tuple[list[dict[str, Any]], str | None]:
    """Keep at most MAX_ACTIVE_LORAS rows switched on; returns (rows, `message` if one was kept off)."""
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
        return out, message
    return out, None


def add_row(all_rows: list, v: float) -> tuple[list, Any]:
    """One more row, switched on if fewer than MAX_ACTIVE_LORAS are; none past MAX_LORA_ROWS."""
    all_rows = normalise_loras(all_rows)
    if len(all_rows) >= MAX_LORA_ROWS:
        gr.Warning(f"At most {MAX_LORA_ROWS} LoRA rows: remove one first.")
        return all_rows, gr.skip()
    limited, warning = limit_active_loras(all_rows + [{"path": "", "scale": 1.0, "enabled": True}])
    if warning:
        gr.Warning(warning)
    return limited, v + 1


def lora_hint(backends: tuple[str, ...]) -> str:
    """What a LoRA row takes on this server's backends."""
    only: dict[tuple[str, ...], str] = {("fal",): "or a path fal accepts",
                                         ("local",): "or a file in this server's LoRA folder"}
    where = only.get(tuple(backends), "a path fal accepts (fal) or a file in this server's LoRA folder (local)")
    return (f"**LoRAs** — an https URL to a .safetensors file, a Hugging Face repo id, {where}. "
            f"At most {MAX_ACTIVE_LORAS} switched on.")


def lora_editor(backends: tuple[str, ...]) -> tuple[LoraList, gr.Number, gr.Markdown, gr.Markdown]:
    """The editor's components; returns (rows, version, note, check) for the page's events. The
    note under the rows says what is wrong in them as they are typed (and a refused run's LoRA
    problems); the check, what each LoRA is as its header says (ui/wiring.py fills it)."""
    scale_limits = field_limits("scale", LoraWeight)
    with gr.Group(elem_id="lora-stack"):
        gr.Markdown(lora_hint(backends), elem_classes=["hint"])
        rows = LoraList(value=[], visible=False, label="loras")
        version = gr.Number(value=0, visible=False)

        # Every edit rebuilds the list from ALL the rows' current values (not from `rows`,
        # which may not yet hold the previous edit): in the browser (COLLECT_ROWS_JS), and the
        # server's edits (add, remove, the limit) one at a time in the order they were made:
        # typing in one row and then another loses nothing.
        in_order: dict[str, Any] = dict(api_visibility="private", concurrency_id="lora-editor", concurrency_limit=1)

        @gr.render(inputs=[rows], triggers=[version.change])
        def render_rows(current: list[dict[str, Any]] | None):
            current = normalise_loras(current)
            fields: list[Any] = []  # Gradio adds event methods at run time
            removes = []
            for index, row in enumerate(current):
                with gr.Row(equal_height=True, elem_classes=["lora-row"]):
                    path = gr.Textbox(
                        value=row["path"], label=f"LoRA {index + 1}", scale=5, key=f"lora-path-{index}",
                        placeholder="owner/repo or URL",
                    )
                    scale = gr.Slider(
                        minimum=scale_limits["minimum"], maximum=scale_limits["maximum"], step=0.05,
                        value=row["scale"], label="scale", scale=3, key=f"lora-scale-{index}", interactive=True,
                        elem_id=f"lora-scale-{index + 1}",
                    )
                    # "scale" and "on" alone would be read out the same for every row: the page
                    # names them "LoRA n scale" and "LoRA n on" for screen readers (layout.py).
                    enabled = gr.Checkbox(value=row["enabled"], label="on", scale=1, min_width=60, interactive=True,
                                          key=f"lora-on-{index}", elem_id=f"lora-on-{index + 1}")
                    # "✕" alone is read out as a symbol: the page names it "Remove LoRA n" (layout.py).
                    removes.append(gr.Button("✕", size="sm", scale=0, min_width=40, key=f"lora-remove-{index}",
                                             elem_id=f"lora-remove-{index + 1}"))
                fields += [path, scale, enabled]

            def collect(values: tuple) -> list[dict[str, Any]]:
                return [
                    {"path": values[i], "scale": values[i + 1], "enabled": values[i + 2]}
                    for i in range(0, len(values), 3)
                ]

            def toggled(version_now: float, *values) -> tuple[Any, Any]:
                limited, warning = limit_active_loras(collect(values), KEPT_OFF)
                if warning:
                    gr.Warning(warning)
                    return limited, version_now + 1  # re-render so the checkbox shows it stayed off
                return gr.skip(), gr.skip()

            for row_path, row_scale, row_on in zip(fields[0::3], fields[1::3], fields[2::3]):
                for edit in (row_path.change, row_scale.change, row_on.input):
                    edit(None, fields, rows, js=COLLECT_ROWS_JS, api_visibility="private", queue=False)
                # A fourth switched on is switched off again, with a warning, on the server.
                row_on.input(toggled, [version, *fields], [rows, version], **in_order)
            for index, remove in enumerate(removes):
                remove.click(
                    lambda version_now, *values, i=index: (
                        [r for j, r in enumerate(collect(values)) if j != i], version_now + 1),
                    [version, *fields], [rows, version], **in_order,
                )

        note = gr.Markdown("", elem_id="lora-note", elem_classes=["lora-note"])
        rows.change(lambda r: as_text(lora_notes(r)), rows, note, api_visibility="private", queue=False)
        check = gr.Markdown("", elem_id="lora-check", elem_classes=["lora-note"])
        add = gr.Button("+ Add LoRA", size="sm", elem_id="add-lora")
        add.click(add_row, [rows, version], [rows, version], **in_order)
    return rows, version, note, check
