"""What a visitor types or paints into is never read or written by a server event.

Gradio's page keeps a copy of each component's value and writes it back into the component
at each status message of any event, for what an event reads or writes: a key being pasted
could end as the text before it, and the region editor uploaded its picture twice at each
message. The editor is copied in the browser into a hidden field (ui/region_editor.py); the
key is held by the page alone and put into the events' `fal_key` argument by their `js`
(ui/key_box.py)."""

from __future__ import annotations

from app import create_app
from backend.settings import Settings
from ui.key_box import fill_key_js

TYPED_OR_PAINTED = ("fal-key", "region-editor")
# The page's events that send a run's key; the cost texts, told only whether there is one.
SPENDING_EVENTS = ("page_edit", "page_queue", "page_sweep")


def _app(tmp_path):
    settings = Settings.from_env({"STUDIO_BACKENDS": "fal", "STUDIO_OUTPUTS": str(tmp_path)})
    demo, _ = create_app(settings)
    return demo


def test_no_server_event_reads_or_writes_the_key_box_or_the_region_editor(tmp_path):
    demo = _app(tmp_path)
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
    assert browser_only >= 1  # the editor is copied by an event that runs in the browser


def test_the_page_never_writes_the_key_field_and_its_runs_send_the_key_the_page_holds(tmp_path):
    """The hidden `fal_key` field is no event's output (nothing can take a key back into it),
    and each page event that spends sends the page's key in its place; the cost texts get
    only whether there is one."""
    demo = _app(tmp_path)
    fal_key = next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "fal-key-value")
    by_name: dict[str, list] = {}
    for dependency in demo.fns.values():
        assert fal_key not in dependency.outputs, f"{dependency.name} writes into the key field"
        by_name.setdefault(dependency.name, []).append(dependency)
    for name in SPENDING_EVENTS:
        (dependency,) = by_name[name]
        assert dependency.js == fill_key_js(dependency.inputs, fal_key), name
        assert "window.studioFalKey" in dependency.js
    (costs,) = by_name["page_costs"]
    assert costs.js == fill_key_js(costs.inputs, fal_key, only_whether=True)
    assert costs.js != fill_key_js(costs.inputs, fal_key)  # never the key itself
    # The API's own endpoints take the key as their caller gives it.
    for name in ("edit", "sweep"):
        (dependency,) = by_name[name]
        assert fal_key in dependency.inputs and not dependency.js
