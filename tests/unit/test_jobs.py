"""The queue of runs (backend/jobs.py): order, cancel, failure, owners kept apart, limits."""

from __future__ import annotations

import threading
import time

import pytest

from backend.errors import StudioError
from backend.jobs import DONE, FAILED, QUEUED, RUNNING, STOPPED, JobBoard, QueueFull


def wait_for(condition, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return False


class Runs:
    """Work functions that hold a slot of `slots` (like the visitor's concurrency) and run until released."""

    def __init__(self, slots: int = 1):
        self.slots = threading.Semaphore(slots)
        self.release: dict[str, threading.Event] = {}
        self.started: list[str] = []
        self.closed: list[str] = []

    def work(self, name: str, fail: bool = False):
        gate = self.release.setdefault(name, threading.Event())

        def run(control):
            while not self.slots.acquire(timeout=0.05):  # waits in line for a slot
                if control.cancelled:
                    return None
            try:
                control.started()
                self.started.append(name)
                yield f"running {name}"
                while not gate.wait(0.02):
                    yield f"still {name}"
                if fail:
                    raise StudioError(f"{name} failed: fal refused the LoRA")
                return {"name": name}
            except GeneratorExit:
                self.closed.append(name)
                raise
            finally:
                self.slots.release()

        return run


def states(board, owner):
    return [(j.title, j.state) for j in board.jobs(owner)]


def test_queued_runs_start_in_order_one_failing_and_one_cancelled_leave_the_rest():
    board, runs = JobBoard(), Runs(slots=1)
    jobs = [board.submit("me", name, None, runs.work(name, fail=name == "b")) for name in "abcde"]
    assert wait_for(lambda: runs.started == ["a"])
    assert [j.state for j in board.jobs("me")] == [RUNNING, QUEUED, QUEUED, QUEUED, QUEUED]
    assert board.ahead("me", jobs[3].id) == 2  # "b" and "c" are in line before "d"
    assert board.cancel("me", jobs[3].id)  # "d", still in line: ends at once
    assert states(board, "me")[3] == ("d", STOPPED)
    for name in "abce":
        runs.release[name].set()
    assert wait_for(lambda: all(j.state in (DONE, FAILED, STOPPED) for j in board.jobs("me")))
    assert runs.started == ["a", "b", "c", "e"]  # in the order queued; "d" never started
    assert states(board, "me") == [("a", DONE), ("b", FAILED), ("c", DONE), ("d", STOPPED), ("e", DONE)]
    assert "fal refused the LoRA" in board.jobs("me")[1].status
    assert board.deliver("me") == [{"name": "a"}, {"name": "c"}, {"name": "e"}]
    assert board.deliver("me") == []  # each result is handed out once
    board.clear_finished("me")  # the failed and the stopped one go too
    assert board.jobs("me") == []


def test_cancelling_a_running_run_closes_its_work_and_leaves_the_others():
    board, runs = JobBoard(), Runs(slots=2)
    first = board.submit("me", "a", None, runs.work("a"))
    board.submit("me", "b", None, runs.work("b"))
    assert wait_for(lambda: sorted(runs.started) == ["a", "b"])  # two slots: both run at once
    assert board.cancel("me", first.id)
    assert wait_for(lambda: states(board, "me")[0] == ("a", STOPPED))
    assert runs.closed == ["a"]  # closed: a run's own `finally` cancels its fal job
    runs.release["b"].set()
    assert wait_for(lambda: states(board, "me")[1] == ("b", DONE))
    assert not board.cancel("me", first.id)  # already finished


def test_another_owner_neither_sees_nor_cancels_my_runs():
    board, runs = JobBoard(), Runs(slots=1)
    mine = board.submit("me", "a", None, runs.work("a"))
    assert board.jobs("someone else") == [] and board.deliver("someone else") == []
    assert not board.cancel("someone else", mine.id)
    assert board.jobs("me")[0].state in (QUEUED, RUNNING)
    runs.release["a"].set()
    assert wait_for(lambda: states(board, "me") == [("a", DONE)])
    assert len(JobBoard.new_owner()) >= 24 and JobBoard.new_owner() != JobBoard.new_owner()


def test_the_queue_is_bounded_per_owner_and_on_the_server_with_the_limit_named():
    board, runs = JobBoard(per_owner=2, total=3), Runs(slots=0)
    board.submit("me", "a", None, runs.work("a"))
    board.submit("me", "b", None, runs.work("b"))
    with pytest.raises(QueueFull, match="at most 2 runs"):
        board.submit("me", "c", None, runs.work("c"))
    board.submit("you", "d", None, runs.work("d"))
    with pytest.raises(QueueFull, match=r"server's queue is full \(3 runs"):
        board.submit("them", "e", None, runs.work("e"))
    for job in board.jobs("me") + board.jobs("you"):
        board.cancel(job.owner, job.id)
    board.submit("them", "e", None, runs.work("e"))  # cancelled runs free their places
    # One visitor with many tokens is held to one token's limit.
    crowded = JobBoard(per_owner=2, total=100)
    crowded.submit("token-1", "a", None, runs.work("a"), visitor="ip:203.0.113.9")
    crowded.submit("token-2", "b", None, runs.work("b"), visitor="ip:203.0.113.9")
    with pytest.raises(QueueFull, match="at most 2 runs"):
        crowded.submit("token-3", "c", None, runs.work("c"), visitor="ip:203.0.113.9")
    crowded.submit("token-4", "d", None, runs.work("d"), visitor="ip:198.51.100.7")  # someone else
    for each, owner in [(board, "them"), *[(crowded, f"token-{n}") for n in (1, 2, 4)]]:
        for job in each.jobs(owner):  # no run is left waiting for a slot that never comes
            each.cancel(owner, job.id)


def test_a_bug_in_one_run_fails_it_alone():
    board, runs = JobBoard(), Runs(slots=1)

    def broken(control):
        yield "starting"
        raise KeyError("oops")

    board.submit("me", "broken", None, broken)
    board.submit("me", "fine", None, runs.work("fine"))
    runs.release["fine"].set()
    assert wait_for(lambda: states(board, "me") == [("broken", FAILED), ("fine", DONE)])
    assert "failed unexpectedly" in board.jobs("me")[0].status and "oops" not in board.jobs("me")[0].status


def test_finished_runs_are_kept_until_handed_out_and_then_only_the_newest():
    board = JobBoard(kept=2)

    def quick(control):
        control.started()
        return {"done": True}
        yield  # a generator

    for name in "abcd":
        board.submit("me", name, None, quick)
        assert wait_for(lambda: all(j.state == DONE for j in board.jobs("me")))
    assert len(board.jobs("me")) == 4  # none handed out yet: all wait for a page
    assert len(board.deliver("me")) == 4
    board.submit("me", "e", None, quick)
    assert wait_for(lambda: board.jobs("me")[-1].state == DONE)
    assert [j.title for j in board.jobs("me")][-1] == "e" and len(board.jobs("me")) <= 3
    board.deliver("me")
    board.clear_finished("me")
    assert board.jobs("me") == []
