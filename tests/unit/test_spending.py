"""backend/spending.py: the cost rule, the hourly quota over a rolling hour, the daily budget
per UTC day, concurrency slots, the login rule, refunds, counters that survive a restart and
stay exact when threads race for the last unit. The clock is injected."""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from backend import images
from backend.errors import StudioError
from backend.outputs import enforce_cap
from backend.request import build_request
from backend.spending import (
    DATABASE_NAME,
    MICROS,
    REFERENCE_PIXELS,
    Charge,
    Limits,
    Refused,
    SpendingPolicy,
    Visitor,
    estimate,
    usd,
)

NOON = datetime(2026, 3, 14, 12, 0, tzinfo=timezone.utc).timestamp()
ONE_RUN = 42_000  # a 1024x1024 edit with one reference: 2 MP x $0.021
ALICE, BOB = Visitor.of(None, "203.0.113.5"), Visitor.of(None, "198.51.100.7")


class Clock:
    def __init__(self, now: float = NOON):
        self.now = now

    def __call__(self) -> float:
        return self.now


def policy(tmp_path: Path, clock: Clock | None = None, **limits) -> SpendingPolicy:
    settings = {"runs_per_hour": 0, "concurrency": 0, "daily_budget_usd": 0, **limits}
    return SpendingPolicy(Limits(**settings), tmp_path / DATABASE_NAME, clock or Clock())


def run(units: int = 1, micros: int = ONE_RUN, counted: bool = True, what: str = "run") -> Charge:
    return Charge(units, micros, counted=counted, what=what)


def request(**fields):
    return build_request(prompt="p", image_urls=["https://example.com/a.png"], **fields)


# -- the cost rule --------------------------------------------------------------------------


def test_an_image_costs_its_output_and_reference_megapixels_rounded_up():
    price = 0.021
    assert estimate([request(image_size={"width": 1024, "height": 1024})], price) == (1, ONE_RUN)
    assert usd(ONE_RUN) == "$0.04"
    assert estimate([request()], price) == (1, ONE_RUN)  # "match image 1": about 1 MP
    assert estimate([request(image_size="portrait_16_9")], price) == (1, ONE_RUN)  # 0.56 MP counts as 1
    # Just over 1 MP is 2; 2048x2048 is 4, plus three references of 1 MP each.
    assert estimate([request(image_size={"width": 1040, "height": 1040})], price)[1] == 3 * 21_000
    three = build_request(prompt="p", image_urls=["a", "b", "c"], image_size={"width": 2048, "height": 2048})
    assert estimate([three], price)[1] == 7 * 21_000
    # Each image made is a run and is billed.
    assert estimate([request(num_images=4)], price) == (4, 4 * ONE_RUN)


def test_a_sweep_of_sixteen_cells_is_sixteen_runs_of_about_sixty_seven_cents():
    runs, micros = estimate([request()] * 16, 0.021)
    assert runs == 16 and usd(micros) == "$0.67"


def test_references_are_estimated_at_the_size_they_are_sent():
    assert REFERENCE_PIXELS == images.TARGET_PIXELS


def test_money_is_shown_in_dollars_and_cents():
    assert usd(20 * MICROS) == "$20" and usd(19_360_000) == "$19.36" and usd(0) == "$0"


# -- the visitor ----------------------------------------------------------------------------


def test_a_visitor_is_the_signed_in_user_else_the_address():
    assert Visitor.of("alice", "203.0.113.5") == Visitor("hf:alice", signed_in=True)
    assert Visitor.of(None, "203.0.113.5") == Visitor("ip:203.0.113.5")
    assert Visitor.of("", None) == Visitor("ip:unknown")


def test_an_ipv6_host_is_one_visitor_whichever_address_of_its_64_it_comes_from():
    """A host picks a new address in its /64 at will (privacy addresses rotate by themselves):
    counted by address, it would have a quota per address."""
    assert Visitor.of(None, "2001:db8:1:2:aaaa::1") == Visitor.of(None, "2001:db8:1:2:ffff:1:2:3")
    assert Visitor.of(None, "2001:db8:1:2::1") == Visitor("ip:2001:db8:1:2::/64")
    assert Visitor.of(None, "2001:db8:1:2::1") != Visitor.of(None, "2001:db8:1:3::1")  # another network
    assert Visitor.of(None, "::ffff:203.0.113.5") == Visitor.of(None, "203.0.113.5")  # IPv4, written as IPv6
    assert Visitor.of(None, "203.0.113.5") != Visitor.of(None, "203.0.113.6")


