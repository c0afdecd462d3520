#!/bin/bash
# build-tree.sh [--test-access] [--initramfs-tools DIR] VERSION OUTDIR
#
# Builds the dreamlink test OS, a Debian 13 (trixie) root tree, into OUTDIR
# with mmdebstrap. VERSION (v1, v2, ...) selects packages-VERSION.txt beside
# this script and is written to os-release.
#
# The tree is what one A/B root slot holds, with /var split off:
#   - /var in the tree is an empty mount point; the packages' /var content is
#     kept as /usr/share/factory/var. `dreamlink-image disk` seeds the shared var partition
#     from it, and tmpfiles.d "C" lines copy what a later version adds and
#     the shared /var lacks (new packages' state directories). `dreamlink-image
#     prepare` makes that split and writes those lines.
#   - the dpkg database lives in the slot (/usr/lib/sysimage/dpkg, with
#     /var/lib/dpkg a symlink to it), so it always describes the booted slot.
#   - /home and /root are symlinks to var/home and var/roothome: local state.
#
# --test-access (or DREAMLINK_TEST_ACCESS=1): TEST ONLY. Installs the test
# ssh key ($DREAMLINK_CACHE/vm/id_ed25519, made on first use) as root's
# authorized_keys and empties root's password (serial console login).
#
# --initramfs-tools DIR: DIR's hooks/ and scripts/ go to the tree's
# /usr/share/initramfs-tools before its packages are installed, so that the
# initrd the kernel's package makes has them: dreamlink's own, as `meson
# install` puts them there (a handoff boot mounts /var in the initramfs), as
# a dreamlink package installed with the kernel would.
#
# Environment: DREAMLINK_IMAGE (the dreamlink-image to run, a command split
# at blanks; default: dreamlink-image from PATH), DREAMLINK_MIRROR (Debian
# archive), DREAMLINK_SECURITY_MIRROR,
# DREAMLINK_CACHE (apt download cache in $DREAMLINK_CACHE/apt-archives;
# DREAMLINK_APT_CACHE=0 to build without it).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../tools/lib.sh"

usage() { sed -n '2,3p' "$0" | sed 's/^# //' >&2; exit 2; }

test_access=${DREAMLINK_TEST_ACCESS:-0}
initramfs_tools=
while [ $# -gt 0 ]; do
        case $1 in
        --test-access) test_access=1; shift ;;
        --initramfs-tools) [ $# -ge 2 ] || usage; initramfs_tools=$(realpath "$2"); shift 2 ;;
        -h | --help) usage ;;
        -*) die "unknown option $1" ;;
        *) break ;;
        esac
done
[ $# -eq 2 ] || usage
read -ra image_tool <<<"${DREAMLINK_IMAGE:-dreamlink-image}"
command -v "${image_tool[0]}" >/dev/null ||
        die "no ${image_tool[0]} to split /var off with: install dreamlink (or set DREAMLINK_IMAGE)"
version=$1
out=$2
case $version in v[0-9]*) ;; *) die "VERSION must look like v1, v2, ... (got '$version')" ;; esac
list=$here/packages-$version.txt
[ -f "$list" ] || die "no package list $list"
[ -z "$initramfs_tools" ] || [ -d "$initramfs_tools" ] || die "no directory $initramfs_tools"
[ "$(id -u)" -eq 0 ] || die "needs root (mmdebstrap root mode; the tree's files belong to root)"

apt_install mmdebstrap openssh-client zstd

