"""Benchmark of the hosted app against the fake fal server (tests/helpers/fake_fal/).

Run from the repository root:  python bench/bench_hosted.py

Absolute times on a laptop, a CI box and a 2-core VM differ a lot, so every figure
with a target is a ratio against a baseline measured in the same run, on the same
machine, or a figure with a fixed floor set by the fake (its job takes exactly 1 s):

(a) Overhead of one run.  The app's full path, `gradio_client` -> Gradio -> the app
    -> fal-client (stream transport) -> fake fal, with one ~1 MP PNG reference and the
    form's default settings, against a bare `fal_client.SyncClient.subscribe` of the
    very same payload (the reference prepared with `backend.images.prepare_reference`
    and sent as a data URI, `backend.fal.fal_arguments(build_request(...), FalOptions(), ...)`),
    followed by an httpx GET of the result image, so that both read the reference
    file, send the same bytes and bring the result back.  Preparing the reference is
    inside the timed part of both.  Both fetch the result image with the same code
    (one httpx.Client per run): the gradio_client runs with download_files=False,
    because gradio_client 2.7.2 opens a new httpx client (a new TLS context, ~25 ms
    of CPU) for every file it downloads, previews included, which is the client's
    cost, not the app's.  One warm-up each, then N=7 alternating runs of each;
    medians and app/bare.  The fake's queue starts a job at submit
    (`queue_polls = 0`), so the bare path waits for no extra poll.  Target <= 1.05.
    Per-run phases (before fal / at fal / after fal) come from the fake's records,
    and the app process's CPU seconds per run from /proc (Linux only).

(b) Concurrency.  32 runs started together through the app (4 gradio_client Clients,
    8 jobs each, 32 threads released by a barrier); the makespan from the first
    submit to the last result image fetched (one shared keep-alive httpx.Client,
    as a browser would).  Every job waits 1 s at the fake, so a perfectly
    concurrent app is a little over 1 s.  Target < 1.5 s, 0 failures.  For scale,
    the same 32 runs made straight with fal-client (stream, as the app does) are
    measured first: that floor is what the fake and this process cost on this
    machine (the fake renders and encodes a 1 MP image per job, in this process).

(c) Upload size.  A photo-like 24 MP (6000x4000) JPEG made in code (smooth colour
    gradients plus film grain, quality 92: several MB like a camera file) is run
    through the app once; the body bytes of every request the fake receives during
    that run (submit/stream POST, storage token, uploads) are summed and compared
    with the file's size.  Target < 10 %.

(d) Start-up.  `python app.py` from process start to the first HTTP 200 on `/`,
    against a bare Gradio hello-world (gr.Blocks with one Textbox, launch()), both
    as subprocesses polled every 50 ms.  One warm-up each, then 3 alternating runs
    of each; medians and app/hello.  Target <= 1.3.

Everything talks to 127.0.0.1 only.  Prints a table and writes
bench/results/hosted.json (figures, targets, raw samples).
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

import json  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import fal_client  # noqa: E402
import httpx  # noqa: E402
from gradio_client import Client  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from backend.fal import DEFAULT_ENDPOINT, FalOptions, FalSettings, fal_arguments  # noqa: E402
from backend.images import prepare_reference  # noqa: E402
from backend.request import build_request  # noqa: E402
from tests.helpers.api import edit_args  # noqa: E402  (the form's defaults, as the tests use them)
from tests.helpers.app import SERVER_KEY, free_port, launch_app, stop_app  # noqa: E402
from tests.helpers.fake_fal import FakeFal, point_fal_client_at  # noqa: E402

JOB_SECONDS = 1.0
RUNS_A = 7
CONCURRENT_B = 32
CLIENTS_B = 4
RUNS_D = 5
POLL_D = 0.05
PROMPT = "make this donut realistic"
RESULTS = ROOT / "bench" / "results" / "hosted.json"

TARGETS = {
    "a_ratio": ("<=", 1.05),
    "b_makespan_s": ("<", 1.5),
    "b_failed": ("==", 0),
    "c_ratio": ("<", 0.10),
    "d_ratio": ("<=", 1.3),
}


# ------------------------------------------------------------------------------ inputs
def make_reference_png(path: Path, side: int = 1024) -> Path:
    """A PNG graphic (1024x1024 = ~1 MP by default): gradients and a donut; it travels inline."""
    corners = Image.new("RGB", (2, 2))
    corners.putdata([(220, 80, 60), (60, 120, 220), (240, 200, 80), (40, 160, 90)])
    image = corners.resize((side, side), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    k = side / 1024
    draw.ellipse((262 * k, 262 * k, 762 * k, 762 * k), fill=(250, 220, 60), outline=(30, 30, 30), width=12)
    draw.ellipse((432 * k, 432 * k, 592 * k, 592 * k), fill=(120, 70, 40))
    image.save(path)
    return path


def make_photo_jpeg(path: Path, size: tuple[int, int] = (6000, 4000)) -> Path:
    """A photo-like 24 MP JPEG: a small random image upscaled bicubically, plus film grain."""
    rng = random.Random(24)
    small = Image.new("RGB", (12, 8))
    small.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(12 * 8)])
    base = small.resize(size, Image.Resampling.BICUBIC)
    grain = Image.effect_noise(size, 40).convert("RGB")
    Image.blend(base, grain, 0.12).save(path, quality=92)
    return path


# ------------------------------------------------------------------------------ helpers
def median(values: list[float]) -> float:
    return statistics.median(values)


def new_jobs(fake: FakeFal, before: set[str]) -> list:
    with fake._lock:
        return [job for job_id, job in fake.jobs.items() if job_id not in before]


def phases(job, started: float, ended: float) -> dict[str, float]:
    """Wall-clock split of one run: before the request reached fal, at fal, after fal finished."""
    finished = job.finished or ended
    return {
        "before_fal_s": job.created - started,
        "at_fal_s": finished - job.created,
        "after_fal_s": ended - finished,
    }


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gradio_client(app) -> Client:
    return Client(app.url, verbose=False, download_files=False, analytics_enabled=False)


def fetch(urls: list[str], http: httpx.Client | None = None) -> list[bytes]:
    """GET every result image, with `http` or a client of its own (as the app's backend does)."""
    if http is None:
        with httpx.Client(timeout=60.0) as own:
            return fetch(urls, own)
    return [http.get(url).raise_for_status().content for url in urls]


def app_run(client: Client, ref: Path, http: httpx.Client | None = None) -> tuple[str, list[bytes]]:
    """One edit through the app; returns the status line and the result images' bytes."""
    gallery, status, *_ = client.predict(**edit_args({"red": str(ref)}), api_name="/edit")
    return status, fetch([item["image"]["url"] for item in gallery or []], http)


def bare_payload(ref: Path) -> dict:
    """The arguments the app sends for `ref` with the form's defaults, built the same way."""
    prepared = prepare_reference(str(ref), "image 1")
    assert len(prepared.data) <= FalSettings().inline_max_bytes, "the reference should travel inline"
    return fal_arguments(build_request(prompt=PROMPT, image_urls=[str(ref)]), FalOptions(), [prepared.data_uri()])


def bare_run(ref: Path, stream: bool = False, http: httpx.Client | None = None) -> list[bytes]:
    """What a script using fal-client directly would do for the same edit."""
    payload = bare_payload(ref)
    client = fal_client.SyncClient(key=SERVER_KEY, default_timeout=60.0)
    try:
        if stream:
            output = None
            for event in client.stream(DEFAULT_ENDPOINT, payload):
                output = event
        else:
            output = client.subscribe(DEFAULT_ENDPOINT, payload)
    finally:
        own = client.__dict__.get("_client")
        if own is not None:
            own.close()
    return fetch([item["url"] for item in output["images"]], http)


# ------------------------------------------------------------------------------ (a)
def bench_overhead(app, fake: FakeFal, ref: Path) -> dict:
    client = gradio_client(app)
    samples: dict[str, list] = {"app": [], "bare": []}

    def timed(kind: str) -> dict:
        before = set(fake.jobs)
        cpu0 = cpu_seconds(app.process.pid)
        wall0, t0 = time.time(), time.perf_counter()
        if kind == "app":
            status, images = app_run(client, ref)
            assert status.startswith("✅ Done") and len(images) == 1, status
        else:
            assert len(bare_run(ref)) == 1
        seconds = time.perf_counter() - t0
        cpu1 = cpu_seconds(app.process.pid)
        [job] = new_jobs(fake, before)
        sample = {"seconds": seconds, **phases(job, wall0, wall0 + seconds), "job": job}
        if kind == "app" and cpu0 is not None and cpu1 is not None:
            sample["app_cpu_s"] = cpu1 - cpu0
        return sample

    warm = {kind: timed(kind) for kind in ("app", "bare")}  # warm-up: imports, caches, connections
    same_payload = warm["app"]["job"].input == warm["bare"]["job"].input
    for _ in range(RUNS_A):
        for kind in ("app", "bare"):
            sample = timed(kind)
            sample.pop("job")
            samples[kind].append(sample)
    app_s = median([s["seconds"] for s in samples["app"]])
    bare_s = median([s["seconds"] for s in samples["bare"]])
    phase_medians = {
        kind: {p: median([s[p] for s in samples[kind]]) for p in ("before_fal_s", "at_fal_s", "after_fal_s")}
        for kind in samples
    }
    cpu = [s["app_cpu_s"] for s in samples["app"] if "app_cpu_s" in s]
    return {
        "a_app_median_s": app_s, "a_bare_median_s": bare_s, "a_ratio": app_s / bare_s,
        "a_app_cpu_per_run_s": median(cpu) if cpu else None,
        "a_same_payload": same_payload, "a_phase_medians": phase_medians, "a_samples": samples,
        "a_app_transport": warm["app"]["job"].transport, "a_bare_transport": warm["bare"]["job"].transport,
    }


# ------------------------------------------------------------------------------ (b)
def all_at_once(run) -> list[dict]:
    """Call run() from CONCURRENT_B threads released together; times relative to the first start."""
    barrier = threading.Barrier(CONCURRENT_B)

    def one(index: int) -> dict:
        barrier.wait()
        started = time.perf_counter()
        try:
            error = run(index)
        except Exception as exc:  # counted as a failure, reported
            error = f"{type(exc).__name__}: {exc}"[:300]
        return {"started": started, "done": time.perf_counter(), "ok": error is None, "error": error}

    with ThreadPoolExecutor(CONCURRENT_B) as pool:
        results = list(pool.map(one, range(CONCURRENT_B)))
    first = min(r["started"] for r in results)
    for r in results:
        r["done"] -= first
    return results


def bench_concurrency_floor(ref: Path) -> dict:
    """The same 32 runs straight through fal-client (stream transport), no app in between."""
    with httpx.Client(timeout=60.0, limits=httpx.Limits(max_connections=64)) as http:
        results = all_at_once(lambda _i: None if len(bare_run(ref, stream=True, http=http)) == 1 else "no image")
    return {"b_floor_makespan_s": max(r["done"] for r in results), "b_floor_failed": sum(not r["ok"] for r in results)}


def bench_concurrency(app, fake: FakeFal, ref: Path) -> dict:
    clients = [gradio_client(app) for _ in range(CLIENTS_B)]
    before = set(fake.jobs)
    cpu0 = cpu_seconds(app.process.pid)

    with httpx.Client(timeout=60.0, limits=httpx.Limits(max_connections=64)) as http:
        def run(index: int) -> str | None:
            job = clients[index % CLIENTS_B].submit(**edit_args({"red": str(ref)}), api_name="/edit")
            gallery, status, *_ = job.result(timeout=120)
            if not status.startswith("✅ Done"):
                return status
            fetch([item["image"]["url"] for item in gallery], http)
            return None

        results = all_at_once(run)
    cpu1 = cpu_seconds(app.process.pid)
    done = sorted(r["done"] for r in results)
    jobs = new_jobs(fake, before)
    arrivals = sorted(j.created for j in jobs)
    return {
        "b_makespan_s": done[-1],
        "b_app_cpu_per_run_s": (cpu1 - cpu0) / CONCURRENT_B if cpu0 is not None and cpu1 is not None else None,
        "b_failed": sum(not r["ok"] for r in results),
        "b_errors": sorted({r["error"] for r in results if r["error"]}),
        "b_first_result_s": done[0],
        "b_median_result_s": median(done),
        "b_fal_jobs": len(jobs),
        # How spread out the requests reached fal: a serialised step before fal shows here.
        "b_fal_arrival_spread_s": (arrivals[-1] - arrivals[0]) if arrivals else None,
    }


# ------------------------------------------------------------------------------ (c)
def bench_upload_size(app, fake: FakeFal, photo: Path) -> dict:
    client = gradio_client(app)
    with fake._lock:
        first = len(fake.requests)
    status, _images = app_run(client, photo)
    assert status.startswith("✅ Done"), status
    with fake._lock:
        sent = fake.requests[first:]
    by_route: dict[str, int] = {}
    for rec in sent:
        route = f"{rec.method} {rec.path if not rec.path.startswith('/cdn/files/') else '/cdn/files/…'}"
        by_route[route] = by_route.get(route, 0) + len(rec.body)
    total = sum(by_route.values())
    size = photo.stat().st_size
    return {"c_bytes_sent": total, "c_file_bytes": size, "c_ratio": total / size, "c_by_route": by_route}


# ------------------------------------------------------------------------------ (d)
HELLO_WORLD = """\
import gradio as gr

with gr.Blocks() as demo:
    gr.Textbox(label="Hello")

demo.launch()
"""


def time_to_first_200(argv: list[str], env_extra: dict[str, str], log: Path) -> float:
    """Seconds from starting `argv` to the first 200 on `/`, polling every 50 ms."""
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), **env_extra}
    url = f"http://127.0.0.1:{port}/"
    t0 = time.perf_counter()
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        while time.perf_counter() - t0 < 60:
            if process.poll() is not None:
                raise RuntimeError(f"{argv} exited at start-up:\n{log.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - t0
            except OSError:
                pass
            time.sleep(POLL_D)
        raise RuntimeError(f"{argv} did not answer within 60 s:\n{log.read_text(errors='replace')}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def bench_startup(fake: FakeFal, tmp: Path) -> dict:
    hello = tmp / "hello_world.py"
    hello.write_text(HELLO_WORLD)
    app_env = {"STUDIO_FAL_BASE_URL": fake.url, "FAL_KEY": SERVER_KEY, "STUDIO_OUTPUTS": str(tmp / "d-outputs")}
    launchers = {
        "app": lambda: time_to_first_200([sys.executable, "app.py"], app_env, tmp / "d-app.log"),
        "hello": lambda: time_to_first_200([sys.executable, str(hello)], {}, tmp / "d-hello.log"),
    }
    for launch in launchers.values():  # warm-up: the OS file cache, .pyc files
        launch()
    samples: dict[str, list[float]] = {"app": [], "hello": []}
    for _ in range(RUNS_D):
        for kind, launch in launchers.items():
            samples[kind].append(launch())
    app_s, hello_s = median(samples["app"]), median(samples["hello"])
    return {"d_app_median_s": app_s, "d_hello_median_s": hello_s, "d_ratio": app_s / hello_s, "d_samples": samples}


# ------------------------------------------------------------------------------ report
def meets(name: str, value: float) -> bool:
    op, limit = TARGETS[name]
    return {"<=": value <= limit, "<": value < limit, "==": value == limit}[op]


def table(r: dict) -> str:
    def target(name: str) -> str:
        op, limit = TARGETS[name]
        return f"{op} {limit:.0%}" if name == "c_ratio" else f"{op} {limit}"

    def ok(name: str) -> str:
        return "yes" if meets(name, r[name]) else "NO"

    def seconds(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f} s"

    rows = [
        ("(a) app run, median", f"{r['a_app_median_s']:.3f} s", "", ""),
        ("(a) bare fal-client run, median", f"{r['a_bare_median_s']:.3f} s", "", ""),
        ("(a) app / bare", f"{r['a_ratio']:.3f}", target("a_ratio"), ok("a_ratio")),
        ("(a) app process CPU per run, median", seconds(r["a_app_cpu_per_run_s"]), "", ""),
        ("(b) floor: 32 bare fal-client runs at once", f"{r['b_floor_makespan_s']:.3f} s", "", ""),
        ("(b) 32 runs at once, makespan", f"{r['b_makespan_s']:.3f} s", target("b_makespan_s"), ok("b_makespan_s")),
        ("(b) failed runs", str(r["b_failed"]), target("b_failed"), ok("b_failed")),
        ("(b) app process CPU per run", seconds(r["b_app_cpu_per_run_s"]), "", ""),
        ("(c) bytes sent to fal (24 MP JPEG)", f"{r['c_bytes_sent']:,} B", "", ""),
        ("(c) file size", f"{r['c_file_bytes']:,} B", "", ""),
        ("(c) sent / file", f"{r['c_ratio']:.2%}", target("c_ratio"), ok("c_ratio")),
        ("(d) app start-up, median", f"{r['d_app_median_s']:.3f} s", "", ""),
        ("(d) hello-world start-up, median", f"{r['d_hello_median_s']:.3f} s", "", ""),
        ("(d) app / hello", f"{r['d_ratio']:.3f}", target("d_ratio"), ok("d_ratio")),
    ]
    lines = ["| figure | value | target | ok |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def main() -> int:
    started = time.perf_counter()
    results: dict = {"job_seconds": JOB_SECONDS, "python": sys.version.split()[0], "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-hosted-") as tmp_name, \
            FakeFal(job_seconds=JOB_SECONDS, keys={SERVER_KEY}) as fake:
        tmp = Path(tmp_name)
        fake.queue_polls = 0  # a queued job starts at submit, as fal's runner picks it up
        point_fal_client_at(fake.url)
        ref = make_reference_png(tmp / "reference.png")
        # (b) uses fal's smallest output size (512x512): the fake renders every image in
        # this process, and at 1 MP its own rendering of 32 jobs fills both cores.
        small_ref = make_reference_png(tmp / "reference-512.png", side=512)
        photo = make_photo_jpeg(tmp / "photo-24mp.jpg")
        (tmp / "app").mkdir()
        app = launch_app(tmp / "app", fake)
        try:
            print("(a) one run: app vs bare fal-client …", flush=True)
            results.update(bench_overhead(app, fake, ref))
            print("(b) 32 runs at once: bare fal-client floor, then the app …", flush=True)
            results.update(bench_concurrency_floor(small_ref))
            results.update(bench_concurrency(app, fake, small_ref))
            print("(c) bytes sent for a 24 MP photo …", flush=True)
            results.update(bench_upload_size(app, fake, photo))
        finally:
            stop_app(app)
        print("(d) start-up: app vs Gradio hello-world …", flush=True)
        results.update(bench_startup(fake, tmp))
    results["targets"] = {
        k: {"op": op, "limit": limit, "met": meets(k, results[k])} for k, (op, limit) in TARGETS.items()
    }
    results["total_bench_s"] = time.perf_counter() - started
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str))
    print()
    print(table(results))
    print()
    ph = results["a_phase_medians"]
    print("(a) phase medians (s):  " + "; ".join(
        f"{kind}: before fal {p['before_fal_s']:.3f}, at fal {p['at_fal_s']:.3f}, after fal {p['after_fal_s']:.3f}"
        for kind, p in ph.items()))
    print(f"(a) transports: app {results['a_app_transport']}, bare {results['a_bare_transport']}; "
          f"same payload: {results['a_same_payload']}")
    print(f"(b) first result {results['b_first_result_s']:.3f} s, median {results['b_median_result_s']:.3f} s, "
          f"requests reached fal over {results['b_fal_arrival_spread_s'] or 0:.3f} s; errors: {results['b_errors']}")
    print(f"(c) by route: {results['c_by_route']}")
    print(f"wrote {RESULTS.relative_to(ROOT)} in {results['total_bench_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
