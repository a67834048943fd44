"""Pins every private diffusers name the local backend relies on (backend/local/
diffusers_private.py) against the installed diffusers, on the tiny FLUX.2 pipeline.

One test per function there: when a diffusers upgrade renames or changes one, the test
named after it fails, before any run does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import Flux2Pipeline

from backend.local import diffusers_private as private
from backend.local.previews import decode_full
from tests.helpers.tiny_flux2 import build_tiny_pipeline, call_kwargs, reference_image

STEPS = 4
TOKENS = 16  # a 64x64 image: (64 / 16) ** 2 packed tokens of 128 channels


def call(pipe, callback=None, tensors=("latents",), **overrides):
    kwargs = call_kwargs(**{"num_inference_steps": STEPS, **overrides})
    return pipe(
        image=[reference_image()], prompt="make it blue", generator=torch.Generator().manual_seed(0),
        callback_on_step_end=callback, callback_on_step_end_tensor_inputs=list(tensors), **kwargs,
    ).images[0]


@pytest.fixture(scope="module")
def pipe() -> Flux2Pipeline:
    """A tiny pipeline that allows the backend's step tensors, as prepare_pipeline does."""
    pipe = build_tiny_pipeline()
    private.allow_step_tensors(pipe)
    return pipe


@pytest.fixture(scope="module")
def steps(pipe) -> list[dict]:
    """What the step callback sees at each step of one call, and the final image."""
    seen: list[dict] = []

    def callback(p, i, t, tensors):
        seen.append({"i": i, "sigma_next": private.next_sigma(p, i).clone(), "sigmas": p.scheduler.sigmas.clone(),
                     **{k: v.clone() for k, v in tensors.items()}})
        return {}

    image = call(pipe, callback, tensors=private.STEP_TENSORS)
    seen.append({"image": image})
    return seen


def test_allow_step_tensors_lets_the_callback_name_them_on_this_pipeline_only():
    fresh = build_tiny_pipeline()
    with pytest.raises(ValueError, match="callback_on_step_end_tensor_inputs"):
        call(fresh, lambda *args: {}, tensors=private.STEP_TENSORS)
    private.allow_step_tensors(fresh)
    call(fresh, lambda *args: {}, tensors=private.STEP_TENSORS)
    assert set(private.STEP_TENSORS) <= set(fresh._callback_tensor_inputs)
    assert not set(private.STEP_TENSORS[1:]) & set(Flux2Pipeline._callback_tensor_inputs)  # the class is untouched


def test_step_tensors_are_the_output_tokens_after_each_scheduler_step(steps):
    per_step = steps[:-1]
    assert [s["i"] for s in per_step] == list(range(STEPS))
    for s in per_step:
        assert s["latents"].shape == s["noise_pred"].shape == (1, TOKENS, 128)
        assert s["latent_ids"].shape == (1, TOKENS, 4)
    # Plain Euler: the latents the callback sees are after the step made with noise_pred.
    for before, after in zip(per_step, per_step[1:]):
        sigma, sigma_next = before["sigma_next"], after["sigma_next"]
        euler = before["latents"] + (sigma_next - sigma) * after["noise_pred"]
        assert torch.allclose(after["latents"], euler, atol=1e-5)


def test_next_sigma_is_the_noise_level_after_the_step_and_zero_at_the_end(steps):
    sigmas = steps[0]["sigmas"]
    assert sigmas.shape == (STEPS + 1,) and float(sigmas[-1]) == 0.0
    assert [float(s["sigma_next"]) for s in steps[:-1]] == [float(x) for x in sigmas[1:]]


def test_unpack_and_unpatchify_give_the_vae_layout(pipe, steps):
    last = steps[-2]
    unpacked = private.unpack_latents(pipe, last["latents"], last["latent_ids"])
    assert unpacked.shape == (1, 128, 4, 4)
    assert private.unpatchify_latents(pipe, unpacked).shape == (1, 32, 8, 8)


def test_latent_statistics_are_the_vae_batch_norm_stats(pipe):
    like = torch.zeros(1, dtype=torch.float64)
    mean, std = private.latent_statistics(pipe, like)
    assert mean.shape == std.shape == (1, 128, 1, 1) and mean.dtype == std.dtype == torch.float64
    assert torch.allclose(mean.flatten().float(), pipe.vae.bn.running_mean)
    expected_std = torch.sqrt(pipe.vae.bn.running_var + pipe.vae.config.batch_norm_eps)
    assert torch.allclose(std.flatten().float(), expected_std)


def test_devices_are_where_the_tiny_pipeline_runs(pipe):
    assert private.execution_device(pipe) == torch.device("cpu")
    assert private.vae_device(pipe) == torch.device("cpu")


def test_decoding_the_last_steps_latents_is_the_pipelines_own_image(pipe, steps):
    """All of the above together: x0 at the last step is the final latents, and decoding
    them as the pipeline does gives its final image, pixel for pixel."""
    last = steps[-2]
    x0 = last["latents"] - last["sigma_next"] * last["noise_pred"]
    preview = decode_full(pipe, x0, last["latent_ids"])
    assert np.array_equal(np.asarray(preview), np.asarray(steps[-1]["image"]))


def test_interrupt_skips_the_remaining_steps(pipe):
    calls: list[int] = []
    hook = pipe.transformer.register_forward_hook(lambda *args: calls.append(1))

    def stop_after_two(p, i, t, tensors):
        if i == 1:
            private.interrupt(p)
        return {}

    try:
        call(pipe, stop_after_two, num_inference_steps=10)
        assert len(calls) == 2 and pipe.interrupt
        calls.clear()
        call(pipe)  # the next call starts uninterrupted
        assert len(calls) == STEPS and not pipe.interrupt
    finally:
        hook.remove()


def test_output_type_latent_returns_the_packed_final_latents_the_backend_decodes(pipe, steps):
    """previews.denoise asks for output_type="latent" and decodes the latents itself (not
    when Stop interrupted the call): they are the last step's latents, and decode_full
    turns them into the pipeline's own image."""
    last = steps[-2]
    latents = call(pipe, output_type="latent")
    assert torch.equal(latents, last["latents"][0])
    image = decode_full(pipe, latents[None], last["latent_ids"])
    assert np.array_equal(np.asarray(image), np.asarray(steps[-1]["image"]))


def test_an_interrupted_latent_call_decodes_nothing(pipe):
    """The pipeline's only VAE decode is its final one, skipped for output_type="latent"."""
    decodes: list[int] = []
    inner = pipe.vae.decode
    pipe.vae.decode = lambda *a, **k: decodes.append(1) or inner(*a, **k)

    def stop_after_one(p, i, t, tensors):
        private.interrupt(p)
        return {}

    try:
        call(pipe, stop_after_one, num_inference_steps=10, output_type="latent")
        assert decodes == []
        call(pipe, stop_after_one, num_inference_steps=10)
        assert decodes == [1]  # with output_type="pil" the half-done latents are decoded
    finally:
        del pipe.vae.decode
