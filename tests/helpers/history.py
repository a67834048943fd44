"""History as a browser holds it, for the unit tests: built as the page builds it."""

from __future__ import annotations

from ui.history import capped, new_entry


def add_entry(history: list[dict] | None, run: dict) -> list[dict]:
    """`history` with the finished `run` on top, as the page ends with it once the run has landed
    (ui/history.py new_entry, then the merge's cap); as it was if it holds the run already."""
    history = list(history or [])
    entry = new_entry(history, run)
    return capped([entry, *history]) if entry else history
