"""Gradio components with the behaviour this app needs."""

from __future__ import annotations

import gradio as gr
from gradio.data_classes import ImageData


class ReferenceImage(gr.Image):
    """A gr.Image whose file reaches the handler unopened.

    gr.Image opens every upload with Pillow before the handler runs, so a file that is
    not an image, an empty one or a decompression bomb fails there with a message that
    names nothing. This one passes the uploaded file's path (or an inline data: URL)
    on, and the backend's own checks (backend/images.py) name the image and the limit.
    Gradio still only accepts files from its upload folder here.
    """

    is_template = True  # the browser side is gr.Image's

    def preprocess(self, payload: ImageData | None) -> str | None:
        if payload is None:
            return None
        if payload.url and payload.url.startswith("data:"):
            return payload.url
        return str(payload.path) if payload.path else None
