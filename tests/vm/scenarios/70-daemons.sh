# suite: full
# The classic update targets (the DSU survey's list) as Debian 13 ships them, each
# opted in with the one handoff.d line a user writes and nothing else (tor also needs three
# lines in its AppArmor profile's local additions, which list names), each with a
# client on the host holding one connection: redis (INCR), nginx (a download in
# flight), an interactive SSH login, PostgreSQL (an open transaction), memcached
# (incr), vsftpd (a passive download in flight), tor (its control port) and FRR.
# `dreamlink-handoff list` and `updatectl commit --dry-run` predict per service
# (all carried but FRR, whose netlink socket CRIU cannot take); release 1 → 2 (6.12 → 7.3) by
# `updatectl commit`, then back by `updatectl rollback`; what each client saw is
# checked at the end, and every prediction against what the switches did.

ftp_pasv=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export VM_FWD="6379 80 5432 11211 21 $ftp_pasv:$ftp_pasv 9051 2601"
server=$top/tests/vm/release-server.sh
port=$("$server" start "$RELEASE_ROOT")
trap '"$server" stop; vm_cleanup' EXIT

disk=$(vm_disk_from daemons "$DISK_V1")
vm_start "$disk" || return 1
updaterd_use_test_server "$port" stable "$(printf '[Handoff]\nStopTimeout=10s')"

# What a user sets to reach each daemon from outside (not for handoff), then the
# one-line opt-ins.
redis_handoff_setup
postgres_handoff_setup
tor_password=dl-$RANDOM$RANDOM
guest "set -e
        head -c 12M /dev/urandom >/var/www/html/big.bin
        echo 'limit_rate 64k;' >/etc/nginx/conf.d/dl-limit.conf
        sed -i 's/^-l 127.0.0.1/-l 0.0.0.0/' /etc/memcached.conf
        sed -i 's/^anonymous_enable=.*/anonymous_enable=YES/' /etc/vsftpd.conf
        printf 'pasv_min_port=$ftp_pasv\npasv_max_port=$ftp_pasv\npasv_address=127.0.0.1\n' >>/etc/vsftpd.conf
        head -c 24M /dev/urandom >/srv/ftp/big.bin
        printf 'ControlPort 0.0.0.0:9051\nHashedControlPassword %s\nDisableNetwork 1\n' \
                \"\$(tor --quiet --hash-password $tor_password | tail -n1)\" >>/etc/tor/torrc
        sed -i 's/^zebra_options=.*/zebra_options=\"-A 0.0.0.0 -s 90000000\"/' /etc/frr/daemons
        printf 'line vty\n no login\n' >>/etc/frr/frr.conf
        cd /etc/dreamlink/handoff.d
        printf '[Handoff]\nUnit=nginx.service\n' >nginx.conf
        printf '[Handoff]\nUnit=ssh.service\nSessions=yes\n' >ssh.conf
        printf '[Handoff]\nUnit=memcached.service\n' >memcached.conf
        printf '[Handoff]\nUnit=vsftpd.service\n' >vsftpd.conf
        printf '[Handoff]\nUnit=tor@default.service\n' >tor.conf
        printf '[Handoff]\nUnit=frr.service\n' >frr.conf
        systemctl daemon-reload
        systemctl restart nginx memcached vsftpd tor@default frr"
units="redis-server.service nginx.service postgresql@17-main.service memcached.service vsftpd.service tor@default.service frr.service"

# tor 0.4.9 runs under its AppArmor profile, which keeps CRIU's code in it from /proc: list says so
# and what to add; the admin adds it, as docs/services.md says, and reloads the profile.
expect_match "list: tor needs its AppArmor profile to allow /proc, and says how" \
        "can be checkpointed now: no, .*AppArmor profile.*/etc/apparmor.d/local/PROFILE" \
        "$(guest dreamlink-handoff list 2>&1 | sed -n '/^tor@default.service: /,/on dump failure/p' | tr '\n' ' ')"
check "the three lines go into system_tor's local additions" guest 'set -e
        printf "%s\n" "@{PROC}/ r," "@{PROC}/@{pid}/cgroup r," "@{PROC}/@{pid}/task/@{tid}/cgroup r," \
                >>/etc/apparmor.d/local/system_tor
        apparmor_parser -r /etc/apparmor.d/system_tor'
for u in $units; do
        expect_eq "$u runs" active "$(guest systemctl is-active $u)"
done

out=$(guest updatectl stage 2>&1)
expect_eq "v2 is staged" 0 "$?"

# The clients, each on one connection from here to the end.
declare -A log stop pid
for c in redis memcached postgres tor zebra ftp; do
        log[$c]=$VM_RUN_DIR/daemons-$c.log stop[$c]=$VM_RUN_DIR/daemons-$c.stop
