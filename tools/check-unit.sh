#!/bin/bash
# Builds dreamlink twice (warnings as errors; then with ASan+UBSan) and runs
# the unit suite in both. Runs inside the build environment (tools/env.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

summary=()
status=0

run_suite() {
        local dir=$1; shift
        if [ ! -e "$dir/build.ninja" ]; then
                meson setup "$dir" -Dwerror=true "$@" >/dev/null
        fi
        meson compile -C "$dir" >/dev/null || { meson compile -C "$dir"; return 1; }
        local rc=0
        meson test -C "$dir" --suite unit --print-errorlogs --no-rebuild >/dev/null || rc=$?
        # Count cmocka test cases, not test programs.
        local passed failed
        passed=$(grep -hoE '^\[  PASSED  \] [0-9]+ test' "$dir/meson-logs/testlog.txt" | awk '{s+=$4} END {print s+0}')
        failed=$(grep -hoE '^\[  FAILED  \] [^ ]+: [0-9]+ test' "$dir/meson-logs/testlog.txt" | awk '{s+=$(NF-1)} END {print s+0}')
        if [ "$rc" -ne 0 ]; then
                grep -hE '^\[  (FAILED|ERROR)  \]|^[0-9]+/[0-9]+ .*(FAIL|TIMEOUT)' "$dir/meson-logs/testlog.txt" >&2 || true
                [ "$failed" -gt 0 ] || failed=1
        fi
        # Each fuzz target's corpus replay counts as one case; how many inputs they replayed is told apart.
        local replays inputs
        replays=$(grep -cE '^fuzz-[a-z-]+: replayed [0-9]+ inputs' "$dir/meson-logs/testlog.txt" || true)
        inputs=$(grep -hoE '^fuzz-[a-z-]+: replayed [0-9]+' "$dir/meson-logs/testlog.txt" | awk '{s+=$3} END {print s+0}')
        # The count alone on its line: CI reads "N passed, N failed" as the closing line.
        summary+=("$(printf '%-24s %d passed, %d failed' "$dir:" "$passed" "$failed")")
        summary+=("$(printf '%-24s (%d of them fuzz corpus replays, of %d inputs)' "" "$replays" "$inputs")")
        return "$rc"
}

run_suite build || status=1
run_suite build-sanitize -Db_sanitize=address,undefined -Db_lundef=false || status=1

printf '%s\n' "${summary[@]}"
exit "$status"
