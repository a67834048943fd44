"""Driving a backend's run in a test: drained in a thread, bounded in time."""

from __future__ import annotations

import threading

BOUND_S = 30  # every run in the fault tests ends within this many seconds


def run_to_end(run, within: float = BOUND_S) -> tuple[list, BaseException | None]:
    """Drain a backend run in a thread: its events and the error it ended with.

    Fails the test if the run has not ended within `within` seconds.
    """
    events: list = []
    ended: list[BaseException | None] = []

    def drain() -> None:
        try:
            events.extend(run)
            ended.append(None)
        except BaseException as error:  # handed to the test
            ended.append(error)

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), f"the run did not end within {within} s"
    return events, ended[0]
