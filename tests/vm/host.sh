# shellcheck shell=bash
# Sourced (after tools/lib.sh) by whatever boots a test VM: run.sh, make demo,
# make bench, vm.sh, release-server.sh.

# Every host command a VM run needs (tests/vm/host.packages).
vm_host_packages() {
        local pkgs
        mapfile -t pkgs < <(package_list "$top/tests/vm/host.packages")
        apt_install "${pkgs[@]}"
}

# vm_host_prepare WHO: what a VM run needs on the host, then this machine's
# one VM run at a time (2 cores, one guest): a second run waits, saying so.
# Sets VM_RUN_DIR; the lock is held on fd 8 until the caller exits.
vm_host_prepare() {
        vm_host_packages
        export VM_RUN_DIR=${VM_RUN_DIR:-/tmp/dreamlink-vm}
        mkdir -p "$VM_RUN_DIR"
        exec 8>"$VM_RUN_DIR/run.lock"
        if ! flock -n 8; then
                echo "$1: a VM test run is in progress; waiting for it" >&2
                flock 8
        fi
}

# vm_images: builds (or reuses) the test images and sets the variables
# images.sh prints. A failed build stops the caller with its own error,
# before anything uses an unset image.
vm_images() {
        local out
        out=$("$top/tests/vm/images.sh" 8>&-) || die "building the test images failed (tests/vm/images.sh, see above)"
        eval "$out"
}
