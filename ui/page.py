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
# The region editor's strokes copied when Run is clicked after painting, Run held until then
# (region_sync.js, first: its click handler must come before the others); keyboard shortcuts
# (Ctrl/Cmd+Enter runs, Escape stops, Ctrl/Cmd+V pastes an image into the first free slot) and
# names for screen readers (page.js); a Stop right after Run made to reach the server
# (early_stop.js); the form kept for a reload the visitor did not ask for (draft.js, after page.js,
# whose helpers it uses: ui/draft.py); History and presets shared with the browser's other tabs (other_tabs.js).
HEAD = "".join(f"<script>\n{(ASSETS / name).read_text()}</script>\n"
               for name in ("region_sync.js", "early_stop.js", "page.js", "draft.js", "other_tabs.js"))
# And the rules for Gradio's frame around the app, which CSS_PATH cannot reach (frame.css says why).
HEAD += f"<style>\n{(ASSETS / 'frame.css').read_text()}</style>\n"
# Gradio's default theme, with every text at WCAG AA contrast (4.5:1) in light and dark mode:
# its help texts (#bbbbc2 on white, 1.9:1) and white on its orange Run button (2.8:1) are not.
# Its fonts are declared at weights 400 and 700: Gradio's own 600 files (SemiBold) hold only a
# handful of glyphs (' ', 'A', 'B'), so every bold label, button and heading was drawn in the
# fallback font with those few letters from another ("LoRA" with a small A).
THEME = gr.themes.Default(
    font=[gr.themes.LocalFont("Source Sans Pro", weights=(400, 700)), "ui-sans-serif", "system-ui", "sans-serif"],
    font_mono=[gr.themes.LocalFont("IBM Plex Mono", weights=(400, 700)), "ui-monospace", "Consolas", "monospace"],
).set(
    body_text_color_subdued="*neutral_600", body_text_color_subdued_dark="*neutral_400",
    input_placeholder_color="*neutral_500", input_placeholder_color_dark="*neutral_400",
    button_primary_background_fill="*primary_700", button_primary_background_fill_dark="*primary_700",
    button_primary_background_fill_hover="*primary_800", button_primary_background_fill_hover_dark="*primary_800",
    button_cancel_background_fill="#b91c1c", button_cancel_background_fill_dark="#b91c1c",
    button_cancel_background_fill_hover="#991b1b", button_cancel_background_fill_hover_dark="#991b1b",
)


def build_ui(setup: PageSetup, backends: Mapping[str, Backend], outputs: Outputs,
             spending: SpendingPolicy) -> gr.Blocks:
    # Previews and results are copied into Gradio's cache on every update: clean it hourly
    # of files older than a day, so a studio used all day does not fill the disk.
    with gr.Blocks(title="FLUX.2 LoRA Edit Studio", delete_cache=(3600, 86400)) as demo:
        page = build_layout(setup)
        wire(demo, page, setup, backends, outputs, spending)
    return demo
