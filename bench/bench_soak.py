"""Soak benchmark: the hosted app under a steady load for minutes, against the fake fal server.

Run from the repository root:  python bench/bench_soak.py [--minutes 10] [--sessions 8]

The fake (tests/helpers/fake_fal/, in this process) and the app (`python app.py`, as the tests
start it, with GRADIO_TEMP_DIR set to a temp folder of its own) run on 127.0.0.1 only.
`--sessions` gradio_client sessions (one Client each, download_files=False) run edits back
to back for `--minutes`, each run with a 512x512 PNG reference of its session (fal's
smallest output size, so the outputs are 512x512 too) and a prompt of its own; after each
run the session fetches its result image from the app, as a browser would.

Every 10 s the app process is sampled from /proc: resident memory (VmRSS), open file
descriptors, threads, and the files in Gradio's cache folder. Figures:

  runs done, failed runs (target 0)
  RSS at the end / RSS after the first minute (the baseline, measured in the same run): <= 1.25
  RSS slope over the second half of the run, MiB/min (least squares), diagnostic
  open files at the end - after the first minute, diagnostic

The fake keeps a record of everything it serves; the benchmark drops records of jobs that
finished more than 30 s ago, so that its own memory stays flat (the app is not touched).
Other processes on a small shared machine slow the load down; the CPU they used during the
run is printed, from /proc/stat. Prints a table and writes bench/results/soak.json.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Local only: no proxy for 127.0.0.1, no analytics calls from Gradio or its client.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import httpx  # noqa: E402
from gradio_client import Client  # noqa: E402

from bench.bench_hosted import cpu_seconds, make_reference_png  # noqa: E402
from tests.helpers.api import edit_args  # noqa: E402  (the form's defaults, as the tests use them)
from tests.helpers.app import SERVER_KEY, launch_app, stop_app  # noqa: E402
from tests.helpers.fake_fal import FakeFal  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "soak.json"
SAMPLE_EVERY_S = 10.0
BASELINE_AT_S = 60.0
KEEP_FAKE_RECORDS_S = 30.0
RUN_TIMEOUT_S = 120.0
TARGETS = {
    "failed_runs": ("==", 0),
    "rss_ratio": ("<=", 1.25),
}


# ------------------------------------------------------------------------------ sampling
def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM in KiB and Threads, from /proc/<pid>/status."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM", "Threads"):
            out[name] = int(value.split()[0])
    return out


def count_files(folder: Path) -> int:
    return sum(len(files) for _root, _dirs, files in os.walk(folder))


def sample(pid: int, cache: Path, started: float, runs_done: int) -> dict:
    status = proc_status(pid)
    return {
        "t_s": round(time.perf_counter() - started, 2),
        "rss_mib": status["VmRSS"] / 1024,
        "hwm_mib": status["VmHWM"] / 1024,
        "threads": status["Threads"],
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "cache_files": count_files(cache),
        "runs_done": runs_done,
        "app_cpu_s": cpu_seconds(pid),
    }


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


def slope_per_minute(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, per minute."""
    if len(points) < 2:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    return 60 * sum((t - mean_t) * (v - mean_v) for t, v in points) / var


def prune_fake(fake: FakeFal, keep_s: float) -> None:
    """Forget jobs that finished more than keep_s ago, with their files and requests."""
    horizon = time.time() - keep_s
    with fake._lock:
        for job_id in [j.id for j in fake.jobs.values() if j.finished is not None and j.finished < horizon]:
            job = fake.jobs.pop(job_id)
            for item in (job.output or {}).get("images", []):
                fake.outputs.pop(item.get("file_name"), None)
                fake._files.pop(item.get("file_name"), None)
        fake.requests = [r for r in fake.requests if r.time >= horizon]


