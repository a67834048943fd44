"""The API as the README documents it: its examples run against the launched app, the
endpoints it lists and no others, and the MCP tools with every argument described."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import anyio
import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client
from PIL import Image

from backend.request import field_limits
from tests.helpers.app import ROOT


def readme_block(name: str) -> str:
    """The fenced code block under `<!-- tested: NAME -->` in the README."""
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- tested: {name} -->\n```\w*\n(.*?)```", text, re.S)
    assert match, f"README.md has no block marked 'tested: {name}'"
    return match.group(1)


def test_the_readme_python_example_runs(app, fake, images, tmp_path):
    shutil.copy(images["red"], tmp_path / "donut.png")
    mask = Image.new("L", Image.open(images["red"]).size, 0)
    mask.paste(255, (100, 100, 300, 260))
    mask.save(tmp_path / "mask.png")
    code = readme_block("api-python").replace("http://127.0.0.1:7860/", app.url)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    edit_line, sweep_line, region_line = done.stdout.strip().splitlines()[-3:]
    assert edit_line.startswith("✅ Done") and sweep_line.startswith("✅ Sweep done: 4 of 4 cells")
    assert region_line.startswith("✅ Done")
    # The edit reached fal with the LoRA; the sweep made its four cells; the region edit sent a crop.
    jobs = sorted(fake.jobs.values(), key=lambda job: job.created)
    assert len(jobs) == 6
    assert jobs[0].input["loras"] == [{"path": "owner/some-flux2-lora", "scale": 0.8}]
    assert "image_size" in jobs[5].input and "image_size" not in jobs[0].input


def test_the_readme_curl_example_runs(app, fake, images, tmp_path):
    assert shutil.which("curl"), "curl is missing: the README's test command installs it (apt-get install curl)"
    shutil.copy(images["red"], tmp_path / "donut.png")
    script = readme_block("api-curl").replace("http://127.0.0.1:7860", app.url.rstrip("/"))
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    events = re.findall(r"^event: (\w+)", done.stdout, re.M)
    assert events[-1] == "complete" and "generating" in events, done.stdout[-2000:]
    final = json.loads(done.stdout.strip().splitlines()[-1].removeprefix("data: "))
    assert final[1].startswith("✅ Done") and final[0][0]["image"]["url"].startswith(app.url)
    assert len(fake.jobs) == 1


def test_only_the_documented_endpoints_are_offered(app):
    info = httpx.get(f"{app.url}gradio_api/info").json()
    assert sorted(info["named_endpoints"]) == ["/edit", "/sweep"]
    assert not info["unnamed_endpoints"]
    names = [p["parameter_name"] for p in info["named_endpoints"]["/edit"]["parameters"]]
    assert names[:3] == ["prompt", "image_1", "image_2"] and "fal_key" in names


def test_the_mcp_tools_describe_every_argument_with_the_request_models_limits(app, fake, images):
    async def list_tools():
        async with streamablehttp_client(f"{app.url}gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return (await session.list_tools()).tools

    tools = {tool.name: tool for tool in anyio.run(list_tools)}
    assert {"edit", "sweep"} <= set(tools)
    for name in ("edit", "sweep"):
        properties = tools[name].inputSchema["properties"]
        undescribed = [arg for arg, schema in properties.items() if not schema.get("description")]
        assert not undescribed, f"{name}: arguments without a description: {undescribed}"
    edit = tools["edit"].inputSchema["properties"]
    steps = field_limits("num_inference_steps")
    assert f"{steps['minimum']}-{steps['maximum']}" in edit["num_inference_steps"]["description"]
    assert "fal key" in edit["fal_key"]["description"] and "never stored" in edit["fal_key"]["description"]
    # No helper event of the page (history, presets, compare, downloads) is a tool.
    assert set(tools) <= {"edit", "sweep", "upload_file_to_gradio"}


def _data_url(path) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(open(path, "rb").read()).decode()


def test_an_mcp_client_can_call_the_edit_and_sweep_tools(app, fake, images):
    """Listing the tools is not enough: the MCP SDK refuses a schema like gr.JSON's
    `{"type": {}}`, so a call through a real client session must reach fal."""

    async def call(name: str, arguments: dict):
        async with streamablehttp_client(f"{app.url}gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = {tool.name: tool for tool in (await session.list_tools()).tools}
                loras = tools[name].inputSchema["properties"]["loras"]
                assert loras["type"] == "array" and loras["items"]["properties"]["scale"]["maximum"] == 4
                return await session.call_tool(name, arguments)

    common = {"prompt": "make it blue", "image_1": _data_url(images["red"]),
              "loras": [{"path": "owner/style", "scale": 0.7, "enabled": True}],
              "num_inference_steps": 4, "seed": 3, "randomize_seed": False}
    before = len(fake.jobs)
    result = anyio.run(call, "edit", common)
    assert not result.isError, result.content
    assert len(fake.jobs) == before + 1
    job = max(fake.jobs.values(), key=lambda job: job.created)
    assert job.input["prompt"] == "make it blue" and job.input["loras"] == [{"path": "owner/style", "scale": 0.7}]
    assert job.input["seed"] == 3
    result = anyio.run(call, "sweep", {**common, "x_axis": "seed", "x_values": "1, 2", "y_axis": "", "y_values": ""})
    assert not result.isError, result.content
    cells = sorted(fake.jobs.values(), key=lambda job: job.created)[before + 1:]
    assert sorted(j.input["seed"] for j in cells) == [1, 2]
