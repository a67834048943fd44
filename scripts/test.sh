#!/usr/bin/env bash
# Set up what the tests need (scripts/setup.sh), then lint, type-check and run every test.
# Extra arguments go to pytest: `bash scripts/test.sh tests/unit -x`.
SETUP=test
source "$(dirname "$0")/setup.sh"
"$PYTHON" -m ruff check .
"$PYTHON" -m mypy backend ui app.py
"$PYTHON" -m pytest "$@"
