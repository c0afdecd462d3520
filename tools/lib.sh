# Shared helpers for the shell tools; sourced, not run.

DREAMLINK_CACHE=${DREAMLINK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dreamlink}

msg() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Package names of a list file: comments and blank lines dropped.
package_list() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$1"; }

host_is_trixie() {
        . /etc/os-release
        [ "${ID:-}" = debian ] && [ "${VERSION_CODENAME:-}" = trixie ]
}

# apt_install PACKAGE...: installs what is missing. What the project installs
# is a tool, never a service of this machine: nothing it brings is started
# (policy-rc.d says no while apt runs) and the units it enabled are disabled
# again (nginx would otherwise serve port 80 from the next boot on). A
# failure stops the caller with apt's own error.
installed_packages() { dpkg-query -W -f='${db:Status-Abbrev}${Package}\n' | sed -n 's/^ii *//p' | sort; }

apt_updated=
apt_install() {
        local missing=() p
        for p in "$@"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
        done
        [ ${#missing[@]} -eq 0 ] && return 0
        [ "$(id -u)" -eq 0 ] || die "need root to install: ${missing[*]}"
        msg "installing ${missing[*]}"
        if [ -z "$apt_updated" ]; then
                apt-get update -q -o DPkg::Lock::Timeout=600 >&2 ||
                        die "apt-get update failed (see above); is Debian's archive reachable?"
                apt_updated=1
        fi
        local before policy=/usr/sbin/policy-rc.d ours=
        before=$(installed_packages)
        if [ ! -e "$policy" ]; then
                printf '#!/bin/sh\n# dreamlink: installing test tools, no services (removed after)\nexit 101\n' >"$policy"
                chmod 0755 "$policy"
                ours=1
        fi
        local rc=0
        # Lock::Timeout: another apt (unattended-upgrades, a second test run) waits its turn.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                -o DPkg::Lock::Timeout=600 "${missing[@]}" >&2 || rc=$?
        [ -z "$ours" ] || rm -f "$policy"
        [ "$rc" -eq 0 ] || die "apt-get install ${missing[*]} failed (see above)"
        # Units of everything this install brought, dependencies included
        # (bookworm's nginx.service is in nginx-common).
        local units
        units=$(installed_packages | comm -13 <(echo "$before") - | xargs -r dpkg -L 2>/dev/null |
                sed -n 's|^/\(usr/\)\{0,1\}lib/systemd/system/\([^/@]*\.\(service\|socket\|timer\)\)$|\2|p' | sort -u)
        if [ -n "$units" ] && command -v systemctl >/dev/null; then
                msg "keeping $(echo $units) off (installed as a tool, not a service of this machine)"
                # shellcheck disable=SC2086 # one word per unit
                systemctl disable --quiet --no-reload $units 2>/dev/null || true
        fi
}

# The Debian archive the host already uses (so local mirrors and proxies keep
# working); DREAMLINK_MIRROR overrides it.
debian_mirror() {
        if [ -n "${DREAMLINK_MIRROR:-}" ]; then
                echo "$DREAMLINK_MIRROR"
                return
        fi
        local uri
        uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
                grep -oE 'https?://[^[:space:]]+/debian/?([[:space:]]|$)' | grep -v security | head -n1 | tr -d '[:space:]')
        [ -n "$uri" ] || die "no Debian mirror in the apt sources; set DREAMLINK_MIRROR"
        echo "${uri%/}"
}
