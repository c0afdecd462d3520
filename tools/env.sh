#!/bin/bash
# Run a command in dreamlink's build environment: natively on a Debian 13
# (trixie) host, in the cached trixie devroot everywhere else. The repository
# is visible at the same path in both, so build directories are portable
# between runs.
#
#   tools/env.sh CMD [ARGS...]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(dirname "$here")
. "$here/lib.sh"

[ $# -gt 0 ] || die "usage: tools/env.sh CMD [ARGS...]"

if host_is_trixie && [ -z "${DREAMLINK_FORCE_DEVROOT:-}" ]; then
        mapfile -t pkgs < <(package_list "$here/devroot.packages")
        apt_install "${pkgs[@]}"
        cd "$top"
        exec "$@"
fi

[ "$(id -u)" -eq 0 ] || die "the devroot needs root (chroot and mounts)"
apt_install util-linux
root=$("$here/devroot.sh")
# Keeps a newer devroot's build from deleting this one while we use it.
exec 8<"$root/.dreamlink-complete"
flock -s 8

# A private mount namespace: every mount below vanishes with the command,
# however it exits.
export DREAMLINK_CACHE
exec unshare --mount --propagation private -- /bin/bash -euo pipefail -c '
        root=$1 top=$2; shift 2
        # "/" is a mount point on a real machine, and the stage worker (which
        # makes its mounts private) needs one, as does unshare --propagation.
        mount --bind "$root" "$root"
        mount -t proc proc "$root/proc"
        mount --rbind /dev "$root/dev"
        mount --rbind /sys "$root/sys"
        mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
        mkdir -p "$root/run" "$root$top"
        mount -t tmpfs -o mode=755 tmpfs "$root/run"
        mount --bind "$top" "$root$top"
        # Built OS trees and images live in the cache, outside the repository.
        if [ -d "$DREAMLINK_CACHE" ]; then
                mkdir -p "$root$DREAMLINK_CACHE"
                mount --rbind "$DREAMLINK_CACHE" "$root$DREAMLINK_CACHE"
        fi
        exec chroot "$root" /usr/bin/env -i \
                PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
                HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" CI="${CI:-}" \
                DREAMLINK_CACHE="$DREAMLINK_CACHE" TMPDIR="${DREAMLINK_TMPDIR:-/var/tmp}" \
                /bin/bash -c "cd \"\$0\" && exec \"\$@\"" "$top" "$@"
' dreamlink-devroot "$root" "$top" "$@"
