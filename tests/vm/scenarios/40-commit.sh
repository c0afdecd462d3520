# The whole point: a full OS + kernel update (v1 on 6.12 → v2 on 7.3) with
# kexec while an interactive SSH session runs a counter, a redis client on
# the host keeps one connection counting and a rate-limited download from
# nginx is in flight. All carry on across the switch (the same shell then
# reports the new kernel and OS); the guest then runs v2's kernel and OS, the slot is marked good and
# is the default boot entry. Then `updatectl rollback` goes back to v1 the
# same way, the redis connection still counting.

export VM_FWD="6379 80"
server=$top/tests/vm/release-server.sh
port=$("$server" start "$RELEASE_ROOT")
trap '"$server" stop; vm_cleanup' EXIT

disk=$(vm_disk_from commit "$DISK_V1")
vm_start "$disk" || return 1

updaterd_use_test_server "$port" stable \
        "$(printf '[Health]\nRequiredUnits=redis-server.service nginx.service ssh.service\n[Handoff]\nStopTimeout=5s')"
# The services, opted in as an admin would.
redis_handoff_setup
guest 'set -e
        printf "[Handoff]\nUnit=nginx.service\n" >/etc/dreamlink/handoff.d/nginx.conf
        printf "[Handoff]\nUnit=ssh.service\nSessions=yes\n" >/etc/dreamlink/handoff.d/ssh.conf
        head -c 12M /dev/urandom >/var/www/html/big.bin
        echo "limit_rate 64k;" >/etc/nginx/conf.d/dl-limit.conf
        systemctl restart nginx.service'
# A service that is not carried and would never stop by itself: it ignores SIGTERM and its
# unit waits forever. The switch must not wait with it (StopTimeout= above).
guest 'cat >/etc/systemd/system/dl-stubborn.service <<"UNIT"
[Service]
ExecStart=/bin/sh -c "trap \"\" TERM; exec sleep infinity"
TimeoutStopSec=infinity
UNIT
        systemctl daemon-reload && systemctl start dl-stubborn.service'

t0=$SECONDS
out=$(guest updatectl stage 2>&1)
expect_eq "v2 is staged" 0 "$?"
printf '  ..    stage took %d s\n' $((SECONDS - t0))
expect_eq "slot b holds v2, staged" "staged 2" \
        "$(guest "python3 -c 'import json; s=json.load(open(\"/var/lib/dreamlink/slots.json\"))[\"slots\"][\"b\"]; print(s[\"state\"], s[\"version\"])'")"

client_log=$VM_RUN_DIR/commit-client.log
stop_file=$VM_RUN_DIR/commit-client.stop
redis_client_start "$client_log" "$stop_file"
# An interactive SSH session from the host: a shell with a counter ticking in it.
session_start session
want=$(guest 'sha256sum /var/www/html/big.bin' | cut -d' ' -f1)
download=$VM_RUN_DIR/commit-big.bin
rm -f "$download"
curl -s --max-time 1500 -o "$download" "http://127.0.0.1:$("$VM" port 80)/big.bin" &
curl_pid=$!
sleep 5
counter_before=$(tail -n1 "$client_log" | cut -d' ' -f2)
expect_match "the client counts over one connection" '^[0-9]+$' "$counter_before"
tick_before=$(ticks | tail -n1)
expect_match "the SSH session's counter ticks" '^[0-9]+$' "$tick_before"
redis_pid=$(guest systemctl show -P MainPID redis-server.service)
# How confined redis has the machine's late mounts (the ESP's automount, configfs): ro or rw, of
# the lowest mount at each path in its namespace.
late_mount_flags() {
        guest "cat /proc/$redis_pid/mountinfo" |
                awk '($5 == "/efi" || $5 == "/sys/kernel/config") && !seen[$5]++ { split($6, o, ","); print $5 "=" o[1] }' |
                sort | tr '\n' ' '
}
flags_before=$(late_mount_flags)
nginx_pid=$(guest systemctl show -P MainPID nginx.service)
old_boot=$(guest cat /proc/sys/kernel/random/boot_id)

