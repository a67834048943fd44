"""FLUX.2 LoRA Edit Studio: `python app.py` starts the web app.

Settings come from the environment (see README.md, "Settings").
"""

from __future__ import annotations

import logging
import os
import sys
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from backend.base import Backend
from backend.body_limit import BodyLimit
from backend.cache_room import CacheRoom, UploadRoom, UploadShare
from backend.client_address import PinnedForwardedFor, visitor_address
from backend.errors import StudioError

# Pillow's decompression-bomb limit must be set before any image is opened.
from backend.images import MAX_INPUT_BYTES, set_max_pixels
from backend.input_urls import UrlRefused, fetch_input_url
from backend.local import quiet_dependency_notices
from backend.redact import install_log_redaction, register_secret
from backend.settings import Settings, SettingsError
from backend.spending import DATABASE_NAME, Limits, SpendingPolicy
from ui.form import PageSetup
from ui.page import CSS_PATH, HEAD, THEME, build_ui
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
                        run_timeout=settings.run_timeout, lora_check=settings.lora_check),
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
    from backend.local.lora_sources import LoraFetcher

    fetcher = LoraFetcher(lora_dir=settings.lora_dir, cache_bytes=settings.lora_cache_mb * 2**20)
    local = LocalBackend(LocalSettings(
        model=settings.model, models=settings.models, memory=settings.memory,  # type: ignore[arg-type]
        device=settings.device, lora_dir=settings.lora_dir, decode_every=settings.decode_every,
        max_sequence_length=settings.max_sequence_length, text_encoder_out_layers=settings.text_encoder_layers,
        compile_blocks=settings.compile_blocks, run_timeout=settings.run_timeout,
        speed=settings.speed, step_cache_interval=settings.step_cache_interval,  # type: ignore[arg-type]
        lora_max_rank=settings.lora_max_rank,
    ), fetcher=fetcher, gpu_slot=gpu_slot)
    if settings.zerogpu and gpu_slot is not None:
        from backend.local.device_plan import PlanSettings
        from backend.local.zerogpu import start_on_zerogpu

        # The card decides the memory mode and speed (the operator's when they fit), then the
        # model is loaded so: ZeroGPU hands the weights loaded at start-up to every GPU slot.
        operator = PlanSettings(memory=settings.memory if "STUDIO_MEMORY" in settings.explicit else None,
                                speed=settings.speed if "STUDIO_SPEED" in settings.explicit else None)
        start_on_zerogpu(local, gpu_slot, operator, step_seconds=settings.step_seconds)
    return local


def speed_note(backends: dict[str, Backend]) -> str:
    """The page's text on the local speed presets: which run on this server, why not the rest."""
    support = getattr(backends.get("local"), "speed_support", None)
    plan = getattr(backends.get("local"), "plan_line", "")  # ZeroGPU: the card and the plan chosen for it
    return f"{support.note()} {plan}".strip() if support is not None else ""


def unavailable_speeds(backends: dict[str, Backend]) -> tuple[str, ...]:
    """The local speed presets this server cannot run (the page shows them disabled)."""
    support = getattr(backends.get("local"), "speed_support", None)
    return tuple(support.refusals) if support is not None else ()


def local_default(backends: dict[str, Backend], name: str, settings: Settings) -> str:
    """The page's default memory mode or speed: the local backend's own (on ZeroGPU, the plan
    chosen for the card), else the operator's setting."""
    local_settings = getattr(backends.get("local"), "settings", None)
    return str(getattr(local_settings, name, None) or getattr(settings, name))


