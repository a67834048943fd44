"""Who may spend what, through the launched app (backend/spending.py): one client opening many
sessions cannot pass its hourly quota, nor forge another address; clients racing for the last
unit of the daily budget; one visitor's runs at once; the login rule; a visitor's own key
passes the server key's limits. Every refusal is made before anything reaches fal."""

from __future__ import annotations

import base64
import re
from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx
import pytest
from gradio_client.exceptions import AppError
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

from tests.helpers.api import edit_args
from tests.helpers.app import VISITOR_KEY, clear_of_utc_midnight, connect, launch_app, stop_app


def attempt(app, images, headers: dict | None = None, **overrides) -> str:
    """One run in a session of its own: its status line, or the message it was refused with."""
    client = connect(app, headers=headers or {})
    try:
        return client.predict(**edit_args(images, **overrides), api_name="/edit")[1]
    except AppError as error:
        return f"refused: {error}"


def kind(outcome: str) -> str:
    return "done" if outcome.startswith("✅ Done") else "refused" if outcome.startswith("refused") else outcome


def test_one_client_with_many_sessions_cannot_pass_its_hourly_quota(fake, images, tmp_path):
    # Only a proxy at 192.0.2.1 may name the client (X-Forwarded-For): not this client.
    app = launch_app(tmp_path, fake, STUDIO_VISITOR_RUNS_PER_HOUR="3", FORWARDED_ALLOW_IPS="192.0.2.1")
    try:
        with ThreadPoolExecutor(5) as pool:
            outcomes = list(pool.map(lambda _: attempt(app, images), range(5)))
        assert sorted(kind(o) for o in outcomes) == ["done"] * 3 + ["refused"] * 2, outcomes
        assert len(fake.submits()) == 3  # the refused runs sent nothing
        refused = next(o for o in outcomes if o.startswith("refused"))
        assert "limited to 3 per hour for each visitor" in refused
        assert re.search(r"possible at \d\d:\d\d UTC \(in (\d+ h )?\d+ min\)", refused)
        assert "own fal key has no such limit" in refused
        # A forged X-Forwarded-For from a client that is not a configured proxy changes nothing.
        forged = attempt(app, images, headers={"X-Forwarded-For": "203.0.113.9"})
        assert forged.startswith("refused") and "per hour" in forged
        # The visitor's own key has no such limit.
        assert attempt(app, images, fal_key=VISITOR_KEY).startswith("✅ Done")
        assert len(fake.submits()) == 4
    finally:
        stop_app(app)


def mcp_edit(app, image, source: str, headers: dict) -> str:
    """One MCP `edit` call from the address `source` (a loopback address other than the
    server's own: not a trusted proxy): its text, "refused: …" when it was refused."""

    def client(headers=None, timeout=None, auth=None):
        transport = httpx.AsyncHTTPTransport(local_address=source)
        return httpx.AsyncClient(transport=transport, headers=headers, timeout=timeout, auth=auth)

    async def call():
        async with streamablehttp_client(f"{app.url}gradio_api/mcp/", headers=headers,
                                         httpx_client_factory=client) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                data = "data:image/png;base64," + base64.b64encode(image.read_bytes()).decode()
                result = await session.call_tool("edit", {"prompt": "make it blue", "image_1": data})
                return ("refused: " if result.isError else "") + str(result.content)

    return anyio.run(call)


def test_an_mcp_caller_cannot_pass_its_hourly_quota_by_naming_another_address(fake, images, tmp_path):
    """Gradio's MCP server runs the edit by calling this app again from loopback (a trusted
    proxy by default) with the caller's headers: the caller's own X-Forwarded-For must not
    become the visitor, and its real address must (not one address shared by all MCP callers)."""
    app = launch_app(tmp_path, fake, STUDIO_VISITOR_RUNS_PER_HOUR="2")
    try:
        outcomes = [mcp_edit(app, images["red"], "127.0.0.2", {"X-Forwarded-For": f"203.0.113.{n}"}) for n in range(3)]
        assert [o.startswith("refused") for o in outcomes] == [False, False, True], outcomes
        assert "limited to 2 per hour for each visitor" in outcomes[2]
        assert len(fake.submits()) == 2
        assert not mcp_edit(app, images["red"], "127.0.0.3", {}).startswith("refused")  # another caller
        assert len(fake.submits()) == 3
    finally:
        stop_app(app)


def test_a_visitor_on_ipv6_cannot_reset_its_quota_with_another_address_of_its_network(fake, images, tmp_path):
    # Each run comes through a proxy on this machine (trusted by default) that names the client.
    app = launch_app(tmp_path, fake, STUDIO_VISITOR_RUNS_PER_HOUR="2")
    try:
        outcomes = [attempt(app, images, headers={"X-Forwarded-For": f"2001:db8:1:2::{n}"}) for n in (1, 2, 3)]
        assert [kind(o) for o in outcomes] == ["done", "done", "refused"], outcomes
        assert "limited to 2 per hour for each visitor" in outcomes[2]
        assert kind(attempt(app, images, headers={"X-Forwarded-For": "2001:db8:1:3::1"})) == "done"  # another network
        assert len(fake.submits()) == 3
    finally:
        stop_app(app)


