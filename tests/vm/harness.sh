# Sourced by tests/vm/run.sh and the scenarios: booting the test disk,
# running commands in the guest, and checks that count.

VM=$top/tests/vm/vm.sh

# Results of this scenario; run.sh adds them up.
checks_passed=0
checks_failed=0

pass() { checks_passed=$((checks_passed + 1)); printf '  ok    %s\n' "$*"; }
fail() { checks_failed=$((checks_failed + 1)); printf '  FAIL  %s\n' "$*"; }

# check DESCRIPTION CMD...: CMD's success is the check.
check() {
        local what=$1; shift
        if "$@"; then pass "$what"; else fail "$what"; fi
}

# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq() {
        if [ "$2" = "$3" ]; then pass "$1: $3"; else fail "$1: expected '$2', got '$3'"; fi
}

# expect_contains DESCRIPTION TEXT ACTUAL: TEXT appears in ACTUAL, literally.
expect_contains() {
        if [[ $3 == *"$2"* ]]; then pass "$1"; else fail "$1: '$2' not in '$3'"; fi
}

# expect_match DESCRIPTION REGEX ACTUAL
expect_match() {
        if [[ $3 =~ $2 ]]; then pass "$1"; else fail "$1: '$3' does not match /$2/"; fi
}

guest() { "$VM" ssh "$@"; }

# A copy-on-write disk over the cached image: the scenario may write (and
# power-cut) it as much as it likes, the cache stays pristine.
vm_disk_from() { # BASE_IMAGE NAME: prints the path of a fresh overlay
        local disk=$VM_RUN_DIR/$1.qcow2
        mkdir -p "$VM_RUN_DIR"
        rm -f "$disk"
        qemu-img create -q -f qcow2 -b "$2" -F raw "$disk"
        echo "$disk"
}

# vm_start DISK: boots it and waits for ssh; records the boot time.
vm_start() {
        local t0=$SECONDS
        "$VM" boot "$1" >/dev/null
        if ! "$VM" wait-ssh "${VM_BOOT_TIMEOUT:-900}" >/dev/null; then
                fail "guest reached ssh (serial log: $("$VM" dir)/serial.log)"
                tail -n 30 "$("$VM" dir)/serial.log" | sed 's/^/        /'
                return 1
        fi
        boot_seconds=$((SECONDS - t0))
        printf '  ..    booted to ssh in %d s\n' "$boot_seconds"
}

vm_cleanup() {
        "$VM" status 2>/dev/null && "$VM" kill >/dev/null 2>&1 || true
}

# --- switching slots (commit, rollback, fallback) -------------------------

# wait_new_boot OLD_BOOT_ID: until ssh answers from another boot.
wait_new_boot() {
        local t0=$SECONDS b
        while [ $((SECONDS - t0)) -lt 900 ]; do
                b=$(guest cat /proc/sys/kernel/random/boot_id 2>/dev/null) || b=
                if [ -n "$b" ] && [ "$b" != "$1" ]; then
                        printf '  ..    new boot answered ssh %d s after the switch began\n' $((SECONDS - t0))
                        return 0
                fi
                sleep 3
        done
        return 1
}

# wait_boot_check: until this boot's dreamlink-boot-check.service is done.
wait_boot_check() {
        local s
        for _ in $(seq 200); do
                s=$(guest systemctl show -P ActiveState dreamlink-boot-check.service 2>/dev/null) || s=
                case $s in active | failed) return 0 ;; esac
                sleep 3
        done
        return 1
}

# client_start KIND GUEST_PORT LOG STOPFILE [ARGS...]: one of clients.py's
# clients on the host, holding one connection to GUEST_PORT (forwarded by
# VM_FWD) until STOPFILE exists, its lines in LOG. Sets $client_pid.
client_start() {
        local kind=$1 port=$2 log=$3 stop=$4
        shift 4
        rm -f "$log" "$stop"
        python3 "$top/tests/vm/clients.py" "$kind" "$("$VM" port "$port")" "$stop" "$@" >"$log" 2>&1 &
        client_pid=$!
}

# redis_client_start LOG STOPFILE: INCR every 0.2 s over one connection, a
# line "TIME N" per reply, "DONE" once STOPFILE exists, "ERROR …" on any
# failure. Sets $client.
redis_client_start() { client_start redis 6379 "$1" "$2"; client=$client_pid; }

# redis_probe_start LOG STOPFILE: like redis_client_start, but a lost
# connection is opened again: what a client that retries sees of a service
# restart. Lines "TIME N CONN", CONN counting the connections. Sets $probe.
redis_probe_start() { client_start probe 6379 "$1" "$2"; probe=$client_pid; }

