"""backend/local without torch: the package, its options and its settings import nothing
heavy, so that the hosted app and the page read them without the local packages; and the
package's filter of its dependencies' start-up notices.
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


def test_torchaos_cuda_warnings_leave_the_log_only_where_torch_has_no_cuda():
    # An operator on a CPU machine would go looking for a fault in torchao's "Failed to load
    # _C_cutlass_90a.so" and "Detected no triton"; on a CUDA machine the same lines are news.
    code = (
        "import logging, sys, torch\n"
        "import backend.local\n"
        "backend.local.quiet_dependency_notices()\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stdout, format='%(name)s: %(message)s')\n"
        "def say(where):\n"
        "    logging.getLogger('torchao').warning(f'Failed to load _C_cutlass_90a.so ({where})')\n"
        "    logging.getLogger('torchao.kernel.intmm').warning(f'Detected no triton ({where})')\n"
        "    logging.getLogger('torchao').warning(f'another warning ({where})')\n"
        "torch.version.cuda = None\n"
        "say('cpu')\n"
        "torch.version.cuda = '13.0'\n"
        "say('cuda')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-1500:]
    assert done.stdout.splitlines() == [
        "torchao: another warning (cpu)",
        "torchao: Failed to load _C_cutlass_90a.so (cuda)",
        "torchao.kernel.intmm: Detected no triton (cuda)",
        "torchao: another warning (cuda)",
    ]
