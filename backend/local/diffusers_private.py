"""Every private part of diffusers' Flux2Pipeline that the local backend relies on.

diffusers promises nothing about underscore names, the names of `__call__`'s local
variables (the step callback reads them through `locals()`), or a scheduler's
`sigmas` table. The backend touches them only through the small functions here, and
tests/unit/test_diffusers_contract.py pins each one against the installed diffusers
on the tiny pipeline, so that an upgrade that breaks one fails there, by name.

Checked against diffusers 0.42.1 (`pipelines/flux2/pipeline_flux2.py`).
"""

from __future__ import annotations

from typing import Any

import torch

# The step callback's tensors: `__call__`'s local variables of those names, after the
# scheduler step. "latents" is allowed by default; the other two must be allowed on
# the instance (see `allow_step_tensors`). "noise_pred" is the velocity, already cut
# to the output's tokens; "latent_ids" are the output tokens' position ids.
STEP_TENSORS = ("latents", "noise_pred", "latent_ids")


def allow_step_tensors(pipe: Any, names: tuple[str, ...] = STEP_TENSORS) -> None:
    """Let `callback_on_step_end_tensor_inputs` name `names` on this pipeline only
    (the class attribute `_callback_tensor_inputs` is left as it is)."""
    pipe._callback_tensor_inputs = list(dict.fromkeys([*pipe._callback_tensor_inputs, *names]))


def interrupt(pipe: Any) -> None:
    """Skip the remaining denoising steps of the call in progress (read at each step)."""
    pipe._interrupt = True


def execution_device(pipe: Any) -> torch.device:
    """Where the pipeline runs its models (the onload device under offloading)."""
    return pipe._execution_device


def next_sigma(pipe: Any, step_index: int) -> torch.Tensor:
    """The noise level the latents are at after step `step_index` (0-based): the
    scheduler's `sigmas` has one entry per step plus a final 0."""
    return pipe.scheduler.sigmas[step_index + 1]


def unpack_latents(pipe: Any, latents: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Packed latents (B, N, 128) and their ids -> (B, 128, H/16, W/16)."""
    return pipe._unpack_latents_with_ids(latents, ids)


def unpatchify_latents(pipe: Any, latents: torch.Tensor) -> torch.Tensor:
    """(B, 128, h, w) -> the VAE's (B, 32, 2h, 2w)."""
    return pipe._unpatchify_latents(latents)


def latent_statistics(pipe: Any, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The VAE batch-norm's running (mean, std), shaped (1, C, 1, 1) on `like`'s device
    and dtype: the pipeline normalises latents with them and un-normalises before decoding."""
    bn = pipe.vae.bn
    mean = bn.running_mean.view(1, -1, 1, 1).to(like.device, like.dtype)
    std = torch.sqrt(bn.running_var.view(1, -1, 1, 1) + pipe.vae.config.batch_norm_eps).to(like.device, like.dtype)
    return mean, std


def vae_device(pipe: Any) -> torch.device:
    """The device the VAE's inputs must be on (its onload device under offloading)."""
    from diffusers.utils.torch_utils import get_module_execution_device

    return get_module_execution_device(pipe.vae)


def reset_step_cache(transformer: Any) -> None:
    """Empty the step cache's state (diffusers resets it only in pipelines that call this;
    Flux2Pipeline does not), so that a call never reuses the previous call's residuals."""
    transformer._reset_stateful_cache()
