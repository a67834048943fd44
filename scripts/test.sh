#!/usr/bin/env bash
# Set up what the tests need (scripts/setup.sh), then lint, type-check and run every test.
# Extra arguments go to one pytest run instead: `bash scripts/test.sh tests/unit -x`.
#
# Without arguments, mypy and the three test layers (unit, app, browser) run side by side. Each
# spends much of its time waiting (on launched apps, fake fal jobs, Chromium), so on two cores
# the whole run takes a few minutes less than one after the other. Each part's output is
# printed whole, one after the other; the exit status is the first failure's.
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
  # Each layer gets its own temporary folder, and only the browser layer writes pytest's cache: the
  # three runs share nothing but the machine.
  "$PYTHON" -m pytest tests/unit -p no:cacheprovider --basetemp="$logs/unit-tmp" > "$logs/unit" 2>&1 &
  unit_job=$!
  "$PYTHON" -m pytest tests/app -p no:cacheprovider --basetemp="$logs/app-tmp" > "$logs/app" 2>&1 &
  app_job=$!
  "$PYTHON" -m pytest tests/browser || status=$?
  for layer in app unit; do
    job_var="${layer}_job"
    layer_status=0
    wait "${!job_var}" || layer_status=$?
    echo "=== pytest tests/$layer (ran beside the browser layer) ==="
    cat "$logs/$layer"
    [ "$status" -ne 0 ] || status=$layer_status
  done
fi
mypy_status=0
wait "$mypy_job" || mypy_status=$?
echo "=== mypy backend ui app.py ==="
cat "$logs/mypy"
[ "$status" -ne 0 ] || status=$mypy_status
rm -rf "$logs"
exit "$status"
