#!/bin/bash
# images.sh: builds (or reuses) what the VM tests run on, and prints it as
# shell assignments for `eval`:
#   RELEASE_ROOT  a release server directory: repo/ (v1 and v2 committed, v2
#                 with a static delta from v1) and channels/:
#                   stable    v1 then v2 (counters 1, 2)
#                   onepkg    v1.1 = v1 plus one package (counter 10, delta from v1)
#                   rollback  v1 again, counter 1 (refused once 2 was accepted)
#                   expired   v2, expired a day after it was issued a month ago
#                   tampered  v2 with one byte of the manifest changed
#   RELEASE_KEYS  the directory holding the test release key pair
#   DISK_V1       a disk image with v1 in slot A
#   V1_COMMIT, V2_COMMIT, V1_KERNEL, V2_KERNEL
#
# Everything is cached in $DREAMLINK_CACHE, keyed by its inputs: the OS trees
# by their recipe (slow: mmdebstrap), the releases and disk by the trees and
# dreamlink's installed files (fast). A warm cache rebuilds only what changed.
# Checkouts with different recipes can share one cache: of each tree version,
# release set and disk the KEEP (default 3) most recently used builds are kept
# (DREAMLINK_CACHE_KEEP), so a third checkout does not evict the other two.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/tools/lib.sh"

# One builder at a time: a second one waits and then finds the cache warm.
mkdir -p "$DREAMLINK_CACHE/vm"
exec 9>"$DREAMLINK_CACHE/vm/images.lock"
flock 9

hash_of() { cat "$@" | sha256sum | cut -c1-16; }
timer() { echo $(($(date +%s) - $1)); }

# evict_lru GLOB...: of the builds matching each GLOB, all but the KEEP most
# recently used (mtime, which every use touches) are removed.
keep=${DREAMLINK_CACHE_KEEP:-3}
evict_lru() {
        local g
        for g in "$@"; do
                # shellcheck disable=SC2086 # the glob is the point
                ls -dt $g 2>/dev/null | tail -n +$((keep + 1)) | while read -r old; do
                        msg "cache: removing $old (not used since $(date -r "$old" +%F))"
                        rm -rf --one-file-system "$old"
                done
        done
}

os=$top/image-tools/os
# A version's package list and the lists it @includes.
package_files() {
        echo "$1"
        sed -n 's/^@include[[:space:]]*//p' "$1" | while read -r inc; do package_files "$(dirname "$1")/$inc"; done
}
# The build's dreamlink-image, run in the build environment: here and in build-tree.sh.
DREAMLINK_IMAGE="$top/tools/env.sh $top/build-image/image-tools/dreamlink-image"
export DREAMLINK_IMAGE
dli() { $DREAMLINK_IMAGE "$@"; }
# The guest's dreamlink is a release build installed under /usr (dbus only reads /usr/share).
"$top/tools/env.sh" bash -c '[ -e build-image/build.ninja ] ||
        meson setup build-image --prefix=/usr --buildtype=release -Dtests=disabled >/dev/null
        meson compile -C build-image >/dev/null'
# dreamlink's own files, installed over each tree; its initramfs-tools files also go into the
# trees themselves, before the kernel's package makes the initrd.
overlay=$DREAMLINK_CACHE/vm/overlay
rm -rf "$overlay"
"$top/tools/env.sh" bash -c "meson install -C build-image --destdir '$overlay' --quiet >/dev/null"
initramfs_tools=$overlay/usr/share/initramfs-tools
files_key() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
declare -A tree
# A tree is made by build-tree.sh from its package lists, and of tools/lib.sh
# only package_list() shapes it (apt_install and friends do not); its /var
# split by dreamlink-image (os-tree.c); its initrd by dreamlink's initramfs-tools files.
for v in v1 v1.1 v2; do
        key=$(hash_of "$os/build-tree.sh" <(declare -f package_list) $(package_files "$os/packages-$v.txt") \
                "$top/image-tools/os-tree.c" <(files_key "$initramfs_tools"))
        tree[$v]=$DREAMLINK_CACHE/trees/$v-$key
        if [ ! -e "${tree[$v]}/usr/lib/dreamlink/tree-info" ]; then
                t0=$(date +%s)
                # Left by an interrupted build, maybe with mmdebstrap's mounts still in it.
                findmnt -rn -o TARGET | { grep "^${tree[$v]}.tmp/" || true; } | sort -r | xargs -r umount -l
                rm -rf --one-file-system "${tree[$v]}.tmp"
                "$os/build-tree.sh" --test-access --initramfs-tools "$initramfs_tools" "$v" "${tree[$v]}.tmp" >&2
                rm -rf "${tree[$v]}"
                mv "${tree[$v]}.tmp" "${tree[$v]}"
                msg "tree $v built in $(timer "$t0") s"
        fi
        touch -c "${tree[$v]}"
        evict_lru "$DREAMLINK_CACHE/trees/$v-[0-9a-f]*[0-9a-f]"
