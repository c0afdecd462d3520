#!/bin/bash
# run.sh core|full [SCENARIO...]: the VM test scenarios.
#
# core: what `make check` runs; full: also the long fault matrix. Scenarios
# are tests/vm/scenarios/NN-name.sh; a line "# suite: full" in one keeps it
# out of core. Each runs in its own shell with the harness (harness.sh) and
# the image variables of images.sh; one guest at a time.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/tools/lib.sh"
. "$here/host.sh"

suite=${1:-core}
shift || true
case $suite in core | full) ;; *) die "usage: run.sh core|full [SCENARIO...]" ;; esac

vm_host_prepare vm

t0=$SECONDS
vm_images
images_seconds=$((SECONDS - t0))
printf 'vm: images ready in %d s (cache %s)\n' "$images_seconds" "$DREAMLINK_CACHE"

total_passed=0
total_failed=0
summary=()

for s in "$here"/scenarios/*.sh; do
        name=$(basename "$s" .sh)
        if [ $# -gt 0 ]; then
                printf '%s\n' "$@" | grep -qx "$name" || continue
        elif [ "$suite" = core ] && grep -q '^# suite: full' "$s"; then
                continue
        fi
        printf '\n== %s\n' "$name"
        st=$SECONDS
        # The scenario reports its counts on fd 3 as "PASSED FAILED".
        result=$(
                export VM_NAME=$name
                export RELEASE_ROOT RELEASE_KEYS DISK_V1 V1_COMMIT V2_COMMIT V1_KERNEL V2_KERNEL
                bash -c '
                        set -uo pipefail
                        top=$1; . "$top/tools/lib.sh"; . "$top/tests/vm/harness.sh"
                        trap vm_cleanup EXIT
                        . "$2" || fail "scenario ended early (exit $?)"
                        echo "$checks_passed $checks_failed" >&3
                ' scenario "$top" "$s" 3>&1 >&2 8>&-
        ) || true
        read -r p f <<<"${result:-0 1}"
        [ "$p$f" = 00 ] && f=1 # a scenario that checked nothing has failed
        total_passed=$((total_passed + p))
        total_failed=$((total_failed + f))
        summary+=("$(printf '%-28s %3d passed, %d failed, %4d s' "$name" "$p" "$f" $((SECONDS - st)))")
done

printf '\n'
printf '%s\n' "${summary[@]}"
printf 'vm: %d passed, %d failed\n' "$total_passed" "$total_failed"
[ "$total_failed" -eq 0 ]
