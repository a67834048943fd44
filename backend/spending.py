"""Who may spend what: one policy, asked before any run or sweep is handed to a backend.

    policy = SpendingPolicy(Limits(runs_per_hour=20, daily_budget_usd=20), outputs / DATABASE_NAME)
    with policy.admit(Visitor.of(username, address), charge):    # raises Refused
        ...run it...                                            # the slot is freed at the end

- A visitor is the Hugging Face user when signed in, else the client address (an IPv6
  address by its /64 network: backend/client_address.py says why).
- A charge on the server's fal key (`Charge.counted`) counts against `runs_per_hour` per
  visitor over a rolling hour (every image made and every sweep cell is a run) and against
  `daily_budget_usd`, the estimated spend of all visitors together per UTC day. Both counts
  live in a small SQLite file, so they survive a restart; one `BEGIN IMMEDIATE` transaction
  checks both and records the charge, so two runs can never both take the last unit.
- Every run, on any key and either backend, takes one of its visitor's `concurrency` slots
  (kept in memory) until it ends, fails or is stopped.
- With `require_login`, the server's key serves only signed-in visitors.
- A run that fal refused without running it gives its charge back (`Ticket.refund`).

The estimate follows fal's billing rule for the FLUX.2 edit endpoints: per image made, the
output's megapixels plus each reference's, each rounded up and at least 1, times the price
per megapixel (1 MP = 1024 x 1024 pixels). References are sent at about 1 MP (they are
shrunk before sending), and "match image 1" makes about 1 MP.

Plain Python and the standard library's sqlite3: no gradio here (ui/spending_view.py is the page's side).
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .client_address import visitor_address
from .errors import StudioError
from .request import PRESET_SIZES, EditRequest

DATABASE_NAME = ".usage.sqlite3"  # in the outputs folder (its size cap walks run folders only)
MEGAPIXEL = 1024 * 1024
REFERENCE_PIXELS = MEGAPIXEL  # a reference as sent: shrunk to about this (backend/images.py TARGET_PIXELS)
MATCH_PIXELS = MEGAPIXEL  # "match image 1": the output is about the size of the shrunk image 1
HOUR, DAY = 3600.0, 86400.0
MICROS = 1_000_000  # costs are counted in millionths of a dollar: sums are exact
OWN_KEY = 'Your own fal key has no such limit: paste it under "Use your own fal key" (API: fal_key).'
_SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (
    id INTEGER PRIMARY KEY,
    visitor TEXT NOT NULL,
    at REAL NOT NULL,            -- when it was admitted (Unix time)
    units INTEGER NOT NULL,      -- runs: images made, sweep cells
    micros INTEGER NOT NULL      -- estimated cost in millionths of a dollar
);
CREATE INDEX IF NOT EXISTS charges_by_visitor ON charges (visitor, at);
CREATE INDEX IF NOT EXISTS charges_by_time ON charges (at);
"""


@dataclass(frozen=True)
class Limits:
    runs_per_hour: int = 20  # per visitor, on the server's key; 0: no limit
    concurrency: int = 2  # runs and sweeps of one visitor at once, any key; 0: no limit
    daily_budget_usd: float = 20.0  # all visitors together, per UTC day, on the server's key; 0: no cap
    price_per_mp: float = 0.021
    require_login: bool = False  # the server's key only for visitors signed in with Hugging Face
    login_offered: bool = False  # the page has a sign-in button

    @property
    def budget_micros(self) -> int:
        return round(self.daily_budget_usd * MICROS)


@dataclass(frozen=True)
class Visitor:
    id: str  # "hf:<user name>" or "ip:<address>" (ip:2001:db8:1:2::/64 for IPv6)
    signed_in: bool = False

    @classmethod
    def of(cls, username: str | None, address: str | None) -> Visitor:
        if username:
            return cls(f"hf:{username}", signed_in=True)
        return cls(f"ip:{visitor_address(address)}")  # an IPv6 address counts by its /64


@dataclass(frozen=True)
class Charge:
    """What one submission takes. `counted`: it runs on the server's fal key, so the
    hourly quota, the daily budget and the login rule apply; otherwise (the visitor's own
    key, the local backend) only the concurrency limit does."""

    units: int  # runs: images made, sweep cells
    micros: int  # the estimated cost
    counted: bool
    what: str = "run"  # "run" or "sweep", for the messages


class Refused(StudioError):
    """The policy refused a run before anything was sent; `title` heads the notice."""

    def __init__(self, message: str, title: str):
        super().__init__(message)
        self.title = title


class Busy(Refused):
    """Refused for now: the visitor's runs in flight fill their concurrency (a queued run waits)."""


# -- the cost estimate ------------------------------------------------------------------------


