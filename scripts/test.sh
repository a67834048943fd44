#!/usr/bin/env bash
# Set up what the tests need (scripts/setup.sh), then lint, type-check and run every test.
# Extra arguments go to one pytest run instead: `bash scripts/test.sh tests/unit -x`.
#
# Without arguments, the layers run in this order: the app layer (its load tests get the machine;
# mypy, started first, ends in its first minute), then the browser layer with the unit layer beside
# it. Both spend much of their time waiting (Chromium, the launched app, fake fal jobs), so on two
# cores the whole run takes about a minute and a half less than one layer after the other. Each
# part's output is printed whole; the exit status is the first failure's.
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
  "$PYTHON" -m pytest tests/app || status=$?
  # The unit layer gets its own temporary folder and no cache writes: the two runs share nothing.
  "$PYTHON" -m pytest tests/unit -p no:cacheprovider --basetemp="$logs/unit-tmp" > "$logs/unit" 2>&1 &
  unit_job=$!
  browser_status=0
  "$PYTHON" -m pytest tests/browser || browser_status=$?
  [ "$status" -ne 0 ] || status=$browser_status
  unit_status=0
  wait "$unit_job" || unit_status=$?
  echo "=== pytest tests/unit (ran beside the browser layer) ==="
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
