"""The run as code (ui/snippets.py): valid Python, the `edit` endpoint's own argument names,
exactly fal's payload, no key, and a prompt that cannot break out of its string."""

from __future__ import annotations

import ast
import inspect
import json

import pytest

from backend.fal import FalOptions, fal_arguments
from backend.local.options import LocalOptions
from backend.request import build_request
from ui.form import PageSetup, api_function
from ui.snippets import client_snippet, fal_snippet, fal_snippet_of, run_snippets

SETUP = PageSetup(backends=("fal", "local"), default_backend="fal", needs_visitor_key=False, models=("owner/model",),
                  default_model="owner/model", default_memory="gpu")
NASTY = 'make it "blue"\'\n"""); import os; os.system("rm -rf /")  # '


def recipe(backend: str = "fal", **request) -> dict:
    edit = build_request(**{
        "prompt": "make this donut realistic", "image_urls": ["donut.png", "https://example.org/plate.jpg"],
        "loras": [{"path": "owner/style", "scale": 0.8}], "guidance_scale": 4.5, "num_inference_steps": 12,
        "image_size": {"width": 768, "height": 1024}, "num_images": 2, **request,
    })
    options = FalOptions(acceleration="high") if backend == "fal" else LocalOptions(model="owner/model")
    return {"request": edit.model_dump(mode="json"), "options": options.model_dump(mode="json"), "seed": 42,
            "seeds": [42, 43], "backend": backend,
            "endpoint": "fal-ai/flux-2/lora/edit" if backend == "fal" else "owner/model"}


def predict_call(code: str) -> ast.Call:
    calls = [node for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and node.func.attr == "predict"]
    assert len(calls) == 1
    return calls[0]


def edit_parameters() -> set[str]:
    api = api_function("edit", lambda values: iter(()), SETUP, "")
    return set(inspect.signature(api).parameters) - {"profile", "request"}


@pytest.mark.parametrize("backend", ["fal", "local"])
def test_the_gradio_client_snippet_calls_edit_with_its_own_argument_names(backend):
    code = client_snippet(recipe(backend))
    compile(code, "<snippet>", "exec")
    call = predict_call(code)
    names = [k.arg for k in call.keywords]
    assert "api_name" in names and ast.literal_eval(call.keywords[names.index("api_name")].value) == "/edit"
    sent = set(names) - {"api_name"}
    assert sent <= edit_parameters(), sent - edit_parameters()
    assert {"prompt", "image_1", "image_2", "loras", "guidance_scale", "num_inference_steps", "seed",
            "randomize_seed", "backend"} <= sent
    value = {k.arg: k.value for k in call.keywords}
    # The run's exact settings, its seed no longer random.
    assert ast.literal_eval(value["loras"]) == [{"path": "owner/style", "scale": 0.8, "enabled": True}]
    assert ast.literal_eval(value["seed"]) == 42 and ast.literal_eval(value["randomize_seed"]) is False
    assert (ast.literal_eval(value["size"]), ast.literal_eval(value["width"])) == ("custom", 768)
    assert ast.literal_eval(value["backend"]) == backend
    if backend == "fal":
        assert ast.literal_eval(value["acceleration"]) == "high" and "model" not in value
    else:
        assert ast.literal_eval(value["model"]) == "owner/model" and "acceleration" not in value
    # Images are placeholders (an https URL stays as it was), never this server's paths.
    assert ast.unparse(value["image_1"]) == "handle_file('image-1.png')"
    assert ast.unparse(value["image_2"]) == "handle_file('https://example.org/plate.jpg')"


def test_the_snippets_never_hold_a_key_and_a_prompt_stays_one_string():
    run = recipe(prompt=NASTY)
    run["options"]["fal_key"] = "should-not-matter"  # a recipe never has one; even so it is not written
    code = client_snippet(run)
    value = {k.arg: k.value for k in predict_call(code).keywords}
    assert ast.literal_eval(value["prompt"]) == NASTY
    assert ast.unparse(value["fal_key"]) == "os.environ.get('FAL_KEY', '')"
    assert "should-not-matter" not in code and "should-not-matter" not in fal_snippet_of(run)
    # Nothing but the one predict call and the print: the prompt added no statement.
    tree = ast.parse(code)
    assert [type(node).__name__ for node in tree.body] == ["Import", "ImportFrom", "Assign", "Assign", "Expr"]


