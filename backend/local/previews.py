"""Previews of the model's estimate of the final image at every step, and Stop.

The step callback sees the latents after each scheduler step and the velocity that
made them; x0 = latents - sigma_next * velocity is the predicted clean latent (at the
last step sigma_next is 0 and x0 is the final latents). It is shown through a nearly
free linear latent-to-RGB map, or a full VAE decode when that is cheap.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import torch
from PIL import Image

from ..errors import StudioError
from ..events import Preview
from . import diffusers_private as private
from .speed import step_cache_context

# ComfyUI's fitted latent->RGB factors for FLUX.2's 32 latent channels (rows = channels).
LATENT_RGB_FACTORS = [
    [0.0058, 0.0113, 0.0073], [0.0495, 0.0443, 0.0836], [-0.0099, 0.0096, 0.0644], [0.2144, 0.3009, 0.3652],
    [0.0166, -0.0039, -0.0054], [0.0157, 0.0103, -0.0160], [-0.0398, 0.0902, -0.0235], [-0.0052, 0.0095, 0.0109],
    [-0.3527, -0.2712, -0.1666], [-0.0301, -0.0356, -0.0180], [-0.0107, 0.0078, 0.0013], [0.0746, 0.0090, -0.0941],
    [0.0156, 0.0169, 0.0070], [-0.0034, -0.0040, -0.0114], [0.0032, 0.0181, 0.0080], [-0.0939, -0.0008, 0.0186],
    [0.0018, 0.0043, 0.0104], [0.0284, 0.0056, -0.0127], [-0.0024, -0.0022, -0.0030], [0.1207, -0.0026, 0.0065],
    [0.0128, 0.0101, 0.0142], [0.0137, -0.0072, -0.0007], [0.0095, 0.0092, -0.0059], [0.0000, -0.0077, -0.0049],
    [-0.0465, -0.0204, -0.0312], [0.0095, 0.0012, -0.0066], [0.0290, -0.0034, 0.0025], [0.0220, 0.0169, -0.0048],
    [-0.0332, -0.0457, -0.0468], [-0.0085, 0.0389, 0.0609], [-0.0076, 0.0003, -0.0043], [-0.0111, -0.0460, -0.0614],
]
LATENT_RGB_BIAS = [-0.0329, -0.0718, -0.0851]
NOT_FINITE = ("The model's result held NaN or infinite values: there is no image to show, and nothing was "
              "saved. Run it again; if it happens again, choose Speed: quality.")


class StepPreviews:
    """The step callback: previews of x0 = latents - sigma_next * velocity, and Stop.

    All previews together may take PREVIEW_BUDGET (3 %) of the steps' time, the linear
    ones LINEAR_SHARE of that (1 %). Every step but the last gets the linear preview while
    the linear previews so far are within theirs: on a GPU always (the map is ~0.01 % of a
    step, its picture a few ms of CPU beside it); on a tiny CPU model, where it costs a
    sixth of a step and slows the steps around it about as much again, a few steps show
    one. A full VAE decode replaces it at least `decode_every` steps after the last one,
    at the first step where all previews so far plus its cost, estimated before paying it
    (DecodeCost), still fit PREVIEW_BUDGET of the steps' time. On an H200 a 1024x1024
    decode is ~8 % of a bf16 step, so one every 4 steps fits; fp8 steps are about half as
    long, and decodes come every 5-6 steps rather than never (a fixed "every k steps if it
    fits k steps' budget" rule gave those none); on a tiny CPU model a decode costs
    several steps and none fits. The last step needs no decode here: its x0 is the final
    latents, so the backend shows the final image (decoded once, by `denoise`) as the last
    preview.
    """

    TENSORS = private.STEP_TENSORS
    PREVIEW_BUDGET = 0.03  # all previews, of the steps' time
    LINEAR_SHARE = 1 / 3  # what of it the linear previews may take

    def __init__(
        self, emit: Callable[[Any], None], cancel: threading.Event, total: int, decode_every: int,
        done: tuple[Image.Image, ...], cost: DecodeCost | None = None, seed: int | None = None,
    ):
        self.emit, self.cancel, self.total, self.seed = emit, cancel, total, seed
        self.decode_every, self.done = decode_every, done
        self.cost = cost or DecodeCost()  # uncalibrated: no full decode before the end
        self.started = time.perf_counter()  # reset when the pipeline is called (denoise)
        self.first_step: float | None = None  # when step 1 ended: later steps are timed from there
        self.preview_seconds = 0.0  # time spent here since then, not in the transformer
        self.spent = 0.0  # time spent here in all
        self.linear_spent = 0.0  # of it, on linear previews
        self.latent_ids: torch.Tensor | None = None  # the output tokens' ids, for the final decode
        self.last_full = 0  # the step of the last full decode (0: none yet)

    def __call__(self, pipe: Any, i: int, t: Any, tensors: dict[str, torch.Tensor]) -> dict:
        if self.cancel.is_set():
            private.interrupt(pipe)  # the remaining steps are skipped
            return {}
        self.latent_ids = tensors["latent_ids"]
        step = i + 1
        if step == self.total:
            return {}
        entered = time.perf_counter()
        budget = self.PREVIEW_BUDGET * self._step_seconds(entered, step)  # seconds per step
        latents, velocity, ids = tensors["latents"], tensors["noise_pred"], tensors["latent_ids"]
        tokens = latents.shape[0] * latents.shape[1]
        due = self.decode_every and step - self.last_full >= self.decode_every
        # Known before paying it: the first full decode of an image is within budget too.
        full = due and self.spent + self.cost.seconds(tokens) <= budget * step
        if not full and self.linear_spent > budget * self.LINEAR_SHARE * step:
            return {}  # the linear previews so far used their share: this step shows none
        sigma_next = private.next_sigma(pipe, i).to(latents.device, latents.dtype)
        x0 = latents - sigma_next * velocity.to(latents.dtype)
        if full:
            image = decode_full(pipe, x0, ids)
            self.cost.observe(tokens, time.perf_counter() - entered)
            self.last_full = step
        else:
            image = decode_linear(pipe, x0, ids)
        self.emit(Preview(images=(*self.done, image), step=step, total=self.total, seed=self.seed))
        seconds = time.perf_counter() - entered
        self.spent += seconds
        if not full:
            self.linear_spent += seconds
        if self.first_step is None:
            self.first_step = entered + seconds
        else:
            self.preview_seconds += seconds
        return {}

    def _step_seconds(self, now: float, step: int) -> float:
        """The mean time of a step so far: from the call's start at step 1 (that includes
        the pipeline's preparation), then between callbacks, less the previews' time."""
        if self.first_step is None:
            return now - self.started
        return (now - self.first_step - self.preview_seconds) / (step - 1)


class DecodeCost:
    """What a full VAE decode (to a PIL image) costs on one pipeline, known before paying it.

    Calibrated once per loaded pipeline, at its first run (not at load: on ZeroGPU the
    GPU exists only inside a run's slot): a decode of CALIBRATION_SIDE**2 latent tokens
    (256x256 px), timed at its second try, gives seconds per token, scaled by the image's
    tokens. Small decodes cost more per token (fixed overheads), so smaller images count
    as the calibration's size and larger ones err on the dear side. Once an image size has
    been decoded, its measured time is used.
    """

    CALIBRATION_SIDE = 16

    def __init__(self) -> None:
        self.per_token: float | None = None
        self.measured: dict[int, float] = {}  # tokens -> seconds of the last full decode

    def seconds(self, tokens: int) -> float:
        """The estimate for a decode of `tokens` packed tokens (infinite before calibration)."""
        if tokens in self.measured:
            return self.measured[tokens]
        if self.per_token is None:
            return math.inf
        return self.per_token * max(tokens, self.CALIBRATION_SIDE**2)

    def observe(self, tokens: int, seconds: float) -> None:
        self.measured[tokens] = seconds

    @torch.no_grad()
    def calibrate(self, pipe: Any) -> None:
        """Time a decode of a small random latent (once; the first try warms up)."""
        if self.per_token is not None:
            return
        side = self.CALIBRATION_SIDE
        channels = pipe.vae.config.latent_channels
        lat = torch.randn(1, channels, 2 * side, 2 * side, generator=torch.Generator().manual_seed(0))
        lat = lat.to(private.vae_device(pipe), pipe.vae.dtype)
        times = []
        for _ in range(2):
            started = time.perf_counter()
            decode_vae(pipe, lat)
            times.append(time.perf_counter() - started)
        self.per_token = min(times) / (side * side)


def denoise(pipe: Any, callback: StepPreviews, **call: Any) -> Image.Image | None:
    """One pipeline call with the step callback; None when Stop interrupted it.

    The pipeline is asked for its latents and they are decoded here, exactly as it would
    decode them, but only when the call was not interrupted: Stop pays for no half-done image."""
    callback.cost.calibrate(pipe)
    callback.started = time.perf_counter()
    with step_cache_context(pipe):  # "fastest": an empty step cache for each image
        output = pipe(
            callback_on_step_end=callback, callback_on_step_end_tensor_inputs=list(StepPreviews.TENSORS),
            output_type="latent", **call,
        )
    if callback.cancel.is_set():
        return None
    if callback.latent_ids is None:
        raise RuntimeError("the pipeline ran no step")
    if not bool(torch.isfinite(output.images).all()):
        # Decoded, NaN would become black pixels without a word (diffusers only warns), and
        # a black image would land in History as if the edit had made it.
        raise StudioError(NOT_FINITE)
    image = decode_full(pipe, output.images, callback.latent_ids)
    pipe.maybe_free_model_hooks()  # offloading: the VAE back off the GPU, as after the pipeline's own decode
    return image


@torch.no_grad()
def decode_full(pipe: Any, latents: torch.Tensor, ids: torch.Tensor) -> Image.Image:
    """Exactly the pipeline's own final decode (so the last preview is the final image)."""
    lat = private.unpack_latents(pipe, latents, ids)
    mean, std = private.latent_statistics(pipe, lat)
    lat = private.unpatchify_latents(pipe, lat * std + mean)
    return decode_vae(pipe, lat.to(private.vae_device(pipe)))


def decode_vae(pipe: Any, lat: torch.Tensor) -> Image.Image:
    """The VAE's latents (B, 32, h, w) on its device -> the first image, as the pipeline does."""
    decoded = pipe.vae.decode(lat, return_dict=False)[0]
    return pipe.image_processor.postprocess(decoded, output_type="pil")[0]


@torch.no_grad()
def decode_linear(pipe: Any, latents: torch.Tensor, ids: torch.Tensor) -> Image.Image:
    """A nearly free approximation: a 32x3 linear map of the latents (1/8 resolution),
    shown at the output size like every other preview."""
    lat = private.unpatchify_latents(pipe, private.unpack_latents(pipe, latents, ids))[0].float()
    factors = torch.tensor(LATENT_RGB_FACTORS, device=lat.device)
    bias = torch.tensor(LATENT_RGB_BIAS, device=lat.device)
    rgb = torch.einsum("chw,cr->hwr", lat, factors) + bias
    pixels = ((rgb + 1) / 2).clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
    small = Image.fromarray(pixels)
    return small.resize((small.width * 8, small.height * 8), Image.Resampling.BILINEAR)
