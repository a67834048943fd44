"""ui/spending_view.py and the API functions: the visitor comes from Gradio (the signed-in
Hugging Face user, else the client's address), never from the caller's arguments; one
admission for runs and sweeps; refunds when fal ran nothing; the texts before Run and a sweep."""

from __future__ import annotations

import time
from types import SimpleNamespace

import gradio as gr
import pytest
from gradio import helpers, utils

from backend.errors import AuthFailed, ServiceError
from backend.events import Progress
from backend.request import build_request
from backend.spending import DATABASE_NAME, MICROS, Limits, SpendingPolicy
from ui import field_checks, form
from ui.run import RunPlan, refused_status
from ui.spending_view import admitted, make_page_costs, run_cost_text

SETUP = form.PageSetup(backends=("fal", "local"), default_backend="fal", needs_visitor_key=False,
                       models=("m",), default_model="m", default_memory="gpu")


def spending(tmp_path, **limits) -> SpendingPolicy:
    settings = {"runs_per_hour": 0, "concurrency": 0, "daily_budget_usd": 0, **limits}
    return SpendingPolicy(Limits(**settings), tmp_path / DATABASE_NAME)


def userinfo(username: str) -> dict:
    """The user as Hugging Face's OAuth describes them (what gr.OAuthProfile reads)."""
    return {"preferred_username": username, "name": username.title(), "profile": f"https://huggingface.co/{username}",
            "picture": ""}


def connection(address: str, username: str | None = None) -> SimpleNamespace:
    """What Gradio hands an event: the client's address, and the session its OAuth login writes."""
    session = {}
    if username:
        session["oauth_info"] = {"userinfo": userinfo(username), "expires_at": time.time() + 3600}
    return SimpleNamespace(client=SimpleNamespace(host=address), scope={"session": session})


class FakeFal:
    name, max_references, concurrent_runs = "fal", 3, 8

    def __init__(self, error: Exception | None = None):
        self.error, self.runs = error, 0

    def run(self, request, options, *, key=None):
        self.runs += 1
        yield Progress("working")
        if self.error:
            raise self.error


def plan(backend=None, key=None, **fields) -> RunPlan:
    request = build_request(prompt="p", image_urls=["https://example.com/a.png"], **fields)
    return RunPlan(backend or FakeFal(), request, options=None, key=key)  # type: ignore[arg-type]


def submit(policy: SpendingPolicy, values: dict, run_plan: RunPlan, setup=SETUP) -> None:
    with admitted(policy, setup, values, run_plan, [run_plan.request]) as admitted_plan:
        list(admitted_plan.backend.run(admitted_plan.request, None))


def test_gradio_fills_the_visitor_and_the_api_never_shows_it():
    api = form.api_function("edit", lambda values: iter([values]), SETUP, "doc")
    names = [name for name, *_ in utils.get_function_params(api)]  # what /gradio_api/info and MCP list
    assert names == list(form.NAMES)
    inputs = [field.api_default(SETUP) for field in form.FORM]
    helpers.special_args(api, inputs, request=connection("203.0.113.5", "alice"))  # type: ignore[arg-type]
    [values] = list(api(*inputs))
    assert values["profile"].username == "alice" and values["request"].client.host == "203.0.113.5"
    inputs = [field.api_default(SETUP) for field in form.FORM]
    helpers.special_args(api, inputs, request=connection("203.0.113.5"))  # type: ignore[arg-type]
    assert next(api(*inputs))["profile"] is None


def test_a_signed_in_visitor_is_counted_by_name_wherever_they_come_from(tmp_path):
    policy = spending(tmp_path, runs_per_hour=1)
    alice = {"profile": gr.OAuthProfile(userinfo("alice")), "request": connection("203.0.113.5")}
    submit(policy, alice, plan())
    moved = {**alice, "request": connection("198.51.100.7")}
    with pytest.raises(gr.Error, match="limited to 1 per hour") as refused:
        submit(policy, moved, plan())
    assert refused.value.title == "Hourly limit reached"
    submit(policy, {"profile": None, "request": connection("203.0.113.5")}, plan())  # the address is another visitor


