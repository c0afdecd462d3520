# shellcheck shell=bash
# Sourced (after tools/lib.sh) by whatever boots a test VM: run.sh, make demo,
# make bench. Not in tools/lib.sh: that file is part of the OS trees' cache
# key, and this is no reason to rebuild them.

# vm_host_prepare WHO: what a VM run needs on the host, then this machine's
# one VM run at a time (2 cores, one guest): a second run waits, saying so.
# Sets VM_RUN_DIR; the lock is held on fd 8 until the caller exits.
vm_host_prepare() {
        apt_install qemu-system-x86 qemu-utils ovmf openssh-client nginx python3
        export VM_RUN_DIR=${VM_RUN_DIR:-/tmp/dreamlink-vm}
        mkdir -p "$VM_RUN_DIR"
        exec 8>"$VM_RUN_DIR/run.lock"
        if ! flock -n 8; then
                echo "$1: a VM test run is in progress; waiting for it" >&2
                flock 8
        fi
}