done

# The test release key: made once, kept with the cache.
keys=$DREAMLINK_CACHE/vm/keys
[ -f "$keys/release.key" ] || dli keygen --output="$keys" >&2
install -D -m 0644 "$keys/release.pem" "$overlay/usr/lib/dreamlink/keys.d/test-release.pem"
# TEST ONLY: every harness connection comes from slirp's one address
# (10.0.2.2); sshd's per-source penalties would lock the harness out for
# minutes after a few banner timeouts on a slow guest.
mkdir -p "$overlay/etc/ssh/sshd_config.d"
echo "PerSourcePenalties no" >"$overlay/etc/ssh/sshd_config.d/dreamlink-test.conf"
overlay_key=$( (cd "$overlay" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16)

release_key=$(echo "${tree[v1]} ${tree[v1.1]} ${tree[v2]} $overlay_key $(hash_of "$here/images.sh")" | sha256sum | cut -c1-16)
srv=$DREAMLINK_CACHE/vm/releases/$release_key
disk=$DREAMLINK_CACHE/vm/disks/v1-$release_key.img
branch=dreamlink/demo/x86_64/stable
# The kernel keeps the hardware watchdog running across a kexec
# (stop_on_reboot=0), and i6300esb, which stops a running watchdog when it
# loads, cannot stop one that was locked (nowayout): a new slot that hangs in
# its initramfs is reset. heartbeat: what a new boot gets from the driver
# until its systemd takes the watchdog over.
cmdline="console=ttyS0,115200 panic=10 watchdog.stop_on_reboot=0 i6300esb.nowayout=1 i6300esb.heartbeat=60"

if [ ! -e "$srv/.complete" ]; then
        t0=$(date +%s)
        rm -rf "$srv"
        for v in v1 v2; do
                dli commit --root="$srv" --tree="${tree[$v]}" --overlay="$overlay" --branch="$branch" \
                        --version="${v#v}" --cmdline="$cmdline" >&2
                dli publish --root="$srv" --key="$keys/release.key" --channel=stable --rev="$branch" >&2
        done
        # The channels the refusal and delta tests point a guest at.
        v1_commit=$(sed -n 's/.*"commit":"\([0-9a-f]*\)".*/\1/p' "$srv/channels/stable/1.json")
        v2_commit=$(sed -n 's/.*"commit":"\([0-9a-f]*\)".*/\1/p' "$srv/channels/stable/2.json")
        dli commit --root="$srv" --tree="${tree[v1.1]}" --overlay="$overlay" --branch=dreamlink/demo/x86_64/onepkg \
                --version=1.1 --cmdline="$cmdline" >&2
        dli publish --root="$srv" --key="$keys/release.key" --channel=onepkg --counter=10 \
                --rev=dreamlink/demo/x86_64/onepkg --delta-from="$v1_commit" >&2
        dli publish --root="$srv" --key="$keys/release.key" --channel=rollback --counter=1 --rev="$v1_commit" >&2
        dli publish --root="$srv" --key="$keys/release.key" --channel=expired --rev="$v2_commit" --delta-bases=0 \
                --now="$(date -u -d '30 days ago' +%Y-%m-%dT%H:%M:%SZ)" --expires-in=1d >&2
        dli publish --root="$srv" --key="$keys/release.key" --channel=tampered --rev="$v2_commit" --delta-bases=0 >&2
        # One byte: the version "2" becomes "3"; the signature no longer matches.
        sed -i 's/"version":"2"/"version":"3"/' "$srv/channels/tampered.json"
        touch "$srv/.complete"
        msg "releases committed and published in $(timer "$t0") s"
fi

if [ ! -e "$disk" ]; then
        t0=$(date +%s)
        mkdir -p "$(dirname "$disk")"
        v1_commit=$(sed -n 's/.*"commit":"\([0-9a-f]*\)".*/\1/p' "$srv/channels/stable/1.json")
        dli disk --root="$srv" --rev="$v1_commit" --output="$disk.tmp" >&2
        mv "$disk.tmp" "$disk"
        msg "disk image built in $(timer "$t0") s"
fi

touch -c "$srv" "$disk"
evict_lru "$DREAMLINK_CACHE/vm/releases/*" "$DREAMLINK_CACHE/vm/disks/*.img"

field() { sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p" "$srv/channels/stable/$1.json"; }
cat <<EOF
RELEASE_ROOT=$srv
RELEASE_KEYS=$keys
DISK_V1=$disk
V1_COMMIT=$(field 1 commit)
V2_COMMIT=$(field 2 commit)
V1_KERNEL=$(field 1 kernel)
V2_KERNEL=$(field 2 kernel)
EOF
