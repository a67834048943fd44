"""The project's own examples: reference images drawn in code (assets/make_examples.py),
so the project ships no copyrighted material."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"


def project_examples(prompt: gr.Textbox, slots: list[gr.Image]) -> Any:
    """The project's own examples (images drawn in code: assets/make_examples.py)."""
    listed = json.loads((EXAMPLES_DIR / "examples.json").read_text())
    rows = []
    for example in listed:
        images = [str(EXAMPLES_DIR / name) for name in example["images"]]
        rows.append([example["prompt"], *(images + [None] * len(slots))[: len(slots)]])
    return gr.Examples(rows, [prompt, *slots], label="Examples (one click runs them)",
                       example_labels=[e["name"] for e in listed], cache_examples=False)


