#!/usr/bin/env bash
# Set up what the tests need (scripts/setup.sh), then lint, type-check and run every test.
# Extra arguments go to one pytest run instead: `bash scripts/test.sh tests/unit -x`.
#
# Without arguments, mypy and the unit layer run beside the app and browser layers. Those spend
# most of their time waiting (on the launched apps, fake fal jobs, Chromium), so on two cores
# the whole run takes about a minute and a half less than one after the other. Each part's
# output is printed whole, one after the other; the exit status is the first failure's. The app
# and browser layers stay one after the other: side by side, the app layer's load tests (50
# sessions at once) starve the browser's pages.
SETUP=test
source "$(dirname "$0")/setup.sh"
"$PYTHON" -m ruff check .
logs=$(mktemp -d)
"$PYTHON" -m mypy backend ui app.py > "$logs/mypy" 2>&1 &
mypy_job=$!
status=0
if [ $# -gt 0 ]; then
  "$PYTHON" -m pytest "$@" || status=$?
else
  # The unit layer gets its own temporary folder and no cache writes: the two pytest runs share nothing.
  "$PYTHON" -m pytest tests/unit -p no:cacheprovider --basetemp="$logs/unit-tmp" > "$logs/unit" 2>&1 &
  unit_job=$!
  "$PYTHON" -m pytest tests/app tests/browser || status=$?
  unit_status=0
  wait "$unit_job" || unit_status=$?
  echo "=== pytest tests/unit (ran beside the app and browser layers) ==="
  cat "$logs/unit"
  [ "$status" -ne 0 ] || status=$unit_status
fi
mypy_status=0
wait "$mypy_job" || mypy_status=$?
echo "=== mypy backend ui app.py ==="
cat "$logs/mypy"
[ "$status" -ne 0 ] || status=$mypy_status
rm -rf "$logs"
exit "$status"
