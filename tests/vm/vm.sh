#!/bin/bash
# vm.sh COMMAND [ARGS]: one qemu guest for the dreamlink VM tests.
#
#   boot IMG [QEMU_ARGS...]  start the guest in the background (UEFI, virtio disk;
#                            IMG raw or qcow2)
#   wait-ssh [TIMEOUT]       wait until root ssh works (default 900 s); prints the wait
#   ssh-tty                  an interactive root login with a pty (for a test to type into)
#   ssh [CMDLINE...]         run CMDLINE as root in the guest's shell (stdin passes
#                            through: `vm.sh ssh 'cat >/tmp/f' <f` copies a file)
#   port GUEST_PORT          the host port forwarded to GUEST_PORT (tcp)
#   stop [TIMEOUT]           clean poweroff (ssh, then ACPI, then quit); default 300 s
#   kill                     power cut: SIGKILL qemu (disk keeps what qemu wrote)
#   monitor CMD...           a human monitor (HMP) command, e.g. `monitor info status`
#   status                   exit 0 if the guest's qemu is running
#   dir                      the state directory (pid, ports, serial.log, sockets)
#
# Environment:
#   VM_NAME (default)  state in $VM_RUN_DIR/$VM_NAME (VM_RUN_DIR: /tmp/dreamlink-vm)
#   VM_MEM (2048) VM_SMP (1: under TCG with 2, a kernel patching its text while
#           another vCPU runs it dies now and then of "Oops: int3", 6.12 as 7.3; seen
#           right after criu's probe loaded tun, in 35-postgres and in 30-handoff)
#   VM_ACCEL (tcg | kvm; default tcg) VM_CPU (max on tcg, host on kvm). The dev host
#           has a /dev/kvm that opens but cannot run a guest, so no auto-detection.
#   VM_FWD  extra guest tcp ports to forward, "80 6379" or "8080:80" (host:guest)
#   VM_SNAPSHOT=1  writes go to a temporary overlay, IMG stays untouched
#   VM_FRESH_VARS=1  start from a blank OVMF_VARS (else NVRAM persists across boots
#                    of the same VM_NAME, like a real machine's)
#   VM_KEY  ssh private key (default $DREAMLINK_CACHE/vm/id_ed25519, the key
#           build-tree.sh --test-access installs)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/tools/lib.sh"
. "$here/host.sh"

VM_NAME=${VM_NAME:-default}
VM_RUN_DIR=${VM_RUN_DIR:-/tmp/dreamlink-vm}
st=$VM_RUN_DIR/$VM_NAME
key=${VM_KEY:-$DREAMLINK_CACHE/vm/id_ed25519}
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

qemu_pid() { # [STATE_DIR]: the pid of that VM's qemu (default: this one), or fail
        local pid
        pid=$(cat "${1:-$st}/pid" 2>/dev/null) || return 1
        [ -n "$pid" ] && grep -q qemu "/proc/$pid/comm" 2>/dev/null || return 1
        echo "$pid"
}
running() { qemu_pid >/dev/null; }

free_port() {
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

use_kvm() {
        case ${VM_ACCEL:-tcg} in
        kvm) return 0 ;;
        tcg) return 1 ;;
        *) die "VM_ACCEL must be tcg or kvm" ;;
        esac
}