def megapixels(pixels: int) -> int:
    """Megapixels as fal bills them: rounded up, at least 1."""
    return max(1, math.ceil(pixels / MEGAPIXEL))


def output_pixels(image_size: Any) -> int:
    """The output's pixels: None (match image 1), a preset's name, or {width, height}."""
    if image_size is None:
        return MATCH_PIXELS
    if isinstance(image_size, str):
        width, height = PRESET_SIZES[image_size]
        return width * height
    if isinstance(image_size, dict):
        return int(image_size["width"]) * int(image_size["height"])
    return int(image_size.width) * int(image_size.height)


def image_megapixels(pixels: int, references: int) -> int:
    """The megapixels billed for one image made: its own plus each reference's."""
    return megapixels(pixels) + max(1, references) * megapixels(REFERENCE_PIXELS)


def cost_micros(megapixel_count: int, price_per_mp: float) -> int:
    return round(megapixel_count * price_per_mp * MICROS)


def estimate(requests: Iterable[EditRequest], price_per_mp: float) -> tuple[int, int]:
    """(runs, estimated cost in micro-dollars) of the requests: each image made is a run."""
    runs = megapixel_count = 0
    for request in requests:
        runs += request.num_images
        megapixel_count += request.num_images * image_megapixels(output_pixels(request.image_size),
                                                                 len(request.image_urls))
    return runs, cost_micros(megapixel_count, price_per_mp)


def usd(micros: int) -> str:
    """$0.04, $19.36, $20 (whole dollars without cents)."""
    text = f"${micros / MICROS:,.2f}"
    return text.removesuffix(".00")


def _wait(seconds: float) -> str:
    """'in 12 min', 'in 60 min', 'in 5 h 3 min', 'in 2 h'."""
    minutes = max(1, math.ceil(seconds / 60))
    if minutes <= 60:
        return f"in {minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"in {hours} h {minutes} min" if minutes else f"in {hours} h"


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%H:%M UTC")


# -- the policy -------------------------------------------------------------------------------