def test_login_required_refuses_the_anonymous_server_key_run_but_not_their_own_key(tmp_path):
    policy = spending(tmp_path, require_login=True, login_offered=True)
    anonymous = {"profile": None, "request": connection("203.0.113.5")}
    backend = FakeFal()
    with pytest.raises(gr.Error, match="signed in with Hugging Face") as refused:
        submit(policy, anonymous, plan(backend))
    assert refused.value.title == "Please sign in" and backend.runs == 0  # nothing was sent
    submit(policy, anonymous, plan(backend, key="visitor-key"))
    submit(policy, {**anonymous, "profile": gr.OAuthProfile(userinfo("bob"))}, plan(backend))
    assert backend.runs == 2


def test_a_run_fal_refused_gives_its_charge_back_one_it_may_have_run_does_not(tmp_path):
    policy = spending(tmp_path, daily_budget_usd=1)
    anonymous = {"profile": None, "request": connection("203.0.113.5")}
    with pytest.raises(AuthFailed):
        submit(policy, anonymous, plan(FakeFal(AuthFailed(401)), num_images=2))
    assert policy.left_today() == MICROS
    with pytest.raises(ServiceError):
        submit(policy, anonymous, plan(FakeFal(ServiceError("gone"))))
    assert policy.left_today() == MICROS - 42_000


def test_the_slot_is_freed_when_the_run_is_stopped(tmp_path):
    policy = spending(tmp_path, concurrency=1)
    values = {"profile": None, "request": connection("203.0.113.5")}

    def body():
        with admitted(policy, SETUP, values, plan(), [plan().request]) as admitted_plan:
            yield from admitted_plan.backend.run(admitted_plan.request, None)

    running = body()
    next(running)
    with pytest.raises(gr.Error, match="already have 1 run in flight"):
        submit(policy, values, plan())
    running.close()  # Stop, or the tab closed
    submit(policy, values, plan())


def test_the_page_says_what_run_and_a_sweep_cost_and_what_is_left_today(tmp_path):
    policy = spending(tmp_path, daily_budget_usd=20)
    costs = make_page_costs(policy, SETUP)
    images = ["a.png", None, None, None, None, None]
    run_text, sweep_text = costs("fal", "", "custom", 1024, 1024, 1, "lora1_scale", "1,2,3,4", "seed", "1,2,3,4",
                                 *images)
    assert run_text == "about $0.04 on this server's key · $20 of $20 left today"
    assert "**16 runs**, about $0.67 on this server's key" in sweep_text
    run_text, sweep_text = costs("fal", "my-key", "match", 1024, 1024, 2, "seed", "1,2", "", "", *images)
    assert run_text == "about $0.08 on your own fal key" and "about $0.08 on your own fal key" in sweep_text
    run_text, sweep_text = costs("local", "", "match", 1024, 1024, 1, "seed", "1,2", "", "", *images)
    assert run_text == "" and "$" not in sweep_text  # nothing about money locally
    (tmp_path / "uncapped").mkdir()
    unlimited = spending(tmp_path / "uncapped", daily_budget_usd=0)
    assert run_cost_text(unlimited, SETUP, "fal", "", "match", 0, 0, 1, 1, False) == "about $0.04 on this server's key"
    login = form.PageSetup(**{**SETUP.__dict__, "require_login": True})
    assert "signed in with Hugging Face" in run_cost_text(policy, login, "fal", "", "match", 0, 0, 1, 1, False)


def test_a_run_the_policy_refuses_says_why_on_the_page_and_warns_instead_of_failing():
    """The page's run (ui/field_checks.py page_run) around a body that the policy refuses, as
    ui/wiring.py's does: the status line gets the refusal (not "Starting…"), the page a warning,
    and no error (Gradio would mark every output of the run "Error")."""
    refusal = gr.Error("Runs on this server's fal key are limited to 1 per hour for each visitor.",
                       title="Hourly limit reached")

    def body(values, previous):
        yield gr.skip(), "⏳ Starting…", gr.skip(), gr.skip(), gr.skip(), gr.skip()
        yield gr.skip(), refused_status(refusal), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        raise refusal

    with pytest.warns(UserWarning, match="limited to 1 per hour"):
        updates = list(field_checks.page_run(body, {}))
    assert updates[1][1] == "⛔ Hourly limit reached: Runs on this server's fal key are limited to 1 per hour " \
                            "for each visitor."
    assert updates[-1] == (*[gr.skip()] * 6, {})  # nothing else changes; no field is marked
