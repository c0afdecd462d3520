#!/bin/bash
# make fuzz: builds the libFuzzer targets (clang, ASan+UBSan) in build-fuzz and
# runs each for SECONDS on its corpus, one after another. Inputs that found new
# coverage go to fuzz/findings/TARGET/corpus, crashes to fuzz/findings/TARGET/
# (both ignored by git); a crash fails the run and its reproducer is named.
# Runs inside the build environment (tools/env.sh).
#
#   tools/fuzz.sh [SECONDS [TARGET...]]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:-60}
shift || true
# Large enough for every corpus entry and a few files' worth of mutations;
# the parsers' own limits (64 KiB) are exercised by the unit tests.
max_len=8192

# The targets rewrite their scratch trees for every input: on tmpfs, where an fsync costs nothing.
export TMPDIR=/tmp

if [ ! -e build-fuzz/build.ninja ]; then
        CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
                -Dtests=disabled -Dman=disabled >/dev/null
fi
meson compile -C build-fuzz >/dev/null || { meson compile -C build-fuzz; exit 1; }

if [ $# -gt 0 ]; then
        targets=("$@")
else
        targets=()
        for d in fuzz/corpus/fuzz-*/; do
                targets+=("$(basename "$d")")
        done
fi

summary=()
status=0
for t in "${targets[@]}"; do
        out=fuzz/findings/$t
        mkdir -p "$out/corpus"
        log=$out/fuzz.log
        printf '==> %s: %ss\n' "$t" "$seconds" >&2
        rc=0
        # One process, one job: the machine is shared.
        "build-fuzz/fuzz/$t" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
                -print_final_stats=1 -artifact_prefix="$out/" "$out/corpus" "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
        cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n1 | cut -d' ' -f2)
        if [ "$rc" -ne 0 ]; then
                status=1
                grep -E '^==[0-9]+==ERROR|runtime error|invariant does not hold|^SUMMARY' "$log" >&2 || tail -n 20 "$log" >&2
                artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)
                summary+=("$(printf '%-22s FAILED after %s execs; reproducer: %s (log: %s)' "$t" "${execs:-?}" "${artifact:-none}" "$log")")
        else
                summary+=("$(printf '%-22s %10s execs in %ss (%s/s), cov %s' "$t" "${execs:-?}" "$seconds" "${rate:-?}" "${cov:-?}")")
        fi
done

printf '%s\n' "${summary[@]}"
exit "$status"
