# suite: full
# A release built from a Containerfile, as docs/quickstart.md (3b) says:
#  0. The guest commits a tiny image straight from podman's storage
#     (--from-oci=containers-storage:IMAGE).
#  1. The host writes release 1's tree as a base image (dreamlink-image export),
#     which committed as it is gives release 1's tree again.
#  2. The guest's podman builds the quickstart's Containerfile as the doc has it
#     (FROM oci-archive:base.tar, apt-get install htop from Debian's mirror, a
#     config file), with two lines of this test's after it (a .deb made here,
#     with state in /var/lib), and saves the image as the doc says.
#  3. The host commits the archive (dreamlink-image commit --from-oci) as
#     version 3 and publishes it, in a copy of the release directory (the
#     shared one stays as the other scenarios expect it).
#  4. The guest stages and commits it like any release, redis carried with a
#     client connection counting: after the kexec the package, the config file
#     and the package's /var directory (seeded from the factory copy) are there.

# podman load keeps three copies of an archive in its temporary directory (what it read, that
# unpacked, each blob again) before its storage has the image: with the 1 GiB base image, far more
# than the guest's 3 GiB /var has room for. A bigger guest, and podman's temporary files in /tmp (a
# tmpfs of half its memory).
export VM_FWD=6379 VM_MEM=10240
server=$top/tests/vm/release-server.sh
dli() { "$top/tools/env.sh" "$top/build-image/image-tools/dreamlink-image" "$@"; }
# Below the cache, which the build environment (tools/env.sh) sees too.
work=$DREAMLINK_CACHE/vm/containerfile
rm -rf "$work"
mkdir -p "$work/ctx"
trap '"$server" stop; rm -rf "$work"; vm_cleanup' EXIT

# --- 1. the base image: release 1 as the machines run it --------------------
"$top/tools/env.sh" ostree checkout --repo="$RELEASE_ROOT/repo" "$V1_COMMIT" "$work/v1"
check "release 1 is written as a base image" dli export --tree="$work/v1" --output="oci-archive:$work/base.tar:dreamlink-base"
rm -rf "$work/v1"
# The base image committed as it is gives release 1 again: nothing lost or changed on the way
# through the image (release 1's tree was split by the same dreamlink-image prepare).
cp -al "$RELEASE_ROOT" "$work/release"
dli commit --root="$work/release" --from-oci="oci-archive:$work/base.tar" --branch=dreamlink/demo/x86_64/base \
        --version=1 --cmdline=unused --workdir="$work" >/dev/null 2>&1
expect_eq "the base image commits back to release 1's tree" "" \
        "$("$top/tools/env.sh" ostree diff --repo="$work/release/repo" "$V1_COMMIT" dreamlink/demo/x86_64/base 2>&1)"

# --- 2. podman build in the guest -------------------------------------------
disk=$(vm_disk_from containerfile "$DISK_V1")
vm_start "$disk" || return 1

