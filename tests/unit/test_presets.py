"""Presets: saved, renamed, deleted, exported and imported (ui/presets.py)."""

from __future__ import annotations

import json

import pytest

from ui import presets as presets_lib


def test_presets_keep_settings_only_and_import_what_export_wrote(tmp_path):
    values = {field: index for index, field in enumerate(presets_lib.PRESET_FIELDS)}
    presets = presets_lib.save_preset({}, " strong ", {**values, "prompt": "not kept"})
    assert presets == {"strong": values}
    exported = presets_lib.export_presets(presets, tmp_path)
    assert presets_lib.import_presets({"old": {}}, open(exported, "rb").read()) == {"old": {}, "strong": values}
    with pytest.raises(ValueError, match="not JSON"):
        presets_lib.import_presets({}, b"\x89PNG")
    with pytest.raises(ValueError, match="not a presets file"):
        presets_lib.import_presets({}, json.dumps([1, 2]).encode())
    with pytest.raises(ValueError, match="name"):
        presets_lib.save_preset({}, "  ", values)
    # Presets the browser sent back larger than an import takes are not written out.
    assert presets_lib.export_presets({"big": {"x": "y" * presets_lib.MAX_PRESETS_BYTES}}, tmp_path) is None

def test_a_presets_file_over_the_limit_is_refused_before_it_is_parsed():
    huge = b'{"a": {}' + b" " * presets_lib.MAX_PRESETS_BYTES + b"}"
    with pytest.raises(ValueError, match="over 1 MB"):
        presets_lib.import_presets({}, huge)

def test_presets_rename_in_place_and_delete():
    presets = {"a": {"seed": 1}, "b": {"seed": 2}, "c": {"seed": 3}}
    assert list(presets_lib.rename_preset(presets, "b", " bee ")) == ["a", "bee", "c"]
    for old, new, problem in (("zz", "x", "Pick"), ("b", " ", "new name"), ("b", "c", "already")):
        with pytest.raises(ValueError, match=problem):
            presets_lib.rename_preset(presets, old, new)
    assert presets_lib.delete_preset(presets, "a") == {"b": {"seed": 2}, "c": {"seed": 3}}
    with pytest.raises(ValueError, match="Pick"):
        presets_lib.delete_preset(presets, "zz")


def test_presets_that_the_browser_has_no_room_for_are_refused_and_the_others_stay():
    """The browser keeps the presets beside History in a few MB for the site; a write past that
    room was lost without a word. Saving or importing past MAX_PRESETS_BYTES is refused, named."""
    loras = [{"path": "https://example.com/" + "l" * 2000, "scale": 1, "enabled": True}] * 3
    values = {field: loras if field == "loras" else 1 for field in presets_lib.PRESET_FIELDS}
    presets: dict = {}
    with pytest.raises(ValueError, match="over 1 MB.*delete some"):
        for n in range(10_000):
            presets = presets_lib.save_preset(presets, f"p{n}", values)
    assert 50 < len(presets) < 10_000  # many presets fit; the last one did not, the others are there
    exported = json.dumps({f"i{n}": {"loras": loras} for n in range(len(presets) // 2)}).encode()
    with pytest.raises(ValueError, match="over 1 MB"):
        presets_lib.import_presets(presets, exported)  # a file under the limit that the room does not take
    assert len(presets_lib.import_presets({}, exported)) == len(presets) // 2  # on its own it fits
