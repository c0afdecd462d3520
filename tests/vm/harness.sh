# Sourced by tests/vm/run.sh and the scenarios: booting the test disk,
# running commands in the guest, and checks that count.

VM=$top/tests/vm/vm.sh

# Results of this scenario; run.sh adds them up.
checks_passed=0
checks_failed=0

pass() { checks_passed=$((checks_passed + 1)); printf '  ok    %s\n' "$*"; }
fail() { checks_failed=$((checks_failed + 1)); printf '  FAIL  %s\n' "$*"; }

# check DESCRIPTION CMD...: CMD's success is the check.
check() {
        local what=$1; shift
        if "$@"; then pass "$what"; else fail "$what"; fi
}

# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq() {
        if [ "$2" = "$3" ]; then pass "$1: $3"; else fail "$1: expected '$2', got '$3'"; fi
}

# expect_contains DESCRIPTION TEXT ACTUAL: TEXT appears in ACTUAL, literally.
expect_contains() {
        if [[ $3 == *"$2"* ]]; then pass "$1"; else fail "$1: '$2' not in '$3'"; fi
}

# expect_match DESCRIPTION REGEX ACTUAL
expect_match() {
        if [[ $3 =~ $2 ]]; then pass "$1"; else fail "$1: '$3' does not match /$2/"; fi
}

guest() { "$VM" ssh "$@"; }

# A copy-on-write disk over the cached image: the scenario may write (and
# power-cut) it as much as it likes, the cache stays pristine.
vm_disk_from() { # BASE_IMAGE NAME: prints the path of a fresh overlay
        local disk=$VM_RUN_DIR/$1.qcow2
        mkdir -p "$VM_RUN_DIR"
        rm -f "$disk"
        qemu-img create -q -f qcow2 -b "$2" -F raw "$disk"
        echo "$disk"
}

# vm_start DISK: boots it and waits for ssh; records the boot time.
vm_start() {
        local t0=$SECONDS
        "$VM" boot "$1" >/dev/null
        if ! "$VM" wait-ssh "${VM_BOOT_TIMEOUT:-900}" >/dev/null; then
                fail "guest reached ssh (serial log: $("$VM" dir)/serial.log)"
                tail -n 30 "$("$VM" dir)/serial.log" | sed 's/^/        /'
                return 1
        fi
        boot_seconds=$((SECONDS - t0))
        printf '  ..    booted to ssh in %d s\n' "$boot_seconds"
}

vm_cleanup() {
        "$VM" status 2>/dev/null && "$VM" kill >/dev/null 2>&1 || true
}
