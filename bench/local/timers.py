"""Timers around the backend's and the bare pipeline's parts, in this process only ((c) of the CPU run)."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from diffusers import Flux2Pipeline

import backend.local.backend as lb
import backend.local.previews as pv


class Timer:
    """Wraps a callable and records (seconds, label) per call; `label()` may read state."""

    def __init__(self, fn, label=lambda *a, **k: None):
        self.fn, self.label, self.calls = fn, label, []

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.calls.append((time.perf_counter() - t0, self.label(*args, **kwargs)))

    def total(self) -> float:
        return sum(s for s, _ in self.calls)


@contextmanager
def instrumented(*pipes: Flux2Pipeline):
    """Timers around the step callback, the two preview decoders, the transformer, the VAE
    decode, the reference read and the PNG encode, in this process only; restored after."""
    state = threading.local()
    originals = {
        "__call__": pv.StepPreviews.__call__, "decode_full": pv.decode_full, "decode_linear": pv.decode_linear,
        "read_source": lb.read_source, "open_reference": lb.open_reference, "_encode": lb.encode_image,
    }

    def mark(kind):
        def wrapped(*args, **kwargs):
            state.kind = kind
            return originals[f"decode_{kind}"](*args, **kwargs)
        return wrapped

    callback = Timer(
        originals["__call__"], label=lambda self, pipe, i, t, tensors: (i + 1, getattr(state, "kind", None))
    )

    def call(self, pipe, i, t, tensors):
        state.kind, state.in_callback = None, True
        try:
            return callback(self, pipe, i, t, tensors)
        finally:
            state.in_callback = False

    rec = {
        "callback": callback,
        "read_ref": Timer(lambda *a, **k: originals["read_source"](*a, **k)),
        "open_ref": Timer(lambda *a, **k: originals["open_reference"](*a, **k)),
        "encode_png": Timer(lambda *a, **k: originals["_encode"](*a, **k)),
        "transformer": [],
        "vae_decode_outside_callback": [],
    }
    pv.StepPreviews.__call__ = call
    pv.decode_full, pv.decode_linear = mark("full"), mark("linear")
    lb.read_source, lb.open_reference, lb.encode_image = rec["read_ref"], rec["open_ref"], rec["encode_png"]
    hooks, vaes = [], []
    for pipe in pipes:
        starts: list[float] = []
        hooks.append(pipe.transformer.register_forward_pre_hook(lambda *a, s=starts: s.append(time.perf_counter())))
        hooks.append(pipe.transformer.register_forward_hook(
            lambda *a, s=starts: rec["transformer"].append(time.perf_counter() - s.pop())))
        vae = pipe.vae
        if id(vae) not in {id(v) for v, _ in vaes}:
            vaes.append((vae, vae.decode))
            inner = vae.decode

            def decode(*args, _inner=inner, **kwargs):
                t0 = time.perf_counter()
                try:
                    return _inner(*args, **kwargs)
                finally:
                    if not getattr(state, "in_callback", False):
                        rec["vae_decode_outside_callback"].append(time.perf_counter() - t0)

            vae.decode = decode
    try:
        yield rec
    finally:
        pv.StepPreviews.__call__ = originals["__call__"]
        pv.decode_full, pv.decode_linear = originals["decode_full"], originals["decode_linear"]
        lb.read_source, lb.open_reference, lb.encode_image = (
            originals["read_source"], originals["open_reference"], originals["_encode"])
        for hook in hooks:
            hook.remove()
        for vae, _ in vaes:
            del vae.decode  # the instance attribute; the class method shows through again


def reset(rec: dict) -> None:
    for key in ("callback", "read_ref", "open_ref", "encode_png"):
        rec[key].calls.clear()
    rec["transformer"].clear()
    rec["vae_decode_outside_callback"].clear()
