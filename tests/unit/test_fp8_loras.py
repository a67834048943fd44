"""The `fast` preset's fp8 transformer with LoRAs, run on the CPU: the tiny pipeline in bf16,
its linear layers quantised by the backend's own `apply_speed` (torchao's fp8 weights and
per-row dynamic fp8 activations; the CPU multiplies fp8 matrices itself). Only the two checks
that refuse fp8 below compute capability 8.9 are switched off, the one thing that cannot run
here. A designer's LoRAs on `fast` must change the image, swap and unload as on `quality`, and
give the images a fresh load gives, in the hot-swap slots (the compiled GPU path) as in named
adapters; on `fastest` too, with its step cache. A result of NaN ends the run with a message
instead of a black image."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from backend.errors import StudioError
from backend.events import Result
from backend.local import speed as speed_module
from backend.local.backend import LocalBackend, LocalSettings
from backend.local.hotswap import HotswapAdapters
from backend.request import build_request
from tests.helpers.tiny_flux2 import (
    MAX_SEQUENCE_LENGTH,
    TEXT_ENCODER_OUT_LAYERS,
    build_tiny_pipeline,
    make_swap_world,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_swap_world(tmp_path_factory.mktemp("fp8"))


@pytest.fixture()
def fp8_on_the_cpu(monkeypatch):
    """The app's and torchao's capability checks pass on this CPU (nothing else is changed)."""
    import torchao.quantization.quant_api as quant_api

    monkeypatch.setattr(speed_module, "_fp8_refusal", lambda device: None)
    monkeypatch.setattr(quant_api, "_check_hardware_support", lambda granularity: None)


def backend(world, speed: str, hotswap: bool = False) -> LocalBackend:
    return LocalBackend(LocalSettings(
        model="tiny", device="cpu", decode_every=0, speed=speed, lora_dir=world["loras"], lora_max_rank=16,
        lora_hotswap=hotswap, max_sequence_length=MAX_SEQUENCE_LENGTH, text_encoder_out_layers=TEXT_ENCODER_OUT_LAYERS,
    ), pipeline=build_tiny_pipeline().to(torch.bfloat16))  # fp8 per row is made from bf16 weights, as on a GPU


def pixels(local: LocalBackend, world, loras=(), steps: int = 4) -> np.ndarray:
    request = build_request(prompt="make it blue", image_urls=[world["ref"]], num_inference_steps=steps, seed=7,
                            loras=[{"path": p, "scale": s} for p, s in loras])
    result = [e for e in local.run(request, local.options({})) if isinstance(e, Result)][0]
    return np.asarray(Image.open(io.BytesIO(result.images[0].data)).convert("RGB"), dtype=np.int16)


def test_fast_makes_the_transformer_fp8_and_its_image_is_the_quality_image_within_fp8s_rounding(world, fp8_on_the_cpu):
    fast = backend(world, "fast")
    fast_image = pixels(fast, world)
    to_q = fast._loaded.pipe.transformer.transformer_blocks[0].attn.to_q
    assert type(to_q.weight).__name__ == "Float8Tensor"
    quality_image = pixels(backend(world, "quality"), world)
    # A row of zeros among the activations (the tiny text encoder's padding gives some) has no
    # scale of its own: left unbounded, fp8 made it NaN, and the whole image came out black.
    assert fast_image.std() > 10, "the fp8 image is flat"
    assert np.abs(fast_image - quality_image).mean() < 3, "fp8 strayed from the bf16 image"


SEQUENCE = [
    [("r4.safetensors", 1.0)],
    [("r8.safetensors", 0.7), ("r4.safetensors", 1.2)],
    [("r2-attn.safetensors", 1.0)],  # fewer layers than the others
    [],  # LoRAs to none
]


def test_loras_on_fp8_change_the_image_and_swap_and_unload_as_a_fresh_load_does(world, fp8_on_the_cpu):
    swapping = backend(world, "fast", hotswap=True)
    assert isinstance(swapping._loaded.adapters, HotswapAdapters)
    plain = [pixels(backend(world, "fast"), world, loras) for loras in SEQUENCE]
    swapped = [pixels(swapping, world, loras) for loras in SEQUENCE]
    no_lora = pixels(backend(world, "fast"), world)
    bf16 = [pixels(backend(world, "quality"), world, loras) for loras in SEQUENCE]  # the last: no LoRA
    for loras, fresh, on_bf16 in zip(SEQUENCE[:-1], plain, bf16):
        # A tiny random LoRA moves this image by about a level on average; on fp8 as on bf16.
        on_fp8, expected = np.abs(fresh - no_lora).mean(), np.abs(on_bf16 - bf16[-1]).mean()
        assert expected / 2 < on_fp8 < expected * 2, f"{loras} moved the fp8 image {on_fp8:.2f}, bf16 {expected:.2f}"
    assert np.array_equal(plain[-1], no_lora)
    for loras, fresh, hot in zip(SEQUENCE, plain, swapped):
        # Ranks zero-padded to the slots' 16 sum their products in another order: a level at most.
        assert np.abs(fresh - hot).max() <= 1, loras


def test_a_result_of_nan_ends_the_run_with_a_message_not_a_black_image(world, fp8_on_the_cpu, monkeypatch):
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow

    # torchao's recipe without the activation floor: this model's zero rows make NaN of it.
    monkeypatch.setattr(speed_module, "fp8_config", lambda: Float8DynamicActivationFloat8WeightConfig(
        granularity=PerRow()))
    request = build_request(prompt="make it blue", image_urls=[world["ref"]], num_inference_steps=4, seed=7)
    local = backend(world, "fast")
    with pytest.raises(StudioError, match="NaN or infinite values: there is no image to show") as failed:
        list(local.run(request, local.options({})))
    assert "Speed: quality" in failed.value.message


def test_a_model_loaded_for_fast_is_fp8_from_the_start_and_takes_a_lora(world, fp8_on_the_cpu, tmp_path):
    """The app's own path for weights on disk: `load_quantization` hands diffusers torchao's
    config, which quantises the transformer as it loads (load_pipeline, in bf16 on a GPU)."""
    from diffusers import Flux2Pipeline

    from backend.local.pipeline import prepare_pipeline
    from backend.local.speed import load_quantization
    from tests.helpers.tiny_flux2 import call_kwargs, save_tiny_pipeline

    folder = save_tiny_pipeline(tmp_path / "model")
    pipe = Flux2Pipeline.from_pretrained(
        str(folder), dtype=torch.bfloat16, quantization_config=load_quantization("fast"))
    assert type(pipe.transformer.transformer_blocks[0].attn.to_q.weight).__name__ == "Float8Tensor"
    prepare_pipeline(pipe, torch.device("cpu"), compile_blocks=False, speed="fast")

    def image():
        call = call_kwargs(prompt="make it blue", output_type="np")
        return pipe(**call, generator=torch.Generator().manual_seed(3)).images[0]

    plain = image()
    assert np.isfinite(plain).all() and plain.std() > 0.05
    pipe.load_lora_weights(str(world["loras"] / "r4.safetensors"), adapter_name="r4")
    assert np.abs(image() - plain).mean() > 1e-3
    pipe.set_adapters(["r4"], [0.0])
    assert np.array_equal(image(), plain)


def test_fastest_keeps_loras_and_swaps_them_with_its_step_cache(world, fp8_on_the_cpu):
    """`fastest` = fp8 plus the step cache, past its 10 full steps: a LoRA still moves the image,
    a swapped-in LoRA gives what a fresh load gives, and dropping the LoRAs gives back the plain
    image (no cached residual of the LoRA run is reused)."""
    def pixels_14(local, loras=()):
        return pixels(local, world, loras, steps=14)

    swapping = backend(world, "fastest", hotswap=True)
    plain = pixels_14(swapping)
    with_r4 = pixels_14(swapping, [("r4.safetensors", 1.0)])
    with_r8 = pixels_14(swapping, [("r8.safetensors", 1.0)])
    assert np.abs(with_r4 - plain).mean() > 0.2 and np.abs(with_r8 - plain).mean() > 0.2
    assert np.array_equal(pixels_14(swapping), plain)
    assert np.abs(pixels_14(backend(world, "fastest"), [("r8.safetensors", 1.0)]) - with_r8).max() <= 1
