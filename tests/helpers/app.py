"""The app as a person starts it: `python app.py` in a subprocess, aimed at a fake fal server
through STUDIO_FAL_BASE_URL (its fal-client stays unmodified), and gradio_client sessions
talking to it with timeouts a busy machine does not run into."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from gradio_client import Client

from tests.helpers.fake_fal import FakeFal
from tests.helpers.stand_ins.hub import session_hub

ROOT = Path(__file__).resolve().parents[2]
SERVER_KEY = "fal-test-server-key-7f3a9c"
VISITOR_KEY = "visitor-key-123"

# gradio_client fetches the config, the API info and each upload with httpx's default 5 s
# timeout, which 50 sessions on a 2-core machine do run into. The run itself streams over
# SSE, where the app's heartbeats (every 15 s) keep the read alive.
CLIENT_TIMEOUT = httpx.Timeout(180.0, connect=60.0)


def connect(app: "LaunchedApp | str", **kwargs) -> Client:
    """A gradio_client session (one browser tab) on `app`, with generous timeouts; any
    Client argument can be given (download_files=False, ...)."""
    kwargs.setdefault("verbose", False)
    kwargs.setdefault("httpx_kwargs", {"timeout": CLIENT_TIMEOUT})
    return Client(app if isinstance(app, str) else app.url, **kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LaunchedApp:
    url: str
    outputs: Path
    log_path: Path
    process: subprocess.Popen

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def launch_app(tmp: Path, fake: FakeFal, port: int | None = None, **env_overrides: str | None) -> LaunchedApp:
    """`python app.py` on `port` (a free one when None: a restart passes the first one's, as
    the page's origin, and so its localStorage, is the port's)."""
    port = port or free_port()
    outputs = tmp / "outputs"
    env = {
        **os.environ,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "STUDIO_FAL_BASE_URL": fake.url,
        "STUDIO_OUTPUTS": str(outputs),
        "FAL_KEY": SERVER_KEY,
        "NO_PROXY": "127.0.0.1,localhost",
        # LoRA headers come from the session's stand-in Hub (tests/helpers/stand_ins/hub.py).
        "HF_ENDPOINT": session_hub().url,
        "HF_HUB_OFFLINE": "0",
        # Every test client comes from 127.0.0.1, one visitor to the spending policy: its limits
        # are off here, and tests/app/test_spending.py sets them.
        "STUDIO_VISITOR_RUNS_PER_HOUR": "0",
        "STUDIO_VISITOR_CONCURRENCY": "0",
        "STUDIO_DAILY_BUDGET_USD": "0",
    }
    for name, value in env_overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    log_path = tmp / "app.log"
    process = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env,
        stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the app exited at start-up:\n" + log_path.read_text())
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return LaunchedApp(url=url, outputs=outputs, log_path=log_path, process=process)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the app did not answer within 60 s:\n" + log_path.read_text())


def stop_app(app: LaunchedApp) -> None:
    app.process.terminate()
    try:
        app.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        app.process.kill()


def local_app_env(tiny_model: dict[str, Path]) -> dict[str, str | None]:
    """What the app needs to run the tiny pipeline on the CPU as its local backend."""
    from tests.helpers.tiny_flux2 import MAX_SEQUENCE_LENGTH, TEXT_ENCODER_OUT_LAYERS

    return dict(
        STUDIO_MODEL=str(tiny_model["model"]), STUDIO_DEVICE="cpu", STUDIO_PREVIEW_DECODE_EVERY="2",
        STUDIO_TEXT_ENCODER_LAYERS=",".join(map(str, TEXT_ENCODER_OUT_LAYERS)),
        STUDIO_MAX_SEQUENCE_LENGTH=str(MAX_SEQUENCE_LENGTH), FAL_KEY=None, HF_HUB_OFFLINE="1",
    )


def clear_of_utc_midnight(seconds: float = 180) -> None:
    """Wait out UTC midnight if it comes within `seconds`: the daily budget resets then (as it
    should), and a test spending it wants every check on one day."""
    now = datetime.now(timezone.utc)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    if (midnight - now).total_seconds() < seconds:
        time.sleep((midnight - now).total_seconds() + 1)
