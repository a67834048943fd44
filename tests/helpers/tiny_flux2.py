"""A tiny, random, offline FLUX.2 [dev] pipeline for tests (diffusers 0.42 `Flux2Pipeline`).

Real FLUX.2 weights (~110 GB) cannot be downloaded on the test machines and the hub is not
reachable, so everything here is built in code, with deterministic random weights, but with the
REAL tensor layout wherever the app could depend on it:

* tokenizer: a byte-level BPE trained in code (~0.1 s) whose first ids are Mistral's special
  tokens in their real order (`<unk>`=0, `<s>`=1, `</s>`=2, `[INST]`=3, `[/INST]`=4, `[IMG]`=10,
  `<pad>`=11, ..., `[SYSTEM_PROMPT]`=17, `[/SYSTEM_PROMPT]`=18), wrapped in
  `PreTrainedTokenizerFast(padding_side="left")` with a Mistral-Small-3.1 style chat template.
  The pipeline only ever calls `tokenizer.apply_chat_template(...)`, so no PixtralProcessor (and
  no torchvision) is needed.
* text encoder: `Mistral3ForConditionalGeneration` with a 3-layer, 16-wide Mistral text model.
  The pipeline stacks the hidden states of `text_encoder_out_layers`, so calls must pass
  `text_encoder_out_layers=TEXT_ENCODER_OUT_LAYERS` (the default (10, 20, 30) does not exist here),
  giving prompt embeddings of width 3 * 16 = 48 = the transformer's `joint_attention_dim`.
* VAE: `AutoencoderKLFlux2` with 4 blocks (8x down-sampling) and the real 32 latent channels, so
  latents are patchified 2x2 to 128 channels and sizes must be multiples of 16 px, as with the real
  model. Its batch-norm running statistics are set to deterministic non-trivial values (real ones
  are not 0/1 either), so code that forgets to de-normalise latents gives visibly wrong pixels.
* transformer: `Flux2Transformer2DModel(in_channels=128)` with 1 double and 1 single block.
* scheduler: `FlowMatchEulerDiscreteScheduler` with FLUX.2-dev's published config.

Facts checked with this pipeline (see tests/unit/test_tiny_flux2.py, which asserts each of them):

* `pipe.encode_prompt(prompt, device=..., max_sequence_length=..., text_encoder_out_layers=...)`
  returns `(prompt_embeds, text_ids)`; passing `prompt_embeds=` (and no prompt) to the call gives
  pixel-identical output to passing `prompt=`. `max_sequence_length` and `text_encoder_out_layers`
  must be the same as the call's, so they belong in a prompt-embedding cache key.
* `callback_on_step_end(pipe, i, t, kwargs)` runs once per step, AFTER `scheduler.step`; `t` is the
  timestep the transformer saw at step i, and `kwargs["latents"]` are the packed, batch-norm
  normalised latents for the NEXT noise level `pipe.scheduler.sigmas[i + 1]`, shape
  `(B, N, 128)` with `N = (height / 16) * (width / 16)` (64x64 px -> (1, 16, 128)). The reference
  images' tokens are never in `latents`.
* Only "latents" and "prompt_embeds" are allowed by default (anything else raises ValueError in
  `check_inputs`). Setting `pipe._callback_tensor_inputs = [..., "noise_pred"]` on the INSTANCE
  works: the pipeline reads `locals()["noise_pred"]`, which at that point is already sliced to the
  output tokens, `(B, N, 128)` exactly like `latents` (reference-image tokens are dropped before the
  scheduler step). The class attribute `Flux2Pipeline._callback_tensor_inputs` is not touched.
* The scheduler step is plain Euler: `latents_next = latents_prev + (sigma_next - sigma) * noise_pred`.
  So `x0 = latents - sigma_next * noise_pred` with `sigma_next = pipe.scheduler.sigmas[i + 1]` is
  the predicted clean latent at every step, and at the last step `sigma_next == 0` so `x0` equals the
  final latents exactly (the pipeline then un-normalises and decodes those). `pipe.scheduler.sigmas`
  has `num_inference_steps + 1` entries, the last one 0.0.

Cost on a 2-core CPU (measured): importing diffusers + transformers 4-7 s; building 0.05 s;
saving 0.15 s (~700 KB on disk); `from_pretrained` 0.07 s; a 64x64 call with 3 steps 0.04 s with
one reference, 0.08 s with two; `make_tiny_lora` 0.35 s; `load_lora_weights` 0.02 s; peak RSS of a
process doing all of that ~480 MB. Parameters: transformer 90 k, VAE 36 k, text encoder 22 k.

Failure modes the app can test with the helpers below: `load_lora_weights` on `make_not_a_lora`'s
file raises `ValueError("Invalid adapter checkpoint. We currently support LoRA and LoKr.")`; on
`make_broken_safetensors`'s file it raises `safetensors.SafetensorError` ("Error while deserializing
header: invalid header length").
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from PIL import Image

# The tiny text encoder has 3 layers; hidden_states[0] is the embedding output, 1..3 the layers.
TEXT_ENCODER_OUT_LAYERS = (1, 2, 3)
# The chat template puts FLUX.2's system message before the prompt: ~30 tokens with this tokenizer
# (which was trained on it), ~60 with a less fitted one. 128 leaves room for the prompt and keeps the
# call fast (the real pipeline's default is 512). Longer prompts are truncated, as in the real one.
MAX_SEQUENCE_LENGTH = 128

_TEXT_HIDDEN = 16
_TEXT_LAYERS = 3

# Mistral's (tekken) special tokens, ids 0..19 in their real order. `[IMG]`=10 is the image token
# and `<pad>`=11 the padding token of Mistral-Small-3.1 / FLUX.2's text encoder.
_SPECIAL_TOKENS = [
    "<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]",
    "[IMG_END]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
    "[TOOL_CONTENT]",
]

# A Mistral-Small-3.1 style chat template, reduced to what FLUX.2 needs: the system message in
# [SYSTEM_PROMPT]...[/SYSTEM_PROMPT], user turns in [INST]...[/INST], content either a string or a
# list of {"type": "text"|"image", ...} blocks (the pipeline always sends lists of blocks).
_CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- if messages[0]['content'] is string %}{%- set system_message = messages[0]['content'] %}"
    "{%- else %}{%- set system_message = messages[0]['content'][0]['text'] %}{%- endif %}"
    "{%- set loop_messages = messages[1:] %}"
    "{{- '[SYSTEM_PROMPT]' + system_message + '[/SYSTEM_PROMPT]' }}"
    "{%- else %}{%- set loop_messages = messages %}{%- endif %}"
    "{%- for message in loop_messages %}"
    "{%- if message['role'] == 'user' %}"
    "{%- if message['content'] is string %}{{- '[INST]' + message['content'] + '[/INST]' }}"
    "{%- else %}{{- '[INST]' }}"
    "{%- for block in message['content'] %}"
    "{%- if block['type'] == 'text' %}{{- block['text'] }}"
    "{%- elif block['type'] in ['image', 'image_url'] %}{{- '[IMG]' }}"
    "{%- else %}{{- raise_exception('Only text and image blocks are supported in message content!') }}"
    "{%- endif %}{%- endfor %}{{- '[/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}"
    "{%- if message['content'] is string %}{{- message['content'] + eos_token }}"
    "{%- else %}{{- message['content'][0]['text'] + eos_token }}{%- endif %}"
    "{%- else %}{{- raise_exception('Only user, system and assistant roles are supported!') }}"
    "{%- endif %}{%- endfor %}"
)


def _tokenizer_corpus() -> list[str]:
    """Text the BPE is trained on: FLUX.2's system message plus typical edit instructions."""
    from diffusers.pipelines.flux2.system_messages import SYSTEM_MESSAGE

    words = [
        "make it blue", "make this donut realistic", "turn the cat into a dog",
        "a photo of a red car on a street", "replace the background with a beach at sunset",
        "add a hat", "remove the person", "image 1", "image 2", "image 3", "in the style of",
        "a watercolor painting", "studio lighting, high detail", "the quick brown fox jumps over the lazy dog",
    ]
    return [SYSTEM_MESSAGE] * 4 + words * 4