done
client_start redis 6379 "${log[redis]}" "${stop[redis]}"; pid[redis]=$client_pid
client_start memcached 11211 "${log[memcached]}" "${stop[memcached]}"; pid[memcached]=$client_pid
client_start postgres 5432 "${log[postgres]}" "${stop[postgres]}"; pid[postgres]=$client_pid
tor_contact=dl-contact-$RANDOM
client_start tor 9051 "${log[tor]}" "${stop[tor]}" "$tor_password" "$tor_contact"; pid[tor]=$client_pid
client_start zebra 2601 "${log[zebra]}" "${stop[zebra]}"; pid[zebra]=$client_pid
client_start ftp 21 "${log[ftp]}" "${stop[ftp]}" big.bin 65536; pid[ftp]=$client_pid
session_start session
want_http=$(guest 'sha256sum /var/www/html/big.bin' | cut -d' ' -f1)
want_ftp=$(guest 'sha256sum /srv/ftp/big.bin' | cut -d' ' -f1)
download=$VM_RUN_DIR/daemons-big.bin
rm -f "$download"
curl -s --max-time 1500 -o "$download" "http://127.0.0.1:$("$VM" port 80)/big.bin" &
curl_pid=$!
sleep 5
for c in redis memcached postgres tor zebra ftp; do
        expect_match "the $c client is served" '^[0-9.]+ [0-9]+$' "$(tail -n1 "${log[$c]}")"
done

# The prediction, per unit: "yes" or the reason.
list=$(guest dreamlink-handoff list 2>&1)
printf '%s\n' "$list" | sed 's/^/        /'
declare -A predicted mainpid
for u in $units; do
        predicted[$u]=$(printf '%s\n' "$list" | sed -n "/^$u: /,/on dump failure/p" |
                sed -n 's/^  can be checkpointed now: \(yes\|no\).*/\1/p')
        mainpid[$u]=$(guest systemctl show -P MainPID $u)
done

# All but FRR can be carried: zebra's netlink socket listens to more than 32 groups, which
# CRIU cannot dump; list says so, and the commit restarts it fresh.
for u in $units; do
        [ $u = frr.service ] && continue
        expect_eq "list: $u can be carried" yes "${predicted[$u]}"
done
expect_match "list: frr cannot, CRIU's netlink limit in the user's words" \
        'can be checkpointed now: no, .*more than 32 (multicast )?groups' \
        "$(printf '%s\n' "$list" | sed -n '/^frr.service: /,/on dump failure/p' | tr '\n' ' ')"

# updatectl commit --dry-run runs the same plan short of switching: the same answer per unit.
boot=$(guest cat /proc/sys/kernel/random/boot_id)
plan=$(guest updatectl commit --dry-run --json 2>&1)
printf '%s\n' "$plan" | sed 's/^/        /'
plan_outcome() {
        python3 -c 'import json, sys
p = json.loads(sys.stdin.read())
print(next((s["outcome"] for s in p["services"] if s["unit"] == sys.argv[1]), "absent"))' "$1" <<<"$plan"
}
for u in $units; do
        want=carried
        [ "${predicted[$u]}" = yes ] || want=fresh
        expect_eq "dry run: $u as list said" "$want" "$(plan_outcome $u)"
done
expect_match "dry run: the logins of ssh.service are carried" '"unit" *: *"ssh.service"' "$plan"
expect_eq "the dry run switched nothing" "$boot" "$(guest cat /proc/sys/kernel/random/boot_id)"

# outcomes SWITCH: each unit's result in the transaction record against the prediction.
outcomes() {
        local txn u want got
        txn=$(guest cat /var/lib/dreamlink/transaction.json)
        for u in $units; do
                want=restored
                [ "${predicted[$u]}" = yes ] || want=fresh
                got=$(printf '%s\n' "$txn" | sed -n "s/.*\"$u\" : \"\([a-z]*\)\".*/\1/p" | head -n1)
                expect_eq "$1: $u as list predicted (${predicted[$u]})" "$want" "$got"
                if [ "$want" = restored ]; then
                        # The same process, in the unit's cgroup (a Type=forking unit's main PID is
                        # the subreaper above it after a restore: the tree's root).
                        check "$1: $u is active with its main process ${mainpid[$u]} from before" guest \
                                "systemctl is-active -q $u && grep -qx ${mainpid[$u]} /sys/fs/cgroup\$(systemctl show -P ControlGroup $u)/cgroup.procs"
                fi
        done
        expect_match "$1: the login was carried" '"session-[0-9]+.scope" : "restored"' "$txn"
        guest 'journalctl -b -1 -o cat | grep -E "^Checkpointed"; journalctl -b 0 -o cat | grep -E "^Restored (.* as PID|login)"' |
                sed 's/^/  ..    /'
}

