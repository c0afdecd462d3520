#!/bin/bash
# demo.sh: dreamlink's main job, shown on a VM. Boots release 1 (kernel
# 6.12), opens an interactive SSH session with a counter ticking in it and a
# redis client streaming over one TCP connection, stages release 2 (kernel
# 7.3), commits it with kexec and handoff, and shows that the session and the
# stream went on while the kernel and the OS changed underneath.
#
# INTERACTIVE=1 leaves you a shell in the VM at the end (the VM stops when
# you leave it). Builds what it needs, as `make check-vm` does, and reuses
# it from the cache (~/.cache/dreamlink) afterwards.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
. "$top/tools/lib.sh"
. "$top/tests/vm/host.sh"

vm_host_prepare demo

phase() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }

phase "Building (or reusing) the release images: v1 on kernel 6.12, v2 on 7.3"
vm_images
export RELEASE_ROOT DISK_V1 V1_KERNEL V2_KERNEL

# The harness's helpers (guest, wait_new_boot, redis_client_start …), without its checks.
. "$top/tests/vm/harness.sh"
export VM_NAME=demo VM_SMP=1 VM_FWD="6379" # the 7.3 kernel under TCG wants one CPU
server=$top/tests/vm/release-server.sh
port=$("$server" start "$RELEASE_ROOT")
trap '"$server" stop; vm_cleanup' EXIT

phase "Booting release 1 (software emulation: this takes a minute or two)"
disk=$(vm_disk_from demo "$DISK_V1")
vm_start "$disk" >/dev/null || die "the VM did not boot; see $("$VM" dir)/serial.log"
kernel_before=$(guest uname -r)
os_before=$(guest '. /etc/os-release; echo "$PRETTY_NAME (release $IMAGE_VERSION)"')
note "running: $os_before, kernel $kernel_before"

phase "Opting services in to handoff: redis, and the SSH logins"
updaterd_use_test_server "$port" stable "$(printf '[Health]\nRequiredUnits=redis-server.service ssh.service')"
redis_handoff_setup
guest 'printf "[Handoff]\nUnit=ssh.service\nSessions=yes\n" >/etc/dreamlink/handoff.d/ssh.conf'
guest dreamlink-handoff list | sed 's/^/    /'

phase "Opening an SSH session (a counter ticks in it) and a redis client (INCR over one connection)"
sess_in=$VM_RUN_DIR/demo-session.in sess_out=$VM_RUN_DIR/demo-session.out
rm -f "$sess_in" "$sess_out"
mkfifo "$sess_in"
"$VM" ssh-tty <"$sess_in" >"$sess_out" 2>&1 &
sess_pid=$!
exec 7>"$sess_in"
type_in_session() { ( trap '' PIPE; printf '%s\n' "$1" >&7 ) 2>/dev/null; }
type_in_session 'stty -echo; (i=0; while :; do echo "tick $i"; i=$((i+1)); sleep 1; done) &'
client_log=$VM_RUN_DIR/demo-client.log stop_file=$VM_RUN_DIR/demo-client.stop
redis_client_start "$client_log" "$stop_file"
sleep 5
ticks() { tr -d '\r' <"$sess_out" | grep -o 'tick [0-9][0-9]*' | cut -d' ' -f2; }
tick_before=$(ticks | tail -n1)
count_before=$(grep -E '^[0-9.]+ [0-9]+$' "$client_log" | tail -n1 | cut -d' ' -f2)
note "session at tick ${tick_before:-?}, redis counter at ${count_before:-?}"

phase "updatectl check && updatectl stage: release 2 into the passive slot"
guest updatectl check | sed 's/^/    /'
guest updatectl stage | sed 's/^/    /'

phase "updatectl commit: checkpoint, kexec into slot b, restore"
old_boot=$(guest cat /proc/sys/kernel/random/boot_id)
t_commit=$SECONDS
guest updatectl commit 2>/dev/null | sed 's/^/    /' || true
wait_new_boot "$old_boot" >/dev/null || die "the new slot did not answer; see $("$VM" dir)/serial.log"
wait_boot_check || true
note "the new slot is up and checked $((SECONDS - t_commit)) s after the commit began"
type_in_session 'echo "in the same shell: kernel=$(uname -r) os=$(. /etc/os-release; echo $IMAGE_VERSION)"'
sleep 8

kernel_after=$(guest uname -r)
os_after=$(guest '. /etc/os-release; echo "$PRETTY_NAME (release $IMAGE_VERSION)"')
tick_after=$(ticks | tail -n1)
count_after=$(grep -E '^[0-9.]+ [0-9]+$' "$client_log" | tail -n1 | cut -d' ' -f2)
same_shell=$(tr -d '\r' <"$sess_out" | grep -o 'in the same shell: kernel=[^ ]* os=[0-9.]*' | tail -n1)
tick_skips=$(ticks | awk 'NR > 1 && $1 != prev + 1 { bad++ } { prev = $1 } END { print bad + 0 }')
txn=$(guest cat /var/lib/dreamlink/transaction.json)

phase "updatectl status"
guest updatectl status | sed 's/^/    /'

yes_no() { if "$@"; then echo yes; else echo NO; fi; }
survived_session=$(yes_no test "${tick_after:-0}" -gt "${tick_before:-0}" -a "$tick_skips" = 0 -a -n "$same_shell")
survived_stream=$(yes_no test "${count_after:-0}" -gt "${count_before:-0}" -a "$(client_skips "$client_log")" = 0)
phase "Summary"
printf '    %-34s %s\n' \
        "kernel" "$kernel_before → $kernel_after" \
        "OS" "$os_before → $os_after" \
        "transaction" "$(printf '%s' "$txn" | sed -n 's/.*"outcome" : "\([a-z-]*\)".*/\1/p')" \
        "SSH session survived" "$survived_session (tick $tick_before → $tick_after, none lost; ${same_shell:-no answer})" \
        "redis stream survived" "$survived_stream (counter $count_before → $count_after on one connection, n → n+1)" \
        "client-observed blackout" "$(client_gap "$client_log") s (TCG emulation: nearly all of it the emulated boot)"

if [ "${INTERACTIVE:-0}" = 1 ]; then
        phase "Your shell in the VM (release 2); leave it to stop the VM"
        exec 7>&-
        "$VM" ssh-tty </dev/tty >/dev/tty 2>&1 || true
fi
touch "$stop_file"
exec 7>&-
kill "$sess_pid" 2>/dev/null || true
"$VM" stop >/dev/null
[ "$survived_session$survived_stream" = yesyes ]