# podman's storage as a source (containers-storage:), with the guest's own dreamlink-image and
# podman: a tiny tree that follows the rules, imported as an image, committed from there.
out=$(guest 'set -e
        rm -rf /var/tmp/mini /var/tmp/mini-rel
        mkdir -p /var/tmp/mini/usr/lib/systemd /var/tmp/mini/boot /var/tmp/mini/var
        echo init >/var/tmp/mini/usr/lib/systemd/systemd
        echo kernel >/var/tmp/mini/boot/vmlinuz-1.0
        echo initrd >/var/tmp/mini/boot/initrd.img-1.0
        tar -C /var/tmp/mini -c . | podman import - localhost/dl-mini:1 >/dev/null
        dreamlink-image commit --root=/var/tmp/mini-rel --from-oci=containers-storage:localhost/dl-mini:1 \
                --branch=mini/x86_64/stable --version=1 --os=mini 2>&1
        podman rmi -f localhost/dl-mini:1 >/dev/null
        rm -rf /var/tmp/mini /var/tmp/mini-rel')
expect_eq "an image of podman's storage commits (containers-storage:)" 0 "$?"
expect_contains "with its kernel found" "(version 1, kernel 1.0)" "$out"

# A package of our own: a program, and state in /var/lib that must reach the machine's /var.
pkg=$work/pkg
mkdir -p "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/var/lib/dreamlink-hello"
printf 'Package: dreamlink-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: dreamlink tests <tests@dreamlink.invalid>\nDescription: says hello from a Containerfile\n' >"$pkg/DEBIAN/control"
printf '#!/bin/sh\necho "hello from a Containerfile"\n' >"$pkg/usr/bin/dreamlink-hello"
chmod 0755 "$pkg/usr/bin/dreamlink-hello"
echo "seeded" >"$pkg/var/lib/dreamlink-hello/state"
dpkg-deb --root-owner-group --build "$pkg" "$work/ctx/dreamlink-hello.deb" >/dev/null
echo "Welcome to release 3, built from a Containerfile." >"$work/ctx/motd"
# The quickstart's Containerfile, read from the doc, then this test's lines.
awk '/^## 3b\./ { s = 1 } s && /^```dockerfile/ { f = 1; next } f && /^```/ { exit } f' "$top/docs/quickstart.md" \
        >"$work/ctx/Containerfile"
expect_eq "the quickstart's Containerfile builds FROM the base archive" "FROM oci-archive:base.tar" \
        "$(head -n1 "$work/ctx/Containerfile")"
cat >>"$work/ctx/Containerfile" <<'EOF'
COPY dreamlink-hello.deb /tmp/
RUN dpkg -i /tmp/dreamlink-hello.deb && rm /tmp/dreamlink-hello.deb
EOF
mv "$work/base.tar" "$work/ctx/base.tar"

# The guest has no DNS of its own: deb.debian.org is given the address the host resolves it to,
# which the guest reaches through qemu's user network.
mirror=$(getent hosts deb.debian.org | awk '{ print $1; exit }')
expect_match "the host resolves Debian's mirror (the quickstart's apt-get needs it)" '.' "$mirror"
t0=$SECONDS
# In /tmp (half of the guest's 10 GiB): the archives are 1 GiB each, and /var (3 GiB) holds
# podman's storage. The base archive goes once the build has read it.
tar -C "$work/ctx" -c . | guest 'rm -rf /tmp/ctx && mkdir /tmp/ctx && tar -C /tmp/ctx -x'
rm -f "$work/ctx/base.tar"
# The doc's two commands, in the directory the doc has them run in.
out=$(guest "cd /tmp/ctx && TMPDIR=/tmp podman build --add-host=deb.debian.org:$mirror -t myos:2 . 2>&1 && rm base.tar &&
        TMPDIR=/tmp podman save --format=oci-archive -o myos-2.tar myos:2 2>&1")
expect_eq "podman builds the quickstart's Containerfile and saves it" 0 "$?"
printf '%s\n' "$out" | tail -n 5 | sed 's/^/        /'
guest 'cat /tmp/ctx/myos-2.tar' >"$work/os-3.tar"
expect_eq "the archive comes out" 0 "$?"
guest 'podman rmi -f localhost/myos:2 >/dev/null; podman image prune -af >/dev/null; rm -rf /tmp/ctx' || true
printf '  ..    copy in, build and save in the guest: %d s, archive %s\n' $((SECONDS - t0)) "$(du -h "$work/os-3.tar" | cut -f1)"

# --- 3. commit and publish -----------------------------------------------------
cmdline=$("$top/tools/env.sh" ostree show --repo="$RELEASE_ROOT/repo" --print-metadata-key=dreamlink.boot "$V1_COMMIT" |
        python3 -c 'import re, sys; print(re.search(r"'"'"'cmdline'"'"': '"'"'([^'"'"']*)'"'"'", sys.stdin.read()).group(1))')
expect_match "release 1's kernel command line is read" 'panic=' "$cmdline"
out=$(dli commit --root="$work/release" --from-oci="oci-archive:$work/os-3.tar" --branch=dreamlink/demo/x86_64/stable \
        --version=3 --cmdline="$cmdline" --workdir="$work" 2>&1)
rc=$?
expect_eq "dreamlink-image commits the image" 0 "$rc"
printf '%s\n' "$out" | tail -n 3 | sed 's/^/        /'
[ "$rc" = 0 ] || return 1
rm -f "$work/os-3.tar"
check "and publishes it as release 3" dli publish --root="$work/release" --key="$RELEASE_KEYS/release.key" --channel=stable \
        --rev=dreamlink/demo/x86_64/stable --delta-bases=0 --delta-from="$V1_COMMIT"
port=$("$server" start "$work/release")

# --- 4. stage and commit on the machine -------------------------------------
updaterd_use_test_server "$port" stable "$(printf '[Health]\nRequiredUnits=redis-server.service ssh.service')"
redis_handoff_setup
out=$(guest updatectl stage 2>&1)
expect_eq "release 3 is staged" 0 "$?"
printf '%s\n' "$out" | tail -n 2 | sed 's/^/        /'

client_log=$VM_RUN_DIR/containerfile-client.log
stop_file=$VM_RUN_DIR/containerfile-client.stop
redis_client_start "$client_log" "$stop_file"
sleep 5
redis_pid=$(guest systemctl show -P MainPID redis-server.service)
old_boot=$(guest cat /proc/sys/kernel/random/boot_id)
guest 'systemd-run --unit=dl-commit --collect --quiet updatectl commit'
check "the machine switched (a new boot answers)" wait_new_boot "$old_boot"
wait_boot_check
status=$(guest updatectl status 2>&1)
printf '%s\n' "$status" | sed 's/^/        /'
expect_match "slot b runs release 3, good" 'b  +booted +good +3 ' "$status"
expect_match "redis was restored across the switch" '"redis-server.service" : "restored"' "$(guest cat /var/lib/dreamlink/transaction.json)"
expect_eq "the quickstart's package is installed" "ii" "$(guest "dpkg-query -W -f='\${db:Status-Abbrev}' htop" | cut -c1-2)"
expect_match "and runs" '^htop ' "$(guest 'htop --version' | head -n1)"
expect_eq "the Containerfile's package is installed" "ii" "$(guest "dpkg-query -W -f='\${db:Status-Abbrev}' dreamlink-hello" | cut -c1-2)"
expect_eq "its program runs" "hello from a Containerfile" "$(guest dreamlink-hello)"
expect_eq "the Containerfile's config file is there" "Welcome to release 3, built from a Containerfile." "$(guest cat /etc/motd)"
expect_eq "the package's /var state reached the machine's /var" "seeded" "$(guest cat /var/lib/dreamlink-hello/state)"
expect_eq "redis kept its PID" "$redis_pid" "$(guest systemctl show -P MainPID redis-server.service)"
touch "$stop_file"
wait "$client" 2>/dev/null
expect_eq "the client's connection counted through the switch" 0 "$(client_skips "$client_log")"
check "and never failed" bash -c "! grep -q ERROR '$client_log'"
printf '  ..    client gap %s s\n' "$(client_gap "$client_log")"