cmd_boot() {
        [ $# -ge 1 ] || usage
        local img=$1
        shift
        [ -f "$img" ] || die "no image $img"
        running && die "VM '$VM_NAME' is already running (pid $(qemu_pid)); vm.sh stop or kill first"
        # This host runs one guest at a time; refuse a second one by default.
        local d
        for d in "$VM_RUN_DIR"/*/; do
                [ -d "$d" ] || continue
                qemu_pid "$d" >/dev/null && [ -z "${VM_ALLOW_MANY:-}" ] &&
                        die "another VM is running ($d); set VM_ALLOW_MANY=1 to start a second"
        done
        vm_host_packages
        [ -f "$key" ] || die "no ssh key $key (build-tree.sh --test-access makes it)"

        mkdir -p "$st"
        rm -f "$st/pid" "$st/fwd" "$st/monitor.sock" "$st/qmp.sock"
        [ -f "$st/serial.log" ] && mv "$st/serial.log" "$st/serial.log.prev"
        if [ ! -f "$st/OVMF_VARS.fd" ] || [ "${VM_FRESH_VARS:-0}" = 1 ]; then
                cp "$OVMF_VARS" "$st/OVMF_VARS.fd" # pflash must be writable: a copy per VM
        fi
        realpath "$img" >"$st/image"

        # slirp user networking: ssh and the extra ports on 127.0.0.1 only.
        local ssh_port hostfwd p hp gp
        ssh_port=$(free_port)
        echo "$ssh_port" >"$st/ssh_port"
        hostfwd=",hostfwd=tcp:127.0.0.1:$ssh_port-:22"
        : >"$st/fwd"
        for p in ${VM_FWD:-}; do
                case $p in
                *:*) hp=${p%%:*} gp=${p#*:} ;;
                *) hp=$(free_port) gp=$p ;;
                esac
                hostfwd+=",hostfwd=tcp:127.0.0.1:$hp-:$gp"
                echo "$gp $hp" >>"$st/fwd"
        done

        # raw, or a qcow2 overlay (qemu-img create -b BASE): told by the magic.
        local fmt=raw
        [ "$(head -c 3 "$img" | tr -d '\0')" = QFI ] && fmt=qcow2 # magic QFI\xfb

        local accel cpu snap=""
        if use_kvm; then accel=kvm cpu=${VM_CPU:-host}; else accel=tcg cpu=${VM_CPU:-max}; fi
        [ "${VM_SNAPSHOT:-0}" = 1 ] && snap=",snapshot=on"

        # cache=unsafe: qemu ignores the guest's flushes (faster on TCG). A
        # `kill` still keeps every write qemu made (it sits in the host page
        # cache); only a host crash would lose it, which the tests don't model.
        local args=(
                -name "dreamlink-$VM_NAME"
                -nodefaults # everything below is explicit (no CD-ROM, VGA, default NIC)
                -machine q35 -accel "$accel" -cpu "$cpu"
                -m "${VM_MEM:-2048}" -smp "${VM_SMP:-1}"
                -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE"
                -drive "if=pflash,format=raw,unit=1,file=$st/OVMF_VARS.fd"
                -drive "if=none,id=disk0,format=$fmt,file=$(cat "$st/image"),cache=unsafe,discard=unmap$snap"
                -device virtio-blk-pci,drive=disk0,bootindex=1
                -netdev "user,id=net0$hostfwd"
                -device virtio-net-pci,netdev=net0
                -device virtio-rng-pci
                -device i6300esb -action watchdog=reset
                -chardev "file,id=ser0,path=$st/serial.log" -serial chardev:ser0
                -display none -vga none
                -monitor "unix:$st/monitor.sock,server=on,wait=off"
                -qmp "unix:$st/qmp.sock,server=on,wait=off"
                -pidfile "$st/pid" -daemonize
                "$@"
        )
        printf '%q ' qemu-system-x86_64 "${args[@]}" >"$st/cmdline"
        date +%s >"$st/started"
        # -daemonize: qemu returns once the guest is set up (errors still reach
        # us) and leaves no fd of ours open.
        qemu-system-x86_64 "${args[@]}" 2>"$st/qemu.log" || { cat "$st/qemu.log" >&2; die "qemu failed"; }
        msg "VM '$VM_NAME' up: pid $(qemu_pid), $accel, ssh on 127.0.0.1:$ssh_port, serial $st/serial.log"
}

ssh_opts() {
        [ -f "$st/ssh_port" ] || die "VM '$VM_NAME' was never booted"
        echo "-i $key -p $(cat "$st/ssh_port") -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
        echo "-o GlobalKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes -o IdentitiesOnly=yes"
        # Generous: a TCG guest on a loaded host can take many seconds to answer.
        echo "-o ConnectTimeout=30 -o ServerAliveInterval=5 -o ServerAliveCountMax=24"
}

# An interactive session for tests that type into it: a pty, and no
# keepalive (the first value of an option wins), so it idles across a switch.
cmd_ssh_tty() {
        # shellcheck disable=SC2046 # the options are words on purpose
        ssh -tt -o ServerAliveInterval=0 $(ssh_opts) root@127.0.0.1 "$@"
}

# A guest that stalls for a while (TCG on a loaded host) can let a connection
# time out before the SSH banner: then nothing ran on it (ssh reads no input
# before the session is up), so it is tried again, for up to ~4 minutes.
cmd_ssh() {
        local err rc try
        err=$(mktemp)
        for try in 1 2 3 4 5 6; do
                # shellcheck disable=SC2046 # the options are words on purpose
                ssh $(ssh_opts) root@127.0.0.1 "$@" 2>"$err" && rc=0 || rc=$?
                if [ "$rc" = 255 ] && [ "$try" -lt 6 ] && running &&
                        grep -qE 'banner exchange|kex_exchange_identification' "$err"; then
                        echo "vm.sh: ssh did not get a banner (try $try), retrying" >&2
                        sleep 5
                        continue
                fi
                break
        done
        cat "$err" >&2
        rm -f "$err"
        return "$rc"
}

since_boot() { echo $(($(date +%s) - $(cat "$st/started"))); }

cmd_wait_ssh() {
        local timeout=${1:-900} t0=$SECONDS kernel=""
        # shellcheck disable=SC2046 # the options are words on purpose
        while ! ssh $(ssh_opts) root@127.0.0.1 true </dev/null 2>/dev/null; do
                running || die "VM '$VM_NAME' is not running (see $st/serial.log)"
                [ $((SECONDS - t0)) -lt "$timeout" ] || die "no ssh after $timeout s (see $st/serial.log)"
                # The kernel's first line on the serial console marks the end of
                # firmware + boot loader (a coarse timeline: polled every 2 s;
                # only for the first boot of this qemu, later ones are ambiguous).
                if [ -z "$kernel" ] && [ "$(grep -ac 'Linux version' "$st/serial.log")" = 1 ]; then
                        kernel=$(since_boot)
                fi
                sleep 2
        done
        msg "ssh ready after $((SECONDS - t0)) s of waiting; since qemu start: kernel ${kernel:-?} s, ssh $(since_boot) s"
}

cmd_port() {
        [ $# -eq 1 ] || usage
        [ "$1" = 22 ] && { cat "$st/ssh_port"; return; }
        awk -v g="$1" '$1 == g { print $2; found = 1 } END { exit !found }' "$st/fwd" ||
                die "guest port $1 is not forwarded (VM_FWD)"
}

cmd_monitor() {
        running || die "VM '$VM_NAME' is not running"
        printf '%s\n' "$*" | socat - "UNIX-CONNECT:$st/monitor.sock" | tr -d '\r' | grep -v '^QEMU .*monitor' | sed '/^(qemu)/d'
}

wait_exit() { # TIMEOUT: wait for qemu to end
        local t0=$SECONDS
        while running; do
                [ $((SECONDS - t0)) -lt "$1" ] || return 1
                sleep 1
        done
}

cmd_stop() {
        local timeout=${1:-300}
        running || { msg "VM '$VM_NAME' is not running"; return 0; }
        local t0=$SECONDS
        # The guest's own poweroff first (the connection drops as it goes down).
        cmd_ssh 'systemctl poweroff' </dev/null 2>/dev/null || true
        if ! wait_exit "$timeout"; then
                msg "no poweroff after $timeout s: ACPI power button"
                cmd_monitor system_powerdown >/dev/null || true
                wait_exit 60 || { msg "still running: quit"; cmd_monitor quit >/dev/null || true; }
                wait_exit 10 || cmd_kill
        fi
        msg "VM '$VM_NAME' stopped after $((SECONDS - t0)) s"
}

cmd_kill() {
        local pid
        pid=$(qemu_pid) || { msg "VM '$VM_NAME' is not running"; return 0; }
        kill -KILL "$pid"
        while [ -e "/proc/$pid" ]; do sleep 0.1; done
        rm -f "$st/pid"
        msg "VM '$VM_NAME' killed (pid $pid)"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
boot) cmd_boot "$@" ;;
wait-ssh) cmd_wait_ssh "$@" ;;
ssh) cmd_ssh "$@" ;;
ssh-tty) cmd_ssh_tty "$@" ;;
port) cmd_port "$@" ;;
stop) cmd_stop "$@" ;;
kill) cmd_kill ;;
monitor) cmd_monitor "$@" ;;
status) running ;;
dir) echo "$st" ;;
-h | --help | help) usage ;;
*) die "unknown command $cmd" ;;
esac