# The list with "@include FILE" expanded; for a package named twice the later
# line wins (v2 replaces "linux-image-amd64" by ".../trixie-backports").
expand_list() {
        local line
        package_list "$1" | while read -r line; do
                case $line in
                @include\ *) expand_list "$(dirname "$1")/${line#@include }" ;;
                *) echo "$line" ;;
                esac
        done
}
packages=$(expand_list "$list" | awk '
        { n = $1; sub(/[\/=].*$/, "", n); if (!(n in sel)) order[++k] = n; sel[n] = $1 }
        END { for (i = 1; i <= k; i++) print sel[order[i]] }' | paste -sd, -)

mirror=$(debian_mirror)
security=${DREAMLINK_SECURITY_MIRROR:-${mirror%/debian}/debian-security}

# Refuse to clobber anything but an earlier tree (or an empty directory).
if [ -e "$out" ]; then
        if [ -f "$out/usr/lib/dreamlink/tree-info" ] || [ -z "$(ls -A "$out")" ]; then
                msg "removing the previous tree $out"
                rm -rf --one-file-system "$out"
        else
                die "$out exists and is not a tree made by this script"
        fi
fi
mkdir -p "$(dirname "$out")"

# apt preferences, written before the first "apt-get update" (setup hook):
# forky (testing) only for criu 4.2.1 and what it needs that trixie lacks:
# libcompel1 (= criu's version), libnl-3-200 >= 3.11 (trixie: 3.7), libnet9
# (not in trixie at all; forky-only packages are candidates even at priority
# 1). Everything else stays trixie. Backports is NotAutomatic, so
# only "pkg/trixie-backports" lines (and their dependencies) come from it.
prefs=$(mktemp)
trap 'rm -f "$prefs"' EXIT
cat >"$prefs" <<'EOF'
Package: *
Pin: release n=forky
Pin-Priority: 1

Package: criu libcompel1 libnet9 libnl-3-200
Pin: release n=forky
Pin-Priority: 990
EOF

# The .debs are synced with $cache so rebuilds download less
# (--skip=essential/unlink keeps the essential set's .debs until sync-out).
# DREAMLINK_APT_CACHE=0 turns that off.
cache_hooks=()
if [ "${DREAMLINK_APT_CACHE:-1}" = 1 ]; then
        cache=$DREAMLINK_CACHE/apt-archives
        mkdir -p "$cache"
        cache_hooks=(--skip=essential/unlink
                --setup-hook="sync-in $cache /var/cache/apt/archives/"
                --customize-hook="sync-out /var/cache/apt/archives $cache")
fi

# Essential hooks run before the packages of the list (the kernel, initramfs-tools) are installed.
initramfs_hooks=()
if [ -n "$initramfs_tools" ]; then
        # shellcheck disable=SC2016 # $1 is the hook's: the tree
        initramfs_hooks=(--essential-hook='mkdir -p "$1/usr/share/initramfs-tools"'
                --essential-hook="cp -R --preserve=mode '$initramfs_tools/.' \"\$1/usr/share/initramfs-tools/\"")
fi

start=$SECONDS
msg "mmdebstrap trixie $version into $out (mirror $mirror)"
# Sources: forky's Release is past its Valid-Until, so that one source skips
# the check. The essential hook runs before the kernel is installed: with no
# "/" in fstab, initramfs-tools' fsck hook cannot tell the root fs type and
# leaves fsck out of the initrd, so root (mounted rw) would never be checked.
mmdebstrap --variant=apt \
        --include="$packages" \
        --setup-hook='mkdir -p "$1/etc/apt/preferences.d" "$1/var/cache/apt/archives/partial"' \
        --setup-hook="upload $prefs /etc/apt/preferences.d/dreamlink.pref" \
        --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" && echo FSTYPE=ext4 >"$1/etc/initramfs-tools/conf.d/dreamlink-fsck"' \
        "${initramfs_hooks[@]}" \
        "${cache_hooks[@]}" \
        trixie "$out" \
        "deb $mirror trixie main" \
        "deb $mirror trixie-updates main" \
        "deb $security trixie-security main" \
        "deb $mirror trixie-backports main" \
        "deb [check-valid-until=no] $mirror forky main"
msg "mmdebstrap took $((SECONDS - start)) s"

t=$out
# Keep the pin in the tree so the image's own apt agrees with how it was built.
install -m 0644 "$prefs" "$t/etc/apt/preferences.d/dreamlink.pref"

# --- identity -------------------------------------------------------------
# os-release: keep ID=debian (packages and tools key on it), mark the image.
n=${version#v}
sed -i -e "s/^PRETTY_NAME=.*/PRETTY_NAME=\"dreamlink $version (Debian GNU\/Linux 13)\"/" \
        -e "s/^VERSION=.*/VERSION=\"dreamlink $version\"/" "$t/usr/lib/os-release"
printf 'IMAGE_ID=dreamlink\nIMAGE_VERSION=%s\n' "$n" >>"$t/usr/lib/os-release"
echo dreamlink >"$t/etc/hostname"
echo LANG=C.UTF-8 >"$t/etc/default/locale"   # pam_env warns on every login without it
printf '127.0.0.1\tlocalhost\n127.0.1.1\tdreamlink\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$t/etc/hosts"
# mmdebstrap copied the host's resolv.conf; the image has no DNS of its own.
: >"$t/etc/resolv.conf"
# Empty machine-id = first boot: systemd generates and commits one.
: >"$t/etc/machine-id"
rm -f "$t/var/lib/dbus/machine-id"
# Host keys are made on first boot (ssh-keygen -A below), never shipped.
rm -f "$t"/etc/ssh/ssh_host_*

# --- mounts ---------------------------------------------------------------
mkdir -p "$t/efi"
cat >"$t/etc/fstab" <<'EOF'
# / comes from the kernel command line: root=PARTLABEL=root-a or root-b.
# /var is shared by both slots.
PARTLABEL=var  /var  ext4  defaults  0  2
# The ESP, for systemd-bless-boot (boot counting) and the updater.
PARTLABEL=esp  /efi  vfat  umask=0077,noauto,x-systemd.automount,x-systemd.idle-timeout=60  0  2
EOF

# --- network, console, ssh ------------------------------------------------
cat >"$t/etc/systemd/network/80-dhcp.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=yes
EOF
mkdir -p "$t/etc/systemd/system/ssh.service.d"
cat >"$t/etc/systemd/system/ssh.service.d/dreamlink-keygen.conf" <<'EOF'
[Service]
# The image ships no host keys: make them on first boot, before the unit's
# own "sshd -t" check (which fails without keys), so reset the list.
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
EOF
chroot "$t" systemctl enable systemd-networkd.service serial-getty@ttyS0.service
# systemd-ssh-generator (ssh over AF_VSOCK for VMs) fails without a vsock
# device and logs a warning every boot; the image uses plain sshd.
mkdir -p "$t/etc/systemd/system-generators"
ln -sf /dev/null "$t/etc/systemd/system-generators/systemd-ssh-generator"
# A test image has no network to update from: no apt timers burning TCG time.
chroot "$t" systemctl disable apt-daily.timer apt-daily-upgrade.timer 2>/dev/null || true

if [ "$test_access" = 1 ]; then
        key=$DREAMLINK_CACHE/vm/id_ed25519
        if [ ! -f "$key" ]; then
                mkdir -p "$(dirname "$key")"
                ssh-keygen -q -t ed25519 -N '' -C dreamlink-test-key -f "$key"
        fi
        msg "TEST ACCESS: root ssh key $key.pub, empty root password"
        install -d -m 0700 "$t/root/.ssh"
        install -m 0600 "$key.pub" "$t/root/.ssh/authorized_keys"
        chroot "$t" passwd -d root >/dev/null
fi

# --- a container image for the tests ----------------------------------------
# No registry is reachable: the tests' container image is a Debian root with redis, made here
# and imported by the tests with `podman import`. It lives in /var (the factory copy below), so
# the containers made from it and their storage are the same on both slots.
if [ "$test_access" = 1 ]; then
        ctr=$(mktemp -d)
        mmdebstrap --quiet --variant=essential --include=redis-server \
                --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
                --dpkgopt='path-exclude=/usr/share/locale/*' \
                trixie "$ctr/root.tar" "deb $mirror trixie main"
        mkdir -p "$t/var/lib/dreamlink-test"
        zstd -q -T0 -12 --rm "$ctr/root.tar" -o "$t/var/lib/dreamlink-test/redis-container.tar.zst"
        rm -rf "$ctr"
fi

# --- /var split -----------------------------------------------------------
# dpkg's database describes the slot, so it lives in the slot.
mkdir -p "$t/usr/lib/sysimage"
mv "$t/var/lib/dpkg" "$t/usr/lib/sysimage/dpkg"
ln -s /usr/lib/sysimage/dpkg "$t/var/lib/dpkg"
mkdir -p "$t/var/home"
rmdir "$t/home"
ln -s var/home "$t/home"
# root's home is local state too (shell history, keys): shared, like /home.
mv "$t/root" "$t/var/roothome"
ln -s var/roothome "$t/root"
# What the machine serves (/srv: vsftpd's anonymous root) is the admin's data, not the OS's: in a
# slot it would be gone after the switch, and with it a file a carried daemon has open.
mv "$t/srv" "$t/var/srv"
ln -s var/srv "$t/srv"
# systemd's home.conf ("Q /home", "Q /srv") warns about the symlinks: override it.
mkdir -p "$t/etc/tmpfiles.d"
echo "# /home and /srv are symlinks into /var (dreamlink A/B layout)" >"$t/etc/tmpfiles.d/home.conf"
# Everything else under /var becomes the factory copy, /var a mount point, and the tmpfiles.d
# lines that seed a machine's shared /var from it are written: dreamlink-image owns that split,
# for trees from container images as for this one.
"${image_tool[@]}" prepare --tree="$t"

# --- record what was built ------------------------------------------------
mkdir -p "$t/usr/lib/dreamlink"
{
        echo "version=$version"
        echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "kernels=$(cd "$t/boot" && ls vmlinuz-* | sed 's/^vmlinuz-//' | paste -sd' ')"
        echo "criu=$(dpkg-query --admindir="$t/usr/lib/sysimage/dpkg" -W -f='${Version}' criu)"
        echo "test_access=$test_access"
} >"$t/usr/lib/dreamlink/tree-info"

msg "tree $out: $(du -sh --one-file-system "$t" | cut -f1), $((SECONDS - start)) s"
sed 's/^/    /' "$t/usr/lib/dreamlink/tree-info" >&2
ls -l "$t/boot" >&2
