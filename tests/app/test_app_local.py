"""The launched app with both backends, driving the local one (a tiny pipeline on the CPU)."""

from __future__ import annotations

import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from tests.helpers.api import edit_args, local_args
from tests.helpers.app import connect


def test_a_local_run_streams_previews_then_the_final_images_with_their_seeds(local_app, images):
    client = connect(local_app)
    job = client.submit(**local_args(images, randomize_seed=False, seed=41, num_images=2), api_name="/edit")
    gallery, status, logs, details, seed_used = job.result(timeout=120)
    statuses = [out[1] for out in job.outputs() if isinstance(out[1], str)]
    previews = [i for i, s in enumerate(statuses) if s.startswith("🖼️ Intermediate result")]
    assert previews and previews[-1] < statuses.index(status)
    assert any(" of 6)" in s for s in statuses)  # "step i of 6"
    assert status.startswith("✅ Done") and len(gallery) == 2
    assert seed_used == 41 and "**Seeds:** `41`, `42`" in details
    # "Match image 1": the output follows the first reference (640x480 -> multiples of 16).
    assert Image.open(gallery[0]["image"]).size == (640, 480)


def test_a_local_lora_with_trigger_words_and_a_bad_one_named(local_app, images):
    client = connect(local_app)
    *_, details, _seed = client.predict(
        **local_args(images, loras=[{"path": "style.safetensors", "scale": 0.8, "enabled": True}]),
        api_name="/edit",
    )
    assert "LoRA 1 trigger words: sks style" in details
    with pytest.raises(AppError, match=r"LoRA 1 \(not-a-lora.safetensors\): is a safetensors file but holds no LoRA"):
        client.predict(**local_args(images, loras=[{"path": "not-a-lora.safetensors"}]), api_name="/edit")
    gallery, status, *_ = client.predict(**local_args(images), api_name="/edit")
    assert status.startswith("✅ Done") and gallery


def test_the_same_server_still_runs_hosted_edits(local_app, fake, images):
    gallery, status, *_ = connect(local_app).predict(
        **edit_args(images, backend="fal", fal_key="visitor-key-123"), api_name="/edit",
    )
    assert status.startswith("✅ Done") and len(fake.jobs) == 1


def test_the_server_log_holds_no_notice_of_a_dependency_that_does_not_concern_it(local_app, images):
    # Operators read this log: diffusers' "Unable to import `torchao` Tensor objects" (about
    # checkpoints saved by torchao, which the app never loads) and torch's pytree deprecation
    # for torchao's enums would send them looking for a fault that is not there; so would
    # torchao's warnings, on a PyTorch without CUDA (as here), that its CUDA kernels and Triton
    # are missing.
    client = connect(local_app)
    gallery, status, *_ = client.predict(**local_args(images), api_name="/edit")  # diffusers is in use
    assert status.startswith("✅ Done") and gallery
    log = local_app.log()
    assert "INFO studio: backends: fal, local" in log  # the log read is this server's
    assert "Unable to import `torchao` Tensor objects" not in log
    assert "is an Enum subclass and is now natively supported" not in log
    assert "torchao/_C_" not in log and "Detected no triton" not in log  # "Failed to load …/torchao/_C_….so"
