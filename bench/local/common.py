"""What bench_local.py's CPU and GPU parts share: the run's inputs, driving the backend, the bare call."""

from __future__ import annotations

import io
import resource
import statistics
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from diffusers import Flux2Pipeline
from diffusers.utils import logging as diffusers_logging
from PIL import Image

from backend.events import Preview, Progress, Result
from backend.local.backend import LocalBackend
from backend.local.pipeline import encode_image

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "make this donut realistic"
GUIDANCE = 2.5
SEED = 7
DECODE_EVERY = 4
RESULTS_DIR = ROOT / "bench" / "results"


def median(values: list[float]) -> float:
    return statistics.median(values)


def meets(op: str, limit, value) -> bool:
    if value is None:
        return False
    return {"<=": lambda: value <= limit, "<": lambda: value < limit, "==": lambda: value == limit}[op]()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def quiet() -> None:
    """Progress bars and the pipeline's warnings would drown the table."""
    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    try:
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
    except Exception:
        pass
    warnings.filterwarnings("ignore")


def drive(backend: LocalBackend, request) -> tuple[Result, dict]:
    """Iterate one backend run to its Result; wall time, previews and Progress timestamps."""
    marks: list[tuple[float, str]] = []
    seen: set[str] = set()
    previews = 0
    t0 = time.perf_counter()
    for event in backend.run(request, backend.options({})):
        now = time.perf_counter() - t0
        if isinstance(event, Preview):
            previews += 1
        elif isinstance(event, Progress) and event.step is None and event.message not in seen:
            seen.add(event.message)  # the backend repeats its latest status while a step runs
            marks.append((now, event.message))
        elif isinstance(event, Result):
            return event, {"seconds": now, "previews": previews, "marks": marks}
    raise RuntimeError("the backend ended without a Result")


def result_pixels(result: Result) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(result.images[0].data)).convert("RGB"))


def bare_call(pipe: Flux2Pipeline, ref_path: Path, steps: int, seed: int, *, embeds=None, **extra) -> Image.Image:
    """What a script using diffusers directly does: open the reference, call the pipeline.

    It runs in a fresh thread, as the backend runs its pipeline (one new worker thread per
    run): on a busy 2-core machine, the same call in the main thread was measured far more
    variable (0.24-4 s against 0.29-1.2 s for one 28-step tiny call, OpenMP teams under
    contention), which would make the baseline, not the backend, the noisy side."""
    def call() -> Image.Image:
        image = Image.open(ref_path).convert("RGB")
        kwargs = dict(
            image=[image], num_inference_steps=steps, guidance_scale=GUIDANCE,
            generator=torch.Generator(device="cpu").manual_seed(seed), output_type="pil", **extra,
        )
        if embeds is None:
            kwargs["prompt"] = PROMPT
        else:
            kwargs["prompt_embeds"] = embeds
        return pipe(**kwargs).images[0]

    return in_fresh_thread(call)


def save_png(image: Image.Image) -> bytes:
    """What a script does with its result: the same PNG the backend delivers (its level)."""
    return encode_image(image, "png").data


def in_fresh_thread(fn):
    """fn() in a new thread, joined; its result or its exception."""
    out: dict = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as error:  # handed to the caller
            out["error"] = error

    thread = threading.Thread(target=target, name="bench-bare")
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]



@contextmanager
def patched(owner, name: str, value):
    old = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, old)

