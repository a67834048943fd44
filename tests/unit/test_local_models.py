"""The local backend's models: each run runs on the model in its own options, among the
ones the operator offers, whatever other visitors pick; on two tiny random FLUX.2 models
saved to disk with different weights."""

from __future__ import annotations

import importlib.util
import io
import json
import threading
from pathlib import Path

import pytest
import torch
from diffusers import Flux2Pipeline
from PIL import Image

from backend.errors import InvalidInput
from backend.events import Preview, Queued, Result
from backend.local.backend import LocalBackend, LocalSettings
from backend.local.zerogpu import GpuSlot
from backend.request import build_request
from tests.helpers.tiny_flux2 import (
    MAX_SEQUENCE_LENGTH,
    TEXT_ENCODER_OUT_LAYERS,
    make_tiny_lora,
    reference_image,
    save_tiny_pipeline,
)

STAND_INS = Path(__file__).resolve().parents[1] / "helpers" / "stand_ins"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    one = save_tiny_pipeline(root / "one", seed=0)
    two = save_tiny_pipeline(root / "two", seed=10)
    make_tiny_lora(one, root / "loras" / "style.safetensors", seed=1)
    reference_image(0).save(root / "ref.png")
    return {"root": root, "one": str(one.resolve()), "two": str(two.resolve()), "ref": str(root / "ref.png")}


def new_backend(world, **settings) -> LocalBackend:
    settings.setdefault("models", (world["one"], world["two"]))
    settings.setdefault("decode_every", 2)
    return LocalBackend(LocalSettings(
        device="cpu", lora_dir=world["root"] / "loras",
        max_sequence_length=MAX_SEQUENCE_LENGTH, text_encoder_out_layers=TEXT_ENCODER_OUT_LAYERS, **settings,
    ))


def edit(world, **fields):
    fields.setdefault("num_inference_steps", 4)
    return build_request(prompt="make it blue", image_urls=[world["ref"]], seed=fields.pop("seed", 7), **fields)


def pixels(result: Result) -> bytes:
    return Image.open(io.BytesIO(result.images[0].data)).convert("RGB").tobytes()


def bare(folder: str, seed: int = 7, steps: int = 4) -> bytes:
    """What diffusers itself makes of `edit(world)` on the model in `folder`."""
    pipe = Flux2Pipeline.from_pretrained(folder)
    image = pipe(
        image=[reference_image(0)], prompt="make it blue", num_inference_steps=steps, guidance_scale=2.5,
        generator=torch.Generator().manual_seed(seed),
        max_sequence_length=MAX_SEQUENCE_LENGTH, text_encoder_out_layers=TEXT_ENCODER_OUT_LAYERS,
    ).images[0]
    return image.convert("RGB").tobytes()


@pytest.fixture(scope="module")
def expected(world):
    images = {"one": bare(world["one"]), "two": bare(world["two"])}
    assert images["one"] != images["two"]  # the two models make different images
    return images


def result_of(events: list) -> Result:
    assert isinstance(events[-1], Result), events[-3:]
    return events[-1]


def test_runs_on_other_models_queued_behind_a_run_each_run_on_their_own(world, expected):
    backend = new_backend(world)
    on_one, on_two = backend.options({"model": world["one"]}), backend.options({"model": world["two"] + "/"})
    assert (backend.source(on_one), backend.source(on_two)) == (world["one"], world["two"])
    first = backend.run(edit(world), on_one)
    events_a = []
    for event in first:  # run A holds the GPU line once it shows a step
        events_a.append(event)
        if isinstance(event, Preview):
            break
    later: dict[str, list] = {"b": [], "c": []}
    waiting = {name: threading.Event() for name in later}

    def queue_up(name, options):
        for event in backend.run(edit(world), options):
            later[name].append(event)
            if isinstance(event, Queued):
                waiting[name].set()

    threads = [threading.Thread(target=queue_up, args=("b", on_two))]
    threads[0].start()
    assert waiting["b"].wait(timeout=60)  # B (model two) waits behind A…
    threads.append(threading.Thread(target=queue_up, args=("c", on_one)))
    threads[1].start()
    assert waiting["c"].wait(timeout=60)  # …and C (model one) behind B
    events_a += list(first)
    for thread in threads:
        thread.join(timeout=120)
    assert pixels(result_of(events_a)) == expected["one"]
    assert pixels(result_of(later["b"])) == expected["two"]
    assert pixels(result_of(later["c"])) == expected["one"]
    assert backend.pipeline_loads == 3  # one, two, then one again


def test_spellings_of_one_folder_are_one_model_and_load_it_once(world, expected, monkeypatch):
    monkeypatch.chdir(world["root"])
    backend = new_backend(world, models=("one/",))
    spellings = ["one/", "./one", " one ", world["one"] + "//", None, ""]
    for spelling in spellings:
        options = backend.options({"model": spelling})
        assert backend.source(options) == world["one"]
        assert pixels(result_of(list(backend.run(edit(world), options)))) == expected["one"]
    assert backend.pipeline_loads == 1 and backend.prompt_encodes == 1


def test_options_default_to_the_operators_settings_and_are_checked(world):
    backend = new_backend(world, memory="model_offload", decode_every=3)
    options = backend.options({})
    assert (options.model, options.memory, options.preview_decode_every) == (world["one"], "model_offload", 3)
    options = backend.options({"model": world["two"], "memory": "gpu", "preview_decode_every": 0, "seed": 4})
    assert (options.model, options.memory, options.preview_decode_every) == (world["two"], "gpu", 0)
    with pytest.raises(InvalidInput, match=f"this server offers {world['one']}, {world['two']}; not 'three'"):
        backend.options({"model": "three"})
    with pytest.raises(InvalidInput, match="Memory mode"):
        backend.options({"memory": "floppy"})


def test_a_models_prompt_embeddings_and_loras_never_serve_another_model(world, expected):
    backend = new_backend(world)
    lora = [{"path": "style.safetensors", "scale": 1.0}]
    for model in ("one", "two"):
        options = backend.options({"model": world[model]})
        result_of(list(backend.run(edit(world, loras=lora), options)))
        assert pixels(result_of(list(backend.run(edit(world), options)))) == expected[model]
    assert (backend.pipeline_loads, backend.prompt_encodes, backend.lora_loads) == (2, 2, 2)


def stand_in_spaces():
    spec = importlib.util.spec_from_file_location("spaces_stand_in", STAND_INS / "spaces" / "__init__.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_on_zerogpu_the_edit_and_the_encoding_run_in_slots_of_their_own(world, expected, tmp_path, monkeypatch):
    log = tmp_path / "spaces.jsonl"
    monkeypatch.setenv("SPACES_STAND_IN_LOG", str(log))
    backend = LocalBackend(new_backend(world).settings, gpu_slot=GpuSlot(stand_in_spaces()))
    backend.preload()  # the default model, outside any slot
    assert backend.pipeline_loads == 1

    def slots(model: str) -> list[str]:
        before = len(log.read_text().splitlines()) if log.exists() else 0
        result = result_of(list(backend.run(edit(world), backend.options({"model": world[model]}))))
        assert pixels(result) == expected[model]
        return [json.loads(line)["function"] for line in log.read_text().splitlines()[before:]]

    assert slots("one") == ["_encode_prompt", "_edit"]
    assert slots("one") == ["_edit"]  # the instruction is cached
    assert slots("two") == ["_encode_prompt", "_edit"]  # …for its own model only
