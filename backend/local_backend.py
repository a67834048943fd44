"""The local backend: FLUX.2 [dev] on this machine's GPU through diffusers' Flux2Pipeline.

- The pipeline is loaded once (model repo id or folder, memory mode) and kept.
- LoRAs are loaded once as named adapters (bounded cache); a run only sets the active
  adapters and their scales.
- Prompt embeddings are cached by prompt text: a rerun that changes only the seed,
  scales, guidance or steps encodes nothing.
- Every step yields a preview of the model's estimate of the final image (x0, not the
  noisy latent): a linear latent-to-RGB map every step, a full VAE decode every
  `decode_every` steps and at the last step (which then equals the final image).
- Stop sets the pipeline's interrupt flag from the step callback: it stops within one
  step and the half-done image is discarded.
- One run uses the GPU at a time.

torch and diffusers are imported only when this module is (never by the hosted app).
"""

from __future__ import annotations

import hashlib
import logging
import io
import queue
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from diffusers import Flux2Pipeline
from PIL import Image

from .base import Backend
from .errors import InvalidInput, RunTimeout, StudioError
from .events import Event, Log, Preview, Progress, Queued, Result, ResultImage
from .images import open_reference, read_source
from .lora_sources import LoraError, LoraFetcher
from .request import MAX_SEED, PRESET_SIZES, EditRequest
from .settings import MEMORY_MODES
from .zerogpu import ENCODE_SECONDS, GpuSlot, edit_seconds

DEFAULT_MODEL = "black-forest-labs/FLUX.2-dev"
MemoryMode = Literal["gpu", "model_offload", "group_offload"]
LOCAL_MAX_REFERENCES = 6
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
WORKER_JOIN_SECONDS = 120  # how long Stop or the deadline waits for the current step to end
log = logging.getLogger(__name__)

OUTPUT_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}


@dataclass(frozen=True)
class LocalSettings:
    model: str = DEFAULT_MODEL
    memory: MemoryMode = "gpu"
    device: str | None = None  # None: cuda when available, else cpu
    lora_dir: Path | None = None
    decode_every: int = 4  # full VAE decode every k steps (0: only at the last step)
    max_loras: int = 8  # adapters kept loaded
    max_prompts: int = 8  # prompt embeddings kept
    max_sequence_length: int = 512
    text_encoder_out_layers: tuple[int, ...] = (10, 20, 30)
    # Regional torch.compile of the transformer's repeated blocks on CUDA (~16 % per step
    # on an H200, ~20 s to compile at the first run); off: plain eager diffusers.
    compile_blocks: bool = True
    # The app's own deadline for the denoising (loading the model the first time does not
    # count): past it the pipeline is interrupted after its current step.
    run_timeout: float = 600.0


