#!/bin/bash
# Build (or reuse) the Debian 13 devroot and print its path.
# The devroot lives in the cache, keyed by a hash of its inputs; it is never
# committed and is rebuilt whenever tools/devroot.packages or this script change.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"

key=$(cat "$here/devroot.packages" "$here/devroot.sh" | sha256sum | cut -c1-16)
root="$DREAMLINK_CACHE/devroot-$key"

if [ -e "$root/.dreamlink-complete" ]; then
        echo "$root"
        exit 0
fi

mkdir -p "$DREAMLINK_CACHE"
exec 9>"$DREAMLINK_CACHE/devroot.lock"
flock 9
if [ -e "$root/.dreamlink-complete" ]; then
        echo "$root"
        exit 0
fi

command -v mmdebstrap >/dev/null || apt_install mmdebstrap
mirror=$(debian_mirror)
packages=$(package_list "$here/devroot.packages" | paste -sd, -)
msg "building trixie devroot in $root (one time, a few minutes)"
rm -rf "$root.tmp"
mmdebstrap --variant=apt --include="$packages" \
        --aptopt='Acquire::Retries "3"' \
        trixie "$root.tmp" "$mirror" >&2 </dev/null
touch "$root.tmp/.dreamlink-complete"
mv "$root.tmp" "$root"

# Old devroots are dead weight once a new one exists, unless a command still
# runs in one (tools/env.sh holds a shared lock on its marker file).
for old in "$DREAMLINK_CACHE"/devroot-*; do
        [ "$old" != "$root" ] && [ -e "$old/.dreamlink-complete" ] || continue
        ( flock -xn 7 && rm -rf "$old" ) 7<"$old/.dreamlink-complete" || true
done
echo "$root"