def test_two_clients_racing_for_the_last_unit_of_the_budget_one_run_reaches_fal(fake, images, tmp_path):
    fake.job_seconds = 1.0
    clear_of_utc_midnight()
    # One run (1 MP out, 1 MP in: about $0.042) fits in $0.05; two do not. Each client comes
    # through a proxy on this machine (loopback is trusted by default), as two visitors.
    app = launch_app(tmp_path, fake, STUDIO_DAILY_BUDGET_USD="0.05")
    try:
        clients = [{"X-Forwarded-For": "203.0.113.1"}, {"X-Forwarded-For": "203.0.113.2"}]
        with ThreadPoolExecutor(2) as pool:
            outcomes = list(pool.map(lambda headers: attempt(app, images, headers=headers), clients))
        assert sorted(kind(o) for o in outcomes) == ["done", "refused"], outcomes
        assert len(fake.submits()) == 1
        refused = next(o for o in outcomes if o.startswith("refused"))
        assert "budget of about $0.05 a day for all visitors together" in refused
        # "in 5 h 3 min", "in 12 min", or on the hour "in 24 h" (a run just after midnight).
        assert re.search(r"resets at 00:00 UTC \(in (\d+ h( \d+ min)?|\d+ min)\)", refused)
        # Spent is spent, for everyone; a visitor's own key still works.
        assert attempt(app, images, headers={"X-Forwarded-For": "203.0.113.3"}).startswith("refused")
        assert attempt(app, images, fal_key=VISITOR_KEY).startswith("✅ Done")
        assert len(fake.submits()) == 2
    finally:
        stop_app(app)


@pytest.fixture
def login_app(fake, tmp_path):
    """The server's key for signed-in visitors only, one run at a time per visitor; this machine
    is not logged in to Hugging Face, so the page offers no sign-in (own keys only)."""
    home = tmp_path / "hf-home"
    home.mkdir()
    app = launch_app(tmp_path, fake, STUDIO_REQUIRE_LOGIN="1", STUDIO_VISITOR_CONCURRENCY="1",
                     HF_HOME=str(home), HF_TOKEN=None)
    yield app
    stop_app(app)


def test_login_required_refuses_an_anonymous_server_key_run_but_not_their_own_key(login_app, fake, images):
    refused = attempt(login_app, images)
    assert refused.startswith("refused") and "serves only visitors signed in with Hugging Face" in refused
    assert "your own fal key" in refused and not fake.submits()
    assert attempt(login_app, images, fal_key=VISITOR_KEY).startswith("✅ Done")
    assert "STUDIO_REQUIRE_LOGIN: signing in with Hugging Face needs a Space" in login_app.log()
    # The key box is open for everyone: it is how an anonymous visitor runs here.
    config = httpx.get(f"{login_app.url}config").json()
    [accordion] = [c for c in config["components"] if c.get("props", {}).get("elem_id") == "own-key"]
    assert accordion["props"]["open"] is True and accordion["props"]["visible"] is True


def test_one_visitor_runs_one_at_a_time_and_stop_frees_the_slot(login_app, fake, images):
    fake.job_seconds = 30
    running = connect(login_app).submit(**edit_args(images, fal_key=VISITOR_KEY), api_name="/edit")
    assert fake.wait_for(lambda: any(j.state == "IN_PROGRESS" for j in fake.jobs.values()), timeout=15)
    second = attempt(login_app, images, fal_key=VISITOR_KEY)
    assert second.startswith("refused") and "already have 1 run in flight" in second
    assert len(fake.submits()) == 1
    running.cancel()  # Stop
    assert fake.wait_for(lambda: all(j.cancelled for j in fake.jobs.values()), timeout=10)
    fake.job_seconds = 0.2
    assert attempt(login_app, images, fal_key=VISITOR_KEY).startswith("✅ Done")


def test_on_a_space_the_page_offers_sign_in_and_keeps_the_key_box_closed(fake, images, tmp_path):
    # What a Space with `hf_oauth: true` sets; the provider is never reached in this test.
    space = dict(SYSTEM="spaces", SPACE_ID="someone/studio", OAUTH_CLIENT_ID="client", OAUTH_CLIENT_SECRET="secret",
                 OAUTH_SCOPES="openid profile", OPENID_PROVIDER_URL="http://127.0.0.1:9")
    app = launch_app(tmp_path, fake, **space)
    try:
        components = httpx.get(f"{app.url}config").json()["components"]
        assert any("Sign in with Hugging Face" in str(c.get("props", {}).get("value")) for c in components)
        [accordion] = [c for c in components if c.get("props", {}).get("elem_id") == "own-key"]
        assert accordion["props"]["open"] is False and accordion["props"]["visible"] is True
        # Not signed in: the visitor is their address, and the server's key serves them.
        assert attempt(app, images).startswith("✅ Done") and len(fake.submits()) == 1
    finally:
        stop_app(app)
