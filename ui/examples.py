"""The project's own examples: reference images drawn in code (assets/make_examples.py),
so the project ships no copyrighted material."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"


def listed_examples() -> list[dict[str, Any]]:
    return json.loads((EXAMPLES_DIR / "examples.json").read_text())


def project_examples(prompt: gr.Textbox, slots: list[gr.Image]) -> Any:
    """The project's own examples (images drawn in code: assets/make_examples.py). A click fills
    the instruction and the references (then `example_settings` the rest); it does not run."""
    listed = listed_examples()
    rows = []
    for example in listed:
        images = [str(EXAMPLES_DIR / name) for name in example["images"]]
        rows.append([example["prompt"], *(images + [None] * len(slots))[: len(slots)]])
    return gr.Examples(rows, [prompt, *slots], label="Examples (a click fills the form; then press Run)",
                       example_labels=[e["name"] for e in listed], cache_examples=False, elem_id="examples")


def example_settings(prompt: str, version: float) -> tuple:
    """The LoRAs and settings of the example whose instruction the form now holds (the LoRA
    rows are redrawn: `version` + 1), and a status saying what to do next."""
    example = next((e for e in listed_examples() if e["prompt"] == prompt), None)
    if example is None:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
    loras = [{"path": str(r["path"]), "scale": float(r.get("scale", 1.0)), "enabled": True}
             for r in example.get("loras", [])]
    return (loras, example.get("guidance_scale", gr.skip()), example.get("num_inference_steps", gr.skip()),
            version + 1, f"📋 Example \u201c{example['name']}\u201d is in the form: press Run to run it.")
