"""FLUX.2 LoRA Edit Studio: `python app.py` starts the web app.

Settings come from the environment (see README.md, "Settings").
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import gradio as gr

from backend.base import Backend
from backend.errors import StudioError

# Pillow's decompression-bomb limit must be set before any image is opened.
from backend.images import MAX_INPUT_BYTES
from backend.settings import Settings, SettingsError
from ui.form import PageSetup
from ui.page import CSS_PATH, HEAD, build_ui
from ui.run import Outputs

log = logging.getLogger("studio")


def create_backends(settings: Settings) -> dict[str, Backend]:
    """The backends this server offers, by name. fal-client is imported only for "fal",
    torch only for "local"."""
    backends: dict[str, Backend] = {}
    if "fal" in settings.backends:
        from backend.fal import FalBackend, FalSettings, point_fal_client_at

        if settings.fal_base_url:
            point_fal_client_at(settings.fal_base_url)
        backends["fal"] = FalBackend(
            FalSettings(endpoint=settings.fal_endpoint, transport=settings.fal_transport,  # type: ignore[arg-type]
                        run_timeout=settings.run_timeout),
            server_key=settings.fal_key,
        )
    if "local" in settings.backends:
        backends["local"] = create_local_backend(settings)
    return backends


def create_local_backend(settings: Settings) -> Backend:
    gpu_slot = None
    if settings.zerogpu:
        from backend.local.zerogpu import GpuSlot

        gpu_slot = GpuSlot()  # imports `spaces`, which must come before torch
    from backend.local.backend import LocalBackend, LocalSettings

    local = LocalBackend(LocalSettings(
        model=settings.model, models=settings.models, memory=settings.memory,  # type: ignore[arg-type]
        device=settings.device, lora_dir=settings.lora_dir, decode_every=settings.decode_every,
        max_sequence_length=settings.max_sequence_length, text_encoder_out_layers=settings.text_encoder_layers,
        compile_blocks=settings.compile_blocks, run_timeout=settings.run_timeout,
    ), gpu_slot=gpu_slot)
    if settings.zerogpu:
        local.preload()  # ZeroGPU hands the weights loaded at start-up to every GPU slot
    return local


def create_app(settings: Settings) -> tuple[gr.Blocks, dict]:
    """The Blocks and the keyword arguments for `launch()`."""
    outputs = settings.outputs.resolve()
    outputs.mkdir(parents=True, exist_ok=True)
    backends = create_backends(settings)
    setup = PageSetup(
        backends=tuple(backends), default_backend=settings.default_backend, needs_visitor_key=not settings.fal_key,
        models=settings.models, default_model=settings.model, default_memory=settings.memory,
        max_references={name: backend.max_references for name, backend in backends.items()},
    )
    demo = build_ui(setup, backends, Outputs(outputs, settings.outputs_max_mb * 2**20 or None))
    demo.queue(max_size=settings.max_queue, default_concurrency_limit=settings.concurrency)
    launch_kwargs = dict(
        enable_monitoring=False,
        max_file_size=f"{MAX_INPUT_BYTES // 2**20}mb",  # uploads larger than a reference may be
        run_history=False,  # would keep every input, the visitor's key included, in the browser
        max_threads=max(40, settings.concurrency * 2),
        # No allowed_paths: the outputs folder is never served. A browser gets copies of
        # results from Gradio's cache, under names made from a secret hash of the content
        # (settings.py keeps the outputs folder where Gradio may copy from).
        css_paths=[CSS_PATH],
        head=HEAD,
        footer_links=["api"],
        # The edit (and the sweep) as MCP tools at /gradio_api/mcp/, described from their docstrings.
        mcp_server=True,
    )
    return demo, launch_kwargs


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll is noise
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"Cannot start: {error}", file=sys.stderr)
        return 2
    try:
        demo, launch_kwargs = create_app(settings)
    except (OSError, StudioError) as error:  # the outputs folder cannot be made, a preloaded model fails…
        print(f"Cannot start: {getattr(error, 'message', error)}", file=sys.stderr)
        return 2
    log.info(
        "backends: %s (default %s); fal: %s, %s transport, key %s; local model: %s; outputs: %s",
        ", ".join(settings.backends), settings.default_backend, settings.fal_endpoint, settings.fal_transport,
        "from FAL_KEY" if settings.fal_key else "from each visitor", settings.model,
        Path(settings.outputs).resolve(),
    )
    demo.launch(**launch_kwargs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
