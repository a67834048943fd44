"""The LoRA list editor: rows built from data (no copy-pasted slots).

`rows` (a hidden JSON value, also the `loras` argument of the API) holds
[{path, scale, enabled}]. Row edits update it in place; adding or removing a row
bumps `version`, which re-renders the rows.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from backend.request import LoraWeight, field_limits
from ui import handlers


def lora_editor() -> tuple[gr.JSON, gr.Number]:
    """The editor's components; returns (rows, version) for the page's events."""
    scale_limits = field_limits("scale", LoraWeight)
    with gr.Group():
        gr.Markdown("**LoRAs** — an https URL to a .safetensors file, a Hugging Face repo id, "
                    "or a path fal accepts. At most 3 switched on.", elem_classes=["hint"])
        rows = gr.JSON(value=[], visible=False, label="loras")
        version = gr.Number(value=0, visible=False)

        @gr.render(inputs=[rows], triggers=[version.change])
        def render_rows(current: list[dict[str, Any]] | None):
            current = handlers.normalise_loras(current)
            for index, row in enumerate(current):
                with gr.Row(equal_height=True, elem_classes=["lora-row"]):
                    path = gr.Textbox(
                        value=row["path"], label=f"LoRA {index + 1}", scale=5, key=f"lora-path-{index}",
                        placeholder="owner/repo or https://…/lora.safetensors",
                    )
                    scale = gr.Slider(
                        minimum=scale_limits["minimum"], maximum=scale_limits["maximum"], step=0.05,
                        value=row["scale"], label="scale", scale=3, key=f"lora-scale-{index}", interactive=True,
                    )
                    enabled = gr.Checkbox(value=row["enabled"], label="on", scale=1, min_width=60, interactive=True,
                                          key=f"lora-on-{index}")
                    remove = gr.Button("✕", size="sm", scale=0, min_width=40, key=f"lora-remove-{index}")

                def update(value: Any, all_rows: list, i: int = index, name: str = "") -> list:
                    all_rows = handlers.normalise_loras(all_rows)
                    if i < len(all_rows):
                        all_rows[i] = {**all_rows[i], name: value}
                    return all_rows

                path.change(lambda v, r, i=index: update(v, r, i, "path"), [path, rows], rows,
                            api_visibility="private", queue=False)
                scale.change(lambda v, r, i=index: update(v, r, i, "scale"), [scale, rows], rows,
                             api_visibility="private", queue=False)

                def toggle(value: bool, all_rows: list, v: float, i: int = index) -> tuple[list, Any]:
                    all_rows = update(value, all_rows, i, "enabled")
                    limited, warning = handlers.limit_active_loras(all_rows)
                    if warning:
                        gr.Warning(warning)
                        return limited, v + 1  # re-render so the checkbox shows it stayed off
                    return limited, gr.skip()

                # queued: gr.Warning reaches the page only through the queue's stream
                enabled.input(toggle, [enabled, rows, version], [rows, version], api_visibility="private")
                remove.click(
                    lambda r, v, i=index: ([x for j, x in enumerate(handlers.normalise_loras(r)) if j != i], v + 1),
                    [rows, version], [rows, version], api_visibility="private", queue=False,
                )

        add = gr.Button("+ Add LoRA", size="sm", elem_id="add-lora")

        def add_row(all_rows: list, v: float) -> tuple[list, float]:
            all_rows = handlers.normalise_loras(all_rows) + [{"path": "", "scale": 1.0, "enabled": True}]
            limited, warning = handlers.limit_active_loras(all_rows)
            if warning:
                gr.Warning(warning)
            return limited, v + 1

        add.click(add_row, [rows, version], [rows, version], api_visibility="private")
    return rows, version
