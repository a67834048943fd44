"""What a LoRA is, from its header alone: layout, rank, size, trigger words, and whether it fits
FLUX.2 [dev]. A LoRA for another model is refused with that model's name.

The files are header-only, built in code with each model's own block counts and widths, in the
key layouts the trainers write (tests/helpers/lora_headers.py).
"""

from __future__ import annotations

import json
import struct

import pytest

from backend.lora_header import FLUX2_DEV, ModelShape, NotSafetensors, header_length, parse_header
from tests.helpers.lora_headers import declared_size, lora_header_file


def read(file: bytes):
    return parse_header(file[8:8 + header_length(file[:8])], declared_size(file))


@pytest.mark.parametrize("model, layout, expected_format", [
    ("flux2-dev-diffusers", "diffusers", "diffusers"),
    ("flux2-dev", "peft", "PEFT"),
    ("flux2-dev", "kohya", "kohya"),
    ("flux2-dev", "ai-toolkit", "ai-toolkit"),
    ("flux2-dev-diffusers", "fal", "fal-trained"),
])
def test_a_flux2_dev_lora_in_each_layout_fits_and_says_what_it_is(model, layout, expected_format):
    file = lora_header_file(model, layout, rank=32, metadata={"trigger_word": "wtrclr, soft wash"})
    header = read(file)
    assert (header.format, header.made_for, header.rank) == (expected_format, "FLUX.2 [dev]", 32)
    assert header.trigger_words == ("wtrclr", "soft wash")
    assert header.size_bytes == declared_size(file) and header.size_bytes > 10 * 2**20
    assert header.fits(FLUX2_DEV) is None
    summary = header.summary()
    for part in (expected_format, "rank 32", f"{header.size_bytes / 2**20:.0f} MB", "FLUX.2 [dev]", "wtrclr"):
        assert part in summary


@pytest.mark.parametrize("model, layout, made_for", [
    ("flux1", "kohya", "FLUX.1"),
    ("flux1", "ai-toolkit", "FLUX.1"),
    ("flux1-diffusers", "diffusers", "FLUX.1"),
    ("klein-4b", "ai-toolkit", "FLUX.2 [klein] 4B"),
    ("klein-4b", "kohya", "FLUX.2 [klein] 4B"),
    ("klein-9b", "ai-toolkit", "FLUX.2 [klein] 9B"),
    ("sdxl", "kohya", "SDXL"),
    ("qwen-image", "diffusers", "Qwen-Image"),
])
def test_a_lora_for_another_model_is_refused_with_the_model_it_was_made_for(model, layout, made_for):
    header = read(lora_header_file(model, layout))
    assert header.made_for == made_for
    reason = header.fits(FLUX2_DEV)
    assert reason is not None and made_for in reason and "FLUX.2 [dev]" in reason


def test_the_model_is_told_from_a_part_of_the_layers_too():
    # A LoRA on a few layers only: FLUX.1's attention alone (its blocks past FLUX.2 [klein]'s),
    # FLUX.2 [dev]'s single blocks alone.
    only_some = read(lora_header_file("flux1", "kohya", every=7))
    assert only_some.made_for == "FLUX.1"
    dev_singles = read(lora_header_file("flux2-dev", "ai-toolkit", every=5))
    assert dev_singles.fits(FLUX2_DEV) is None


def test_against_another_flux2_model_the_width_and_block_counts_decide():
    tiny = ModelShape("the served model", 2, 2, 64)
    header = read(lora_header_file("flux2-dev", "ai-toolkit"))
    assert "6144 wide" in header.fits(tiny) and "64 wide" in header.fits(tiny)


def test_kohya_tag_frequencies_give_trigger_words_when_none_are_named():
    tags = json.dumps({"10_style": {"inkwash": 40, "mountains": 12, "a cat": 3, "river": 1}})
    header = read(lora_header_file("flux2-dev", "kohya", metadata={"ss_tag_frequency": tags}))
    assert header.trigger_words == ("inkwash", "mountains", "a cat")


@pytest.mark.parametrize("data, message", [
    (b"<!DOCTYPE html><html>", "no header at its start"),
    (b"\x05", "too short"),
    (struct.pack("<Q", 12) + b"not json at!", "not JSON"),
])
def test_bytes_that_are_not_a_safetensors_header_are_named(data, message):
    with pytest.raises(NotSafetensors, match=message):
        parse_header(data[8:8 + header_length(data[:8])])


def test_offsets_a_stranger_wrote_wrong_do_not_break_the_check():
    body = json.dumps({"a.lora_A.weight": {"shape": [4, 8], "data_offsets": 7},
                       "a.lora_B.weight": {"shape": [8, 4], "data_offsets": []}}).encode()
    assert parse_header(body).size_bytes == 8 + len(body)


def test_a_file_with_no_lora_layers_is_refused():
    body = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    header = parse_header(body)
    assert header.fits(FLUX2_DEV) == "is a safetensors file but holds no LoRA weights"