# pg_client_start LOG STOPFILE: one PostgreSQL transaction (trust
# authentication; see postgres_handoff_setup) inserting a row every 0.2 s,
# "TIME COUNT" with the rows it sees, then "COMMITTED COUNT" once STOPFILE
# exists, or "ERROR …". Sets $pg_client.
pg_client_start() { client_start postgres 5432 "$1" "$2"; pg_client=$client_pid; }

# postgres_handoff_setup: Debian's PostgreSQL 17 cluster, reachable from the
# host without a password (a test guest only), a table for pg_client_start,
# and its instance opted in with one line.
postgres_handoff_setup() {
        guest 'set -e
                echo "listen_addresses = '"'*'"'" >/etc/postgresql/17/main/conf.d/dl-test.conf
                echo "host all all 0.0.0.0/0 trust" >>/etc/postgresql/17/main/pg_hba.conf
                mkdir -p /etc/dreamlink/handoff.d
                printf "[Handoff]\nUnit=postgresql@17-main.service\n" >/etc/dreamlink/handoff.d/postgresql.conf
                systemctl daemon-reload
                systemctl restart postgresql@17-main.service
                runuser -u postgres -- psql -qc "CREATE TABLE dl_ticks (t timestamptz)"'
}

# The longest time between two replies, in seconds.
client_gap() {
        grep -E '^[0-9.]+ [0-9]+$' "$1" | awk 'NR > 1 && $1 - prev > max { max = $1 - prev } { prev = $1 } END { printf "%.1f", max }'
}

# How often the counter did not go n → n+1 (a reply lost or repeated).
client_skips() {
        grep -E '^[0-9.]+ [0-9]+$' "$1" | awk 'NR > 1 && $2 != prev + 1 { bad++ } { prev = $2 } END { print bad + 0 }'
}

# updaterd_use_test_server PORT CHANNEL [MORE_CONF]: points updaterd at the
# test release server (release-server.sh) on the host; MORE_CONF (e.g. a
# [Health] section) is appended. Synced: tests power-cut the guest.
updaterd_use_test_server() {
        guest 'mkdir -p /etc/dreamlink/updaterd.conf.d && cat >/etc/dreamlink/test-ca.pem' <"$("$top/tests/vm/release-server.sh" ca)"
        printf '[Update]\nServer=https://10.0.2.2:%s\nChannel=%s\nCAFile=/etc/dreamlink/test-ca.pem\n\n%s\n' "$1" "$2" "${3:-}" |
                guest 'cat >/etc/dreamlink/updaterd.conf.d/50-test.conf && sync && systemctl try-restart updaterd.service'
}

# redis_handoff_setup: Debian's redis-server, reachable from the host and
# opted in to handoff with the one line a user writes; dreamlink's generator
# gives the unit what criu needs (handoff-generator.c), from its next start.
redis_handoff_setup() {
        guest 'set -e
                sed -i -e "s/^bind .*/bind 0.0.0.0/" -e "s/^protected-mode .*/protected-mode no/" /etc/redis/redis.conf
                mkdir -p /etc/dreamlink/handoff.d
                printf "[Handoff]\nUnit=redis-server.service\n" >/etc/dreamlink/handoff.d/redis.conf
                systemctl daemon-reload
                systemctl restart redis-server.service'
}

# --- an interactive SSH session -------------------------------------------

# session_start NAME: an SSH session from the host with a pty (vm.sh ssh-tty),
# a counter ticking in its shell ("tick N" each second). Sets $sess_pid and
# $sess_out; fd 7 is what is typed into it.
session_start() {
        local sess_in=$VM_RUN_DIR/$1.in
        sess_out=$VM_RUN_DIR/$1.out
        rm -f "$sess_in" "$sess_out"
        mkfifo "$sess_in"
        "$VM" ssh-tty <"$sess_in" >"$sess_out" 2>&1 &
        sess_pid=$!
        exec 7>"$sess_in" # the shell's input stays open
        type_in_session 'stty -echo; (i=0; while :; do echo "tick $i"; i=$((i+1)); sleep 1; done) &'
}

# Types a line into the session; a session that has gone must not end the scenario (SIGPIPE).
type_in_session() { ( trap '' PIPE; printf '%s\n' "$1" >&7 ) 2>/dev/null; }

# The counter's values so far (a tick may share its line with the shell's prompt).
ticks() { tr -d '\r' <"$sess_out" | grep -o 'tick [0-9][0-9]*' | cut -d' ' -f2; }

# How often the counter did not go n → n+1 (a tick lost or repeated).
tick_skips() { ticks | awk 'NR > 1 && $1 != prev + 1 { bad++ } { prev = $1 } END { print bad + 0 }'; }

# session_end [LINE]: types LINE (if any), stops the counter and logs out.
session_end() {
        type_in_session "${1:+$1; }kill %1; exit"
        exec 7>&-
        for _ in $(seq 30); do kill -0 "$sess_pid" 2>/dev/null || break; sleep 1; done
        kill "$sess_pid" 2>/dev/null
}
