# Sourced by scripts/start.sh and scripts/test.sh: installs what the app (SETUP=app) or the
# tests (SETUP=test) need on Debian or Ubuntu, as root or as a user with sudo, and sets
# PYTHON to the interpreter to use.
#
# - Debian packages only when missing (chromium, curl and an emoji font for the browser
#   tests; python3-venv where a virtual environment is needed), after `apt-get update`.
# - Python packages with pip: into the active virtual environment if there is one; into
#   .venv when the system's Python refuses pip installs (Debian's and Ubuntu's own Python,
#   PEP 668); otherwise into the Python found.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=$(command -v python3 || command -v python)
packages=()
if [ "$SETUP" = test ]; then
  [ -x "${STUDIO_CHROMIUM:-/usr/bin/chromium}" ] || packages+=(chromium)
  command -v curl >/dev/null || packages+=(curl)
  fc-list 2>/dev/null | grep -qi "noto color emoji" || packages+=(fonts-noto-color-emoji)
fi
use_venv=""
if [ -z "${VIRTUAL_ENV:-}" ] && "$PYTHON" - <<'PY'
import os, sys, sysconfig
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)
PY
then
  use_venv=1
  "$PYTHON" -c "import ensurepip" 2>/dev/null || packages+=(python3-venv)
fi
if [ ${#packages[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
fi
if [ -n "$use_venv" ]; then
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  PYTHON=.venv/bin/python
fi
requirements=requirements.txt
[ "$SETUP" = test ] && requirements=requirements-test.txt
"$PYTHON" -m pip install -q --disable-pip-version-check -r "$requirements"