def fal_payload(code: str) -> dict:
    [call] = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Call) and ast.unparse(n.func)
              == "fal_client.subscribe"]
    [arguments] = [k.value for k in call.keywords if k.arg == "arguments"]
    return ast.literal_eval(arguments)


def test_the_fal_snippet_sends_exactly_what_the_fal_backend_builds():
    run = recipe(prompt=NASTY, seed=7)
    request, options = build_request(**run["request"]), FalOptions.model_validate(run["options"])
    code = fal_snippet_of(run)
    compile(code, "<snippet>", "exec")
    urls = ["https://example.com/image-1.png", "https://example.org/plate.jpg"]
    assert fal_payload(code) == fal_arguments(request, options, urls)
    assert "'fal-ai/flux-2/lora/edit'" in code
    # Placeholders are what the plain builder uses too.
    assert fal_payload(fal_snippet(request, options, "fal-ai/x")) == fal_arguments(request, options, urls)


def test_a_random_seed_run_sends_no_seed_and_says_which_seed_fal_used():
    code = fal_snippet_of(recipe())
    assert "seed" not in fal_payload(code)
    assert 'add "seed": 42 to repeat it' in code


def test_a_local_run_gets_the_same_edit_on_fal_with_fal_defaults():
    run = recipe("local")
    code = fal_snippet_of(run)
    assert fal_payload(code) == fal_arguments(build_request(**run["request"]), FalOptions(),
                                              ["https://example.com/image-1.png", "https://example.org/plate.jpg"])
    assert "This run was local" in code and "'fal-ai/flux-2/lora/edit'" in code


def test_run_snippets_gives_the_recipe_as_json_and_nothing_before_a_run():
    client, fal, recipe_text = run_snippets({"recipe": recipe(), "images": []})
    assert json.loads(recipe_text) == recipe() and "client.predict(" in client and "fal_client.subscribe(" in fal
    assert run_snippets(None) == ("", "", "")
    # A recipe fal would refuse (sent back by a browser) gives a note, not an error.
    broken = {**recipe(), "request": {**recipe()["request"], "num_inference_steps": 500}}
    assert fal_snippet_of(broken).startswith("#")


def request_to(url: str, headers: dict[str, str] | None = None, root_path: str = ""):
    """A gr.Request as a queued event gets it: the page's POST to queue/join at `url`."""
    from types import SimpleNamespace
    from urllib.parse import urlsplit

    import gradio as gr
    from starlette.requests import Request

    parts = urlsplit(url)
    sent = {"host": parts.netloc, **(headers or {})}
    scope = {"type": "http", "method": "POST", "scheme": parts.scheme, "path": parts.path, "query_string": b"",
             "server": (parts.hostname, parts.port or 80), "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in sent.items()],
             "app": SimpleNamespace(root_path=root_path)}
    return gr.Request(request=Request(scope))


def test_the_gradio_client_snippet_calls_the_app_where_the_visitor_reached_it(monkeypatch):
    """It said Client('http://127.0.0.1:7860/') wherever the app ran: on another port, behind a
    proxy or on a Space the code failed as copied."""
    monkeypatch.delenv("SPACE_ID", raising=False)
    cases = [
        (request_to("http://127.0.0.1:7861/gradio_api/queue/join"), "http://127.0.0.1:7861/"),
        (request_to("http://10.0.0.5:7860/gradio_api/queue/join",
                    {"x-forwarded-host": "studio.example.org", "x-forwarded-proto": "https"}),
         "https://studio.example.org/"),
        (request_to("http://studio.example.org/edit/gradio_api/queue/join", root_path="/edit"),
         "http://studio.example.org/edit/"),
    ]
    for request, address in cases:
        client, _fal, _recipe = run_snippets({"recipe": recipe("fal")}, request)
        assert f"client = Client({address!r})" in client, client.splitlines()[4]
    monkeypatch.setenv("SPACE_ID", "someone/flux2-studio")  # a Space: Client takes its id
    client, _fal, _recipe = run_snippets({"recipe": recipe("fal")}, cases[1][0])
    assert "client = Client('someone/flux2-studio')" in client
