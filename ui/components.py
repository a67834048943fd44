"""Gradio components with the behaviour this app needs."""

from __future__ import annotations

from typing import Any

import gradio as gr
from gradio.data_classes import ImageData
from pydantic import model_validator

from backend.request import MAX_ACTIVE_LORAS, LoraWeight, field_limits


class ReferenceImageData(ImageData):
    """gr.Image's value, or a bare string from an API caller (a URL or a data: URL written
    where a file goes), kept as `url` for ReferenceImage to take or refuse by name: Gradio
    refused it before any handler ran, with no message at all."""

    @model_validator(mode="before")
    @classmethod
    def _text_as_url(cls, value: Any) -> Any:
        return {"url": value} if isinstance(value, str) else value


class ReferenceImage(gr.Image):
    """A gr.Image whose file reaches the handler unopened.

    gr.Image opens every upload with Pillow before the handler runs, so a file that is
    not an image, an empty one or a decompression bomb fails there with a message that
    names nothing. This one passes the uploaded file's path (or an inline data: URL)
    on, and the backend's own checks (backend/images.py) name the image and the limit.
    Gradio still only accepts files from its upload folder here (or fetches a URL sent as
    a file: backend/input_urls.py).
    """

    is_template = True  # the browser side is gr.Image's
    data_model = ReferenceImageData

    def preprocess(self, payload: ImageData | None) -> str | None:
        if payload is None:
            return None
        if payload.url and payload.url.startswith("data:"):
            return payload.url
        if payload.path:
            return str(payload.path)
        if payload.url:  # text where a file goes
            raise gr.Error(
                f"{self.label}: send the image as a file, not the text {payload.url[:100]!r} "
                "(gradio_client: handle_file('photo.png') or handle_file('https://…/photo.png'))",
                title="Please check the form",
            )
        return None


class LoraList(gr.JSON):
    """The LoRA rows ([{path, scale, enabled}]) with a JSON schema that says so.

    gr.JSON describes itself to API and MCP clients as `{"type": {}}` ("any JSON"), a
    schema MCP clients reject, so no tool call could be made."""

    is_template = True  # the browser side is gr.JSON's

    def api_info(self) -> dict:
        scale = LoraWeight.model_fields["scale"]
        limits = field_limits("scale", LoraWeight)
        return {
            "type": "array",
            "description": f"up to {MAX_ACTIVE_LORAS} switched on",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": LoraWeight.model_fields["path"].description},
                    "scale": {"type": "number", "default": scale.default, **limits},
                    "enabled": {"type": "boolean", "default": True},
                },
                "required": ["path"],
            },
        }


# Gradio checks an API caller's value against the component (a slider's range, a radio's
# choices) before the handler runs, with messages that do not say which field
# ("Value 25 is greater than maximum value 20.0."), and a value of the wrong type fails
# with no message at all. These components give the same checks as the request model's
# messages: "<label>: must be at most 20 (got 25)".


def kept_in_browser(default: object, storage_key: str) -> gr.BrowserState:
    """A gr.BrowserState (the visitor's localStorage) that outlives a restart of the server.

    Gradio encrypts a BrowserState's value with its `secret` and sends that secret to every
    page in its config, so it hides nothing from the page; but when none is given it makes a
    random one at each start, and after a restart (or a Space rebuild) every browser's stored
    value no longer decrypts and silently becomes the default: History, presets and the queue
    token gone. A fixed secret per key keeps them. What is stored is read back as the
    browser's word, as before (ui/history.py checks every entry)."""
    return gr.BrowserState(default, storage_key=storage_key, secret=f"{storage_key}-v1")


def show_number(value: float) -> str:
    """25.0 -> '25', 0.5 -> '0.5': numbers as a person writes them in a message."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _number_or_error(component: gr.components.Component, payload, minimum, maximum):
    if payload is None:
        return None
    if isinstance(payload, bool) or not isinstance(payload, (int, float)):
        raise gr.Error(f"{component.label}: must be a number (got {payload!r})", title="Please check the form")
    if maximum is not None and payload > maximum:
        raise gr.Error(f"{component.label}: must be at most {show_number(maximum)} (got {show_number(payload)})",
                       title="Please check the form")
    if minimum is not None and payload < minimum:
        raise gr.Error(f"{component.label}: must be at least {show_number(minimum)} (got {show_number(payload)})",
                       title="Please check the form")
    return payload


def _choice_or_error(component: gr.Radio | gr.Dropdown, payload):
    values = [value for _, value in component.choices]
    if payload is not None and payload not in values:
        raise gr.Error(
            f"{component.label}: must be one of {', '.join(map(str, values))} (got {payload!r})",
            title="Please check the form",
        )
    return payload


class Slider(gr.Slider):
    """gr.Slider whose refusals name the field and the limit."""

    is_template = True

    def preprocess(self, payload):
        return super().preprocess(_number_or_error(self, payload, self.minimum, self.maximum))


class Number(gr.Number):
    """gr.Number whose refusals name the field and the limit."""

    is_template = True

    def preprocess(self, payload):
        return super().preprocess(_number_or_error(self, payload, self.minimum, self.maximum))


class Radio(gr.Radio):
    """gr.Radio whose refusals name the field and the choices."""

    is_template = True

    def preprocess(self, payload):
        return super().preprocess(_choice_or_error(self, payload))


class Dropdown(gr.Dropdown):
    """gr.Dropdown whose refusals name the field and the choices."""

    is_template = True

    def preprocess(self, payload):
        if self.allow_custom_value or self.multiselect:
            return super().preprocess(payload)
        return super().preprocess(_choice_or_error(self, payload))
