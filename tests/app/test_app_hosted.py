"""The launched app driven through gradio_client, against the fake fal server."""

from __future__ import annotations

import json

import httpx
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.helpers.api import edit_args, run, sent_image
from tests.helpers.app import SERVER_KEY, connect, launch_app, stop_app
from tests.helpers.images import image_size


def test_two_images_and_two_loras_reach_fal_as_its_schema_says(app, fake, images):
    gallery, status, _logs, details, seed_used = run(
        app, images,
        image_2=handle_file(str(images["blue"])),
        loras=[
            {"path": "https://huggingface.co/someone/style/resolve/main/style.safetensors", "scale": 0.8,
             "enabled": True},
            {"path": "owner/switched-off", "scale": 1.0, "enabled": False},
            {"path": "owner/watercolor", "scale": 1.3, "enabled": True},
        ],
        guidance_scale=4.5, num_inference_steps=12, size="custom", width=768, height=1024,
        randomize_seed=False, seed=1234, num_images=2, acceleration="high", enable_prompt_expansion=True,
        enable_safety_checker=False, output_format="jpeg",
    )
    [job] = fake.jobs.values()
    sent = job.input
    assert sent == {
        "prompt": "make this donut realistic",
        "image_urls": sent["image_urls"],
        "loras": [
            {"path": "https://huggingface.co/someone/style/resolve/main/style.safetensors", "scale": 0.8},
            {"path": "owner/watercolor", "scale": 1.3},
        ],
        "guidance_scale": 4.5,
        "num_inference_steps": 12,
        "image_size": {"width": 768, "height": 1024},
        "num_images": 2,
        "seed": 1234,
        "acceleration": "high",
        "enable_prompt_expansion": True,
        "enable_safety_checker": False,
        "output_format": "jpeg",
        "sync_mode": False,
    }
    # The references arrive in order and with their own pixels.
    first, second = (sent_image(url, fake) for url in sent["image_urls"])
    assert first.size == (640, 480) and first.convert("RGB").getpixel((10, 10)) == (200, 40, 40)
    assert second.size == (512, 512) and abs(second.convert("RGB").getpixel((10, 10))[2] - 200) < 8
    # The person sees both final images, the seed, and the run is saved with its recipe.
    assert len(gallery) == 2
    assert all(image_size(item["image"]) == (768, 1024) for item in gallery)
    assert status.startswith("✅ Done")
    assert seed_used == 1234 and "`1234`" in details
    saved = next(p for p in app.outputs.rglob("recipe.json") if json.loads(p.read_text())["seed"] == 1234)
    recipe = json.loads(saved.read_text())
    assert recipe["request"]["loras"][1] == {"path": "owner/watercolor", "scale": 1.3}
    assert sorted(p.name for p in saved.parent.glob("image-*")) == ["image-1.jpg", "image-2.jpg"]


def test_random_seed_is_reported_and_can_be_reused(app, fake, images):
    *_, details, seed_used = run(app, images)
    [job] = fake.jobs.values()
    assert "seed" not in job.input
    assert isinstance(seed_used, (int, float)) and f"`{int(seed_used)}`" in details
    fake.reset()
    fake.keys = {SERVER_KEY}
    first = run(app, images, randomize_seed=False, seed=seed_used)
    second = run(app, images, randomize_seed=False, seed=seed_used)
    assert [j.input["seed"] for j in fake.jobs.values()] == [int(seed_used)] * 2
    assert Image.open(first[0][0]["image"]).tobytes() == Image.open(second[0][0]["image"]).tobytes()


def test_intermediate_results_arrive_before_the_final_ones(app, fake, images):
    fake.steps = 4
    fake.job_seconds = 1.0
    client = connect(app)
    job = client.submit(**edit_args(images), api_name="/edit")
    job.result(timeout=30)
    statuses = [out[1] if isinstance(out[1], str) else "" for out in job.outputs()]
    previews = [i for i, s in enumerate(statuses) if s.startswith("🖼️ Intermediate result")]
    done = [i for i, s in enumerate(statuses) if s.startswith("✅ Done")]
    assert previews and done and max(previews) < done[0]
    assert any("step 2 of 4" in statuses[i] for i in previews)
    preview_gallery = job.outputs()[previews[0]][0]
    assert preview_gallery and preview_gallery[0]["image"]


@pytest.mark.parametrize("which", ["stream", "queue"])
def test_stop_cancels_the_fal_job(which, request, fake, images):
    app = request.getfixturevalue("app" if which == "stream" else "queue_app")
    fake.job_seconds = 30
    client = connect(app)
    job = client.submit(**edit_args(images), api_name="/edit")
    assert fake.wait_for(lambda: any(j.state == "IN_PROGRESS" for j in fake.jobs.values()), timeout=15)
    job.cancel()
    assert fake.wait_for(lambda: all(j.cancelled for j in fake.jobs.values()), timeout=10)
    [cancelled] = fake.jobs.values()
    assert cancelled.transport == which
    # The page is ready for the next run at once.
    fake.job_seconds = 0.2
    gallery, status, *_ = run(app, images)
    assert status.startswith("✅ Done") and len(gallery) == 1


def test_queue_transport_shows_queue_position_and_fal_logs(queue_app, fake, images):
    fake.queue_polls = 2
    fake.steps = 3
    fake.job_seconds = 1.0
    client = connect(queue_app)
    job = client.submit(**edit_args(images), api_name="/edit")
    gallery, status, logs, _details, _seed = job.result(timeout=30)
    statuses = [out[1] if isinstance(out[1], str) else "" for out in job.outputs()]
    assert any(s.startswith("⏳ Queued at fal: position 2") for s in statuses)
    assert any(s.startswith("⏳ Queued at fal: next in line") for s in statuses)
    assert any(s.startswith("⚙️ Step") for s in statuses)
    assert "Step 3/3" in logs
    assert status.startswith("✅ Done") and len(gallery) == 1


