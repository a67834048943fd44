"""The local backend loads the FLUX.2 LoRA layouts trainers write (ai-toolkit/BFL, PEFT, kohya,
fal's), each giving the very image the same weights give in diffusers' own layout; a layout it
cannot convert is refused naming the layout; a LoRA for another model is refused naming it,
before loading.

The LoRA is made for the tiny pipeline in BFL naming and written in each layout by
tests/helpers/lora_layouts.py, which maps it to diffusers' layout by hand.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from backend.errors import LoraError
from backend.events import Result
from backend.local.backend import LocalBackend, LocalSettings
from backend.lora_header import read_file_header
from backend.request import build_request
from tests.helpers.lora_headers import lora_header_file
from tests.helpers.lora_layouts import LAYOUTS, as_diffusers, bfl_lora, in_layout
from tests.helpers.tiny_flux2 import MAX_SEQUENCE_LENGTH, TEXT_ENCODER_OUT_LAYERS, build_tiny_pipeline, reference_image

EXPECTED_FORMAT = {"ai-toolkit": "ai-toolkit", "peft": "PEFT", "kohya": "kohya", "fal": "fal-trained",
                   "diffusers": "diffusers"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    loras = root / "loras"
    loras.mkdir()
    pairs = bfl_lora()
    save_file(as_diffusers(pairs), str(loras / "diffusers.safetensors"))
    for layout in LAYOUTS:
        save_file(in_layout(pairs, layout), str(loras / f"{layout}.safetensors"))
    unknown = in_layout(pairs, "ai-toolkit")
    unknown["diffusion_model.double_blocks.0.img_attn.norm.query_norm.lora_A.weight"] = torch.zeros(4, 16)
    unknown["diffusion_model.double_blocks.0.img_attn.norm.query_norm.lora_B.weight"] = torch.zeros(16, 4)
    save_file(unknown, str(loras / "unknown-layer.safetensors"))
    (loras / "flux1.safetensors").write_bytes(lora_header_file("flux1", "kohya", every=20))
    ref = root / "ref.png"
    reference_image(0).save(ref)
    backend = LocalBackend(LocalSettings(
        model="tiny", device="cpu", decode_every=0, lora_dir=loras, lora_hotswap=False,
        max_sequence_length=MAX_SEQUENCE_LENGTH, text_encoder_out_layers=TEXT_ENCODER_OUT_LAYERS,
    ), pipeline=build_tiny_pipeline())
    return {"loras": loras, "ref": str(ref), "backend": backend}


def image(world, lora: str | None) -> bytes:
    request = build_request(prompt="make it blue", image_urls=[world["ref"]], num_inference_steps=4, seed=7,
                            loras=[{"path": lora, "scale": 1.0}] if lora else [])
    backend = world["backend"]
    result = [e for e in backend.run(request, backend.options({})) if isinstance(e, Result)][0]
    return result.images[0].data


def test_each_layout_gives_the_image_of_the_same_weights_in_diffusers_layout(world):
    reference = image(world, "diffusers.safetensors")
    assert reference != image(world, None)  # the LoRA changes the image
    for layout in LAYOUTS:
        assert read_file_header(world["loras"] / f"{layout}.safetensors").format == EXPECTED_FORMAT[layout]
        assert image(world, f"{layout}.safetensors") == reference, layout


def test_a_layout_that_cannot_be_converted_is_named_and_the_next_run_works(world):
    with pytest.raises(LoraError, match=r"LoRA 1 \(unknown-layer.safetensors\): its ai-toolkit layout could not "
                                        r"be converted for this model"):
        image(world, "unknown-layer.safetensors")
    assert image(world, "kohya.safetensors") == image(world, "diffusers.safetensors")


def test_a_lora_for_another_model_is_refused_before_loading(world):
    with pytest.raises(LoraError, match=r"LoRA 1 \(flux1.safetensors\): was made for FLUX.1, not the served model"):
        image(world, "flux1.safetensors")