# --- commit: v1 → v2 with handoff -------------------------------------------
t0=$SECONDS
# Typed into the interactive login, which is carried with the updatectl running in it.
type_in_session 'updatectl commit; echo "commit-exit=$?"'
check "the machine switched (a new boot answers)" wait_new_boot "$old_boot"
# The boot check finishes the transaction after the restores.
wait_boot_check
printf '  ..    commit to checked: %d s\n' $((SECONDS - t0))
# updatectl reports once the boot check has moved the transaction on.
for _ in $(seq 120); do grep -q 'commit-exit=' "$sess_out" && break; sleep 1; done
out=$(tr -d '\r' <"$sess_out" | grep -v '^tick ')
printf '%s\n' "$out" | sed 's/^/        /'
expect_contains "updatectl commit says it switches to slot b" "Switching to slot b (2) with kexec." "$out"
expect_contains "the same updatectl, restored with its login, reports from slot b" "Now running slot b (2), kernel $V2_KERNEL" "$out"
expect_contains "and ends well" "commit-exit=0" "$out"
# Per service: dump time and images (the boot before), restore (this boot).
guest 'journalctl -b -1 -o cat _COMM=updaterd | grep -E "^Checkpointed|^Loaded slot"; journalctl -b 0 -o cat | grep -E "^Restored (.* as PID|login)"' |
        sed 's/^/  ..    /'

expect_eq "the new boot runs v2's kernel" "$V2_KERNEL" "$(guest uname -r)"
expect_eq "and v2's OS from slot b" "2|root-b" \
        "$(guest '. /etc/os-release; echo "$IMAGE_VERSION|$(lsblk -no PARTLABEL "$(findmnt -no SOURCE /)")"')"
# The lock and the restores wait for /var: its initramfs mounted it (the kernel's log says so).
expect_eq "v2's initramfs mounted /var for the handoff" 1 \
        "$(guest 'journalctl -b 0 -k -t dreamlink-handoff -o cat | grep -c "^/var mounted from /dev/vda4 in the initramfs"')"
status=$(guest updatectl status 2>&1)
printf '%s\n' "$status" | sed 's/^/        /'
expect_match "slot b is good" 'b  +booted +good +2 ' "$status"
expect_eq "slot b's entry is blessed and the default" "default dreamlink-b.conf|dreamlink-b.conf" \
        "$(guest 'grep ^default /efi/loader/loader.conf | tr -s " "; echo "|$(cd /efi/loader/entries && ls dreamlink-b*)"' | tr -d '\n')"
txn=$(guest cat /var/lib/dreamlink/transaction.json)
expect_match "the transaction succeeded" '"outcome" : "succeeded"' "$txn"
expect_match "redis was restored across the switch" '"redis-server.service" : "restored"' "$txn"
expect_match "nginx was restored across the switch" '"nginx.service" : "restored"' "$txn"
expect_eq "redis-server runs as the same process, owned by its unit" "active $redis_pid" \
        "$(guest systemctl show -P ActiveState redis-server.service) $(guest systemctl show -P MainPID redis-server.service)"
expect_eq "nginx too" "active $nginx_pid" \
        "$(guest systemctl show -P ActiveState nginx.service) $(guest systemctl show -P MainPID nginx.service)"
# redis's namespace has the ESP's automount and configfs, which v2's boot mounts late: the dump
# left them out, the restore bound the machine's into the restored namespace (or configfs came in
# when v2 mounted it) instead of waiting for the ESP to be found, checked and mounted.
left_out=$(guest 'journalctl -b -1 -o cat | grep "^Leaving the machine.s mounts .* out of redis-server.service.s dump"')
expect_match "v1's dump left redis's /efi automount out" '[a-z,]+:/efi( |$)' "$left_out"
expect_match "and configfs" '[a-z,]+:/sys/kernel/config( |$)' "$left_out"
expect_match "redis's restore waited for no automount" 'as PID [0-9]+: criu .* 0\.00 s more for the automounts\)' \
        "$(guest 'journalctl -b 0 -o cat | grep "^Restored redis-server.service as PID"')"
# Through its root: redis's unit forbids executing anything else in its namespace (NoExecPaths=).
expect_contains "the restored redis sees the ESP at /efi" "dreamlink-b.conf" \
        "$(guest "ls /proc/$redis_pid/root/efi/loader/entries")"
expect_eq "it has configfs at /sys/kernel/config" "configfs" \
        "$(guest "cat /proc/$redis_pid/mountinfo" | awk '$5 == "/sys/kernel/config" { split($0, a, " - "); split(a[2], f, " "); print f[1] }')"
