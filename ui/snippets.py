"""A finished run as code a person can copy: this app's `edit` endpoint through gradio_client,
fal's own endpoint through fal_client, and the recipe as JSON.

    client_snippet(recipe)    # client.predict(prompt=..., api_name="/edit")
    fal_snippet_of(recipe)    # fal_client.subscribe(endpoint, arguments={...})

Built from the recipe alone, so a run restored from History gives the same code. Every value
goes into the code through repr(): a prompt with quotes or newlines stays one string literal.
The images are placeholders (the visitor's files are paths on this server) and a key is never
written: the code reads FAL_KEY from its own environment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import gradio as gr
from gradio import route_utils
from pydantic import ValidationError

from backend.fal import DEFAULT_ENDPOINT, FalOptions, fal_arguments
from backend.request import EditRequest
from ui.form import CUSTOM, FIELDS, MATCH_FIRST

CLIENT_URL = "http://127.0.0.1:7860/"  # where this app runs by default, when the page's address is unknown
NO_FAL_PAYLOAD = "# This run's recipe does not make a request fal would take: no fal payload to show."


def image_placeholder(source: str, index: int) -> str:
    """What stands for reference `index` (from 1): an http(s) URL as it was, else a file name to fill in."""
    return source if source.startswith(("http://", "https://")) else f"image-{index}.png"


def edit_values(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """The `edit` endpoint's arguments that redo the run, by the form spec's names (the images
    and the key apart): its settings, the seed it used (random no more), and its backend's options."""
    request, options, backend = recipe["request"], recipe.get("options") or {}, recipe.get("backend") or "fal"
    size = request.get("image_size")
    values: dict[str, Any] = {
        "prompt": request["prompt"],
        "loras": [{"path": lora["path"], "scale": lora["scale"], "enabled": True} for lora in request.get("loras")
                  or []],
        "guidance_scale": request.get("guidance_scale"),
        "num_inference_steps": request.get("num_inference_steps"),
        "size": CUSTOM if isinstance(size, dict) else size or MATCH_FIRST,
    }
    if isinstance(size, dict):
        values |= {"width": size["width"], "height": size["height"]}
    seed = recipe.get("seed")
    values |= {"seed": seed, "randomize_seed": False} if isinstance(seed, int) else {"randomize_seed": True}
    values |= {"num_images": request.get("num_images", 1), "output_format": request.get("output_format", "png")}
    values |= {name: options[name] for name, f in FIELDS.items() if f.owner == backend and name in options}
    values["backend"] = backend
    return values


def app_address(request: gr.Request | None) -> str:
    """This app as the visitor reached it, for gradio_client's Client: the Space's id on a Hugging
    Face Space (Client takes it), else the page's address as Gradio works it out from the request
    (a proxy's X-Forwarded-Host and a sub-path included); CLIENT_URL without a request. Read from
    the visitor's own request: it only changes the code shown to them."""
    space = os.environ.get("SPACE_ID")
    if space:
        return space
    raw = getattr(request, "request", None) if request is not None else None
    if raw is None:
        return CLIENT_URL
    try:
        root = route_utils.get_root_url(request=raw, route_path=route_utils.get_api_call_path(request=raw),
                                        root_path=getattr(raw.app, "root_path", None) or None)
    except (AttributeError, KeyError, TypeError, ValueError):
        return CLIENT_URL
    return root.rstrip("/") + "/" if root.startswith(("http://", "https://")) else CLIENT_URL


def client_snippet(recipe: Mapping[str, Any], address: str = CLIENT_URL) -> str:
    """Python that runs the same edit on this app (at `address`, see app_address) with gradio_client."""
    images = [image_placeholder(str(url), i) for i, url in enumerate(recipe["request"]["image_urls"], start=1)]
    lines = [f"    image_{i}=handle_file({path!r})," for i, path in enumerate(images, start=1)]
    lines += [f"    {name}={value!r}," for name, value in edit_values(recipe).items()]
    if recipe.get("backend", "fal") == "fal":
        lines.append('    fal_key=os.environ.get("FAL_KEY", ""),  # your own key; empty: the server\'s')
    return "\n".join([
        "import os",
        "",
        "from gradio_client import Client, handle_file",
        "",
        f"client = Client({address!r})  # this app",
        "gallery, status, logs, details, seed_used = client.predict(",
        *lines,
        '    api_name="/edit",',
        ")",
        "print(status, seed_used)",
    ])


def fal_snippet(request: EditRequest, options: FalOptions, endpoint: str, note: str = "") -> str:
    """Python that sends fal exactly the payload the fal backend builds (`fal_arguments`), the
    images as placeholders to replace."""
    urls = [url if url.startswith(("http://", "https://")) else f"https://example.com/image-{i}.png"
            for i, url in enumerate(request.image_urls, start=1)]
    arguments = fal_arguments(request, options, urls)
    body = "\n".join(f"        {name!r}: {value!r}," for name, value in arguments.items())
    header = ["# fal_client reads your key from the FAL_KEY environment variable.",
              "# Replace the example.com URLs with your images (fal_client.upload_file(path) gives one)."]
    if note:
        header.append(f"# {note}")
    return "\n".join([
        *header,
        "import fal_client",
        "",
        "result = fal_client.subscribe(",
        f"    {endpoint!r},",
        "    arguments={",
        body,
        "    },",
        "    with_logs=True,",
        ")",
        'print(result["images"][0]["url"], result["seed"])',
    ])


def fal_snippet_of(recipe: Mapping[str, Any]) -> str:
    """The fal snippet of a run: its own payload on fal; for a local run the same request with
    fal's default options."""
    try:
        request = EditRequest.model_validate(recipe["request"])
        on_fal = recipe.get("backend") == "fal"
        options = FalOptions.model_validate(recipe.get("options") or {}) if on_fal else FalOptions()
    except (ValidationError, KeyError, TypeError):
        return NO_FAL_PAYLOAD
    note = ""
    if request.seed is None and isinstance(recipe.get("seed"), int):
        note = f'The run asked for a random seed; fal used {recipe["seed"]}: add "seed": {recipe["seed"]} to repeat it.'
    if not on_fal:
        note = "This run was local: here is the same edit on fal, with fal's default options. " + note
    return fal_snippet(request, options, str(recipe.get("endpoint")) if on_fal else DEFAULT_ENDPOINT, note.strip())


def recipe_json(recipe: Mapping[str, Any]) -> str:
    return json.dumps(dict(recipe), indent=2, ensure_ascii=False)


def run_snippets(run: Mapping[str, Any] | None, request: gr.Request | None = None) -> tuple[str, str, str]:
    """(gradio_client code, fal_client code, recipe JSON) of a saved run (`last_run`); empty without one.
    The gradio_client code calls this app where the visitor reached it (`request`, see app_address)."""
    if not run or not isinstance(run.get("recipe"), Mapping):
        return "", "", ""
    recipe = run["recipe"]
    try:
        client = client_snippet(recipe, app_address(request))
    except (KeyError, TypeError):
        client = "# This run's recipe lacks settings the edit endpoint needs."
    return client, fal_snippet_of(recipe), recipe_json(recipe)
