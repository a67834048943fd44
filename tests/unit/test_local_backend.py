"""The local backend on a tiny random FLUX.2 pipeline, built in code and loaded from disk
through the backend's normal loading path (`Flux2Pipeline.from_pretrained`)."""

from __future__ import annotations

import dataclasses
import io
import math
import os
import time
from pathlib import Path

import pytest
import torch
from diffusers import Flux2Pipeline
from PIL import Image

from backend.errors import InvalidInput, RunTimeout, StudioError
from backend.events import Preview, Result
from backend.local.backend import LocalBackend, LocalSettings
from backend.local.lora_sources import LoraError
from backend.local.options import LocalOptions
from backend.local.previews import StepPreviews
from backend.request import build_request
from tests.helpers.tiny_flux2 import (
    MAX_SEQUENCE_LENGTH,
    TEXT_ENCODER_OUT_LAYERS,
    make_broken_safetensors,
    make_not_a_lora,
    make_tiny_lora,
    reference_image,
    save_tiny_pipeline,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A saved tiny model, a LoRA folder with good and bad files, and reference images."""
    root = tmp_path_factory.mktemp("local")
    model = save_tiny_pipeline(root / "model")
    loras = root / "loras"
    make_tiny_lora(model, loras / "style.safetensors", seed=1, trigger_words=["sks style"])
    make_tiny_lora(model, loras / "other.safetensors", seed=2)
    make_not_a_lora(loras / "not-a-lora.safetensors")
    make_broken_safetensors(loras / "broken.safetensors")
    (loras / "pickled.bin").write_bytes(b"not loaded")
    (root / "outside.safetensors").write_bytes((loras / "style.safetensors").read_bytes())
    refs = []
    for seed in (0, 1):
        path = root / f"ref{seed}.png"
        reference_image(seed).save(path)
        refs.append(str(path))
    return {"root": root, "model": model, "loras": loras, "refs": refs}


def new_backend(world, **settings) -> LocalBackend:
    settings.setdefault("decode_every", 2)
    return LocalBackend(LocalSettings(
        model=str(world["model"]), device="cpu", lora_dir=world["loras"],
        max_sequence_length=MAX_SEQUENCE_LENGTH, text_encoder_out_layers=TEXT_ENCODER_OUT_LAYERS, **settings,
    ))


@pytest.fixture(scope="module")
def local(world):
    return new_backend(world)


def edit(world, **fields):
    fields.setdefault("image_urls", world["refs"][:1])
    fields.setdefault("num_inference_steps", 4)
    fields.setdefault("seed", 3)
    return build_request(prompt=fields.pop("prompt", "make it blue"), **fields)


def run(backend, request, **options) -> tuple[list, Result]:
    events = list(backend.run(request, backend.options(options)))
    assert isinstance(events[-1], Result)
    return events[:-1], events[-1]


def pixels(result: Result, index: int = 0) -> bytes:
    return Image.open(io.BytesIO(result.images[index].data)).convert("RGB").tobytes()


def test_one_and_two_references_give_the_requested_size(world, local):
    _, match_first = run(local, edit(world))
    assert (match_first.images[0].width, match_first.images[0].height) == (64, 64)
    _, square = run(local, edit(world, image_urls=world["refs"], image_size="square"))
    assert Image.open(io.BytesIO(square.images[0].data)).size == (512, 512)


def test_the_final_image_is_identical_to_a_bare_pipeline_call(world, local):
    _, result = run(local, edit(world, image_urls=world["refs"], seed=11, guidance_scale=3.0, num_inference_steps=5))
    bare = Flux2Pipeline.from_pretrained(str(world["model"]))
    expected = bare(
        image=[Image.open(p).convert("RGB") for p in world["refs"]], prompt="make it blue",
        num_inference_steps=5, guidance_scale=3.0, generator=torch.Generator().manual_seed(11),
        max_sequence_length=MAX_SEQUENCE_LENGTH, text_encoder_out_layers=TEXT_ENCODER_OUT_LAYERS,
    ).images[0]
    assert pixels(result) == expected.convert("RGB").tobytes()


def test_previews_arrive_for_every_step_and_the_last_is_the_final_image(world, local, monkeypatch):
    # Previews as cheap next to a step as on a GPU (on the CPU their budget skips some steps).
    monkeypatch.setattr(StepPreviews, "PREVIEW_BUDGET", math.inf)
    events, result = run(local, edit(world, num_inference_steps=6))
    previews = [e for e in events if isinstance(e, Preview)]
    assert [p.step for p in previews] == [1, 2, 3, 4, 5, 6]
    assert all(p.total == 6 and p.images[-1].size == (64, 64) for p in previews)
    assert previews[-1].images[-1].convert("RGB").tobytes() == pixels(result)
    assert previews[0].images[-1].tobytes() != previews[-1].images[-1].tobytes()
    # Each says the run's seed, which a Stop leaves on the page; a random one too, drawn before the first.
    assert {p.seed for p in previews} == {result.seed} == {3}
    events, result = run(local, edit(world, seed=None))
    assert {e.seed for e in events if isinstance(e, Preview)} == {result.seed} and result.seed is not None


def test_same_seed_same_image_and_num_images_gives_one_seed_per_image(world, local):
    _, first = run(local, edit(world, seed=5))
    _, again = run(local, edit(world, seed=5))
    assert pixels(first) == pixels(again)
    _, pair = run(local, edit(world, seed=5, num_images=2))
    assert pair.seeds == (5, 6)
    assert pixels(pair, 0) == pixels(first) and pixels(pair, 1) != pixels(first)


def test_lora_scale_zero_equals_no_lora_and_two_loras_combine(world, local):
    _, base = run(local, edit(world))
    _, zero = run(local, edit(world, loras=[{"path": "style.safetensors", "scale": 0.0}]))
    _, one = run(local, edit(world, loras=[{"path": "style.safetensors", "scale": 1.0}]))
    _, other = run(local, edit(world, loras=[{"path": "other.safetensors", "scale": 1.0}]))
    _, both = run(local, edit(world, loras=[{"path": "style.safetensors"}, {"path": "other.safetensors"}]))
    assert pixels(zero) == pixels(base)
    assert len({pixels(base), pixels(one), pixels(other), pixels(both)}) == 4
    _, base_again = run(local, edit(world))  # no LoRA after LoRAs: the adapters are off again
    assert pixels(base_again) == pixels(base)
    assert "LoRA 1 trigger words: sks style" in one.notes


def test_a_rerun_reloads_and_re_encodes_nothing(world):
    backend = new_backend(world)
    run(backend, edit(world, loras=[{"path": "style.safetensors", "scale": 0.5}]))
    assert (backend.pipeline_loads, backend.lora_loads, backend.prompt_encodes) == (1, 1, 1)
    run(backend, edit(world, seed=99, guidance_scale=5, num_inference_steps=5,
                      loras=[{"path": "style.safetensors", "scale": 1.5}]))
    assert (backend.pipeline_loads, backend.lora_loads, backend.prompt_encodes) == (1, 1, 1)
    run(backend, edit(world, prompt="make it red"))
    assert backend.prompt_encodes == 2


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("broken.safetensors", "is not a readable safetensors file"),
        ("not-a-lora.safetensors", "holds no LoRA weights"),
        ("pickled.bin", "only .safetensors files are loaded"),
        ("../outside.safetensors", "is outside the LoRA folder"),
        ("missing.safetensors", "is not a file in the LoRA folder"),
        ("file:///etc/passwd.safetensors", "only https:// URLs are fetched"),
        ("http://example.com/a.safetensors", "only https:// URLs are fetched"),
        ("https://127.0.0.1/a.safetensors", "only public addresses are fetched"),
        ("https://example.com/a.bin", "only .safetensors files are loaded"),
    ],
)
def test_bad_loras_name_themselves_and_the_next_run_works(world, local, path, reason):
    with pytest.raises(LoraError) as caught:
        run(local, edit(world, loras=[{"path": "style.safetensors"}, {"path": path}]))
    assert caught.value.message.startswith("LoRA 2 (")
    assert reason in caught.value.message
    _, result = run(local, edit(world, loras=[{"path": "style.safetensors"}]))
    assert result.images


def test_an_absolute_path_outside_the_lora_folder_is_refused(world, local):
    outside = str(world["root"] / "outside.safetensors")
    with pytest.raises(LoraError, match="is outside the LoRA folder"):
        run(local, edit(world, loras=[{"path": outside}]))


def test_stop_interrupts_within_one_step_and_the_next_run_starts_normally(world, local, monkeypatch):
    monkeypatch.setattr(StepPreviews, "PREVIEW_BUDGET", math.inf)  # a preview at every step, as on a GPU
    steps = 50  # the most a request may ask
    started: list[float] = []  # when each step's transformer call began

    def step_begins(*args) -> None:  # a step that takes a while, as on a GPU: the tiny model's took
        started.append(time.monotonic())  # ~1 ms, and ran 26 steps ahead of the previews read (CI)
        time.sleep(0.05)

    pipe = local.pipe or (run(local, edit(world)) and local.pipe)
    hook = pipe.transformer.register_forward_pre_hook(step_begins)
    try:
        events = local.run(edit(world, num_inference_steps=steps), local.options({}))
        previews = 0
        for event in events:
            if isinstance(event, Preview):
                previews += 1
                if previews == 2:
                    break
        # Counted from the Stop, not from the previews read: what ran before it says nothing of it.
        stopped_at = time.monotonic()
        events.close()  # what Gradio does on Stop: returns once the pipeline has stopped
        assert len(started) < steps
        assert sum(1 for at in started if at > stopped_at) <= 1  # the step that began as Stop came, no more
    finally:
        hook.remove()
    _, result = run(local, edit(world))
    assert result.images


def test_up_to_six_references_are_taken(world, local):
    _, result = run(local, edit(world, image_urls=world["refs"] * 3, num_inference_steps=4))
    assert result.images
    with pytest.raises(InvalidInput, match=r"Reference images: takes at most 6 \(got 7\)"):
        build_request(prompt="x", image_urls=world["refs"] * 3 + world["refs"][:1])


def test_a_model_that_cannot_be_loaded_says_what_to_do(world):
    missing = str(world["root"] / "no-such-model")
    backend = new_backend(world, models=(str(world["model"]), missing))
    with pytest.raises(StudioError, match="Could not load the model"):
        run(backend, edit(world), model=missing)
    _, result = run(backend, edit(world))  # the default model still runs
    assert result.images


def test_a_model_the_server_does_not_offer_is_refused_naming_the_ones_it_does(world, local):
    with pytest.raises(InvalidInput) as caught:
        local.options({"model": "someone/other-model"})
    assert caught.value.problems[0].field == "model"
    assert caught.value.message == (
        f"Model: this server offers {world['model'].resolve()}; not 'someone/other-model'"
    )
    with pytest.raises(InvalidInput, match="this server offers"):  # options built by hand are checked too
        list(local.run(edit(world), LocalOptions(model="someone/other-model")))


def test_runs_take_the_gpu_one_at_a_time_and_see_their_place_in_line(world, local):
    import threading

    from backend.events import Queued

    # Another run holds the GPU (taken here directly, so the test does not depend on timing).
    assert local._line.acquire(timeout=60)
    seen: list = []
    second_waiting = threading.Event()

    def second_run():
        for event in local.run(edit(world, seed=8), local.options({})):
            seen.append(event)
            if isinstance(event, Queued):
                second_waiting.set()

    worker = threading.Thread(target=second_run)
    worker.start()
    try:
        assert second_waiting.wait(timeout=30)
        assert not any(isinstance(e, Preview) for e in seen)  # nothing ran while the GPU was taken
    finally:
        local._line.release()
    worker.join(timeout=60)
    assert [e.position for e in seen if isinstance(e, Queued)][0] == 0  # next in line
    assert isinstance(seen[-1], Result)


def test_a_queued_run_holds_no_decoded_reference_and_a_bad_one_is_refused_before_the_line(
    world, local, monkeypatch, tmp_path,
):
    """While a run waits for the GPU its references are only checked from their headers;
    they are decoded once it holds the GPU. A bad reference is refused at once, not after
    the wait."""
    import threading

    from backend.events import Queued
    from backend.local import backend as local_module

    decoded: list[str] = []
    real_open = local_module.open_reference

    def recording_open(data, label):
        decoded.append(label)
        return real_open(data, label)

    monkeypatch.setattr(local_module, "open_reference", recording_open)
    assert local._line.acquire(timeout=60)
    seen: list = []
    waiting = threading.Event()

    def queued_run():
        for event in local.run(edit(world, image_urls=world["refs"]), local.options({})):
            seen.append(event)
            waiting.set()

    worker = threading.Thread(target=queued_run)
    worker.start()
    try:
        assert waiting.wait(timeout=30) and isinstance(seen[0], Queued)
        assert decoded == []  # in line: nothing decoded
        bad = tmp_path / "bad.png"
        bad.write_bytes(b"not an image")
        with pytest.raises(InvalidInput, match="image 2: is not an image"):
            next(local.run(edit(world, image_urls=[world["refs"][0], str(bad)]), local.options({})))
        assert decoded == []
    finally:
        local._line.release()
    worker.join(timeout=60)
    assert decoded == ["image 1", "image 2"] and isinstance(seen[-1], Result)


def test_the_apps_deadline_stops_a_local_run_and_the_gpu_is_free_again(world, local):
    # Loading the model does not count against the deadline (it is loaded during this run);
    # 50 steps with a full decode at each cannot make 10 ms.
    hurried = new_backend(world, run_timeout=0.01, decode_every=1)
    with pytest.raises(RunTimeout, match="took longer than 0.01 s and was cancelled"):
        run(hurried, edit(world, num_inference_steps=50))
    assert not hurried._line.locked() and hurried.pipeline_loads == 1
    # The pipeline was interrupted, not left running: the backend runs again at once.
    hurried.settings = dataclasses.replace(hurried.settings, run_timeout=600.0)
    _, result = run(hurried, edit(world))
    assert result.images and hurried.pipeline_loads == 1


def test_a_hugging_face_repo_that_does_not_exist_is_named(tmp_path):
    """Against a stand-in for the Hub (HF_ENDPOINT) that knows no repo, as huggingface.co answers."""
    import http.server
    import subprocess
    import sys
    import threading

    class NoRepos(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.send_header("X-Error-Code", "RepoNotFound")
            self.send_header("X-Error-Message", "Repository not found")
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": "Repository not found"}')

        do_HEAD = do_GET

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NoRepos)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    code = (
        "from backend.local.lora_sources import LoraFetcher, LoraError\n"
        "try:\n    LoraFetcher(lora_dir=None).fetch(1, 'someone/no-such-flux2-lora')\n"
        "except LoraError as error:\n    print(error.message)\n"
    )
    env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}", "HF_HUB_OFFLINE": "0",
           "HF_HOME": str(tmp_path), "NO_PROXY": "127.0.0.1"}
    try:
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                              cwd=Path(__file__).parents[2])  # the repository root
    finally:
        server.shutdown()
    assert done.stdout.strip() == (
        "LoRA 1 (someone/no-such-flux2-lora): no such Hugging Face repo (or it is private: set HF_TOKEN)"
    ), done.stderr[-1500:]
