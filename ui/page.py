"""The whole page: the layout (ui/layout.py) with its events (ui/wiring.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import gradio as gr

from backend.base import Backend
from backend.spending import SpendingPolicy
from ui.form import PageSetup
from ui.layout import build_layout
from ui.run import Outputs
from ui.wiring import wire

ASSETS = Path(__file__).resolve().parent.parent / "assets"
CSS_PATH = ASSETS / "style.css"
# Keyboard shortcuts (Ctrl/Cmd+Enter runs, Escape stops) and names for screen readers.
HEAD = "<script>\n" + (ASSETS / "page.js").read_text() + "</script>\n"


def build_ui(setup: PageSetup, backends: Mapping[str, Backend], outputs: Outputs,
             spending: SpendingPolicy) -> gr.Blocks:
    # Previews and results are copied into Gradio's cache on every update: clean it hourly
    # of files older than a day, so a studio used all day does not fill the disk.
    with gr.Blocks(title="FLUX.2 LoRA Edit Studio", delete_cache=(3600, 86400)) as demo:
        page = build_layout(setup)
        wire(demo, page, setup, backends, outputs, spending)
    return demo
