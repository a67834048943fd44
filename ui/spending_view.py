"""The spending policy (backend/spending.py) on the page.

- `admitted(...)`: the one admission every run and sweep passes before it reaches a backend
  (ui/wiring.py's `_run_body` and `_sweep_body`): who the visitor is, what the submission
  costs, refused with the policy's message, the concurrency slot held until it ends.
- `page_costs`: the texts before Run ("about $0.04 on this server's key · $19.36 of $20 left
  today") and before a sweep ("16 runs, about $0.67 on this server's key").
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import gradio as gr

from backend.base import Backend, BackendOptions
from backend.errors import AuthFailed, InvalidInput, MissingKey, RateLimited, StudioError
from backend.events import Event
from backend.request import EditRequest
from backend.spending import (
    Busy,
    Charge,
    Refused,
    SpendingPolicy,
    Visitor,
    cost_micros,
    estimate,
    image_megapixels,
    output_pixels,
    usd,
)
from backend.sweep import SweepAxis, plan_sweep
from ui.form import CUSTOM, MATCH_FIRST, PageSetup
from ui.run import RunPlan
from ui.sweep_view import sweep_cost

# fal did not run (nor bill) a job that ended with these: the charge is given back.
REFUNDED = (InvalidInput, MissingKey, AuthFailed, RateLimited)
SERVER_KEY, OWN_KEY = "this server's key", "your own fal key"


def visitor_of(profile: Any, request: Any) -> Visitor:
    """The Hugging Face user when signed in, else the address of the connection (Gradio's
    server takes X-Forwarded-For only from the proxies in FORWARDED_ALLOW_IPS, loopback
    by default: a client cannot forge one)."""
    username = getattr(profile, "username", None) if profile is not None else None
    client = getattr(request, "client", None) if request is not None else None
    return Visitor.of(username, getattr(client, "host", None))


def on_server_key(plan: RunPlan, setup: PageSetup) -> bool:
    return plan.backend.name == "fal" and not plan.key and not setup.needs_visitor_key


@contextmanager
def admitted(
    policy: SpendingPolicy, setup: PageSetup, values: Mapping[str, Any], plan: RunPlan,
    requests: Iterable[EditRequest], what: str = "run", wait_for_slot: Callable[[], bool] | None = None,
) -> Iterator[RunPlan]:
    """Admit the submission (or raise gr.Error with the policy's message: nothing is sent)
    and hold its slot while the caller runs the plan this yields. On the server's key, a
    run fal refused without running it gives its charge back. `wait_for_slot` (a queued
    run): while the visitor's runs fill their slots, it is called (it waits, and says
    whether to try again) instead of refusing."""
    counted = on_server_key(plan, setup)
    units, micros = estimate(requests, policy.limits.price_per_mp)
    visitor = visitor_of(values.get("profile"), values.get("request"))
    try:
        while True:
            try:
                ticket = policy.admit(visitor, Charge(units, micros, counted=counted, what=what))
                break
            except Busy:
                if wait_for_slot is None or not wait_for_slot():
                    raise
    except Refused as error:
        raise gr.Error(error.message, title=error.title) from None
    except StudioError as error:
        raise gr.Error(error.message, title="The run did not start") from None
    with ticket:
        if not counted:
            yield plan
            return
        price = policy.limits.price_per_mp
        watched = _Refunding(plan.backend, lambda request: ticket.refund(*estimate([request], price)))
        yield replace(plan, backend=watched)  # type: ignore[arg-type]


class _Refunding:
    """The backend, except that a run ending in an error fal raises before it runs a job
    (the inputs, the key, a 429) calls `refund(request)` first."""

    def __init__(self, backend: Backend, refund: Callable[[EditRequest], None]):
        self._backend, self._refund = backend, refund

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def run(self, request: EditRequest, options: BackendOptions, *, key: str | None = None,
            ) -> Generator[Event, None, None]:
        try:
            yield from self._backend.run(request, options, key=key)
        except REFUNDED:
            self._refund(request)
            raise


# -- the texts before Run and before a sweep -----------------------------------------------


def _per_image_micros(policy: SpendingPolicy, size: Any, width: Any, height: Any, references: int) -> int:
    if size == CUSTOM:
        try:
            pixels = output_pixels({"width": width, "height": height})
        except (TypeError, ValueError):
            pixels = output_pixels(None)
    else:
        pixels = output_pixels(None if size in (None, "", MATCH_FIRST) else size)
    return cost_micros(image_megapixels(pixels, references), policy.limits.price_per_mp)


def _whose(setup: PageSetup, fal_key: str | None) -> str:
    return OWN_KEY if (fal_key or "").strip() or setup.needs_visitor_key else SERVER_KEY


def run_cost_text(policy: SpendingPolicy, setup: PageSetup, backend: str, fal_key: str | None, size: Any,
                  width: Any, height: Any, num_images: Any, references: int, signed_in: bool) -> str:
    """What Run will cost: nothing for the local backend."""
    if backend != "fal":
        return ""
    try:
        images = max(1, int(num_images))
    except (TypeError, ValueError):
        images = 1
    whose = _whose(setup, fal_key)
    text = f"about {usd(images * _per_image_micros(policy, size, width, height, references))} on {whose}"
    if whose != SERVER_KEY:
        return text
    if setup.require_login and not signed_in:
        return text + " (for visitors signed in with Hugging Face; or use your own fal key)"
    left = policy.left_today()
    if left is not None:
        text += f" · {usd(left)} of {usd(policy.limits.budget_micros)} left today"
    return text


def make_page_costs(policy: SpendingPolicy, setup: PageSetup, fal_backend: str = "fal") -> Callable[..., tuple]:
    """The handler of the texts before Run and before a sweep: (run text, sweep text)."""

    def page_costs(backend: str, fal_key: str | None, size: Any, width: Any, height: Any, num_images: Any,
                   x_key: str, x_values: str, y_key: str | None, y_values: str, image_1: Any, image_2: Any,
                   image_3: Any, image_4: Any, image_5: Any, image_6: Any,
                   profile: gr.OAuthProfile | None = None) -> tuple[str, str]:
        images = [image_1, image_2, image_3] + ([image_4, image_5, image_6] if backend != fal_backend else [])
        references = sum(1 for image in images if image)
        signed_in = profile is not None
        run_text = run_cost_text(policy, setup, backend, fal_key, size, width, height, num_images, references,
                                 signed_in)
        per_cell = _per_image_micros(policy, size, width, height, references)

        def money(cells: int) -> str:
            if backend != fal_backend:
                return ""
            return f", about {usd(cells * per_cell)} on {_whose(setup, fal_key)}"

        return run_text, sweep_cost(x_key, x_values, y_key, y_values, money)

    return page_costs


def sweep_requests(request: EditRequest, x_key: str, x_values: str, y_key: str | None,
                   y_values: str) -> tuple[EditRequest, ...]:
    """The sweep's cells, or none when its axes are wrong (run_sweep_view then names the problem)."""
    try:
        x = SweepAxis.parse(x_key, x_values)
        y = SweepAxis.parse(y_key, y_values) if y_key else None
        return plan_sweep(request, x, y).cells
    except InvalidInput:
        return ()