def build_tokenizer():
    """A deterministic byte-level BPE tokenizer with Mistral's special tokens (about 0.1 s)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    # Byte-level: every input can be encoded (no <unk>), like tekken.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=_SPECIAL_TOKENS,  # given first, so they get ids 0..19 in this order
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_tokenizer_corpus(), trainer=trainer)
    for index, token in enumerate(_SPECIAL_TOKENS):
        assert tok.token_to_id(token) == index, (token, tok.token_to_id(token))

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        # FLUX.2 pads to max_sequence_length on the left, as Mistral's processor does.
        padding_side="left",
        model_max_length=131072,
    )
    tokenizer.chat_template = _CHAT_TEMPLATE
    return tokenizer


def _build_text_encoder(vocab_size: int):
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration

    config = Mistral3Config(
        text_config={
            "model_type": "mistral",
            "vocab_size": vocab_size,
            "hidden_size": _TEXT_HIDDEN,
            "intermediate_size": 37,
            "num_hidden_layers": _TEXT_LAYERS,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": _TEXT_HIDDEN // 4,  # Mistral3's default head_dim (128) must be overridden
            "max_position_embeddings": 512,
            "rms_norm_eps": 1e-05,
            "rope_theta": 1000000000.0,
            "sliding_window": None,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": 11,
        },
        vision_config={
            "model_type": "pixtral",
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "head_dim": 4,
            "intermediate_size": 37,
            "image_size": 30,
            "patch_size": 6,
            "num_channels": 3,
        },
        image_token_index=10,
        vision_feature_layer=-1,
    )
    return Mistral3ForConditionalGeneration(config).eval()


def _build_vae():
    from diffusers import AutoencoderKLFlux2

    vae = AutoencoderKLFlux2(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,  # 4 blocks -> 8x, as the real VAE
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        latent_channels=32,  # the real latent layout: 32 channels, patchified 2x2 to 128
        norm_num_groups=4,
        sample_size=64,
    )
    # Non-trivial batch-norm statistics (the pipeline normalises encoded latents with them and
    # un-normalises before decoding); 0/1 would hide a missing de-normalisation.
    with torch.no_grad():
        vae.bn.running_mean.copy_(torch.randn_like(vae.bn.running_mean) * 0.5)
        vae.bn.running_var.copy_(torch.rand_like(vae.bn.running_var) * 1.5 + 0.5)
    return vae.eval()


def _build_transformer():
    from diffusers import Flux2Transformer2DModel

    return Flux2Transformer2DModel(
        patch_size=1,
        in_channels=128,  # 32 VAE channels x 2x2 patch
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=_TEXT_HIDDEN * len(TEXT_ENCODER_OUT_LAYERS),
        timestep_guidance_channels=256,
        axes_dims_rope=(4, 4, 4, 4),  # must sum to attention_head_dim
    ).eval()


def _build_scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler

    # FLUX.2-dev's scheduler/scheduler_config.json.
    return FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        base_image_seq_len=256,
        base_shift=0.5,
        max_image_seq_len=4096,
        max_shift=1.15,
        shift=3.0,
        use_dynamic_shifting=True,
    )


def build_tiny_pipeline(seed: int = 0):
    """A tiny `diffusers.Flux2Pipeline` (float32, CPU) with deterministic random weights.

    The global torch RNG is left as it was (the weights come from a forked RNG seeded with `seed`).
    """
    from diffusers import Flux2Pipeline

    tokenizer = build_tokenizer()
    with torch.random.fork_rng(devices=[]):
        # One seed per component, so changing one component's config leaves the others' weights.
        torch.manual_seed(seed)
        text_encoder = _build_text_encoder(len(tokenizer))
        torch.manual_seed(seed + 1)
        vae = _build_vae()
        torch.manual_seed(seed + 2)
        transformer = _build_transformer()
    pipe = Flux2Pipeline(
        scheduler=_build_scheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_tiny_pipeline(folder: str | Path, seed: int = 0) -> Path:
    """Save a tiny pipeline so that `Flux2Pipeline.from_pretrained(folder)` loads it offline."""
    folder = Path(folder)
    build_tiny_pipeline(seed).save_pretrained(folder)
    return folder


def _transformer_of(pipeline_or_folder):
    if isinstance(pipeline_or_folder, (str, Path)):
        from diffusers import Flux2Transformer2DModel

        return Flux2Transformer2DModel.from_pretrained(Path(pipeline_or_folder), subfolder="transformer")
    # A copy: adding an adapter must not change the caller's pipeline.
    return copy.deepcopy(pipeline_or_folder.transformer)


# Full module names (diffusers' own tests target the same layers): the double block's attention
# (image and text streams) and the single block's fused QKV+MLP input and output projections.
LORA_TARGET_MODULES = [
    "transformer_blocks.0.attn.to_q",
    "transformer_blocks.0.attn.to_k",
    "transformer_blocks.0.attn.to_v",
    "transformer_blocks.0.attn.to_out.0",  # to_out is a ModuleList in double blocks
    "transformer_blocks.0.attn.add_q_proj",
    "transformer_blocks.0.attn.add_k_proj",
    "transformer_blocks.0.attn.add_v_proj",
    "transformer_blocks.0.attn.to_add_out",
    "single_transformer_blocks.0.attn.to_qkv_mlp_proj",
    "single_transformer_blocks.0.attn.to_out",
]


def make_tiny_lora(
    pipeline_or_folder,
    out_file: str | Path,
    seed: int = 1,
    rank: int = 4,
    trigger_words: list[str] | None = None,
    target_modules: list[str] | None = None,
) -> Path:
    """Write a real diffusers-format LoRA `.safetensors` for the tiny transformer.

    `pipeline_or_folder` is a tiny pipeline (left unchanged) or a folder from `save_tiny_pipeline`.
    `init_lora_weights=False` gives random A and B matrices (peft's default zeroes B, a no-op LoRA),
    so loading it at weight 1 changes the output. The file is written by
    `Flux2Pipeline.save_lora_weights` (keys `transformer.<module>.lora_A.weight` / `lora_B.weight`,
    the LoRA config in the `lora_adapter_metadata` metadata entry, as diffusers' training scripts do).
    `trigger_words`, if given, are stored comma-separated under the metadata key "trigger_word".
    `target_modules`: the layers it adapts (default LORA_TARGET_MODULES).
    """
    from diffusers import Flux2Pipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from safetensors import safe_open
    from safetensors.torch import save_file

    out_file = Path(out_file)
    transformer = _transformer_of(pipeline_or_folder)
    config = LoraConfig(
        r=rank,
        lora_alpha=rank,
        target_modules=target_modules or LORA_TARGET_MODULES,
        init_lora_weights=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer.add_adapter(config, adapter_name="tiny")
    state_dict = get_peft_model_state_dict(transformer, adapter_name="tiny")
    metadata = transformer.peft_config["tiny"].to_dict()
    out_file.parent.mkdir(parents=True, exist_ok=True)
    Flux2Pipeline.save_lora_weights(
        out_file.parent,
        transformer_lora_layers=state_dict,
        weight_name=out_file.name,
        transformer_lora_adapter_metadata=metadata,
    )

    if trigger_words:
        # Rewrite the file with one more metadata entry (safetensors metadata is str -> str).
        with safe_open(str(out_file), framework="pt") as handle:
            file_metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        file_metadata["trigger_word"] = ",".join(trigger_words)
        save_file(tensors, str(out_file), metadata=file_metadata)
    return out_file


def make_swap_world(folder: Path) -> dict:
    """LoRAs to swap on the tiny transformer, in `folder`/loras: ranks 4 and 8 over every
    target, rank 2 over the attention layers only (fewer layers than the others), rank 32
    (past a limit of 16); and a 64x64 reference at `folder`/ref.png. {"loras", "ref"}."""
    pipe = build_tiny_pipeline()
    loras = folder / "loras"
    make_tiny_lora(pipe, loras / "r4.safetensors", seed=1, rank=4)
    make_tiny_lora(pipe, loras / "r8.safetensors", seed=2, rank=8)
    make_tiny_lora(pipe, loras / "r2-attn.safetensors", seed=3, rank=2, target_modules=LORA_TARGET_MODULES[:4])
    make_tiny_lora(pipe, loras / "r32.safetensors", seed=4, rank=32)
    reference_image(0).save(folder / "ref.png")
    return {"loras": loras, "ref": str(folder / "ref.png")}


def make_not_a_lora(out_file: str | Path) -> Path:
    """A valid `.safetensors` file whose tensors are not LoRA weights (load_lora_weights rejects it)."""
    from safetensors.torch import save_file

    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    save_file({"foo.weight": torch.randn(4, 4, generator=generator)}, str(out_file), metadata={"format": "pt"})
    return out_file


def make_broken_safetensors(out_file: str | Path) -> Path:
    """Garbage bytes under a `.safetensors` name (its header length points past the end of the file,
    so loading raises `safetensors.SafetensorError`)."""
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_bytes(b"\xff\x00\x00\x00\x00\x00\x00\x00this is not a safetensors file" * 3)
    return out_file


def call_kwargs(**overrides) -> dict:
    """Keyword arguments for a fast, deterministic `pipe(...)` call; overrides win.

    Add `prompt` (or `prompt_embeds`), `image` and `generator` yourself.
    """
    kwargs = dict(
        height=64,
        width=64,
        num_inference_steps=3,
        guidance_scale=2.5,
        max_sequence_length=MAX_SEQUENCE_LENGTH,
        text_encoder_out_layers=TEXT_ENCODER_OUT_LAYERS,
        output_type="pil",
    )
    kwargs.update(overrides)
    return kwargs


def reference_image(seed: int = 0, size=(64, 64)) -> Image.Image:
    """A deterministic RGB image: a colour gradient with two seed-dependent rectangles."""
    width, height = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(0, 255, size=3)
    pixels = np.stack(
        [
            base[0] * 0.5 + 127 * x / max(width - 1, 1),
            base[1] * 0.5 + 127 * y / max(height - 1, 1),
            np.full_like(x, base[2]),
        ],
        axis=-1,
    )
    for _ in range(2):
        x0, y0 = rng.integers(0, width // 2), rng.integers(0, height // 2)
        x1, y1 = x0 + rng.integers(width // 8, width // 2), y0 + rng.integers(height // 8, height // 2)
        pixels[y0:y1, x0:x1] = rng.uniform(0, 255, size=3)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")


__all__ = [
    "TEXT_ENCODER_OUT_LAYERS",
    "MAX_SEQUENCE_LENGTH",
    "LORA_TARGET_MODULES",
    "build_tokenizer",
    "build_tiny_pipeline",
    "save_tiny_pipeline",
    "make_tiny_lora",
    "make_not_a_lora",
    "make_broken_safetensors",
    "call_kwargs",
    "reference_image",
]
