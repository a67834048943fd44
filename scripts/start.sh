#!/usr/bin/env bash
# Set up what the app needs (scripts/setup.sh) and start it: `FAL_KEY=... bash scripts/start.sh`.
SETUP=app
source "$(dirname "$0")/setup.sh"
exec "$PYTHON" app.py "$@"
