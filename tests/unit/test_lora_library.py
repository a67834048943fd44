"""The LoRA library: every LoRA used (History first, newest first; then presets; then the LoRA
folder), each once, with its last scale, source and last result; a click adds it to the stack."""

from __future__ import annotations

import base64
import io

from PIL import Image

from backend.lora_preflight import LoraInspector
from tests.helpers.lora_headers import lora_header_file
from ui.lora_library import add_to_stack, library_entries, library_items


def jpeg_uri(colour) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, format="JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def entry(created: str, loras: list[dict], colour=(200, 30, 30)) -> dict:
    return {"created": created, "recipe": {"request": {"prompt": "p", "loras": loras}}, "thumbs": [jpeg_uri(colour)]}


HISTORY = [
    entry("2026-12-03 14:32", [{"path": "owner/watercolor", "scale": 0.8}], colour=(20, 20, 220)),
    entry("2026-12-03 11:05", [{"path": "owner/watercolor", "scale": 1.3}, {"path": "owner/ink", "scale": 0.5}]),
    {"recipe": "not an entry this page wrote"},
]
PRESETS = {"soft": {"loras": [{"path": "owner/ink", "scale": 2.0, "enabled": True},
                              {"path": "owner/pastel", "scale": 0.6, "enabled": False}]}}


def test_each_lora_once_with_its_last_use_then_presets_then_the_folder():
    entries = library_entries(HISTORY, PRESETS, ["style.safetensors", "owner/ink"])
    assert [(e["path"], e["scale"], e["source"]) for e in entries] == [
        ("owner/watercolor", 0.8, "History 14:32"),
        ("owner/ink", 0.5, "History 11:05"),
        ("owner/pastel", 0.6, "Preset soft"),
        ("style.safetensors", 1.0, "LoRA folder"),
    ]
    items = library_items(entries, {"owner/watercolor": ("wtrclr",)})
    (first, caption), (_, folder_caption) = items[0], items[3]
    assert caption == "watercolor · 0.8 · History 14:32 · trigger: wtrclr"
    assert first.getpixel((10, 10))[2] > 180  # the last result with it (blue), not an older one
    assert folder_caption == "style · 1 · LoRA folder" and items[3][0].size == (160, 160)


def test_a_click_adds_the_lora_at_its_last_scale_or_switches_it_on():
    entries = library_entries(HISTORY, PRESETS, [])
    rows, version = add_to_stack([], 3, entries, 0)
    assert (rows, version) == ([{"path": "owner/watercolor", "scale": 0.8, "enabled": True}], 4)
    off = [{"path": "owner/pastel", "scale": 0.6, "enabled": False}]
    rows, version = add_to_stack(off, 4, entries, 2)
    assert rows == [{"path": "owner/pastel", "scale": 0.6, "enabled": True}] and version == 5
    three_on = [{"path": f"o/l{i}", "scale": 1.0, "enabled": True} for i in range(3)]
    rows, _ = add_to_stack(three_on, 5, entries, 1)
    assert rows[-1] == {"path": "owner/ink", "scale": 0.5, "enabled": False}  # added, switched off


def test_the_folder_lists_its_safetensors_and_their_trigger_words_come_from_disk(tmp_path):
    (tmp_path / "styles").mkdir()
    (tmp_path / "styles" / "ink.safetensors").write_bytes(
        lora_header_file("flux2-dev", "kohya", metadata={"trigger_word": "inkwash"}, every=8))
    (tmp_path / "notes.txt").write_text("not a LoRA")
    inspector = LoraInspector(lora_dir=tmp_path)
    assert inspector.folder_files() == ["styles/ink.safetensors"]
    assert inspector.known("styles/ink.safetensors").trigger_words == ("inkwash",)
    assert inspector.known("owner/never-read") is None  # nothing is fetched for the library


def test_a_hand_edited_presets_file_does_not_break_the_library():
    presets = {"broken": {"loras": "not a list"}, "odd": {"loras": [{"path": "owner/loud", "scale": 99}]}, **PRESETS}
    entries = library_entries([], presets, [])
    # The broken preset adds nothing; a scale the slider cannot show comes back as 1.
    assert [(e["path"], e["scale"]) for e in entries] == [("owner/loud", 1.0), ("owner/ink", 2.0),
                                                          ("owner/pastel", 0.6)]
