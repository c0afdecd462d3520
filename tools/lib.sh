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
                apt-get update -q >&2
                apt_updated=1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
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
