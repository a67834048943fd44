"""Checks that tests/helpers/tiny_flux2.py builds a working offline FLUX.2 pipeline, and pins down the
pipeline behaviour the app's local backend relies on (prompt-embedding cache, LoRA loading,
step callbacks and previews). Fast: a few seconds after importing diffusers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import Flux2Pipeline  # noqa: E402  (after tests.helpers.tiny_flux2 on purpose: same import cost)
from PIL import Image

from tests.helpers.tiny_flux2 import (
    MAX_SEQUENCE_LENGTH,
    TEXT_ENCODER_OUT_LAYERS,
    build_tiny_pipeline,
    call_kwargs,
    make_broken_safetensors,
    make_not_a_lora,
    make_tiny_lora,
    reference_image,
    save_tiny_pipeline,
)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def generate(pipe, seed: int = 0, images=None, **overrides) -> Image.Image:
    kwargs = call_kwargs(**overrides)
    if "prompt_embeds" not in kwargs:
        kwargs.setdefault("prompt", "make it blue")
    result = pipe(
        image=[reference_image()] if images is None else images,
        generator=torch.Generator().manual_seed(seed),
        **kwargs,
    )
    return result.images[0]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return save_tiny_pipeline(tmp_path_factory.mktemp("tiny-flux2"))


def load(folder) -> Flux2Pipeline:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        pipe = Flux2Pipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def pipe(saved) -> Flux2Pipeline:
    """The saved pipeline loaded back; tests must leave it as they found it."""
    return load(saved)


@pytest.fixture(scope="module")
def base_image(pipe) -> Image.Image:
    return generate(pipe)


def test_saved_folder_loads_offline_with_every_component(saved, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    index = json.loads((saved / "model_index.json").read_text())
    assert index["_class_name"] == "Flux2Pipeline"
    for name in ("scheduler", "vae", "text_encoder", "tokenizer", "transformer"):
        assert (saved / name).is_dir(), name

    pipe = Flux2Pipeline.from_pretrained(saved)
    assert pipe.dtype == torch.float32
    assert pipe.transformer.config.in_channels == 128
    assert pipe.vae.config.latent_channels == 32
    assert pipe.vae_scale_factor == 8
    assert pipe.tokenizer.padding_side == "left"
    # Mistral's special-token ids survive the round trip.
    ids = pipe.tokenizer.convert_tokens_to_ids(["<s>", "[INST]", "[/INST]", "[IMG]", "<pad>", "[SYSTEM_PROMPT]"])
    assert ids == [1, 3, 4, 10, 11, 17]
    # The BN statistics are not the identity (so de-normalisation matters).
    assert pipe.vae.bn.running_mean.abs().max() > 0.1


def test_call_returns_a_64px_pil_image(base_image):
    assert isinstance(base_image, Image.Image)
    assert base_image.size == (64, 64)
    assert base_image.mode == "RGB"
    assert pixels(base_image).std() > 1  # not a flat image


def test_loaded_pipeline_equals_the_built_one(base_image):
    assert np.array_equal(pixels(generate(build_tiny_pipeline())), pixels(base_image))


def test_same_seed_same_pixels_and_other_seed_other_pixels(pipe, base_image):
    assert np.array_equal(pixels(generate(pipe, seed=0)), pixels(base_image))
    assert not np.array_equal(pixels(generate(pipe, seed=1)), pixels(base_image))


def test_two_references(pipe, base_image):
    image = generate(pipe, images=[reference_image(0), reference_image(1, size=(96, 64))])
    assert image.size == (64, 64)
    assert not np.array_equal(pixels(image), pixels(base_image))


def test_prompt_embeds_from_encode_prompt_give_the_same_image(pipe, base_image):
    prompt_embeds, text_ids = pipe.encode_prompt(
        "make it blue",  # device defaults to the pipeline's execution device
        max_sequence_length=MAX_SEQUENCE_LENGTH,
        text_encoder_out_layers=TEXT_ENCODER_OUT_LAYERS,
    )
    assert prompt_embeds.shape == (1, MAX_SEQUENCE_LENGTH, pipe.transformer.config.joint_attention_dim)
    assert text_ids.shape == (1, MAX_SEQUENCE_LENGTH, 4)
    image = generate(pipe, prompt_embeds=prompt_embeds)
    assert np.array_equal(pixels(image), pixels(base_image))
    # ... and the prompt does matter, so the cache key must include it.
    assert not np.array_equal(pixels(generate(pipe, prompt="make it red")), pixels(base_image))


# Loading a second adapter into the same transformer makes peft warn; that is what we want here.
@pytest.mark.filterwarnings("ignore:Already found a `peft_config` attribute")
def test_lora_changes_the_output_and_weight_zero_is_the_base(saved, tmp_path, base_image):
    from safetensors import safe_open

    pipe = load(saved)  # a pipeline of its own: adapters stay out of the shared one
    lora = make_tiny_lora(pipe, tmp_path / "loras" / "tiny.safetensors", trigger_words=["tnyflx", "blue style"])
    with safe_open(str(lora), framework="pt") as handle:
        assert handle.metadata()["trigger_word"] == "tnyflx,blue style"
        assert all(key.startswith("transformer.") and ".lora_" in key for key in handle.keys())
    assert pipe.get_list_adapters() == {}  # making the LoRA left the pipeline alone

    pipe.load_lora_weights(str(lora), adapter_name="a", use_safetensors=True)
    pipe.set_adapters(["a"], adapter_weights=[1.0])
    with_lora = pixels(generate(pipe))
    assert not np.array_equal(with_lora, pixels(base_image))
    pipe.set_adapters(["a"], adapter_weights=[0.0])
    assert np.array_equal(pixels(generate(pipe)), pixels(base_image))

    # A LoRA made from the saved folder is the same LoRA (same seed) and loads too.
    other = make_tiny_lora(saved, tmp_path / "from-folder.safetensors")
    pipe.load_lora_weights(str(other), adapter_name="b", use_safetensors=True)
    pipe.set_adapters(["b"], adapter_weights=[1.0])
    assert np.array_equal(pixels(generate(pipe)), with_lora)

    pipe.delete_adapters(["a", "b"])
    assert np.array_equal(pixels(generate(pipe)), pixels(base_image))


def test_not_a_lora_and_a_broken_file_are_rejected(pipe, tmp_path):
    with pytest.raises(ValueError, match="Invalid adapter checkpoint"):
        pipe.load_lora_weights(str(make_not_a_lora(tmp_path / "foo.safetensors")), adapter_name="x",
                               use_safetensors=True)
    from safetensors import SafetensorError

    with pytest.raises(SafetensorError, match="header"):
        pipe.load_lora_weights(str(make_broken_safetensors(tmp_path / "bad.safetensors")), adapter_name="y",
                               use_safetensors=True)
    assert pipe.get_list_adapters() == {}


def test_callback_runs_once_per_step_with_packed_latents(pipe, base_image):
    calls = []

    def callback(pipeline, i, t, kwargs):
        calls.append((i, float(t), tuple(kwargs["latents"].shape)))
        return {}

    image = generate(pipe, callback_on_step_end=callback, callback_on_step_end_tensor_inputs=["latents"])
    assert [i for i, _, _ in calls] == [0, 1, 2]
    # 64x64 px -> 8x8 latent -> 4x4 patches of 4x32 channels.
    assert {shape for _, _, shape in calls} == {(1, 16, 128)}
    assert np.array_equal(pixels(image), pixels(base_image))  # a no-op callback changes nothing


def test_noise_pred_in_the_callback_and_the_x0_preview(pipe):
    with pytest.raises(ValueError):  # not allowed by default
        generate(pipe, callback_on_step_end=lambda *a: {}, callback_on_step_end_tensor_inputs=["noise_pred"])

    seen = []

    def callback(pipeline, i, t, kwargs):
        sigma = float(pipeline.scheduler.sigmas[i])
        sigma_next = float(pipeline.scheduler.sigmas[i + 1])
        seen.append(dict(i=i, t=float(t), sigma=sigma, sigma_next=sigma_next,
                         latents=kwargs["latents"].clone(), noise_pred=kwargs["noise_pred"].clone()))
        return {}

    pipe._callback_tensor_inputs = [*Flux2Pipeline._callback_tensor_inputs, "noise_pred"]
    try:
        # Two references: the transformer sees 16 + 16 + 24 image tokens, the callback gets 16.
        final = pipe(
            image=[reference_image(0), reference_image(1, size=(96, 64))],
            prompt="make it blue",
            generator=torch.Generator().manual_seed(0),
            callback_on_step_end=callback,
            callback_on_step_end_tensor_inputs=["latents", "noise_pred"],
            **call_kwargs(output_type="latent"),
        ).images
    finally:
        del pipe._callback_tensor_inputs  # back to the class attribute
    assert pipe._callback_tensor_inputs == ["latents", "prompt_embeds"]

    steps = call_kwargs()["num_inference_steps"]
    assert len(seen) == steps
    assert len(pipe.scheduler.sigmas) == steps + 1 and float(pipe.scheduler.sigmas[-1]) == 0.0
    for step in seen:
        # noise_pred is already sliced to the output tokens: same shape as latents.
        assert step["noise_pred"].shape == step["latents"].shape == (1, 16, 128)
        # t is the timestep of the noise level the transformer saw at this step.
        assert step["t"] == pytest.approx(step["sigma"] * 1000, rel=1e-5)
    # The latents handed to the callback are those of sigma_next: an Euler step from the previous.
    for before, after in zip(seen, seen[1:]):
        expected = before["latents"] + (after["sigma_next"] - after["sigma"]) * after["noise_pred"]
        torch.testing.assert_close(after["latents"], expected, rtol=1e-5, atol=1e-5)
    # x0 = latents - sigma_next * noise_pred; at the last step sigma_next is 0, so x0 IS the result.
    last = seen[-1]
    assert last["sigma_next"] == 0.0
    x0 = last["latents"] - last["sigma_next"] * last["noise_pred"]
    assert final.shape == (1, 16, 128)
    torch.testing.assert_close(x0, final, rtol=0, atol=0)
    # Earlier x0 previews are a different (less converged) estimate of the same result.
    first = seen[0]
    first_x0 = first["latents"] - first["sigma_next"] * first["noise_pred"]
    assert not torch.equal(first_x0, final)


def test_helpers_are_deterministic():
    assert np.array_equal(pixels(reference_image(3)), pixels(reference_image(3)))
    assert not np.array_equal(pixels(reference_image(3)), pixels(reference_image(4)))
    assert reference_image(0, size=(96, 64)).size == (96, 64)
    assert call_kwargs(num_inference_steps=5)["num_inference_steps"] == 5
    assert call_kwargs()["text_encoder_out_layers"] == TEXT_ENCODER_OUT_LAYERS
    # Building twice gives the same weights and leaves the global RNG alone.
    state = torch.random.get_rng_state()
    a, b = build_tiny_pipeline(), build_tiny_pipeline()
    assert torch.equal(torch.random.get_rng_state(), state)
    for (name, pa), (_, pb) in zip(a.transformer.state_dict().items(), b.transformer.state_dict().items()):
        assert torch.equal(pa, pb), name
    assert a.tokenizer.get_vocab() == b.tokenizer.get_vocab()