class LocalBackend(Backend):
    name = "local"
    max_references = LOCAL_MAX_REFERENCES

    def __init__(
        self, settings: LocalSettings | None = None, fetcher: LoraFetcher | None = None,
        pipeline: Flux2Pipeline | None = None, gpu_slot: GpuSlot | None = None,
    ):
        """`pipeline`: an already built pipeline to use instead of loading `settings.model`
        (benchmarks with random weights, or embedding the backend in another program).
        `gpu_slot`: on a ZeroGPU Space (backend/zerogpu.py), the GPU work runs in slots
        asked for per run: the edit with a duration from its steps, size and references,
        the instruction's encoding in a short one of its own."""
        self.settings = settings or LocalSettings()
        self.fetcher = fetcher or LoraFetcher(lora_dir=self.settings.lora_dir)
        self._gpu = threading.Lock()  # one run on the GPU at a time
        self._line: list[object] = []  # runs waiting for the GPU, first in line first
        self._line_changed = threading.Condition()
        self._pipe: Flux2Pipeline | None = None
        self._loaded: tuple[str, str] | None = None  # (model, memory) of _pipe
        self._wanted: tuple[str, str] = (self.settings.model, self.settings.memory)
        if pipeline is not None:
            self._pipe = prepare_pipeline(pipeline, self.device, self.settings.compile_blocks)
            self._loaded = self._wanted
        self._adapters: OrderedDict[str, str] = OrderedDict()  # LoRA path -> adapter name
        self._trigger_words: dict[str, tuple[str, ...]] = {}
        self._embeddings: OrderedDict[str, torch.Tensor] = OrderedDict()
        # Counters the tests read: loads and encodes are what a rerun must not repeat.
        self.pipeline_loads = 0
        self.lora_loads = 0
        self.prompt_encodes = 0
        self._edit_on_gpu = self._edit
        self._encode_on_gpu = None
        if gpu_slot is not None:
            self._edit_on_gpu = gpu_slot.wrap(self._edit, self._edit_seconds)
            self._encode_on_gpu = gpu_slot.wrap(self._encode_prompt, ENCODE_SECONDS)

    @property
    def device(self) -> torch.device:
        if self.settings.device:
            return torch.device(self.settings.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    # -- the run ----------------------------------------------------------------------

    def run(self, request: EditRequest, *, key: str | None = None) -> Iterator[Event]:
        del key  # local runs need no credential
        if len(request.image_urls) > self.max_references:
            raise InvalidInput.one(
                "image_urls", "Reference images",
                f"the local backend takes at most {self.max_references} images (got {len(request.image_urls)})",
            )
        references = [
            open_reference(read_source(source, f"image {i}"), f"image {i}").image
            for i, source in enumerate(request.image_urls, start=1)
        ]
        width, height = self._output_size(request)
        first_seed = request.seed if request.seed is not None else random.randrange(MAX_SEED + 1)
        seeds = [(first_seed + k) % (MAX_SEED + 1) for k in range(request.num_images)]

        yield from self._wait_for_gpu()
        images = None
        try:
            embeds = None
            if self._encode_on_gpu is not None:
                # ZeroGPU: the instruction is encoded in a slot of its own (only when it is
                # not cached), so the edit's slot never waits on the text encoder.
                embeds = self._embeddings.get(request.prompt)
                if embeds is None:
                    yield Progress("Encoding the instruction…")
                    embeds = self._encode_on_gpu(request.prompt)
                    self._remember_embeds(request.prompt, embeds)
            for item in self._edit_on_gpu(request, references, width, height, seeds, embeds):
                if isinstance(item, _Done):
                    images, lora_notes = item.images, item.notes
                else:
                    yield item
        finally:
            self._gpu.release()
            with self._line_changed:
                self._line_changed.notify_all()
        if images is None:
            raise StudioError("The local run ended without images.")
        yield Result(
            images=tuple(_encode(img, request.output_format) for img in images),
            seed=seeds[0], seeds=tuple(seeds), prompt=request.prompt, notes=tuple(lora_notes),
        )

    def _edit(self, request, references, width, height, seeds, embeds) -> Iterator[Event | _Done]:
        """The GPU part of a run: its events, then a _Done with the images.

        The pipeline runs in a worker thread so that this generator can report the step
        in progress every half second; closing it (Stop) interrupts the pipeline after
        the current step and waits for the worker."""
        inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        cancel = threading.Event()
        worker = threading.Thread(
            target=self._work, name="flux2-local",
            args=(request, references, width, height, seeds, embeds, inbox, cancel), daemon=True,
        )
        worker.start()
        deadline = None
        try:
            latest: Event = Progress("Starting…")
            while True:
                if deadline is not None and time.monotonic() > deadline:
                    raise RunTimeout(self.settings.run_timeout)
                try:
                    kind, value = inbox.get(timeout=0.5)
                except queue.Empty:
                    # A step is running: repeat the latest status (this yield lets a Stop in).
                    yield latest
                    continue
                if kind == "event":
                    if isinstance(value, Progress):
                        latest = value
                    elif isinstance(value, Preview):
                        latest = Progress(f"Step {value.step} of {value.total}", value.step, value.total)
                    yield value
                elif kind == "error":
                    raise value
                elif kind == "denoising":  # loaded: the deadline counts from here
                    deadline = time.monotonic() + self.settings.run_timeout
                elif kind == "done":
                    yield _Done(*value)
                    return
        finally:
            cancel.set()  # the step callback interrupts the pipeline after this step
            worker.join(timeout=WORKER_JOIN_SECONDS)
            if worker.is_alive():  # a step that never ends: say so rather than hang the run too
                log.warning("the local pipeline did not stop within %s s of being interrupted", WORKER_JOIN_SECONDS)

    def _edit_seconds(self, request, references, width, height, seeds, embeds) -> int:
        """The GPU seconds a ZeroGPU slot asks for this edit (spaces calls it with _edit's arguments)."""
        if width is None or height is None:  # "match image 1": about a megapixel
            w, h = references[0].size
            scale = min(1.0, (1024 * 1024 / (w * h)) ** 0.5)
            width, height = int(w * scale), int(h * scale)
        return edit_seconds(request.num_inference_steps, len(seeds), width, height, [r.size for r in references])

    def _wait_for_gpu(self) -> Iterator[Event]:
        """Take a ticket and wait in line for the GPU, reporting the position (FIFO)."""
        ticket = object()
        with self._line_changed:
            self._line.append(ticket)
        try:
            while True:
                with self._line_changed:
                    position = self._line.index(ticket)
                    if position == 0 and self._gpu.acquire(blocking=False):
                        self._line.remove(ticket)
                        self._line_changed.notify_all()
                        return
                    self._line_changed.wait(timeout=0.5)
                # Yielding between waits also lets a Stop in.
                yield Queued(position=position if position else 0)
        except BaseException:
            with self._line_changed:
                if ticket in self._line:
                    self._line.remove(ticket)
                self._line_changed.notify_all()
            raise

    def _work(self, request, references, width, height, seeds, embeds, inbox, cancel) -> None:
        try:
            pipe = self._pipeline(inbox)
            if embeds is None:
                embeds = self._prompt_embeds(pipe, request.prompt, inbox)
            else:  # encoded in a slot of its own (ZeroGPU), handed over on the CPU
                embeds = embeds.to(pipe._execution_device)
            lora_notes = self._activate_loras(pipe, request, inbox)
            inbox.put(("denoising", None))
            images: list[Image.Image] = []
            for index, seed in enumerate(seeds):
                if cancel.is_set():
                    return
                inbox.put(("event", Progress(f"Image {index + 1} of {len(seeds)}: seed {seed}")))
                callback = _StepPreviews(
                    inbox, cancel, request.num_inference_steps, self.settings.decode_every,
                    done=tuple(images),
                )
                output = pipe(
                    image=references, prompt_embeds=embeds, height=height, width=width,
                    num_inference_steps=request.num_inference_steps, guidance_scale=request.guidance_scale,
                    generator=torch.Generator(device="cpu").manual_seed(seed),
                    max_sequence_length=self.settings.max_sequence_length,
                    text_encoder_out_layers=self.settings.text_encoder_out_layers,
                    callback_on_step_end=callback,
                    callback_on_step_end_tensor_inputs=list(_StepPreviews.TENSORS),
                    output_type="pil",
                )
                if cancel.is_set():
                    return  # interrupted: the pipeline decoded a half-done image; drop it
                images.append(output.images[0])
                # The last step's preview is the final image itself (x0 = the final latents).
                steps = request.num_inference_steps
                inbox.put(("event", Preview(images=tuple(images), step=steps, total=steps)))
            inbox.put(("done", (images, lora_notes)))
        except StudioError as error:
            inbox.put(("error", error))
        except Exception as error:  # a model error must end the run, not the server
            inbox.put(("error", StudioError(f"The local pipeline failed: {type(error).__name__}: {error}"[:400])))

    # -- what is loaded once ----------------------------------------------------------

    def use_model(self, model: str, memory: str) -> None:
        """Pick the model and memory mode for the next runs (loaded at the next run)."""
        model = model.strip() or DEFAULT_MODEL
        if memory not in MEMORY_MODES:
            raise InvalidInput.one("memory", "Memory mode", f"must be one of {', '.join(MEMORY_MODES)}")
        self._wanted = (model, memory)

    def _pipeline(self, inbox) -> Flux2Pipeline:
        wanted = self._wanted
        if self._pipe is None or self._loaded != wanted:
            inbox.put(("event", Progress(f"Loading {wanted[0]} (once)…")))
            self._pipe = None  # free the old model before loading the new one
            self._adapters.clear()
            self._trigger_words.clear()
            self._embeddings.clear()
            self._pipe = prepare_pipeline(
                load_pipeline(wanted[0], wanted[1], self.device), self.device, self.settings.compile_blocks,
            )
            self._loaded = wanted
            self.pipeline_loads += 1
        return self._pipe

    def _prompt_embeds(self, pipe: Flux2Pipeline, prompt: str, inbox) -> torch.Tensor:
        cached = self._embeddings.get(prompt)
        if cached is not None:
            self._embeddings.move_to_end(prompt)
            return cached
        inbox.put(("event", Progress("Encoding the instruction…")))
        embeds = self._encode(pipe, prompt)
        self._remember_embeds(prompt, embeds)
        return embeds

    def _encode_prompt(self, prompt: str) -> torch.Tensor:
        """ZeroGPU: encode in a slot of its own; the embeddings come back on the CPU."""
        return self._encode(self._pipeline(queue.Queue()), prompt).cpu()

    def _encode(self, pipe: Flux2Pipeline, prompt: str) -> torch.Tensor:
        embeds, _ = pipe.encode_prompt(
            prompt=prompt, device=pipe._execution_device,
            max_sequence_length=self.settings.max_sequence_length,
            text_encoder_out_layers=self.settings.text_encoder_out_layers,
        )
        self.prompt_encodes += 1
        return embeds

    def _remember_embeds(self, prompt: str, embeds: torch.Tensor) -> None:
        self._embeddings[prompt] = embeds
        while len(self._embeddings) > self.settings.max_prompts:
            self._embeddings.popitem(last=False)

    def preload(self) -> None:
        """Load the pipeline now. On ZeroGPU this must happen at start-up, outside any
        slot: `spaces` keeps the weights that were moved to "cuda" then, and hands them
        to every slot's process."""
        self._pipeline(queue.Queue())

    def _activate_loras(self, pipe: Flux2Pipeline, request: EditRequest, inbox) -> list[str]:
        """Load what is new (once), then set the adapters and scales for this run."""
        notes: list[str] = []
        names, weights = [], []
        for index, lora in enumerate(request.loras, start=1):
            name = self._adapters.get(lora.path)
            if name is None:
                inbox.put(("event", Progress(f"Loading LoRA {index} (once)…")))
                name = self._load_lora(pipe, index, lora.path)
            self._adapters.move_to_end(lora.path)
            triggers = self._trigger_words.get(lora.path)
            if triggers:
                notes.append(f"LoRA {index} trigger words: {', '.join(triggers)}")
                inbox.put(("event", Log(notes[-1])))
            names.append(name)
            weights.append(lora.scale)
        self._evict_loras(keep=set(names))
        if names:
            pipe.enable_lora()
            pipe.set_adapters(names, adapter_weights=weights)
        elif self._adapters:
            pipe.disable_lora()
        return notes

    def _load_lora(self, pipe: Flux2Pipeline, index: int, path: str) -> str:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        lora = self.fetcher.fetch(index, path)
        try:
            state = load_file(str(lora.file))
        except (SafetensorError, OSError, ValueError) as error:
            raise LoraError(index, path, f"is not a readable safetensors file ({error})"[:300]) from None
        if not any(_is_lora_key(k) for k in state):
            raise LoraError(index, path, "is a safetensors file but holds no LoRA weights")
        name = "lora_" + hashlib.sha256(path.encode()).hexdigest()[:12]
        try:
            pipe.load_lora_weights(state, adapter_name=name)
        except Exception as error:
            self._forget_adapter(pipe, name)
            raise LoraError(index, path, f"does not fit this model ({type(error).__name__}: {error})"[:300]) from None
        self._adapters[path] = name
        self._trigger_words[path] = lora.trigger_words
        self.lora_loads += 1
        return name

    def _evict_loras(self, keep: set[str]) -> None:
        while len(self._adapters) > self.settings.max_loras:
            path, name = next((p, n) for p, n in self._adapters.items() if n not in keep)
            del self._adapters[path]
            self._trigger_words.pop(path, None)
            self._forget_adapter(self._pipe, name)

    @staticmethod
    def _forget_adapter(pipe: Flux2Pipeline | None, name: str) -> None:
        if pipe is None:
            return
        loaded = {n for names in pipe.get_list_adapters().values() for n in names}
        if name in loaded:
            pipe.delete_adapters(name)

    # -- sizes ------------------------------------------------------------------------

    @staticmethod
    def _output_size(request: EditRequest) -> tuple[int | None, int | None]:
        """(width, height) for the pipeline; None keeps its own rule (the first image's size)."""
        size = request.image_size
        if size is None:
            return None, None
        # Multiples of 16, as the model needs: the request checks custom sizes.
        return PRESET_SIZES[size] if isinstance(size, str) else (size.width, size.height)


def load_pipeline(model: str, memory: str, device: torch.device) -> Flux2Pipeline:
    """Load a Flux2Pipeline from a repo id or folder and place it by memory mode."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        pipe = Flux2Pipeline.from_pretrained(model, dtype=dtype)
    except Exception as error:
        raise StudioError(
            f"Could not load the model {model!r}: {type(error).__name__}: {error}. For the gated "
            "black-forest-labs repos, accept the licence on Hugging Face and set HF_TOKEN."[:500]
        ) from None
    if device.type != "cuda" or memory == "gpu":
        pipe.to(device)
    elif memory == "model_offload":
        pipe.enable_model_cpu_offload(device=device)
    elif memory == "group_offload":
        pipe.enable_group_offload(onload_device=device, offload_type="leaf_level", use_stream=True)
    else:
        raise StudioError(f"Unknown memory mode {memory!r}: use one of {', '.join(MEMORY_MODES)}")
    return pipe


def prepare_pipeline(pipe: Flux2Pipeline, device: torch.device, compile_blocks: bool) -> Flux2Pipeline:
    """What the backend needs of any pipeline it runs: previews, quiet progress, speed."""
    pipe.set_progress_bar_config(disable=True)  # progress goes to the page, not the server log
    # Let the step callback see the velocity and the token ids (read-only) for x0 previews.
    pipe._callback_tensor_inputs = list(dict.fromkeys([*pipe._callback_tensor_inputs, *_StepPreviews.TENSORS]))
    if compile_blocks and device.type == "cuda":
        pipe.transformer.compile_repeated_blocks(fullgraph=True)
    return pipe


@dataclass(frozen=True)
class _Done:
    """The last item of `_edit`: the finished images and the LoRA notes."""

    images: list
    notes: list


class _StepPreviews:
    """The step callback: previews of x0 = latents - sigma_next * velocity, and Stop.

    Every step but the last gets the linear preview. A full VAE decode replaces it every
    `decode_every` steps while it stays cheap next to a step (at most PREVIEW_BUDGET of
    the steps it covers: on a real GPU a decode is ~8 % of one step, on a tiny CPU
    model it is several steps, and previews must not slow the run down). The last
    step needs no decode here: its x0 is the final latents, so the backend shows the
    pipeline's own final image as the last preview.
    """

    TENSORS = ("latents", "noise_pred", "latent_ids")
    PREVIEW_BUDGET = 0.03

    def __init__(self, inbox, cancel, total, decode_every, done):
        self.inbox, self.cancel, self.total = inbox, cancel, total
        self.decode_every, self.done = decode_every, done
        self.started = time.perf_counter()
        self.preview_seconds = 0.0  # time spent here, not in the transformer
        self.full_cost: float | None = None  # seconds of the last full decode

    def __call__(self, pipe: Flux2Pipeline, i: int, t: Any, tensors: dict[str, torch.Tensor]) -> dict:
        if self.cancel.is_set():
            pipe._interrupt = True  # the remaining steps are skipped
            return {}
        step = i + 1
        if step == self.total:
            return {}
        entered = time.perf_counter()
        step_seconds = (entered - self.started - self.preview_seconds) / step
        latents, velocity, ids = tensors["latents"], tensors["noise_pred"], tensors["latent_ids"]
        sigma_next = pipe.scheduler.sigmas[i + 1].to(latents.device, latents.dtype)
        x0 = latents - sigma_next * velocity.to(latents.dtype)
        affordable = self.full_cost is None or self.full_cost <= self.PREVIEW_BUDGET * self.decode_every * step_seconds
        if self.decode_every and step % self.decode_every == 0 and affordable:
            image = decode_full(pipe, x0, ids)
            self.full_cost = time.perf_counter() - entered
        else:
            image = decode_linear(pipe, x0, ids)
        self.inbox.put(("event", Preview(images=(*self.done, image), step=step, total=self.total)))
        self.preview_seconds += time.perf_counter() - entered
        return {}


def decode_full(pipe: Flux2Pipeline, latents: torch.Tensor, ids: torch.Tensor) -> Image.Image:
    """Exactly the pipeline's own final decode (so the last preview is the final image)."""
    lat = pipe._unpack_latents_with_ids(latents, ids)
    mean = pipe.vae.bn.running_mean.view(1, -1, 1, 1).to(lat.device, lat.dtype)
    std = torch.sqrt(pipe.vae.bn.running_var.view(1, -1, 1, 1) + pipe.vae.config.batch_norm_eps).to(lat.device, lat.dtype)
    lat = pipe._unpatchify_latents(lat * std + mean)
    lat = lat.to(next(pipe.vae.parameters()).device)
    decoded = pipe.vae.decode(lat, return_dict=False)[0]
    return pipe.image_processor.postprocess(decoded, output_type="pil")[0]


def decode_linear(pipe: Flux2Pipeline, latents: torch.Tensor, ids: torch.Tensor) -> Image.Image:
    """A nearly free approximation: a 32x3 linear map of the latents (1/8 resolution),
    shown at the output size like every other preview."""
    lat = pipe._unpatchify_latents(pipe._unpack_latents_with_ids(latents, ids))[0].float()
    factors = torch.tensor(LATENT_RGB_FACTORS, device=lat.device)
    bias = torch.tensor(LATENT_RGB_BIAS, device=lat.device)
    rgb = torch.einsum("chw,cr->hwr", lat, factors) + bias
    pixels = ((rgb + 1) / 2).clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
    small = Image.fromarray(pixels)
    return small.resize((small.width * 8, small.height * 8), Image.Resampling.BILINEAR)


def _is_lora_key(key: str) -> bool:
    key = key.lower()
    return any(part in key for part in ("lora_a", "lora_b", "lora_down", "lora_up", "lokr_", ".alpha"))


def _encode(image: Image.Image, output_format: str) -> ResultImage:
    pil_format, content_type = OUTPUT_FORMATS[output_format]
    buffer = io.BytesIO()
    image.save(buffer, format=pil_format, **({"quality": 95} if pil_format != "PNG" else {}))
    return ResultImage(data=buffer.getvalue(), content_type=content_type, width=image.width, height=image.height)