# --- v1 → v2 -----------------------------------------------------------------
# What they keep in /run, which the kexec empties: tor's cookie, nginx's PID file.
cookie=$(guest 'sha256sum /run/tor/control.authcookie' | cut -d' ' -f1)
old_boot=$(guest cat /proc/sys/kernel/random/boot_id)
out=$(guest updatectl commit 2>&1)
printf '%s\n' "$out" | sed 's/^/        /'
check "the machine switched to v2" wait_new_boot "$old_boot"
wait_boot_check
expect_eq "it runs v2's kernel" "$V2_KERNEL" "$(guest uname -r)"
outcomes "v1 → v2"
# What the restores waited for in the new boot (the clients' gap, see docs/services.md).
guest 'systemd-analyze critical-chain redis-server.service 2>&1 | head -n 15
        journalctl -b 0 -o short-monotonic | grep -E "Restored|Reached target|Network Is Online|frr|wait-online" | head -n 40' |
        sed 's/^/        /'
expect_eq "tor's control.authcookie is there again, the same" "$cookie" \
        "$(guest 'sha256sum /run/tor/control.authcookie' | cut -d' ' -f1)"
check "systemctl reload nginx finds its PID file and reloads the restored master" guest \
        "systemctl reload nginx.service && test \"\$(cat /run/nginx.pid)\" = ${mainpid[nginx.service]}"

# --- v2 → v1 -----------------------------------------------------------------
old_boot=$(guest cat /proc/sys/kernel/random/boot_id)
out=$(guest updatectl rollback 2>&1)
printf '%s\n' "$out" | sed 's/^/        /'
check "the machine switched back to v1" wait_new_boot "$old_boot"
wait_boot_check
expect_eq "it runs v1's kernel" "$V1_KERNEL" "$(guest uname -r)"
outcomes "v2 → v1"

# --- what the clients saw ----------------------------------------------------
sleep 3
for c in redis memcached postgres tor zebra ftp; do touch "${stop[$c]}"; done
for c in redis memcached postgres tor zebra ftp; do wait "${pid[$c]}"; done
wait "$curl_pid"
expect_eq "nginx: the download in flight completed across both switches" 0 "$?"
expect_eq "nginx: the file is intact" "$want_http" "$(sha256sum "$download" | cut -d' ' -f1)"
for c in redis memcached; do
        expect_eq "$c: one connection throughout" DONE "$(tail -n1 "${log[$c]}")"
done
# FRR was restarted fresh, as predicted: the vty connection ended with it, zebra runs again.
expect_match "zebra: the vty connection ended at the first switch, as list said" '^ERROR' "$(tail -n1 "${log[zebra]}")"
check "zebra: a fresh zebra answers on its vty" guest 'vtysh -c "show version" | grep -q FRRouting'

for c in redis memcached; do
        expect_eq "$c: its counter went n → n+1, nothing lost or repeated" 0 "$(client_skips "${log[$c]}")"
done
last=$(tail -n1 "${log[postgres]}")
expect_match "postgres: the transaction opened on v1 committed after both switches" '^COMMITTED [0-9]+$' "$last"
expect_eq "postgres: its rows are all there" "${last#COMMITTED }" \
        "$(guest 'runuser -u postgres -- psql -tAc "SELECT count(*) FROM dl_ticks"')"
expect_eq "postgres: each insert saw one more row than the last" 0 "$(client_skips "${log[postgres]}")"
expect_eq "tor: the control connection lived, and the setting made on it too" "DONE ContactInfo=$tor_contact" \
        "$(tail -n1 "${log[tor]}")"
# The uptime tor reports is its own process's: a fresh tor would start again near 0.
expect_eq "tor: its uptime never went back" 0 \
        "$(grep -E '^[0-9.]+ [0-9]+$' "${log[tor]}" | awk 'NR > 1 && $2 < prev { bad++ } { prev = $2 } END { print bad + 0 }')"
expect_match "vsftpd: the download in flight ended with the server's own 226" "^DONE $want_ftp 226" \
        "$(tail -n1 "${log[ftp]}")"
check "ssh: the interactive login is still open" kill -0 "$sess_pid"
session_end 'echo "kernel=$(uname -r)"'
expect_contains "ssh: the same shell answers on v1's kernel" "kernel=$V1_KERNEL" "$(tr -d '\r' <"$sess_out")"
expect_eq "ssh: its ticks are consecutive" 0 "$(tick_skips)"

printf '  ..    longest gap seen by each client over both switches:'
for c in redis memcached postgres tor zebra ftp; do printf ' %s %s s,' "$c" "$(client_gap "${log[$c]}")"; done
printf '\n'
"$VM" stop >/dev/null