def test_fal_422_comes_back_as_a_field_message(app, fake, images):
    fake.fail = {
        "status": 422, "on": "any", "times": 1,
        "detail": [{"loc": ["body", "loras", 0, "path"], "msg": "Could not load LoRA weights", "type": "value_error"}],
    }
    with pytest.raises(AppError, match="LoRA 1 path: Could not load LoRA weights"):
        run(app, images, loras=[{"path": "owner/broken", "scale": 1, "enabled": True}])
    # The server keeps serving.
    assert run(app, images)[1].startswith("✅ Done")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"prompt": "  "}, "Instruction: must not be empty"),
        ({"num_inference_steps": 10.5}, "Steps: must be a whole number"),
        ({"image_1": None}, "Reference images: add at least one image to edit"),
        ({"loras": [{"path": f"o/l{i}"} for i in range(4)]}, r"LoRAs: at most 3 can be switched on \(4 are\)"),
        ({"loras": [{"path": "o/l", "scale": 4.5}]}, r"LoRA 1 scale: must be at most 4 \(got 4.5\)"),
    ],
)
def test_bad_input_is_refused_with_the_field_and_limit_before_anything_is_sent(app, fake, images, overrides, message):
    with pytest.raises(AppError, match=message):
        run(app, images, **overrides)
    assert not fake.jobs and not fake.uploads


def test_refused_key_says_so(app, fake, images):
    fake.keys = {"some-other-key"}
    with pytest.raises(AppError, match="fal refused the API key"):
        run(app, images)


def test_without_a_server_key_run_explains_how_to_get_one(keyless_app, fake, images):
    with pytest.raises(AppError, match="Your fal API key: none given.*fal.ai"):
        run(keyless_app, images)
    with pytest.raises(AppError, match="(?s)Instruction: must not be empty.*Your fal API key: none given"):
        run(keyless_app, images, prompt="")  # named with the form's other problems
    assert not fake.requests


def test_a_visitors_own_key_is_used_for_their_run_only(keyless_app, fake, images):
    gallery, status, *_ = run(keyless_app, images, fal_key="visitor-key-123")
    assert status.startswith("✅ Done")
    auth = {r.headers.get("authorization") for r in fake.requests if r.path.startswith(("/queue", "/run", "/rest"))}
    assert auth == {"Key visitor-key-123"}
    assert "visitor-key-123" not in keyless_app.log()
    for path in keyless_app.outputs.rglob("*"):
        if path.is_file():
            assert b"visitor-key-123" not in path.read_bytes()


def test_sync_mode_results_are_saved_too(app, fake, images):
    gallery, status, *_ = run(app, images, sync_mode=True, output_format="webp")
    assert status.startswith("✅ Done")
    assert gallery[0]["image"].endswith(".webp")
    assert all("/cdn/files/" not in r.path or r.method != "GET" for r in fake.requests)


def test_large_photo_is_downscaled_before_it_is_sent(app, fake, tmp_path, images):
    big = Image.effect_noise((4000, 3000), 50).convert("RGB")
    path = tmp_path / "big.jpg"
    big.save(path, quality=90)
    run(app, images, image_1=handle_file(str(path)))
    [job] = fake.jobs.values()
    sent = sent_image(job.input["image_urls"][0], fake)
    assert sent.size[0] * sent.size[1] <= 1024 * 1024 * 1.05
    assert abs(sent.size[0] / sent.size[1] - 4 / 3) < 0.01


def test_safety_flags_and_timings_are_shown_with_the_result(app, fake, images):
    gallery, _status, _logs, details, _seed = run(app, images, prompt="an nsfw test", num_images=2)
    assert "**Safety checker:** flagged image 1" in details
    assert "**Timings:** inference" in details
    assert [item["caption"] for item in gallery] == ["image 1 ⚠ flagged", "image 2"]


def test_a_full_queue_answers_busy_instead_of_piling_up(fake, images, tmp_path):
    fake.job_seconds = 5
    app = launch_app(tmp_path, fake, STUDIO_CONCURRENCY="1", STUDIO_MAX_QUEUE="1")
    try:
        client = connect(app)
        running = client.submit(**edit_args(images), api_name="/edit")
        assert fake.wait_for(lambda: len(fake.jobs) == 1, timeout=15)
        waiting = client.submit(**edit_args(images), api_name="/edit")
        assert fake.wait_for(lambda: waiting.status().code.name == "IN_QUEUE", timeout=10)
        refused = client.submit(**edit_args(images), api_name="/edit")
        with pytest.raises(Exception, match="(?i)queue is full"):
            refused.result(timeout=30)
        assert running.result(timeout=30)[1].startswith("✅ Done")
        assert waiting.result(timeout=30)[1].startswith("✅ Done")
        assert len(fake.jobs) == 2
    finally:
        stop_app(app)


def test_the_page_says_what_to_do_without_a_key_and_nothing_meant_for_the_operator(keyless_app):
    config = httpx.get(f"{keyless_app.url}config").json()
    texts = [str(c.get("props", {}).get("value")) for c in config["components"] if c.get("type") == "markdown"]
    [help_text] = [t for t in texts if "your own fal API key" in t]
    assert "fal.ai/dashboard/keys" in help_text
    # A visitor cannot install anything on this server: its setup is the README's, not the page's.
    assert not any("requirements-local" in t or "pip install" in t for t in texts)