def create_spending(settings: Settings, outputs: Path) -> SpendingPolicy:
    """Who may spend what on the server's key (backend/spending.py); the counters live in
    the outputs folder, so they survive a restart.

    The page offers "Sign in with Hugging Face" on a Space, and off one when the server's
    key needs a signed-in visitor and this machine is logged in to Hugging Face (Gradio then
    signs visitors in as that account, for trying it out); otherwise only own keys pass."""
    show_login = settings.on_space or (settings.require_login and _hf_login_present())
    if settings.require_login and not show_login:
        log.warning("STUDIO_REQUIRE_LOGIN: signing in with Hugging Face needs a Space (hf_oauth: true), or "
                    "`hf auth login` here to try it; until then the server's key serves nobody")
    limits = Limits(
        runs_per_hour=settings.visitor_runs_per_hour, concurrency=settings.visitor_concurrency,
        daily_budget_usd=settings.daily_budget_usd, price_per_mp=settings.price_per_mp,
        require_login=settings.require_login, login_offered=show_login,
    )
    if settings.fal_key:
        log.info("limits on the server's key: runs per visitor per hour %s, spend per UTC day %s, runs at once per "
                 "visitor %s%s", limits.runs_per_hour or "unlimited",
                 f"${limits.daily_budget_usd:g}" if limits.daily_budget_usd else "unlimited",
                 limits.concurrency or "unlimited", "; signed-in visitors only" if limits.require_login else "")
    return SpendingPolicy(limits, outputs / DATABASE_NAME)


def _hf_login_present() -> bool:
    from huggingface_hub import get_token

    return get_token() is not None


def create_app(settings: Settings) -> tuple[gr.Blocks, dict]:
    """The Blocks and the keyword arguments for `launch()`."""
    set_max_pixels(int(settings.max_image_mp * 1_000_000))  # here and in Pillow, before any image is opened
    outputs = settings.outputs.resolve()
    outputs.mkdir(parents=True, exist_ok=True)
    backends = create_backends(settings)
    spending = create_spending(settings, outputs)
    setup = PageSetup(
        backends=tuple(backends), default_backend=settings.default_backend, needs_visitor_key=not settings.fal_key,
        models=settings.models, default_model=settings.model,
        default_memory=local_default(backends, "memory", settings),
        max_references={name: backend.max_references for name, backend in backends.items()},
        require_login=settings.require_login, show_login=spending.limits.login_offered,
        default_speed=local_default(backends, "speed", settings), speed_note=speed_note(backends),
        unavailable_speeds=unavailable_speeds(backends),
    )
    demo = build_ui(setup, backends, spending=spending, outputs=Outputs(
        outputs, settings.outputs_max_mb * 2**20 or None, settings.starred_max_mb * 2**20 or None))
    demo.queue(max_size=settings.max_queue, default_concurrency_limit=settings.concurrency)
    max_body = int(settings.max_body_mb * 2**20)
    room = cache_room(demo, settings)
    share = upload_share(room, settings)
    bound_url_inputs(demo, room, share)
    launch_kwargs = dict(
        enable_monitoring=False,
        max_file_size=f"{MAX_INPUT_BYTES // 2**20}mb",  # uploads larger than a reference may be
        run_history=False,  # would keep every input, the visitor's key included, in the browser
        max_threads=max(40, settings.concurrency * 2),
        # No allowed_paths: the outputs folder is never served. A browser gets copies of
        # results from Gradio's cache, under names made from a secret hash of the content
        # (settings.py keeps the outputs folder where Gradio may copy from).
        css_paths=[CSS_PATH],
        theme=THEME,
        head=HEAD,
        footer_links=["api"],
        # The edit (and the sweep) as MCP tools at /gradio_api/mcp/, described from their docstrings.
        mcp_server=True,
        # Every request body, page-only events included, is bounded before it is parsed (413 past it).
        # X-Forwarded-For is pinned to the address uvicorn found, so that the MCP server's call back
        # to this app (from loopback, with its caller's headers) counts its caller as the visitor.
        app_kwargs={"middleware": [Middleware(PinnedForwardedFor), Middleware(BodyLimit, max_bytes=max_body),
                                   *upload_room(room, share, max_body)]},
    )
    return demo, launch_kwargs


