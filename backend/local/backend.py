"""The local backend: FLUX.2 [dev] on this machine's GPU through diffusers' Flux2Pipeline.

- The operator names the models this server offers (`LocalSettings.models`); a run
  names one of them in its options. A run always runs on its own model: the run that
  holds the GPU loads it if another is loaded (freeing that one first), so nothing a
  visitor picks changes another visitor's run.
- The pipeline is kept loaded between runs. LoRAs are loaded once as named adapters
  (bounded cache, adapters.py); a run only sets the active adapters and their scales.
- Prompt embeddings are cached by model and prompt text: a rerun that changes only
  the seed, scales, guidance or steps encodes nothing.
- Every step yields a preview of the model's estimate of the final image (previews.py).
- Stop (closing the run) interrupts the pipeline after its current step; the half-done
  latents are never decoded.
- One run uses the GPU at a time, first come first served (gpu_line.py).

torch and diffusers are imported only when this module is (never by the hosted app).
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import random
import threading
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from ..base import Backend
from ..bridge import Deadline, Latest, bridge
from ..errors import InvalidInput, StudioError
from ..events import Event, Preview, Progress, Result
from ..images import check_reference, decoding, open_reference, read_source
from ..lora_preflight import LoraInspector
from ..request import MAX_SEED, PRESET_SIZES, EditRequest
from ..settings import canonical_model
from . import diffusers_private as private
from .adapters import Adapters
from .config import LocalSettings
from .gpu_line import GpuLine
from .hotswap import HotswapAdapters
from .job import Done, Job, reporter
from .lora_sources import LoraFetcher
from .options import LocalOptions
from .pipeline import PromptCache, compiles, encode_image, encode_prompt, load_pipeline, prepare_pipeline
from .previews import DecodeCost, StepPreviews, denoise
from .speed import speed_support
from .zerogpu import ENCODE_SECONDS, SECONDS_PER_STEP_AT_REFERENCE, GpuSlot, edit_seconds

LOCAL_MAX_REFERENCES = 6
WORKER_JOIN_SECONDS = 120  # how long Stop or the deadline waits for the current step to end
log = logging.getLogger(__name__)
Emit = Callable[[Any], None]


@dataclass
class _Loaded:
    """The pipeline on the GPU now, and what belongs to it."""

    model: str
    memory: str
    speed: str
    pipe: Any
    adapters: Adapters
    decode_cost: DecodeCost


class LocalBackend(Backend[LocalOptions]):
    name = "local"
    options_model = LocalOptions
    max_references = LOCAL_MAX_REFERENCES

    def __init__(
        self, settings: LocalSettings | None = None, fetcher: LoraFetcher | None = None,
        pipeline: Any = None, gpu_slot: GpuSlot | None = None,
    ):
        """`pipeline`: an already built pipeline to use as the default model instead of
        loading it (benchmarks with random weights, or embedding the backend in another
        program). `gpu_slot`: on a ZeroGPU Space (zerogpu.py), the GPU work runs in slots
        asked for per run: the edit with a duration from its steps, size and references,
        the instruction's encoding in a short one of its own."""
        self.settings = settings or LocalSettings()
        self.fetcher = fetcher or LoraFetcher(lora_dir=self.settings.lora_dir)
        self.lora_inspector = LoraInspector(lora_dir=self.settings.lora_dir)  # the page's LoRA check and library
        self.lora_max_rank = self.settings.lora_max_rank
        self._line = GpuLine()
        self._loaded: _Loaded | None = None
        self._embeddings = PromptCache(self.settings.max_prompts)
        # Counters the tests read: loads and encodes are what a rerun must not repeat.
        self.pipeline_loads = 0
        self.prompt_encodes = 0
        self._earlier_lora_loads = 0  # into pipelines no longer loaded
        self.speed_support = speed_support(self.device)  # which presets run here, and why not
        # ZeroGPU (zerogpu.start_on_zerogpu): one step measured on the card, and the plan chosen.
        self.step_seconds, self.plan_line = SECONDS_PER_STEP_AT_REFERENCE, ""
        self._straggler: threading.Event | None = None  # set by a worker that outlived its run's Stop
        if pipeline is not None:
            s = self.settings
            self._use(s.model, s.memory, s.speed, self._prepare(pipeline, s.speed))
        self._edit_on_gpu: Callable[[Job], Generator[Any, None, None]] = self._edit
        self._encode_on_gpu: Callable[[str, str, str, str], torch.Tensor] | None = None
        if gpu_slot is not None:
            self._edit_on_gpu = gpu_slot.wrap(self._edit, self._edit_seconds)
            self._encode_on_gpu = gpu_slot.wrap(self._encode_prompt, ENCODE_SECONDS)

    @property
    def device(self) -> torch.device:
        if self.settings.device:
            return torch.device(self.settings.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    @property
    def pipe(self) -> Any:
        """The pipeline loaded now (None before the first run)."""
        return self._loaded.pipe if self._loaded else None

    @property
    def lora_loads(self) -> int:
        return self._earlier_lora_loads + (self._loaded.adapters.loads if self._loaded else 0)

    # -- options ----------------------------------------------------------------------

    def options(self, values: Mapping[str, Any]) -> LocalOptions:
        """The run's options: the model must be one this server offers (empty: the
        default); memory and preview cadence default to the operator's settings."""
        values = dict(values)
        values["model"] = self._offered(values.get("model"))
        if values.get("memory") in (None, ""):
            values["memory"] = self.settings.memory
        if values.get("preview_decode_every") is None:
            values["preview_decode_every"] = self.settings.decode_every
        if values.get("speed") in (None, ""):
            values["speed"] = self.settings.speed
        options: LocalOptions = LocalOptions.from_values(values)  # type: ignore[assignment]
        self._check_speed(options.speed)
        return options

    def _check_speed(self, speed: str) -> None:
        """InvalidInput when this server cannot run the preset, saying why."""
        refusal = self.speed_support.refusal(speed)
        if refusal:
            raise InvalidInput.one("speed", "Speed", refusal)

    def source(self, options: LocalOptions) -> str:
        return options.model

    def _offered(self, model: Any) -> str:
        """`model` in its canonical spelling, if this server offers it (None or empty:
        the default); else InvalidInput naming the models it offers."""
        if model is None or not str(model).strip():
            return self.settings.model
        try:
            name = canonical_model(str(model))
        except (OSError, ValueError, RuntimeError):  # a NUL byte, an unknown ~user
            name = ""
        if name not in self.settings.models:
            offered = ", ".join(self.settings.models)
            raise InvalidInput.one("model", "Model", f"this server offers {offered}; not {str(model).strip()[:200]!r}")
        return name

    # -- the run ----------------------------------------------------------------------

    def run(
        self, request: EditRequest, options: LocalOptions, *, key: str | None = None,
    ) -> Generator[Event, None, None]:
        del key  # local runs need no credential
        model = self._offered(options.model)
        self._check_speed(options.speed)
        if model != options.model:
            options = options.model_copy(update={"model": model})
        job = self._job(request, options)
        yield from self._line.wait()
        done, edit = None, None
        try:
            job = dataclasses.replace(job, references=[_decoded(u, i) for i, u in enumerate(request.image_urls, 1)])
            embeds = yield from self._encoded_in_slot(options, request.prompt)
            edit = self._edit_on_gpu(dataclasses.replace(job, embeds=embeds))
            for item in edit:
                if isinstance(item, Done):
                    done = item
                else:
                    yield item
        finally:
            if edit is not None:
                edit.close()  # Stop: the pipeline is interrupted and waited for before the GPU is free
            straggler, self._straggler = self._straggler, None
            self._line.release_after(straggler)  # a worker still in its step keeps the GPU until it ends
        if done is None:
            raise StudioError("The local run ended without images.")
        yield Result(
            images=tuple(encode_image(img, request.output_format) for img in done.images),
            seed=job.seeds[0], seeds=tuple(job.seeds), prompt=request.prompt, notes=tuple(done.notes),
        )

    def _job(self, request: EditRequest, options: LocalOptions) -> Job:
        """Check the references' headers, work out the size and seeds (decoded after the GPU line)."""
        if len(request.image_urls) > self.max_references:
            raise InvalidInput.one(
                "image_urls", "Reference images",
                f"the local backend takes at most {self.max_references} images (got {len(request.image_urls)})",
            )
        for i, source in enumerate(request.image_urls, start=1):
            check_reference(read_source(source, f"image {i}"), f"image {i}").close()
        width, height = self._output_size(request)
        first_seed = request.seed if request.seed is not None else random.randrange(MAX_SEED + 1)
        seeds = [(first_seed + k) % (MAX_SEED + 1) for k in range(request.num_images)]
        return Job(request, options, [], width, height, seeds)

    def _encoded_in_slot(self, options: LocalOptions, prompt: str) -> Generator[Event, None, torch.Tensor | None]:
        """ZeroGPU: the instruction is encoded in a slot of its own (only when it is not
        cached), so the edit's slot never waits on the text encoder. Elsewhere: None."""
        if self._encode_on_gpu is None:
            return None
        embeds = self._embeddings.get(options.model, prompt)
        if embeds is None:
            yield Progress("Encoding the instruction…")
            embeds = self._encode_on_gpu(options.model, options.memory, options.speed, prompt)
            self._embeddings.put(options.model, prompt, embeds)
        return embeds

    def _edit(self, job: Job) -> Generator[Event | Done, None, None]:
        """The GPU part of a run: its events, then a Done with the images.

        The pipeline runs in a worker thread (backend.bridge) so that this generator
        reports the latest status every half second; closing it (Stop) or the deadline
        (counted from the end of loading) interrupts the pipeline after the current step
        and waits at most WORKER_JOIN_SECONDS for the worker."""
        cancel, finished = threading.Event(), threading.Event()
        deadline = Deadline(self.settings.run_timeout, started=False)
        latest: Latest[Event] = Latest(Progress("Starting…"))

        def work(emit: Emit) -> Done | None:
            try:
                return self._work(job, reporter(emit, latest), cancel, deadline)
            except StudioError:
                raise
            except Exception as error:  # a model error must end the run, not the server
                raise StudioError(f"The local pipeline failed: {type(error).__name__}: {error}"[:400]) from None
            finally:
                finished.set()

        try:
            done = yield from bridge(
                work, heartbeat=latest, deadline=deadline, stop=cancel.set,
                join_seconds=WORKER_JOIN_SECONDS, name="flux2-local",
            )
        finally:
            if not finished.is_set():  # a step that never ends: say so rather than hang the run too
                log.warning("the local pipeline did not stop within %s s of being interrupted", WORKER_JOIN_SECONDS)
                self._straggler = finished
        if done is not None:
            yield done

    def _edit_seconds(self, job: Job) -> int:
        """The GPU seconds a ZeroGPU slot asks for this edit (spaces calls it with _edit's arguments)."""
        width, height = job.width, job.height
        if width is None or height is None:  # "match image 1": about a megapixel
            w, h = job.references[0].size
            scale = min(1.0, (1024 * 1024 / (w * h)) ** 0.5)
            width, height = int(w * scale), int(h * scale)
        return edit_seconds(
            job.request.num_inference_steps, len(job.seeds), width, height, [r.size for r in job.references],
            self.step_seconds,
        )

    def _work(self, job: Job, emit: Emit, cancel: threading.Event, deadline: Deadline) -> Done | None:
        """In the worker thread, holding the GPU: load this run's model if another is
        loaded, encode, set the LoRAs, then denoise one image per seed."""
        request, options = job.request, job.options
        loaded = self._pipeline(options.model, options.memory, options.speed, emit)
        if job.embeds is None:
            embeds = self._prompt_embeds(loaded, request.prompt, emit)
        else:  # encoded in a slot of its own (ZeroGPU), handed over on the CPU
            embeds = job.embeds.to(private.execution_device(loaded.pipe))
        notes = loaded.adapters.activate(request, emit)
        deadline.start()  # loaded: the deadline counts from here
        images: list[Image.Image] = []
        for index, seed in enumerate(job.seeds):
            if cancel.is_set():
                return None
            emit(Progress(f"Image {index + 1} of {len(job.seeds)}: seed {seed}"))
            image = self._denoise(loaded, job, embeds, seed, tuple(images), emit, cancel)
            if image is None:
                return None  # interrupted: the half-done latents were not decoded
            images.append(image)
            # The last step's preview is the final image itself (x0 = the final latents).
            steps = request.num_inference_steps
            emit(Preview(images=tuple(images), step=steps, total=steps, seed=job.seeds[0]))
        return Done(images, notes)

    def _denoise(
        self, loaded: _Loaded, job: Job, embeds: torch.Tensor, seed: int,
        done: tuple[Image.Image, ...], emit: Emit, cancel: threading.Event,
    ) -> Image.Image | None:
        """One image (None when Stop interrupted it: then nothing is decoded)."""
        steps = job.request.num_inference_steps
        every = job.options.preview_decode_every
        # The previews carry the run's seed: a Stop leaves it on the page, to finish that image later.
        callback = StepPreviews(emit, cancel, steps, every, done=done, cost=loaded.decode_cost, seed=job.seeds[0])
        return denoise(
            loaded.pipe, callback, image=job.references, prompt_embeds=embeds, height=job.height, width=job.width,
            num_inference_steps=steps, guidance_scale=job.request.guidance_scale,
            generator=torch.Generator(device="cpu").manual_seed(seed),
            max_sequence_length=self.settings.max_sequence_length,
            text_encoder_out_layers=self.settings.text_encoder_out_layers,
        )

    # -- what is loaded once ----------------------------------------------------------

    def _pipeline(self, model: str, memory: str, speed: str, emit: Emit) -> _Loaded:
        """The pipeline for `model` in `memory` mode at `speed`, loaded if another is
        loaded (the old one is freed first). Called only by the run that holds the GPU."""
        loaded = self._loaded
        if loaded is not None and (loaded.model, loaded.memory, loaded.speed) == (model, memory, speed):
            return loaded
        emit(Progress(f"Loading {model} (once)…"))
        self._unload()
        pipe = self._prepare(load_pipeline(model, memory, self.device, speed), speed)
        self.pipeline_loads += 1
        return self._use(model, memory, speed, pipe)

    def _prepare(self, pipe: Any, speed: str) -> Any:
        return prepare_pipeline(pipe, self.device, self.settings.compile_blocks, speed,
                                self.settings.step_cache_interval)

    def _use(self, model: str, memory: str, speed: str, pipe: Any) -> _Loaded:
        """Make a prepared `pipe` the loaded one, with no adapters yet: in hot-swap slots
        when its blocks are compiled (hotswap.py), else as named adapters."""
        s = self.settings
        hotswap = s.lora_hotswap if s.lora_hotswap is not None else compiles(self.device, s.compile_blocks)
        adapters = (HotswapAdapters if hotswap else Adapters)(pipe, self.fetcher, s.max_loras, s.lora_max_rank)
        self._loaded = _Loaded(model, memory, speed, pipe, adapters, DecodeCost())
        return self._loaded

    def _unload(self) -> None:
        """Free the loaded pipeline, its adapters and the prompt embeddings."""
        if self._loaded is not None:
            self._earlier_lora_loads += self._loaded.adapters.loads
        self._loaded = None
        self._embeddings.clear()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _prompt_embeds(self, loaded: _Loaded, prompt: str, emit: Emit) -> torch.Tensor:
        cached = self._embeddings.get(loaded.model, prompt)
        if cached is not None:
            return cached
        emit(Progress("Encoding the instruction…"))
        embeds = self._encode(loaded, prompt)
        self._embeddings.put(loaded.model, prompt, embeds)
        return embeds

    def _encode_prompt(self, model: str, memory: str, speed: str, prompt: str) -> torch.Tensor:
        """ZeroGPU: encode in a slot of its own; the embeddings come back on the CPU."""
        return self._encode(self._pipeline(model, memory, speed, _ignore), prompt).cpu()

    def _encode(self, loaded: _Loaded, prompt: str) -> torch.Tensor:
        embeds = encode_prompt(
            loaded.pipe, prompt, self.settings.max_sequence_length, self.settings.text_encoder_out_layers,
        )
        self.prompt_encodes += 1
        return embeds

    def preload(self) -> None:
        """Load the default model now. On ZeroGPU this must happen at start-up, outside
        any slot: `spaces` keeps the weights that were moved to "cuda" then, and hands
        them to every slot's process."""
        self._line.acquire()
        try:
            self._pipeline(self.settings.model, self.settings.memory, self.settings.speed, _ignore)
        finally:
            self._line.release()

    # -- sizes ------------------------------------------------------------------------

    @staticmethod
    def _output_size(request: EditRequest) -> tuple[int | None, int | None]:
        """(width, height) for the pipeline; None keeps its own rule (the first image's size)."""
        size = request.image_size
        if size is None:
            return None, None
        # Multiples of 16, as the model needs: the request checks custom sizes.
        return PRESET_SIZES[size] if isinstance(size, str) else (size.width, size.height)


def _decoded(source: str, index: int) -> Image.Image:
    """One reference as RGB, decoded (in a decode slot) once the run holds the GPU, not in line."""
    with decoding():
        return open_reference(read_source(source, f"image {index}"), f"image {index}").image


def _ignore(item: Any) -> None:
    """An emit that drops what it is given (loading outside a run)."""
