#!/usr/bin/env bash
# The whole test suite, from a clean clone: builds everything and runs every test project.
# The servers the integration tests need (PostgreSQL with wal_level=logical) are installed from Debian packages when
# missing and started here on 127.0.0.1 in throw-away folders (scripts/services.sh); they stop when this script ends.
set -euo pipefail
cd "$(dirname "$0")/.."

configuration="${CONFIGURATION:-Release}"
log="$(mktemp)"
# The fault-injection suite appends its table of trials and outcomes here; it is printed after the tests.
export DELTASYNC_FAULT_TABLE="${DELTASYNC_FAULT_TABLE:-$log.faults}"
# shellcheck source=services.sh
source ./scripts/services.sh
trap 'stop_services; rm -f "$log" "$log.faults"' EXIT

dotnet build DeltaSync.sln -c "$configuration" -nologo -clp:ErrorsOnly
status=0
dotnet test DeltaSync.sln -c "$configuration" --no-build -nologo --logger "console;verbosity=minimal" 2>&1 | tee "$log" || status=$?
if [ -f "$DELTASYNC_FAULT_TABLE" ]; then cat "$DELTASYNC_FAULT_TABLE"; fi

# The failed tests again, last, with their messages: the fault table above would otherwise push them out of view.
if grep -qE '^[[:space:]]+Failed ' "$log"; then
  echo "failed tests:"
  awk '
    /^[[:space:]]+Failed / { show = 1; lines = 0 }
    /^[[:space:]]+(Passed|Skipped) / { show = 0 }
    /^(Passed|Failed)!/ { show = 0 }
    show && lines < 40 { print; lines++ }
  ' "$log"
fi

# One closing line over all test projects (dotnet test prints one summary per project).
awk '
  /^(Passed|Failed)!/ {
    for (i = 1; i <= NF; i++) {
      if ($i == "Failed:")  { f += $(i+1) + 0 }
      if ($i == "Passed:")  { p += $(i+1) + 0 }
      if ($i == "Skipped:") { s += $(i+1) + 0 }
    }
  }
  END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }
' "$log"
exit "$status"