# -- the hourly quota -----------------------------------------------------------------------


def test_the_hourly_quota_counts_over_a_rolling_hour(tmp_path):
    clock = Clock()
    spending = policy(tmp_path, clock, runs_per_hour=3)
    for step in range(3):
        clock.now = NOON + step * 600  # 12:00, 12:10, 12:20
        spending.admit(ALICE, run()).release()
    clock.now = NOON + 1800
    with pytest.raises(Refused) as refused:
        spending.admit(ALICE, run())
    message = refused.value.message
    assert "limited to 3 per hour" in message and "13:00 UTC (in 30 min)" in message
    assert "own fal key has no such limit" in message and refused.value.title == "Hourly limit reached"
    spending.admit(BOB, run()).release()  # another visitor has a quota of their own
    clock.now = NOON + 3600  # the 12:00 run is an hour old: out of the window
    spending.admit(ALICE, run()).release()
    with pytest.raises(Refused, match=r"13:10 UTC \(in 10 min\)"):
        spending.admit(ALICE, run())


def test_each_image_and_each_sweep_cell_counts(tmp_path):
    clock = Clock()
    spending = policy(tmp_path, clock, runs_per_hour=20)
    spending.admit(ALICE, run(units=4)).release()  # num_images=4
    clock.now += 60
    spending.admit(ALICE, run(units=10, what="sweep")).release()
    clock.now += 60
    with pytest.raises(Refused) as refused:
        spending.admit(ALICE, run(units=16, what="sweep"))
    assert "You have 6 left; this sweep needs 16" in refused.value.message
    assert "13:01 UTC (in 59 min)" in refused.value.message  # once the 4 (12:00) and the 10 (12:01) have left
    with pytest.raises(Refused, match="This sweep needs 21: make it smaller"):
        spending.admit(ALICE, run(units=21, what="sweep"))
    spending.admit(ALICE, run(units=6)).release()  # exactly the rest fits


def test_no_limit_at_zero(tmp_path):
    spending = policy(tmp_path, runs_per_hour=0, daily_budget_usd=0)
    for _ in range(50):
        spending.admit(ALICE, run(units=4)).release()
    assert spending.left_today() is None


# -- the daily budget -----------------------------------------------------------------------


def test_the_daily_budget_is_for_everyone_and_resets_at_utc_midnight(tmp_path):
    clock = Clock(datetime(2026, 3, 14, 21, 30, tzinfo=timezone.utc).timestamp())
    spending = policy(tmp_path, clock, daily_budget_usd=0.10)
    assert spending.left_today() == 100_000
    spending.admit(ALICE, run()).release()
    spending.admit(BOB, run()).release()
    assert spending.left_today() == 100_000 - 2 * ONE_RUN
    with pytest.raises(Refused) as refused:
        spending.admit(Visitor.of("carol", None), run())
    message = refused.value.message
    assert "budget of about $0.10 a day for all visitors together" in message
    assert "does not fit in what is left today ($0.02)" in message
    assert "resets at 00:00 UTC (in 2 h 30 min)" in message and "own fal key still works" in message
    assert refused.value.title == "Today's budget is spent"
    clock.now = datetime(2026, 3, 15, 0, 0, 1, tzinfo=timezone.utc).timestamp()
    assert spending.left_today() == 100_000
    spending.admit(ALICE, run()).release()


def test_runs_on_a_visitors_key_or_the_local_backend_count_for_nothing(tmp_path):
    spending = policy(tmp_path, runs_per_hour=1, daily_budget_usd=0.05)
    spending.admit(ALICE, run()).release()
    for _ in range(5):  # own key (or local): no quota, no budget
        spending.admit(ALICE, run(units=4, micros=10 * ONE_RUN, counted=False)).release()
    assert spending.left_today() == 50_000 - ONE_RUN
    with pytest.raises(Refused):
        spending.admit(ALICE, run())


# -- concurrency and login ------------------------------------------------------------------


def test_a_visitor_has_at_most_the_concurrency_limit_in_flight_on_any_key(tmp_path):
    spending = policy(tmp_path, concurrency=1)
    with spending.admit(ALICE, run(counted=False)):
        with pytest.raises(Refused, match="already have 1 run in flight") as refused:
            spending.admit(ALICE, run())
        assert refused.value.title == "Too many runs at once"
        spending.admit(BOB, run()).release()
    assert spending.in_flight(ALICE) == 0
    ticket = spending.admit(ALICE, run())
    ticket.release()
    ticket.release()  # twice is once
    assert spending.in_flight(ALICE) == 0


