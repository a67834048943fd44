"""What a visitor types or paints into is never read or written by a server event.

Gradio's page re-reads every component that a server event reads or writes at each status
message of any event, and writes what it read back into the component: a key being pasted
could end as the text before it, and the region editor uploaded its picture twice at each
message (ui/layout.py _key_box, ui/region_editor.py). Both are copied in the browser into
hidden fields that the server's events read."""

from __future__ import annotations

from app import create_app
from backend.settings import Settings

TYPED_OR_PAINTED = ("fal-key", "region-editor")


def test_no_server_event_reads_or_writes_the_key_box_or_the_region_editor(tmp_path):
    settings = Settings.from_env({"STUDIO_BACKENDS": "fal", "STUDIO_OUTPUTS": str(tmp_path)})
    demo, _ = create_app(settings)
    watched = {block._id: block.elem_id for block in demo.blocks.values()
               if getattr(block, "elem_id", None) in TYPED_OR_PAINTED}
    assert sorted(watched.values()) == sorted(TYPED_OR_PAINTED)
    browser_only = 0
    for dependency in demo.fns.values():
        used = {block._id for block in [*dependency.inputs, *dependency.outputs]} & watched.keys()
        if dependency.fn is None:
            browser_only += bool(used)
        else:
            assert not used, f"{dependency.name} (a server event) uses {[watched[i] for i in used]}"
    assert browser_only >= 2  # each is copied by an event that runs in the browser