class Ticket:
    """An admitted run: `release()` frees its concurrency slot (also on leaving a `with`),
    `refund(units, micros)` gives back part of its charge (never more than it took)."""

    def __init__(self, policy: SpendingPolicy, visitor: Visitor, charge: Charge, row: int | None):
        self._policy, self._visitor, self._row = policy, visitor, row
        self._units, self._micros = (charge.units, charge.micros) if row is not None else (0, 0)
        self._lock = threading.Lock()
        self._released = False

    def refund(self, units: int, micros: int) -> None:
        with self._lock:
            units, micros = min(units, self._units), min(micros, self._micros)
            if self._row is None or (units <= 0 and micros <= 0):
                return
            self._units -= units
            self._micros -= micros
        self._policy._refund(self._row, units, micros)

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._policy._free_slot(self._visitor)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class SpendingPolicy:
    """The limits, the counters behind them (`database`, SQLite) and the slots in flight."""

    def __init__(self, limits: Limits, database: Path, clock: Callable[[], float] = time.time):
        self.limits, self.database, self._clock = limits, Path(database), clock
        self._slots: dict[str, int] = {}
        self._slots_lock = threading.Lock()
        try:
            with self._connection() as db:
                db.executescript(_SCHEMA)
        except sqlite3.Error as error:
            raise StudioError(f"Cannot open the usage counters in {self.database}: {error}") from None

    @property
    def budget_cap(self) -> bool:
        return self.limits.daily_budget_usd > 0

    def admit(self, visitor: Visitor, charge: Charge) -> Ticket:
        """Take a slot and, for a counted charge, record it; or raise Refused (nothing taken)."""
        if charge.counted and self.limits.require_login and not visitor.signed_in:
            raise Refused(self._login_message(), "Please sign in")
        self._take_slot(visitor)
        try:
            limited = self.limits.runs_per_hour or self.budget_cap
            row = self._record(visitor, charge) if charge.counted and limited else None
        except BaseException:
            self._free_slot(visitor)
            raise
        return Ticket(self, visitor, charge, row)

    def left_today(self) -> int | None:
        """What is left of today's budget (micro-dollars), or None without a cap (or when the
        counters cannot be read just now: the page then leaves it out)."""
        if not self.budget_cap:
            return None
        try:
            with self._connection() as db:
                spent = self._spent_today(db, self._clock())
        except sqlite3.Error:
            return None
        return max(0, self.limits.budget_micros - spent)

    def in_flight(self, visitor: Visitor) -> int:
        with self._slots_lock:
            return self._slots.get(visitor.id, 0)

    # -- concurrency slots (in memory) ---------------------------------------------------------

    def _take_slot(self, visitor: Visitor) -> None:
        limit = self.limits.concurrency
        with self._slots_lock:
            running = self._slots.get(visitor.id, 0)
            if limit and running >= limit:
                raise Busy(
                    f"You already have {running} run{'s' if running != 1 else ''} in flight (a sweep counts as one), "
                    f"the most one visitor may have at once. Wait for one to finish, or stop it, then run again.",
                    "Too many runs at once",
                )
            self._slots[visitor.id] = running + 1

    def _free_slot(self, visitor: Visitor) -> None:
        with self._slots_lock:
            running = self._slots.get(visitor.id, 0) - 1
            if running > 0:
                self._slots[visitor.id] = running
            else:
                self._slots.pop(visitor.id, None)

    # -- the counters (SQLite) -----------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A connection of its own (any thread may admit), closed after use. Autocommit:
        transactions are begun explicitly (BEGIN IMMEDIATE)."""
        with closing(sqlite3.connect(self.database, timeout=30, isolation_level=None)) as db:
            yield db

    def _record(self, visitor: Visitor, charge: Charge) -> int:
        """Check the hourly quota and the daily budget and record the charge, in one
        transaction that holds the database's write lock from its first read."""
        now = self._clock()
        try:
            with self._connection() as db:
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.execute("DELETE FROM charges WHERE at <= ?", (now - 2 * DAY,))
                    self._check_quota(db, visitor, charge, now)
                    self._check_budget(db, charge, now)
                    row = db.execute("INSERT INTO charges (visitor, at, units, micros) VALUES (?, ?, ?, ?)",
                                     (visitor.id, now, charge.units, charge.micros)).lastrowid
                    db.execute("COMMIT")
                finally:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
        except sqlite3.Error:  # fail closed: a run the counters cannot record is not run
            raise StudioError("Could not check this server's limits; try again in a moment.") from None
        return int(row or 0)

    def _check_quota(self, db: sqlite3.Connection, visitor: Visitor, charge: Charge, now: float) -> None:
        limit = self.limits.runs_per_hour
        if not limit:
            return
        rows = db.execute("SELECT at, units FROM charges WHERE visitor = ? AND at > ? ORDER BY at",
                          (visitor.id, now - HOUR)).fetchall()
        used = sum(units for _, units in rows)
        if used + charge.units <= limit:
            return
        head = (f"Runs on this server's fal key are limited to {limit} per hour for each visitor "
                "(each image and each sweep cell counts).")
        if charge.units > limit:
            raise Refused(f"{head} This {charge.what} needs {charge.units}: make it smaller. {OWN_KEY}",
                          "Hourly limit reached")
        ready = now
        for at, units in rows:  # the runs leave the window one by one, oldest first
            used -= units
            ready = at + HOUR
            if used + charge.units <= limit:
                break
        left = max(0, limit - sum(units for _, units in rows))
        needs = f" this {charge.what} needs {charge.units}," if charge.units > 1 else ""
        raise Refused(
            f"{head} You have {left} left;{needs} your next {charge.what} is possible at {_clock(ready)} "
            f"({_wait(ready - now)}). {OWN_KEY}",
            "Hourly limit reached",
        )

    def _check_budget(self, db: sqlite3.Connection, charge: Charge, now: float) -> None:
        if not self.budget_cap:
            return
        budget = self.limits.budget_micros
        left = budget - self._spent_today(db, now)
        if charge.micros <= left:
            return
        reset = (now // DAY + 1) * DAY
        raise Refused(
            f"This server's fal key has a budget of about {usd(budget)} a day for all visitors together, and "
            f"this {charge.what} (about {usd(charge.micros)}) does not fit in what is left today "
            f"({usd(max(0, left))}). The budget resets at 00:00 UTC ({_wait(reset - now)}). "
            'Your own fal key still works: paste it under "Use your own fal key".',
            "Today's budget is spent",
        )

    @staticmethod
    def _spent_today(db: sqlite3.Connection, now: float) -> int:
        midnight = now // DAY * DAY  # Unix time counts 86400 s a day: UTC midnight
        (spent,) = db.execute("SELECT COALESCE(SUM(micros), 0) FROM charges WHERE at >= ?", (midnight,)).fetchone()
        return int(spent)

    def _refund(self, row: int, units: int, micros: int) -> None:
        try:
            with self._connection() as db:
                db.execute("UPDATE charges SET units = MAX(0, units - ?), micros = MAX(0, micros - ?) WHERE id = ?",
                           (units, micros, row))
        except sqlite3.Error:
            pass  # a refund that cannot be written leaves the charge counted: the safe side

    def _login_message(self) -> str:
        where = "Sign in with Hugging Face (the button at the top of the page), or paste" if self.limits.login_offered \
            else "Paste"
        return (f"This server's fal key serves only visitors signed in with Hugging Face. {where} your own fal key "
                'under "Use your own fal key".')
