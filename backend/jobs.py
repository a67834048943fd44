"""A visitor's queue of runs: jobs that run on the server, apart from any page.

    board = JobBoard()
    job = board.submit(owner, "make it blue", thumb, work)   # raises QueueFull
    board.jobs(owner)          # snapshots, in the order they were queued
    board.cancel(owner, job.id)
    board.deliver(owner)       # the finished jobs' results, each handed out once

`owner` is an unguessable token the visitor's browser keeps (ui/queue_view.py), so a
job outlives the page that queued it: after a reload the page asks for its jobs again,
and a result that finished while no page was open is handed to the next one that asks.
Another visitor, not knowing the token, can neither see nor cancel them.

`work(control)` is a generator run in a thread of the job's own: it yields status
texts and returns the job's result; raising a StudioError fails the job with its
message. Jobs of one owner start in the order they were queued: each waits until the
jobs before it have started (`control.started()`, which the work calls once it holds
its slot, or its end). So when the work waits for a slot of its own (the visitor's
concurrency, the GPU), the jobs behind it wait in line. Cancelling a job that has not
started ends it at once; a running one is closed at its next status (closing the
work's generator is how a run is stopped: the backend cancels its fal job).

Plain Python: no gradio here.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import StudioError

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, STOPPED = "queued", "running", "done", "failed", "stopped"
FINISHED = (DONE, FAILED, STOPPED)

Work = Callable[["JobControl"], Generator[str, None, Any]]


class QueueFull(StudioError):
    """The owner (or the server) has as many unfinished jobs as it may."""


@dataclass
class Job:
    """One queued run, as the board keeps it (read it through `JobBoard.jobs`, a snapshot)."""

    id: str
    owner: str
    title: str  # the instruction, for the panel
    thumb: Any  # a picture to show for it until it has a result (the page's: a small image 1), or None
    created: float
    state: str = QUEUED
    status: str = "Queued"  # the last status text (a failed job's: why)
    result: Any = None  # what the work returned, once done
    delivered: bool = False  # its result has been handed to a page (`deliver`)
    started: bool = False  # it left the line (holds its slot, or ended)
    finished: float | None = None  # when it ended
    visitor: str | None = None  # who queued it (limits: `JobBoard.submit`)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)


def undelivered(job: Job) -> bool:
    """Done, and its result not yet handed to a page."""
    return job.state == DONE and not job.delivered


def awaited(job: Job) -> bool:
    """Still of interest to the page: unfinished, or done and not yet handed over."""
    return job.state not in FINISHED or undelivered(job)


class JobControl:
    """What a job's work may use: whether it was cancelled, and `started()` once it holds its slot."""

    def __init__(self, board: JobBoard, job: Job):
        self._board, self._job = board, job

    @property
    def cancelled(self) -> bool:
        return self._job.cancel.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep `seconds`; True unless the job was cancelled meanwhile."""
        return not self._job.cancel.wait(seconds)

    def started(self) -> None:
        self._board._mark_started(self._job)


class JobBoard:
    """Every owner's jobs. `per_owner`: unfinished jobs one owner may have; `total`: on the
    whole server (each is a thread, mostly waiting); `kept`: finished jobs kept per owner, and
    none longer than `kept_seconds` (a result no page came back for is in the outputs folder)."""

    def __init__(self, per_owner: int = 20, total: int = 200, kept: int = 30, kept_seconds: float = 86_400):
        self.per_owner, self.total, self.kept, self.kept_seconds = per_owner, total, kept, kept_seconds
        self._jobs: dict[str, list[Job]] = {}
        self._changed = threading.Condition()  # guards _jobs; notified on every change
        self._version = 0

    @staticmethod
    def new_owner() -> str:
        return secrets.token_urlsafe(18)

    def submit(self, owner: str, title: str, thumb: Any, work: Work, visitor: str | None = None) -> Job:
        """Queue `work` for `owner`. `visitor` (who is asking: the signed-in user or the address)
        is held to the same limit as an owner, so that many tokens from one visitor cannot fill
        the server's queue."""
        if not owner:
            raise ValueError("a job needs its owner's token")
        with self._changed:
            unfinished = [j for jobs in self._jobs.values() for j in jobs if j.state not in FINISHED]
            mine = sum(1 for j in unfinished if j.owner == owner or (visitor and j.visitor == visitor))
            if mine >= self.per_owner:
                raise QueueFull(f"Your queue holds at most {self.per_owner} runs that have not finished. "
                                "Wait for some to finish, or cancel some.")
            if len(unfinished) >= self.total:
                raise QueueFull(f"The server's queue is full ({self.total} runs waiting). Try again in a while.")
            job = Job(id=secrets.token_hex(8), owner=owner, title=title, thumb=thumb, created=time.time(),
                      visitor=visitor)
            self._jobs.setdefault(owner, []).append(job)
            self._touch()
        threading.Thread(target=self._run, args=(job, work), name=f"studio-job-{job.id}", daemon=True).start()
        return job

    def jobs(self, owner: str) -> list[Job]:
        """Snapshots of the owner's jobs, oldest first (the panel shows them in queue order)."""
        with self._changed:
            return [replace(job) for job in self._jobs.get(owner, [])]

    def version(self) -> int:
        """Changes whenever any job changes: a page redraws its panel only then."""
        return self._version

    def ahead(self, owner: str, job_id: str) -> int:
        """How many of the owner's jobs are still in line before this one."""
        with self._changed:
            return self._ahead(owner, job_id)

    def cancel(self, owner: str, job_id: str) -> bool:
        """Cancel one of the owner's unfinished jobs; False when it has no such job."""
        with self._changed:
            job = self._find(owner, job_id)
            if job is None or job.state in FINISHED:
                return False
            job.cancel.set()
            if job.state == QUEUED:
                self._end(job, STOPPED, "Cancelled before it started")
            else:
                job.status = "Stopping…"
                self._touch()
            return True

    def clear_finished(self, owner: str) -> None:
        """Forget the owner's finished jobs (their results are in History; a result no page has
        taken yet is kept for one)."""
        with self._changed:
            waiting = [j for j in self._jobs.get(owner, []) if awaited(j)]
            self._set(owner, waiting)

    def deliver(self, owner: str) -> list[Any]:
        """The results of the owner's jobs that finished since the last call (oldest first)."""
        with self._changed:
            fresh = [j for j in self._jobs.get(owner, []) if undelivered(j)]
            for job in fresh:
                job.delivered = True
            if fresh:
                self._touch()
            return [job.result for job in fresh]

    # -- the job's thread ---------------------------------------------------------------------

    def _run(self, job: Job, work: Work) -> None:
        with self._changed:  # in line: the owner's jobs start in the order they were queued
            while job.state == QUEUED and self._ahead(job.owner, job.id):
                self._changed.wait(1.0)
            if job.state != QUEUED:  # cancelled while waiting
                return
            job.status = "Waiting for a free slot…"  # queued until the work holds its slot (`started`)
            self._touch()
        steps = work(JobControl(self, job))
        try:
            while True:
                if job.cancel.is_set():
                    steps.close()  # the run's own `finally` cancels what it started
                    self._end(job, STOPPED, "Stopped")
                    return
                try:
                    status = next(steps)
                except StopIteration as done:
                    if job.cancel.is_set() and done.value is None:  # it saw the cancel first
                        self._end(job, STOPPED, "Stopped")
                    else:
                        self._end(job, DONE, "Done", result=done.value)
                    return
                with self._changed:
                    if job.state == RUNNING:
                        job.status = str(status)
                        self._touch()
        except Exception as error:
            if job.cancel.is_set():  # whatever the cancel interrupted
                self._end(job, STOPPED, "Stopped")
            elif isinstance(error, StudioError):
                self._end(job, FAILED, error.message)
            else:  # a bug: the job fails, the server and the other jobs go on
                log.exception("queued job %s failed", job.id)
                self._end(job, FAILED, "The run failed unexpectedly (see the server's log).")

    def _end(self, job: Job, state: str, status: str, result: Any = None) -> None:
        with self._changed:
            if job.state in FINISHED:
                return
            job.state, job.status, job.result, job.started = state, status, result, True
            job.finished = time.time()
            self._drop_old(job.owner)
            self._touch()

    def _mark_started(self, job: Job) -> None:
        with self._changed:
            if not job.started:
                job.started = True
                if job.state == QUEUED:
                    job.state, job.status = RUNNING, "Starting…"
                self._touch()

    # -- under the lock -----------------------------------------------------------------------

    def _ahead(self, owner: str, job_id: str) -> int:
        count = 0
        for job in self._jobs.get(owner, []):
            if job.id == job_id:
                return count
            count += not job.started and job.state not in FINISHED
        return 0

    def _find(self, owner: str, job_id: str) -> Job | None:
        return next((j for j in self._jobs.get(owner, []) if j.id == job_id), None)

    def _drop_old(self, owner: str) -> None:
        """Keep the newest `kept` finished jobs that no page waits for (an undelivered result
        waits for one), and no finished job older than `kept_seconds`."""
        jobs = self._jobs.get(owner, [])
        old = [j for j in jobs if not awaited(j)]
        extra = {j.id for j in old[:max(0, len(old) - self.kept)]}
        too_old = time.time() - self.kept_seconds
        extra |= {j.id for j in jobs if j.finished is not None and j.finished < too_old}
        if extra:
            self._set(owner, [j for j in jobs if j.id not in extra])

    def _set(self, owner: str, jobs: list[Job]) -> None:
        if jobs:
            self._jobs[owner] = jobs
        else:
            self._jobs.pop(owner, None)
        self._touch()

    def _touch(self) -> None:
        self._version += 1
        self._changed.notify_all()
