"""backend/local without torch: the package, its options and its settings import nothing
heavy, so that the hosted app and the page read them without the local packages.
(Module and function sizes: test_code_shape.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "diffusers", "transformers", "peft", "safetensors", "gradio")


def test_importing_the_package_its_options_and_settings_imports_nothing_heavy():
    code = (
        "import json, sys\n"
        "import backend.local, backend.local.config, backend.local.options\n"
        "backend.local.options.LocalOptions(model='x'), backend.local.config.LocalSettings()\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-1500:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []

