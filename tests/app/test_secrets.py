"""No key anywhere: page, config, API info, MCP tools, API responses, log, outputs, PNG metadata."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.helpers.api import edit_args
from tests.helpers.app import SERVER_KEY, VISITOR_KEY, connect


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode("utf-8", errors="replace")


def everything_served_and_stored(app, job_outputs) -> dict[str, str]:
    places = {
        "page HTML": fetch(app.url),
        "JS config": fetch(app.url + "config"),
        "API info": fetch(app.url + "gradio_api/info"),
        "MCP tools": fetch(app.url + "gradio_api/mcp/schema"),
        "API responses": json.dumps(job_outputs, default=str),
        "server log": app.log(),
    }
    for path in app.outputs.rglob("*"):
        if path.is_file():
            places[f"outputs/{path.relative_to(app.outputs)}"] = path.read_bytes().decode("latin-1")
    return places


@pytest.mark.parametrize(("which", "key"), [("app", SERVER_KEY), ("keyless_app", VISITOR_KEY)])
def test_the_key_appears_nowhere(request, fake, images, which, key):
    app = request.getfixturevalue(which)
    client = connect(app)
    job = client.submit(**edit_args(
        images, fal_key=VISITOR_KEY if which == "keyless_app" else "", num_images=2,
        loras=[{"path": "owner/style", "scale": 0.5, "enabled": True}],
    ), api_name="/edit")
    job.result(timeout=30)
    assert any(r.headers.get("authorization") == f"Key {key}" for r in fake.requests)  # the key was used...
    places = everything_served_and_stored(app, job.outputs())
    assert any(name.endswith(".png") for name in places)  # ...PNGs with recipes were written...
    leaks = [name for name, text in places.items() if key in text]
    assert leaks == []  # ...and it is in none of them