# ------------------------------------------------------------------------------ load
class Load:
    """`sessions` gradio_client sessions making runs back to back until stopped."""

    def __init__(self, app, references: list[Path]):
        self.app = app
        self.references = references
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.done = 0
        self.failed = 0
        self.errors: dict[str, int] = {}
        self.run_seconds: list[float] = []
        self.threads = [threading.Thread(target=self._session, args=(i,), daemon=True)
                        for i in range(len(references))]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=RUN_TIMEOUT_S + 10)

    def _count(self, error: str | None, seconds: float) -> None:
        with self.lock:
            if error is None:
                self.done += 1
                self.run_seconds.append(seconds)
            else:
                self.failed += 1
                self.errors[error] = self.errors.get(error, 0) + 1

    def _session(self, index: int) -> None:
        client = Client(self.app.url, verbose=False, download_files=False, analytics_enabled=False)
        reference = {"red": str(self.references[index])}
        run = 0
        try:
            with httpx.Client(timeout=60.0) as http:
                while not self.stop.is_set():
                    run += 1
                    started = time.perf_counter()
                    try:
                        job = client.submit(**edit_args(reference, prompt=f"soak session {index} run {run}"),
                                            api_name="/edit")
                        gallery, status, *_ = job.result(timeout=RUN_TIMEOUT_S)
                        if not status.startswith("✅ Done") or not gallery:
                            error = f"ended with: {status}"[:200]
                        else:
                            for item in gallery:
                                http.get(item["image"]["url"]).raise_for_status()
                            error = None
                    except Exception as exc:  # counted and reported, the session goes on
                        error = f"{type(exc).__name__}: {exc}"[:200]
                    self._count(error, time.perf_counter() - started)
        finally:
            client.close()


# ------------------------------------------------------------------------------ report
def meets(name: str, value: float) -> bool:
    op, limit = TARGETS[name]
    return {"<=": value <= limit, "<": value < limit, "==": value == limit}[op]


