"""The local speed presets (backend/local/speed.py): which presets a device can run and the
reasons given for the others, the preset in a run's options and recipe, and the step cache
(what `fastest` adds) running on the tiny pipeline on the CPU."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from backend.errors import InvalidInput
from backend.events import Result
from backend.local import speed as speed_module
from backend.local.backend import LocalBackend, LocalSettings
from backend.local.options import LocalOptions
from backend.local.speed import enable_step_cache, speed_support
from backend.outputs import recipe_for
from backend.request import build_request
from tests.helpers.tiny_flux2 import (
    MAX_SEQUENCE_LENGTH,
    TEXT_ENCODER_OUT_LAYERS,
    build_tiny_pipeline,
    reference_image,
)
from ui.form import PageSetup
from ui.restored_values import restore_checked

NO_FP8 = "fast needs an NVIDIA GPU with fp8 (compute capability 8.9 or newer); this server has none"


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    path = tmp_path_factory.mktemp("speed") / "ref.png"
    reference_image(0).save(path)
    return str(path)


def backend_with(pipe, **settings) -> LocalBackend:
    return LocalBackend(LocalSettings(
        model="tiny", device="cpu", decode_every=0, max_sequence_length=MAX_SEQUENCE_LENGTH,
        text_encoder_out_layers=TEXT_ENCODER_OUT_LAYERS, **settings,
    ), pipeline=pipe)


@pytest.fixture(scope="module")
def local():
    return backend_with(build_tiny_pipeline())


def fake_gpu(monkeypatch, capability: tuple[int, int], name: str = "NVIDIA A100-SXM4-80GB") -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)


def test_a_cpu_offers_quality_only_and_says_why_not_the_others():
    support = speed_support(torch.device("cpu"))
    assert support.available == ("quality",)
    assert support.refusal("quality") is None
    assert support.refusal("fast") == NO_FP8
    assert support.refusal("fastest") == NO_FP8.replace("fast ", "fastest ", 1)
    note = support.note()
    assert note.startswith("Available here: quality.")
    assert "fast and fastest need an NVIDIA GPU with fp8" in note


def test_a_gpu_without_fp8_is_named_and_an_fp8_gpu_offers_every_preset(monkeypatch):
    fake_gpu(monkeypatch, (8, 0))
    older = speed_support(torch.device("cuda"))
    assert older.available == ("quality",)
    assert older.refusal("fast").endswith("this server's NVIDIA A100-SXM4-80GB is 8.0")
    fake_gpu(monkeypatch, (9, 0), "NVIDIA H200")
    monkeypatch.setattr(speed_module.importlib.util, "find_spec", lambda name: object())
    assert speed_support(torch.device("cuda")).available == ("quality", "fast", "fastest")
    monkeypatch.setattr(speed_module.importlib.util, "find_spec", lambda name: None)
    without_torchao = speed_support(torch.device("cuda"))
    assert without_torchao.available == ("quality",)
    assert "torchao" in without_torchao.refusal("fast")


def test_a_preset_this_server_cannot_run_is_refused_with_the_reason(local, ref):
    assert local.options({}).speed == "quality"
    with pytest.raises(InvalidInput) as refused:
        local.options({"speed": "fast"})
    assert str(refused.value).endswith(f"Speed: {NO_FP8}")
    # A run handed options made elsewhere is checked too, before it waits for the GPU.
    request = build_request(prompt="make it blue", image_urls=[ref], num_inference_steps=4, seed=1)
    with pytest.raises(InvalidInput, match="Speed: fastest needs an NVIDIA GPU"):
        next(local.run(request, LocalOptions(model=local.settings.model, speed="fastest")))


def test_the_default_preset_is_the_operators_and_the_recipe_gives_it_back(local, ref):
    request = build_request(prompt="make it blue", image_urls=[ref], num_inference_steps=4, seed=1)
    options = local.options({"speed": ""})
    result = [e for e in local.run(request, options) if isinstance(e, Result)][0]
    recipe = recipe_for(request, options, result, "local", options.model)
    assert recipe["options"]["speed"] == "quality"
    recipe["options"]["speed"] = "fastest"  # a recipe made on a server with fp8
    setup = PageSetup(("fal", "local"), "local", False, ("tiny",), "tiny", "gpu")
    assert restore_checked(recipe, setup)[0]["speed"] == "fastest"


def test_the_step_cache_runs_on_the_tiny_pipeline_and_a_seed_repeats_whatever_ran_before(ref):
    """`fastest`'s step cache, on the CPU (without fp8): the image is valid and differs from
    the uncached one (steps were extrapolated), and each call starts with an empty cache, so
    a rerun repeats exactly even after another instruction ran in between."""
    pipe = build_tiny_pipeline()
    bare = backend_with(pipe)
    request = build_request(prompt="make it blue", image_urls=[ref], num_inference_steps=12, seed=5)
    uncached = [e for e in bare.run(request, bare.options({})) if isinstance(e, Result)][0]
    enable_step_cache(pipe, interval=3, full_steps_first=3)  # what "fastest" adds, started early for 12 steps
    first = [e for e in bare.run(request, bare.options({})) if isinstance(e, Result)][0]
    image = Image.open(io.BytesIO(first.images[0].data))
    assert image.size == (64, 64) and len(set(image.convert("L").getdata())) > 10
    assert first.images[0].data != uncached.images[0].data
    other = build_request(prompt="something else", image_urls=[ref], num_inference_steps=8, seed=9)
    list(bare.run(other, bare.options({})))
    again = [e for e in bare.run(request, bare.options({})) if isinstance(e, Result)][0]
    assert again.images[0].data == first.images[0].data