def test_a_refused_charge_takes_no_slot(tmp_path):
    spending = policy(tmp_path, concurrency=1, runs_per_hour=1)
    spending.admit(ALICE, run()).release()
    with pytest.raises(Refused, match="per hour"):
        spending.admit(ALICE, run())
    assert spending.in_flight(ALICE) == 0


def test_the_server_key_can_be_kept_for_signed_in_visitors(tmp_path):
    spending = policy(tmp_path, require_login=True, login_offered=True)
    with pytest.raises(Refused) as refused:
        spending.admit(ALICE, run())
    assert "serves only visitors signed in with Hugging Face" in refused.value.message
    assert "Sign in with Hugging Face" in refused.value.message and "your own fal key" in refused.value.message
    spending.admit(Visitor.of("alice", "203.0.113.5"), run()).release()
    spending.admit(ALICE, run(counted=False)).release()  # their own key still works


# -- refunds, restarts, races ---------------------------------------------------------------


def test_a_refund_gives_back_at_most_what_was_charged(tmp_path):
    spending = policy(tmp_path, runs_per_hour=2, daily_budget_usd=1)
    ticket = spending.admit(ALICE, run(units=2, micros=2 * ONE_RUN))
    ticket.refund(1, ONE_RUN)
    assert spending.left_today() == MICROS - ONE_RUN
    spending.admit(ALICE, run()).release()  # the refunded unit is free again
    ticket.refund(5, 5 * ONE_RUN)  # only what is left of the charge
    ticket.release()
    assert spending.left_today() == MICROS - ONE_RUN


def test_the_counts_survive_a_restart(tmp_path):
    clock = Clock()
    policy(tmp_path, clock, runs_per_hour=2).admit(ALICE, run(units=2)).release()
    restarted = policy(tmp_path, clock, runs_per_hour=2, daily_budget_usd=1)
    with pytest.raises(Refused, match="per hour"):
        restarted.admit(ALICE, run())
    assert restarted.left_today() == MICROS - ONE_RUN


def _race(tmp_path: Path, visitors: list[Visitor], **limits) -> int:
    """Each thread, with its own policy on the one file, tries to take one run at once: the wins."""
    barrier = threading.Barrier(len(visitors))
    wins: list[int] = []

    def attempt(visitor: Visitor) -> None:
        spending = policy(tmp_path, **limits)
        barrier.wait()
        try:
            spending.admit(visitor, run()).release()
            wins.append(1)
        except Refused:
            pass

    threads = [threading.Thread(target=attempt, args=(v,)) for v in visitors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return len(wins)


def test_racing_for_the_last_unit_of_budget_exactly_one_wins(tmp_path):
    policy(tmp_path, daily_budget_usd=0.1).admit(ALICE, run()).release()  # $0.058 left: one run fits
    visitors = [Visitor.of(None, f"203.0.113.{i}") for i in range(8)]
    assert _race(tmp_path, visitors, daily_budget_usd=0.1) == 1


def test_racing_for_the_last_run_of_the_hour_exactly_one_wins(tmp_path):
    policy(tmp_path, runs_per_hour=5).admit(ALICE, run(units=4)).release()
    assert _race(tmp_path, [ALICE] * 8, runs_per_hour=5) == 1


def test_a_damaged_counter_file_stops_the_start_with_its_name(tmp_path):
    (tmp_path / DATABASE_NAME).write_bytes(b"not a database" * 100)
    with pytest.raises(StudioError, match="Cannot open the usage counters"):
        policy(tmp_path)


def test_the_outputs_cap_never_removes_the_counters(tmp_path):
    spending = policy(tmp_path, daily_budget_usd=1)
    spending.admit(ALICE, run()).release()
    old_run = tmp_path / "2026-03-01" / "120000-abcd"
    old_run.mkdir(parents=True)
    (old_run / "image-1.png").write_bytes(b"x" * 10_000)
    (old_run / "recipe.json").write_text(json.dumps({"request": {}}))
    os.utime(old_run, (NOON - 86400, NOON - 86400))
    enforce_cap(tmp_path, 1, now=NOON)
    assert not old_run.exists() and (tmp_path / DATABASE_NAME).is_file()
    assert spending.left_today() == MICROS - ONE_RUN
