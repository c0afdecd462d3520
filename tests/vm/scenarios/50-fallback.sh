# suite: full
# When the new slot is bad, the machine goes back by itself.
#  1. v2 fails its health check (an admin's check in health.d refuses v2):
#     the boot check marks slot b bad and switches back to v1 with handoff;
#     a redis client's connection and an SSH session survive both switches.
#  2. v2's kernel panics (its boot entry makes /usr/bin/false the init, which
#     exits: "Attempted to kill init!"; panic=10 resets the machine): the
#     firmware boots the default entry, still v1; the boot check there
#     records the failed switch; the services run (started fresh).
#  3. v2 hangs (its initramfs waits for ever for a root device that never
#     comes, and nothing in it pets the watchdog): the hardware watchdog,
#     kept armed across the kexec (60-dreamlink-watchdog.conf, the images'
#     watchdog.stop_on_reboot=0 and i6300esb.nowayout=1), resets the machine
#     and the firmware boots v1 again.
#  4. A good v2 committed with --reboot: through the firmware (a one-shot
#     boot entry), no handoff; marked good and made the default there.

export VM_FWD="6379"
server=$top/tests/vm/release-server.sh
port=$("$server" start "$RELEASE_ROOT")
trap '"$server" stop; vm_cleanup' EXIT

disk=$(vm_disk_from fallback "$DISK_V1")
vm_start "$disk" || return 1

updaterd_use_test_server "$port" stable "$(printf '[Health]\nRequiredUnits=redis-server.service')"
redis_handoff_setup
guest 'printf "[Handoff]\nUnit=ssh.service\nSessions=yes\n" >/etc/dreamlink/handoff.d/ssh.conf'
guest 'mkdir -p /etc/dreamlink/health.d && cat >/etc/dreamlink/health.d/50-refuse-v2 && chmod 0755 /etc/dreamlink/health.d/50-refuse-v2' <<'EOF'
#!/bin/sh
# dreamlink test: release 2 is "broken".
. /etc/os-release
if [ "$IMAGE_VERSION" = 2 ]; then echo "release 2 refuses to be healthy" >&2; exit 1; fi
EOF
check "the health check passes on v1" guest /etc/dreamlink/health.d/50-refuse-v2
expect_eq "v2 is staged" 0 "$(guest updatectl stage >/dev/null 2>&1; echo $?)"

client_log=$VM_RUN_DIR/fallback-client.log
stop_file=$VM_RUN_DIR/fallback-client.stop
redis_client_start "$client_log" "$stop_file"
session_start fallback-session
sleep 3
tick_before=$(ticks | tail -n1)
redis_pid=$(guest systemctl show -P MainPID redis-server.service)

# --- 1. health check fails: back to v1 by itself, with handoff ------------
old_boot=$(guest cat /proc/sys/kernel/random/boot_id)
guest updatectl commit >/dev/null 2>&1
check "the machine switched to v2" wait_new_boot "$old_boot"
# v2's boot check fails and switches back: wait for the boot after it, on v1.
for _ in $(seq 300); do
        [ "$(guest uname -r 2>/dev/null)" = "$V1_KERNEL" ] && [ "$(guest cat /proc/sys/kernel/random/boot_id 2>/dev/null)" != "$old_boot" ] && break
        sleep 3
done
wait_boot_check
expect_eq "back on v1 by itself" "$V1_KERNEL|1|root-a" \
        "$(guest '. /etc/os-release; echo "$(uname -r)|$IMAGE_VERSION|$(lsblk -no PARTLABEL "$(findmnt -no SOURCE /)")"')"
status=$(guest updatectl status 2>&1)
printf '%s\n' "$status" | sed 's/^/        /'
expect_match "slot b is marked bad" 'b +bad +2 ' "$status"
expect_match "the commit failed on the health check, naming it" \
        'commit +a \(1\) → b \(2\) +failed: health check failed: health check /etc/dreamlink/health.d/50-refuse-v2 failed' "$status"
expect_match "the rollback it started succeeded" 'rollback b \(2\) → a \(1\) +succeeded' "$status"
expect_eq "slot a is the default entry" "default dreamlink-a.conf" "$(guest 'grep ^default /efi/loader/loader.conf' | tr -s ' ')"
expect_eq "redis-server is the same process after both switches" "active $redis_pid" \
        "$(guest systemctl show -P ActiveState redis-server.service) $(guest systemctl show -P MainPID redis-server.service)"
sleep 3
touch "$stop_file"
wait "$client"
expect_eq "the redis connection survived the failed update" "DONE" "$(tail -n1 "$client_log")"
expect_eq "its counter went n → n+1 throughout" 0 "$(client_skips "$client_log")"
printf '  ..    longest client-observed blackout (there and back): %s s\n' "$(client_gap "$client_log")"
check "the SSH session is still open" kill -0 "$sess_pid"
session_end 'echo "kernel=$(uname -r) os=$(. /etc/os-release; echo $IMAGE_VERSION)"'
tick_after=$(ticks | tail -n1)
check "its counter went on through both switches ($tick_before → $tick_after)" test "${tick_after:-0}" -gt "$((tick_before + 10))"
expect_eq "its ticks are consecutive" 0 "$(tick_skips)"
expect_contains "the same shell says v1 again" "kernel=$V1_KERNEL os=1" "$(tr -d '\r' <"$sess_out")"

