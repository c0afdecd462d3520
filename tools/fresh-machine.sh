#!/bin/bash
# fresh-machine.sh SUITE [COMMAND...]: runs README commands the way a new user
# would, on a machine that has nothing but a minimal Debian: a debootstrap
# --variant=minbase root of SUITE (bookworm or trixie) with git, make and
# ca-certificates, this project cloned into it (its committed HEAD), then
# each COMMAND (default: "make demo" "make check") in turn inside it, with an
# empty cache. Prints a line per command (exit status, minutes) and keeps the
# logs. Needs root; the host's one-VM-at-a-time lock is held while the
# commands run.
#
#   tools/fresh-machine.sh bookworm
#   tools/fresh-machine.sh trixie "make check"
#
# Environment: FRESH_DIR (where roots are made, default /var/tmp; a root
# needs ~25 GiB), FRESH_KEEP=1 keeps the root afterwards (else it is removed
# when every command passed), FRESH_ROOT=DIR runs in a root kept from an
# earlier run instead (its clone pulled to this checkout's HEAD first, its
# cache as that run left it), DREAMLINK_MIRROR (Debian archive).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(dirname "$here")
. "$here/lib.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
suite=$1
shift
case $suite in bookworm | trixie) ;; *) usage ;; esac
[ $# -gt 0 ] || set -- "make demo" "make check"
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mounts)"

apt_install debootstrap util-linux git

if [ -n "${FRESH_ROOT:-}" ]; then
        root=$(realpath "$FRESH_ROOT")
        [ -d "$root/root/dreamlink/.git" ] && [ -d "$root.logs" ] || die "$root is not a root kept by this script"
        grep -q "VERSION_CODENAME=$suite" "$root/etc/os-release" || die "$root is not a $suite root"
        logs=$root.logs
        chmod 0755 "$root" # roots of earlier versions of this script were 0700
        printf -- '-- again in the same root, at %s:\n' "$(git -C "$top" rev-parse --short HEAD)" >>"$logs/summary"
        git -C "$root/root/dreamlink" pull -q --ff-only "$top" HEAD ||
                die "cannot bring $root/root/dreamlink to this checkout's HEAD"
        msg "reusing $root, its clone now at $(git -C "$top" rev-parse --short HEAD)"
else
        fresh_dir=${FRESH_DIR:-/var/tmp}
        root=$(mktemp -d "$fresh_dir/dreamlink-fresh-$suite.XXXXXX")
        # A machine's "/" is 0755; mktemp made it 0700, which no other user could
        # get through (updatectl run as nobody in the unit tests, say).
        chmod 0755 "$root"
        logs=$root.logs
        mkdir -p "$logs"
        mirror=$(debian_mirror)
        msg "debootstrap --variant=minbase $suite into $root (mirror $mirror)"
        t0=$SECONDS
        debootstrap --variant=minbase --include=git,make,ca-certificates "$suite" "$root" "$mirror" \
                >"$logs/debootstrap.log" 2>&1 || die "debootstrap failed: see $logs/debootstrap.log"
        msg "debootstrap took $((SECONDS - t0)) s"
        # What a real machine has and debootstrap leaves out: name resolution.
        cp -L /etc/resolv.conf "$root/etc/resolv.conf"
        git clone -q "$top" "$root/root/dreamlink"
        msg "cloned $(git -C "$top" rev-parse --short HEAD) into $root/root/dreamlink"
fi

# The VM runs inside the root share this machine's two cores with any other
# VM run on the host (its /tmp is not the root's): wait for that, as run.sh
# does.
vm_lock_dir=${VM_RUN_DIR:-/tmp/dreamlink-vm}
mkdir -p "$vm_lock_dir"
exec 8>"$vm_lock_dir/run.lock"
if ! flock -n 8; then
        msg "a VM test run is in progress; waiting for it"
        flock 8
fi

# A private mount namespace: the mounts vanish with it. The root is bound onto
# itself first: on a real machine "/" is a mount point, and the devroot's
# `unshare --propagation` needs one.
status=0
unshare --mount --propagation private -- /bin/bash -euo pipefail -c '
        root=$1 logs=$2; shift 2
        mount --bind "$root" "$root"
        mount -t proc proc "$root/proc"
        mount --rbind /sys "$root/sys"
        mount --rbind /dev "$root/dev"
        mount -t tmpfs -o mode=755 tmpfs "$root/run"
        status=0
        for cmd in "$@"; do
                name=$(echo "$cmd" | tr -c "a-z0-9\n" - | tr -d "\n")
                start=$SECONDS
                printf "==> %s: running \"%s\" (log: %s/%s.log)\n" "$(date +%T)" "$cmd" "$logs" "$name" >&2
                rc=0
                chroot "$root" /usr/bin/env -i \
                        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
                        HOME=/root LANG=C.UTF-8 TERM=dumb CI="${CI:-}" \
                        /bin/bash -c "cd /root/dreamlink && $cmd" </dev/null >"$logs/$name.log" 2>&1 || rc=$?
                {
                        printf "%-14s exit %d after %d min %02d s\n" "$cmd" "$rc" $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60))
                        # The counts the command printed, as it printed them.
                        grep -aE "[0-9]+ passed, [0-9]+ failed|survived  " "$logs/$name.log" | sed "s/^/    /" || true
                } | tee -a "$logs/summary" >&2
                [ "$rc" -eq 0 ] || status=1
        done
        exit "$status"
' fresh "$root" "$logs" "$@" || status=$?

printf '\n%s, minbase + git make ca-certificates, %s:\n' "$suite" "$(git -C "$top" rev-parse --short HEAD)"
cat "$logs/summary"
if [ "$status" -eq 0 ] && [ "${FRESH_KEEP:-0}" != 1 ]; then
        rm -rf --one-file-system "$root"
        msg "removed $root; logs in $logs"
else
        msg "kept $root; logs in $logs"
fi
exit "$status"
