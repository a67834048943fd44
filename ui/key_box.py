"""The box a visitor pastes their own fal key into: a plain input that Gradio does not hold.

Gradio's page keeps a copy of each component's value in its layout tree, syncs it with the
component at each status message of any event (for what an event reads or writes, and for
everything inside it: the key's own panel is an event's output, for the backend switch and a
refused run's mark), and writes the copy back into the component when the tree's props are
set again. Twice in CI a key pasted right after a run's events was lost: once from the box
(it ended as the text before it), once from the hidden field it was copied into (the cost text
never heard of it). So the key is held by the page alone: the input's text, and
`window.studioFalKey`, set as it is typed (and put back into the input when Gradio mounts it
again, after the panel was hidden).

The page's events that need the key (a run, Queue, a sweep) get it through their `js`, which
puts it into their `fal_key` argument as the event is sent (`fill_key_js`); the cost texts are
told only whether there is one. The hidden `fal_key` field is only that argument's place in the
form: the page never writes into it. The API's `fal_key` argument is unchanged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gradio as gr

LABEL = "Your fal API key"
PLACEHOLDER = "fal key (id:secret)"
OWN_KEY_MARK = "own key"  # what the cost texts get instead of the key: that there is one
# Nothing Gradio renders: the template never changes, so Gradio never rewrites the input.
HTML = (f'<label class="key-field"><span class="key-label">{LABEL}</span>'
        f'<input type="password" autocomplete="off" spellcheck="false" placeholder="{PLACEHOLDER}"></label>')
# Runs when Gradio mounts the box: an input made afresh (its panel hidden, then shown) shows the key again.
ON_LOAD_JS = """
const input = element.querySelector("input");
input.value = window.studioFalKey || "";
input.addEventListener("input", () => { window.studioFalKey = input.value; trigger("change"); });
"""


def key_box() -> gr.HTML:
    """The box; its change event fires as the key is typed, pasted or taken back."""
    return gr.HTML(HTML, js_on_load=ON_LOAD_JS, container=True, padding=False, elem_id="fal-key")


def fill_key_js(inputs: Sequence[Any], fal_key: Any, *, only_whether: bool = False) -> str:
    """An event's `js`: its inputs as Gradio read them, with the page's key in `fal_key`'s place;
    `only_whether`: "own key" when there is one (the cost texts need no more), else ""."""
    index = next(i for i, component in enumerate(inputs) if component is fal_key)
    key = 'window.studioFalKey || ""'
    value = f'({key}).trim() ? "{OWN_KEY_MARK}" : ""' if only_whether else key
    return f"(...values) => {{ values[{index}] = {value}; return values; }}"