expect_eq "both as confined as before the switch ($flags_before)" "$flags_before" "$(late_mount_flags)"
expect_eq "the service that ignored SIGTERM was killed after StopTimeout=, not waited for" 1 \
        "$(guest 'journalctl -b -1 -o cat -u dl-stubborn.service | grep -c "stop-sigterm.* timed out. Killing"')"
check "the admin's /etc came along (handoff.d in v2's /etc)" guest 'test -e /etc/dreamlink/handoff.d/redis.conf'
check "no checkpoint images are left" guest 'test -z "$(ls -A /var/lib/dreamlink/handoff 2>/dev/null)"'
check "no network lock is left" guest '! nft list tables | grep -q CRIU-'
check "the restored units start normally again (no restore drop-in)" \
        guest '! systemctl cat redis-server.service | grep -q restore-exec'

type_in_session 'echo "kernel=$(uname -r) os=$(. /etc/os-release; echo $IMAGE_VERSION)"'
sleep 10
tick_mid=$(ticks | tail -n1)
check "the SSH session's counter went on across the switch ($tick_before → $tick_mid)" \
        test "${tick_mid:-0}" -gt "$((tick_before + 3))"
expect_eq "its ticks are consecutive: no tick lost or repeated" 0 "$(tick_skips)"
expect_contains "in the same shell, uname -r and os-release say v2" "kernel=$V2_KERNEL os=2" "$(tr -d '\r' <"$sess_out")"
expect_match "the session was restored across the switch" '"session-[0-9]+.scope" : "restored"' "$txn"

sleep 5
counter_mid=$(grep -E '^[0-9.]+ [0-9]+$' "$client_log" | tail -n1 | cut -d' ' -f2)
check "the redis client still counts on its connection ($counter_before → $counter_mid)" \
        test "${counter_mid:-0}" -gt "$counter_before"
gap=$(client_gap "$client_log")
printf '  ..    client-observed blackout (v1 → v2): %s s\n' "$gap"

# --- rollback: v2 → v1, the same way ----------------------------------------
old_boot=$(guest cat /proc/sys/kernel/random/boot_id)
out=$(guest updatectl rollback 2>&1)
printf '%s\n' "$out" | sed 's/^/        /'
expect_contains "updatectl rollback says it switches to slot a" "Switching to slot a (1) with kexec." "$out"
check "the machine switched back" wait_new_boot "$old_boot"
wait_boot_check
expect_eq "back on v1's kernel" "$V1_KERNEL" "$(guest uname -r)"
expect_eq "and v1's OS from slot a" "1|root-a" \
        "$(guest '. /etc/os-release; echo "$IMAGE_VERSION|$(lsblk -no PARTLABEL "$(findmnt -no SOURCE /)")"')"
expect_eq "v1's initramfs mounted /var for the handoff back" 1 \
        "$(guest 'journalctl -b 0 -k -t dreamlink-handoff -o cat | grep -c "^/var mounted"')"
expect_eq "redis-server is still the same process" "active $redis_pid" \
        "$(guest systemctl show -P ActiveState redis-server.service) $(guest systemctl show -P MainPID redis-server.service)"
expect_eq "slot a is the default again" "default dreamlink-a.conf" "$(guest 'grep ^default /efi/loader/loader.conf' | tr -s ' ')"

sleep 5
touch "$stop_file"
wait "$client"
expect_eq "the redis connection survived both switches" "DONE" "$(tail -n1 "$client_log")"
expect_eq "its counter went n → n+1 throughout: no reply lost or repeated" 0 "$(client_skips "$client_log")"
wait "$curl_pid"
expect_eq "the download in flight completed across both switches" 0 "$?"
expect_eq "the downloaded file is intact" "$want" "$(sha256sum "$download" | cut -d' ' -f1)"
gap2=$(client_gap "$client_log")
printf '  ..    longest client-observed blackout over both switches: %s s\n' "$gap2"
# The session restored by the first switch (no logind session any more) is carried again.
check "the SSH session is still open after the rollback" kill -0 "$sess_pid"
session_end 'echo "kernel=$(uname -r) os=$(. /etc/os-release; echo $IMAGE_VERSION)"'
expect_contains "after the rollback the same shell says v1" "kernel=$V1_KERNEL os=1" "$(tr -d '\r' <"$sess_out")"
"$VM" stop >/dev/null