def bound_url_inputs(demo: gr.Blocks, room: CacheRoom | None, share: UploadShare | None) -> None:
    """Gradio's own fetch of a URL in a request's inputs (an API or MCP caller's image URL),
    replaced by one within an upload's limits, the cache's room and the caller's upload share
    (backend/input_urls.py says why). Gradio looks the function up in its module at each call:
    every input gets this one."""
    import anyio
    from gradio import processing_utils

    if not hasattr(processing_utils, "async_ssrf_protected_download"):  # a Gradio other than the pinned one
        raise StudioError("this Gradio fetches input URLs in a way the app does not know how to bound: "
                          "install the version in requirements.txt")
    trusted = tuple(processing_utils.PUBLIC_HOSTNAME_WHITELIST)
    remember_callers(demo)

    async def download(url: str, cache_dir: str) -> str:
        # Until it is fetched, a URL counts as the largest file it may be.
        address, limit, taken = _CALLER.get(), min(MAX_INPUT_BYTES, share.max_bytes if share else MAX_INPUT_BYTES), 0
        if share is not None and not share.admit(address, limit):
            what = f"The file at {url[:200]} (counted as {limit // 2**20} MB, the most it may be, until it is fetched)"
            raise gr.Error(share.message(address, limit, what=what), title="Upload limit")
        if room is not None and not room.admit(limit):
            if share is not None:
                share.give_back(address, limit)
            raise gr.Error(room.message(), title="No room for uploads")
        try:
            path = await anyio.to_thread.run_sync(
                lambda: fetch_input_url(url, cache_dir, max_bytes=limit, trusted=trusted))
            taken = os.path.getsize(path)
            return path
        except UrlRefused as error:
            raise gr.Error(error.message, title="Please check the form") from None
        finally:
            if room is not None:
                room.done(limit)
            if share is not None:
                share.settle(address, limit, taken)

    processing_utils.async_ssrf_protected_download = download


# The address of the request whose inputs Gradio is preparing: Gradio fetches an input's URL
# before the handler gets its gr.Request, inside Blocks.process_api, which has it.
_CALLER: ContextVar[str] = ContextVar("studio_caller", default="unknown")


def remember_callers(demo: gr.Blocks) -> None:
    """`demo.process_api` sets _CALLER to its request's address (as the run quotas see it)."""
    process_api = demo.process_api

    async def with_caller(*args: Any, **kwargs: Any) -> Any:
        request = kwargs.get("request")
        if isinstance(request, list):  # a batched event: its requests come from one queue
            request = request[0] if request else None
        host = getattr(getattr(request, "client", None), "host", None)
        token = _CALLER.set(visitor_address(host))
        try:
            return await process_api(*args, **kwargs)
        finally:
            _CALLER.reset(token)

    demo.process_api = with_caller  # type: ignore[method-assign]


def cache_room(demo: gr.Blocks, settings: Settings) -> CacheRoom | None:
    """Gradio's cache under STUDIO_CACHE_MAX_MB (backend/cache_room.py), swept every 10 s; None: no cap."""
    if not settings.cache_max_mb:
        return None
    room = CacheRoom(Path(demo.GRADIO_CACHE), settings.cache_max_mb * 2**20)
    room.start_sweeping()
    return room


def upload_share(room: CacheRoom | None, settings: Settings) -> UploadShare | None:
    """What one visitor may upload (or have fetched) in 10 minutes; only with a cap on the cache."""
    if room is None or not settings.upload_mb_per_visitor:
        return None
    return UploadShare(settings.upload_mb_per_visitor * 2**20)


def upload_room(room: CacheRoom | None, share: UploadShare | None, max_body: int) -> list[Middleware]:
    """An upload past the cache's cap is refused once the oldest files are gone; one visitor's
    uploads within STUDIO_UPLOAD_MB_PER_VISITOR every 10 minutes."""
    if room is None:
        return []
    return [Middleware(UploadRoom, room=room, max_bytes_unknown=max_body, share=share)]


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll is noise
    quiet_dependency_notices()  # the local backend's libraries' start-up notices that do not concern us
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"Cannot start: {error}", file=sys.stderr)
        return 2
    # Every log line, whichever library writes it, has the server's key, the keys of runs in
    # flight and anything shaped like a fal key masked (backend/redact.py).
    register_secret(settings.fal_key)
    install_log_redaction()
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