def table(r: dict) -> str:
    def target(name: str) -> str:
        op, limit = TARGETS[name]
        return f"{op} {limit}"

    def ok(name: str) -> str:
        return "yes" if meets(name, r[name]) else "NO"

    slope = r["rss_slope_second_half_mib_per_min"]
    rows = [
        ("load", f"{r['sessions']} sessions, {r['minutes']:g} min", "", ""),
        ("runs done", f"{r['runs_done']} ({r['runs_per_min']:.1f}/min)", "", ""),
        ("failed runs", str(r["failed_runs"]), target("failed_runs"), ok("failed_runs")),
        ("run time, median", f"{r['run_median_s']:.2f} s" if r["run_median_s"] is not None else "n/a", "", ""),
        (f"RSS after {BASELINE_AT_S:.0f} s (baseline)", f"{r['rss_baseline_mib']:.1f} MiB", "", ""),
        ("RSS at the end", f"{r['rss_end_mib']:.1f} MiB", "", ""),
        ("RSS end / baseline", f"{r['rss_ratio']:.3f}", target("rss_ratio"), ok("rss_ratio")),
        ("RSS slope, second half", "n/a" if slope is None else f"{slope:+.2f} MiB/min", "", ""),
        ("RSS peak (VmHWM)", f"{r['rss_peak_mib']:.1f} MiB", "", ""),
        ("RSS after 15 s idle", f"{r['rss_idle_mib']:.1f} MiB", "", ""),
        ("open files: baseline → end (max)", f"{r['fds_baseline']} → {r['fds_end']} ({r['fds_max']})", "", ""),
        ("open files growth", f"{r['fds_growth']:+d}", "", ""),
        ("threads: baseline → end", f"{r['threads_baseline']} → {r['threads_end']}", "", ""),
        ("files in Gradio's cache: baseline → end", f"{r['cache_baseline']} → {r['cache_end']}", "", ""),
        ("cache files per run", f"{r['cache_files_per_run']:.2f}", "", ""),
        ("app CPU per run", "n/a" if r["app_cpu_per_run_s"] is None else f"{r['app_cpu_per_run_s']:.3f} s", "", ""),
        ("CPU used by other processes", f"{r['other_cpu_share']:.0%} of the machine", "", ""),
    ]
    lines = ["| figure | value | target | ok |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the load runs (default 10)")
    parser.add_argument("--sessions", type=int, default=8, help="concurrent gradio_client sessions (default 8)")
    parser.add_argument("--job-seconds", type=float, default=1.0, help="each fake fal job's time (default 1.0)")
    args = parser.parse_args()
    duration = args.minutes * 60
    if duration <= BASELINE_AT_S:
        parser.error(f"--minutes must be more than {BASELINE_AT_S / 60:g}: the baseline is taken after a minute")

    results: dict = {"minutes": args.minutes, "sessions": args.sessions, "job_seconds": args.job_seconds,
                     "python": sys.version.split()[0], "cpus": os.cpu_count(), "loadavg_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp_name, \
            FakeFal(job_seconds=args.job_seconds, keys={SERVER_KEY}) as fake:
        tmp = Path(tmp_name)
        cache = tmp / "gradio-cache"
        references = [make_reference_png(tmp / f"reference-{i}.png", side=512) for i in range(args.sessions)]
        (tmp / "app").mkdir()
        app = launch_app(tmp / "app", fake, GRADIO_TEMP_DIR=str(cache))
        pid = app.process.pid
        load = Load(app, references)
        samples: list[dict] = []
        try:
            print(f"soak: {args.sessions} sessions for {args.minutes:g} min against {app.url} (pid {pid}) …",
                  flush=True)
            busy0, total0 = machine_cpu_seconds()
            bench_cpu0 = time.process_time()
            started = time.perf_counter()
            load.start()
            tick = 0
            while True:
                target = tick * SAMPLE_EVERY_S
                time.sleep(max(0.0, target - (time.perf_counter() - started)))
                samples.append(sample(pid, cache, started, load.done))
                s = samples[-1]
                print(f"  t={s['t_s']:6.0f} s  runs {s['runs_done']:5d}  failed {load.failed}  "
                      f"RSS {s['rss_mib']:7.1f} MiB  fds {s['fds']:4d}  threads {s['threads']:4d}  "
                      f"cache files {s['cache_files']:6d}", flush=True)
                prune_fake(fake, KEEP_FAKE_RECORDS_S)
                if target >= duration:
                    break
                tick += 1
            busy1, total1 = machine_cpu_seconds()
            bench_cpu1 = time.process_time()
            load.join()
            time.sleep(15)
            idle = sample(pid, cache, started, load.done)
        finally:
            stop_app(app)
        traceback_in_log = "Traceback" in app.log()

    baseline = next(s for s in samples if s["t_s"] >= BASELINE_AT_S - 0.5)
    end = samples[-1]
    second_half = [(s["t_s"], s["rss_mib"]) for s in samples if s["t_s"] >= duration / 2]
    app_cpu = (end["app_cpu_s"] - samples[0]["app_cpu_s"]) if end["app_cpu_s"] is not None else None
    busy, total = busy1 - busy0, total1 - total0
    other = max(0.0, busy - (app_cpu or 0.0) - (bench_cpu1 - bench_cpu0))
    runs_in_window = end["runs_done"]
    run_seconds = sorted(load.run_seconds)
    results.update({
        "runs_done": load.done,
        "failed_runs": load.failed,
        "errors": load.errors,
        "runs_per_min": runs_in_window / (duration / 60),
        "run_median_s": run_seconds[len(run_seconds) // 2] if run_seconds else None,
        "rss_baseline_mib": baseline["rss_mib"],
        "rss_end_mib": end["rss_mib"],
        "rss_ratio": end["rss_mib"] / baseline["rss_mib"],
        "rss_slope_second_half_mib_per_min": slope_per_minute(second_half),
        "rss_peak_mib": max(s["hwm_mib"] for s in samples + [idle]),
        "rss_idle_mib": idle["rss_mib"],
        "fds_baseline": baseline["fds"],
        "fds_end": end["fds"],
        "fds_max": max(s["fds"] for s in samples),
        "fds_growth": end["fds"] - baseline["fds"],
        "fds_idle": idle["fds"],
        "threads_baseline": baseline["threads"],
        "threads_end": end["threads"],
        "cache_baseline": baseline["cache_files"],
        "cache_end": end["cache_files"],
        "cache_files_per_run": (end["cache_files"] - baseline["cache_files"])
        / max(1, end["runs_done"] - baseline["runs_done"]),
        "app_cpu_per_run_s": app_cpu / runs_in_window if app_cpu is not None and runs_in_window else None,
        "machine_busy_share": busy / total if total else None,
        "other_cpu_share": other / total if total else 0.0,
        "loadavg_after": os.getloadavg(),
        "traceback_in_app_log": traceback_in_log,
        "samples": samples,
        "idle_sample": idle,
    })
    results["targets"] = {
        k: {"op": op, "limit": limit, "met": meets(k, results[k])} for k, (op, limit) in TARGETS.items()
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str))
    print()
    print(table(results))
    print()
    if load.errors:
        print(f"errors: {load.errors}")
    print(f"load average before {results['loadavg_before'][0]:.2f}, after {results['loadavg_after'][0]:.2f}; "
          f"traceback in the app's log: {traceback_in_log}")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