# --- 2. the new slot does not come up: the firmware boots the old one -----
guest 'rm /etc/dreamlink/health.d/50-refuse-v2'
expect_eq "v2 is staged again" 0 "$(guest updatectl stage >/dev/null 2>&1; echo $?)"
# Slot b's boot entry with OPTIONS (what stage wrote, plus a test's fault).
b_options() { guest "sed -i 's|^options .*|options    $1|' /efi/loader/entries/dreamlink-b*.conf"; }
b_orig=$(guest "sed -n 's/^options *//p' /efi/loader/entries/dreamlink-b*.conf")
# commit_falls_back HOW: commits into slot b as sabotaged; the machine must
# come back through the firmware on v1, the switch recorded as failed and
# nothing of it left behind.
commit_falls_back() {
        local old_boot kernels_before t0 kernels
        old_boot=$(guest cat /proc/sys/kernel/random/boot_id)
        kernels_before=$(grep -ac 'Linux version' "$("$VM" dir)/serial.log")
        t0=$SECONDS
        guest updatectl commit >/dev/null 2>&1
        check "the machine came back" wait_new_boot "$old_boot"
        wait_boot_check
        printf '  ..    back %d s after the commit\n' $((SECONDS - t0))
        kernels=$(grep -a 'Linux version' "$("$VM" dir)/serial.log" | tail -n +$((kernels_before + 1)) | awk '{ print $5 }' | tr '\n' ' ')
        expect_eq "two kernels started: v2's (kexec), then after $1 v1's (firmware)" "$V2_KERNEL $V1_KERNEL " "$kernels"
        expect_eq "running v1 from slot a" "$V1_KERNEL|1|root-a" \
                "$(guest '. /etc/os-release; echo "$(uname -r)|$IMAGE_VERSION|$(lsblk -no PARTLABEL "$(findmnt -no SOURCE /)")"')"
        expect_match "the switch is recorded as failed, with why" \
                '"error" : "slot b did not come up; the machine restarted on slot a"' "$(guest cat /var/lib/dreamlink/transaction.json)"
        expect_eq "redis-server runs (started fresh)" "active" "$(guest systemctl is-active redis-server.service)"
        check "no checkpoint images are left" guest 'test -z "$(ls -A /var/lib/dreamlink/handoff 2>/dev/null)"'
        check "no network lock is left" guest '! nft list tables | grep -q CRIU-'
        expect_eq "slot a is still the default entry" "default dreamlink-a.conf" "$(guest 'grep ^default /efi/loader/loader.conf' | tr -s ' ')"
}
b_options "$b_orig init=/usr/bin/false"
commit_falls_back "the panic's reset"
check "v2's kernel panicked" grep -aq 'Kernel panic - not syncing: Attempted to kill init' "$("$VM" dir)/serial.log"

# --- 3. the new slot hangs: the watchdog resets the machine ---------------
expect_eq "systemd keeps the hardware watchdog armed (timeout, s)" "active 60" \
        "$(guest 'cat /sys/class/watchdog/watchdog0/state /sys/class/watchdog/watchdog0/timeout' | tr '\n' ' ' | sed 's/ $//')"
expect_eq "v2 is staged a third time" 0 "$(guest updatectl stage >/dev/null 2>&1; echo $?)"
# The later root= wins in the initramfs, which then waits for it (rootdelay).
b_options "$b_orig root=PARTLABEL=dreamlink-test-missing rootdelay=100000"
commit_falls_back "the watchdog reset"
check "v2's kernel was told to wait for a root device that does not exist" \
        grep -aq 'dreamlink-test-missing' "$("$VM" dir)/serial.log"

# --- 4. --reboot: through the firmware, the new slot on probation ---------
expect_eq "v2 is staged a fourth time" 0 "$(guest updatectl stage >/dev/null 2>&1; echo $?)"
b_options "$b_orig"
old_boot=$(guest cat /proc/sys/kernel/random/boot_id)
firmware_before=$(grep -ac 'BdsDxe: starting' "$("$VM" dir)/serial.log")
out=$(guest updatectl commit --reboot 2>&1)
expect_match "updatectl says it reboots" 'through a reboot|reboot' "$out"
check "the machine came back" wait_new_boot "$old_boot"
wait_boot_check
expect_eq "through the firmware, once" 1 $(($(grep -ac 'BdsDxe: starting' "$("$VM" dir)/serial.log") - firmware_before))
expect_eq "running v2 from slot b" "$V2_KERNEL|2|root-b" \
        "$(guest '. /etc/os-release; echo "$(uname -r)|$IMAGE_VERSION|$(lsblk -no PARTLABEL "$(findmnt -no SOURCE /)")"')"
status=$(guest updatectl status 2>&1)
printf '%s\n' "$status" | sed 's/^/        /'
expect_match "slot b is marked good" 'b +booted +good +2 ' "$status"
expect_match "the commit succeeded" '"outcome" : "succeeded"' "$(guest cat /var/lib/dreamlink/transaction.json)"
expect_match "slot b is now the default entry" '^default dreamlink-b' "$(guest 'grep ^default /efi/loader/loader.conf' | tr -s ' ')"
expect_eq "redis-server runs (started fresh: no handoff through a reboot)" active "$(guest systemctl is-active redis-server.service)"
"$VM" stop >/dev/null
