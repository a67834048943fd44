"""LoRAs in fixed hot-swap slots (backend/local/hotswap.py), the path the backend takes when
its blocks are compiled, run here on the CPU without compile: loading, swapping and
unloading LoRAs of different ranks and layers gives the images a fresh load gives; a LoRA
above STUDIO_LORA_MAX_RANK is refused from its header, naming the limit."""

from __future__ import annotations

import itertools

import pytest

from backend.events import Result
from backend.local.backend import LocalBackend, LocalSettings
from backend.local.hotswap import HotswapAdapters
from backend.local.lora_sources import LoraError
from backend.lora_header import read_file_header
from backend.request import build_request
from tests.helpers.tiny_flux2 import (
    MAX_SEQUENCE_LENGTH,
    TEXT_ENCODER_OUT_LAYERS,
    build_tiny_pipeline,
    make_swap_world,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_swap_world(tmp_path_factory.mktemp("hotswap"))


def backend(world, hotswap: bool) -> LocalBackend:
    return LocalBackend(LocalSettings(
        model="tiny", device="cpu", decode_every=0, lora_dir=world["loras"], lora_max_rank=16, lora_hotswap=hotswap,
        max_sequence_length=MAX_SEQUENCE_LENGTH, text_encoder_out_layers=TEXT_ENCODER_OUT_LAYERS,
    ), pipeline=build_tiny_pipeline())


def image(local: LocalBackend, world, loras) -> bytes:
    request = build_request(prompt="make it blue", image_urls=[world["ref"]], num_inference_steps=4, seed=7,
                            loras=[{"path": p, "scale": s} for p, s in loras])
    result = [e for e in local.run(request, local.options({})) if isinstance(e, Result)][0]
    return result.images[0].data


SEQUENCE = [
    [("r4.safetensors", 1.0)],
    [("r8.safetensors", 0.7), ("r4.safetensors", 1.2)],
    [("r2-attn.safetensors", 1.0)],  # fewer layers than the others
    [],  # LoRAs to none
    [("r4.safetensors", 0.5), ("r2-attn.safetensors", 1.0), ("r8.safetensors", 1.0)],
]


def test_swapping_ranks_layers_and_none_gives_what_a_fresh_load_gives(world):
    swapping = backend(world, hotswap=True)
    assert swapping._loaded is not None and isinstance(swapping._loaded.adapters, HotswapAdapters)
    plain_images = [image(backend(world, hotswap=False), world, loras) for loras in SEQUENCE]
    swapped_images = [image(swapping, world, loras) for loras in SEQUENCE]
    for (i, a), (j, b) in itertools.combinations(enumerate(plain_images), 2):
        assert _difference(a, b)[1] > SAME_SHARE, (SEQUENCE[i], SEQUENCE[j])  # every LoRA set makes its own image
    for loras, plain, swapped in zip(SEQUENCE, plain_images, swapped_images):
        # Zero-padded to the slots' rank, a LoRA's products sum in another order, so a value may
        # round to the next level: seen for 1 value of 12288 (rank 4, an AVX2-only CPU), for none
        # on the machines before. Two different LoRA sets differ in over 7 % of the values.
        largest, share = _difference(plain, swapped)
        assert largest <= 1 and share <= SAME_SHARE, (loras, largest, share)


SAME_SHARE = 0.01  # of the pixel values: at most this many may differ (by one level) for "the same image"


def _difference(a: bytes, b: bytes) -> tuple[int, float]:
    """(the largest difference of two PNGs' pixel values, the share of values that differ)."""
    import io

    import numpy as np
    from PIL import Image

    pixels = [np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int) for data in (a, b)]
    differences = np.abs(pixels[0] - pixels[1])
    return int(differences.max()), float((differences > 0).mean())


def test_a_lora_above_the_rank_limit_is_refused_with_the_limit(world):
    assert read_file_header(world["loras"] / "r32.safetensors").rank == 32
    local = backend(world, hotswap=True)
    with pytest.raises(LoraError, match=r"LoRA 2 .*rank 32 is more than this server's limit of 16 "
                                        r"\(STUDIO_LORA_MAX_RANK\)"):
        image(local, world, [("r4.safetensors", 1.0), ("r32.safetensors", 1.0)])
