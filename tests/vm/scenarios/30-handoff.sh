# Handoff on the same OS: `dreamlink-handoff cycle` checkpoints redis-server
# with a client on the host mid-stream (INCR over one connection through
# slirp) and restores it through its own unit: the connection and the
# counter carry on, systemd owns the restored process. A service CRIU
# refuses (it holds a unix connection to a process outside it) is started fresh.
# Then an interactive SSH session with a counter running in its shell, and
# nginx with a rate-limited download to the host in flight.

export VM_FWD="6379 80"
disk=$(vm_disk_from handoff "$DISK_V1")
vm_start "$disk" || return 1

check "dreamlink-handoff is installed" guest 'test -x /usr/sbin/dreamlink-handoff'
expect_match "criu is usable" '^Version: ' "$(guest 'criu --version | head -n1')"

# Opted in, not restarted yet: it still runs in the user namespace of Debian's unit, and
# list says what to do; the generator's drop-in is there for its next start.
guest 'mkdir -p /etc/dreamlink/handoff.d && printf "[Handoff]\nUnit=redis-server.service\n" >/etc/dreamlink/handoff.d/redis.conf && systemctl daemon-reload'
expect_match "list: an opted-in service that needs a restart says so, with the command" \
        'can be checkpointed now: no, it runs in a user namespace of its own \(PrivateUsers=yes\).*systemctl restart redis-server.service' \
        "$(guest dreamlink-handoff list 2>&1 | sed -n '/^redis-server.service: /,/on dump failure/p' | tr '\n' ' ')"
expect_match "the generator gave the opted-in unit its drop-in" '90-dreamlink-handoff.conf' \
        "$(guest systemctl cat redis-server.service 2>&1 | grep '^# /')"
redis_handoff_setup
# A service criu refuses, by construction: one end of a unix stream whose
# other end belongs to another unit (dl-peer, which holds every connection
# it accepts for good). Type=forking: the parent exits, and the start
# returns, only once its child is a session leader (as criu wants of a
# tree's root) holding the connection. (A connection to the D-Bus socket did
# not do: the bus drops a client that does not authenticate in time, after
# which criu dumps it fine.)
guest 'set -e
        cat >/etc/systemd/system/dl-peer.socket <<UNIT
[Socket]
ListenStream=/run/dl-peer.sock
UNIT
        cat >/etc/systemd/system/dl-peer.service <<UNIT
[Service]
ExecStart=/usr/bin/python3 -c "import socket; s = socket.socket(fileno=3); held = [s.accept() for _ in iter(int, 1)]"
UNIT
        cat >/etc/systemd/system/dl-undumpable.service <<UNIT
[Unit]
Description=dreamlink test: a service CRIU cannot checkpoint
Requires=dl-peer.socket
After=dl-peer.socket
[Service]
Type=forking
ExecStart=/usr/bin/python3 -c "import os, socket, time; r, w = os.pipe(); (os.read(r, 1), os._exit(0)) if os.fork() else os.setsid(); s = socket.socket(socket.AF_UNIX); s.connect(\"/run/dl-peer.sock\"); os.write(w, b\"x\"); time.sleep(100000)"
UNIT
        printf "[Handoff]\nUnit=dl-undumpable.service\n" >/etc/dreamlink/handoff.d/undumpable.conf
        cat >/etc/systemd/system/dl-syslog.service <<UNIT
[Unit]
Description=dreamlink test: a counter that logs to syslog over one datagram socket
[Service]
ExecStart=/usr/bin/python3 -c "import itertools, socket, time; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.connect(\"/dev/log\"); [(s.send(b\"<13>dl-syslog: tick %%d\" %% i), time.sleep(0.5)) for i in itertools.count()]"
UNIT
        printf "[Handoff]\nUnit=dl-syslog.service\n" >/etc/dreamlink/handoff.d/syslog.conf
        systemctl daemon-reload
        systemctl start dl-undumpable.service dl-syslog.service'
expect_eq "redis-server is active" "active" "$(guest systemctl is-active redis-server.service)"
expect_eq "the undumpable service is active" "active" "$(guest systemctl is-active dl-undumpable.service)"

list=$(guest dreamlink-handoff list 2>&1)
printf '%s\n' "$list" | sed 's/^/        /'
section() { printf '%s\n' "$list" | sed -n "/^$1: /,/on dump failure/p" | tr '\n' ' '; }
expect_match "list: redis-server is active, with its process, and can be checkpointed (dry run)" \
        'active \(running\).*process [0-9]+ redis-server.*can be checkpointed now: yes' "$(section redis-server.service)"
expect_match "list: the undumpable service cannot, with criu's reason" \
        'can be checkpointed now: no, .*External socket' "$(section dl-undumpable.service)"
expect_eq "the dry run left redis-server running" "active" "$(guest systemctl is-active redis-server.service)"
expect_match "list: a service logging to syslog over a datagram socket can be checkpointed, opted in by one line" \
        'can be checkpointed now: yes' "$(section dl-syslog.service)"

# An umbrella unit as Debian's postgresql.service: a oneshot that runs nothing itself and
# starts its instances, PartOf= it. list names the instance to opt in instead.
guest 'set -e
        printf "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n[Unit]\nWants=dl-member.service\n" >/etc/systemd/system/dl-umbrella.service
        printf "[Unit]\nPartOf=dl-umbrella.service\n[Service]\nExecStart=/bin/sleep infinity\n" >/etc/systemd/system/dl-member.service
        printf "[Handoff]\nUnit=dl-umbrella.service\n" >/etc/dreamlink/handoff.d/umbrella.conf
        systemctl daemon-reload
        systemctl start dl-umbrella.service'
expect_match "list: an umbrella unit is not carried, the instance to name is" \
        'can be checkpointed now: no, it runs no process of its own: it stands for dl-member.service' \
        "$(guest dreamlink-handoff list 2>&1 | sed -n '/^dl-umbrella.service: /,/on dump failure/p' | tr '\n' ' ')"
guest 'rm /etc/dreamlink/handoff.d/umbrella.conf && systemctl stop dl-umbrella.service dl-member.service'

# The client: one connection, INCR every 0.2 s (harness.sh).
client_log=$VM_RUN_DIR/handoff-client.log
stop_file=$VM_RUN_DIR/handoff-client.stop
redis_client_start "$client_log" "$stop_file"
sleep 5
before=$(tail -n1 "$client_log" | cut -d' ' -f2)
expect_match "the client counts over one connection" '^[0-9]+$' "$before"
pid_before=$(guest systemctl show -P MainPID redis-server.service)
fresh_pid_before=$(guest systemctl show -P MainPID dl-undumpable.service)
syslog_pid=$(guest systemctl show -P MainPID dl-syslog.service)
# Debian's unit has PrivateTmp=yes: a file in the service's /tmp and one in its /var/tmp,
# through its root as the kernel shows it (nothing may be executed in its mounts: NoExecPaths=/).
guest "echo kept >/proc/$pid_before/root/tmp/dl-kept && echo kept >/proc/$pid_before/root/var/tmp/dl-kept"
# "N PID": the newest "tick N" journald got from /dev/log, and the sender's PID.
syslog_last() {
        local e
        e=$(guest 'journalctl -q -t dl-syslog -n 1 -o verbose')
        printf '%s %s\n' "$(sed -n 's/^ *MESSAGE=tick //p' <<<"$e")" "$(sed -n 's/^ *_PID=//p' <<<"$e")"
}

out=$(guest dreamlink-handoff cycle redis-server.service dl-undumpable.service dl-syslog.service 2>&1)
rc=$?
syslog_at_restore=$(syslog_last)
printf '%s\n' "$out" | sed 's/^/        /'
expect_eq "cycle succeeded" 0 "$rc"
expect_match "redis-server was restored" 'redis-server.service: restored' "$out"
# PreDump= (default yes): its memory was copied while it ran; stopped, only what changed since.
line=$(printf '%s\n' "$out" | grep -m1 '^redis-server.service: checkpointed')
expect_match "redis-server was pre-dumped while it ran" 'pre-dump [0-9.]+ s, [0-9.]+ MiB' "$line"
if [[ $line =~ images\ ([0-9.]+)\ MiB\ \(pre-dump\ [0-9.]+\ s,\ ([0-9.]+)\ MiB ]]; then
        check "the stopped dump wrote less than the pre-dump (${BASH_REMATCH[1]} MiB in all, ${BASH_REMATCH[2]} before the stop)" \
                awk -v all="${BASH_REMATCH[1]}" -v pre="${BASH_REMATCH[2]}" 'BEGIN { exit !(all - pre < pre) }'
fi
expect_match "the undumpable service was not checkpointed" 'dl-undumpable.service: not checkpointed, will restart fresh' "$out"
expect_match "the undumpable service was started fresh" 'dl-undumpable.service: started fresh' "$out"

sleep 5
touch "$stop_file"
wait "$client"
last=$(tail -n1 "$client_log")
expect_eq "the client's connection survived" "DONE" "$last"
# n → n+1 all along: no reply lost, none repeated.
gaps=$(client_skips "$client_log")
expect_eq "the counter went on n → n+1 through the cycle" 0 "$gaps"
after=$(grep -E '^[0-9.]+ [0-9]+$' "$client_log" | tail -n1 | cut -d' ' -f2)
check "the counter moved on after the restore ($before → $after)" test "${after:-0}" -gt "$((before + 5))"
client_gap=$(client_gap "$client_log")

state=$(guest systemctl show -P ActiveState,SubState redis-server.service | tr '\n' ' ')
expect_eq "redis-server is active (running) after the restore" "active running " "$state"
pid_after=$(guest systemctl show -P MainPID redis-server.service)
expect_eq "the restored process is the unit's MainPID (same PID)" "$pid_before" "$pid_after"
check "MainPID is in the unit's cgroup" guest "grep -qx '$pid_after' /sys/fs/cgroup/system.slice/redis-server.service/cgroup.procs"
check "the restore drop-in is gone" guest '! test -e /run/systemd/system/redis-server.service.d/zz-dreamlink-restore.conf'
expect_eq "what redis kept in its private /tmp and /var/tmp came along" "kept kept" \
        "$(guest "cat /proc/$pid_after/root/tmp/dl-kept /proc/$pid_after/root/var/tmp/dl-kept" | tr '\n' ' ' | sed 's/ $//')"
expect_eq "the unit runs its own ExecStart again" "redis-server" \
        "$(guest systemctl show -P ExecStart redis-server.service | sed -n 's/.*path=\([^ ;]*\).*/\1/p' | xargs basename)"
check "no checkpoint images are left" guest 'test -z "$(ls -A /var/lib/dreamlink/handoff 2>/dev/null)"'
check "no network lock is left" guest '! nft list tables | grep -q CRIU-'
check "the restored redis still writes its log file" guest \
        'redis-cli -h 127.0.0.1 SAVE >/dev/null && sleep 1 && tail -n 3 /var/log/redis/redis-server.log | grep -q "DB saved on disk"'

expect_match "the syslog service was restored" 'dl-syslog.service: restored' "$out"
expect_eq "the syslog service runs on as the same process" "$syslog_pid" "$(guest systemctl show -P MainPID dl-syslog.service)"
# Its datagram socket was connected to /dev/log again: lines it sends after the restore (the
# cycle is over) reach the journal, from the same PID, with the counter going on, not from 0.
read -r tick_b _ <<<"$syslog_at_restore"
for _ in $(seq 120); do
        read -r tick_a pid_a <<<"$(syslog_last)"
        [ "${tick_a:-0}" -gt "${tick_b:-0}" ] && break
        sleep 1
done
expect_eq "the restored service's syslog lines reach the journal from its PID" "$syslog_pid" "${pid_a:-none}"
check "its counter went on past the restore ($tick_b → $tick_a)" test "${tick_a:-0}" -gt "${tick_b:-0}"

fresh_state=$(guest systemctl show -P ActiveState dl-undumpable.service)
fresh_pid_after=$(guest systemctl show -P MainPID dl-undumpable.service)
expect_eq "the undumpable service is active after the cycle" "active" "$fresh_state"
check "the undumpable service was restarted fresh (PID $fresh_pid_before → $fresh_pid_after)" \
        test "$fresh_pid_after" != "$fresh_pid_before" -a "$fresh_pid_after" != 0

guest 'systemctl stop redis-server.service'
expect_eq "systemctl stop works on the restored unit" "inactive" "$(guest systemctl is-active redis-server.service)"
guest 'systemctl start redis-server.service'
expect_eq "and a normal start afterwards" "active" "$(guest systemctl is-active redis-server.service)"

# An interactive SSH session (a shell with a counter ticking in it): sshd opts
# in with Sessions=yes, so the cycle carries its login sessions and the
# listener keeps running.
guest 'printf "[Handoff]\nUnit=ssh.service\nSessions=yes\n" >/etc/dreamlink/handoff.d/ssh.conf'
session_start handoff-session
type_in_session 'echo "shell=$$"'
sleep 5
tick_before=$(ticks | tail -n1)
expect_match "the SSH session's counter ticks" '^[0-9]+$' "$tick_before"
shell_pid=$(tr -d '\r' <"$sess_out" | sed -n 's/.*shell=\([0-9][0-9]*\).*/\1/p' | head -n1)
sshd_pid=$(guest systemctl show -P MainPID ssh.service)
ssh_out=$(guest dreamlink-handoff cycle ssh.service 2>&1)
printf '%s\n' "$ssh_out" | sed 's/^/        /'
expect_match "the session running the cycle itself is left alone" 'session-[0-9]+.scope: not checkpointed, this command runs in it' "$ssh_out"
expect_match "the SSH session was checkpointed and restored" 'session-[0-9]+.scope: restored as dreamlink-session-[0-9]+.scope' "$ssh_out"
sleep 5
type_in_session 'echo "after=$$ kernel=$(uname -r)"'
sleep 2
tick_after=$(ticks | tail -n1)
check "its counter went on ($tick_before → $tick_after)" test "${tick_after:-0}" -gt "$((tick_before + 3))"
expect_eq "its ticks are consecutive: no tick lost or repeated" 0 "$(tick_skips)"
expect_contains "the same shell (PID $shell_pid) answers" "after=$shell_pid kernel=" "$(tr -d '\r' <"$sess_out")"
scope=$(printf '%s\n' "$ssh_out" | grep -o 'dreamlink-session-[0-9]*\.scope' | head -n1)
expect_eq "systemd owns the restored session: the shell is in $scope" "$scope" \
        "$(guest "basename \"\$(grep -o '/[^/]*\.scope' /proc/$shell_pid/cgroup)\"")"
expect_eq "sshd's listener kept running" "$sshd_pid" "$(guest systemctl show -P MainPID ssh.service)"
check "new SSH logins work" guest true
session_end
check "the session logs out normally" bash -c "! kill -0 $sess_pid 2>/dev/null"

# nginx: a download from the host in flight (rate-limited) goes on to the end.
guest 'set -e
        head -c 12M /dev/urandom >/var/www/html/big.bin
        echo "limit_rate 400k;" >/etc/nginx/conf.d/dl-limit.conf
        printf "[Handoff]\nUnit=nginx.service\n" >/etc/dreamlink/handoff.d/nginx.conf
        systemctl restart nginx.service'
want=$(guest 'sha256sum /var/www/html/big.bin' | cut -d' ' -f1)
download=$VM_RUN_DIR/handoff-big.bin
rm -f "$download"
curl -s --max-time 300 -o "$download" "http://127.0.0.1:$("$VM" port 80)/big.bin" &
curl_pid=$!
sleep 8
partial=$(stat -c %s "$download" 2>/dev/null || echo 0)
nginx_pid_before=$(guest systemctl show -P MainPID nginx.service)
nginx_out=$(guest dreamlink-handoff cycle nginx.service 2>&1)
printf '%s\n' "$nginx_out" | sed 's/^/        /'
expect_match "nginx was restored" 'nginx.service: restored' "$nginx_out"
check "the download was in flight during the cycle ($partial of 12582912 bytes)" test "$partial" -gt 0 -a "$partial" -lt 12582912
wait "$curl_pid"
expect_eq "the download completed through the cycle" 0 "$?"
expect_eq "the downloaded file is intact" "$want" "$(sha256sum "$download" | cut -d' ' -f1)"
expect_eq "nginx is active with the restored master as MainPID" "active $nginx_pid_before" \
        "$(guest systemctl show -P ActiveState nginx.service) $(guest systemctl show -P MainPID nginx.service)"
check "nginx serves new requests after the restore" curl -sf -o /dev/null --max-time 60 "http://127.0.0.1:$("$VM" port 80)/"

# An abandoned checkpoint set (a dump without its restore) is cleaned up by gc.
guest 'dreamlink-handoff dump --images=/var/lib/dreamlink/handoff/abandoned dl-undumpable.service >/dev/null 2>&1'
check "an abandoned checkpoint set exists" guest 'test -e /var/lib/dreamlink/handoff/abandoned/dl-undumpable.service/handoff.state'
expect_match "gc removes it" 'Removed 1 checkpoint set' "$(guest dreamlink-handoff gc 2>&1)"
check "nothing is left under /var/lib/dreamlink/handoff" guest 'test -z "$(ls -A /var/lib/dreamlink/handoff)"'

printf '  ..    redis-server: %s; client gap %s s\n' \
        "$(printf '%s\n' "$out" | sed -n 's/^redis-server.service: restored, //p')" "$client_gap"
printf '  ..    dl-undumpable: %s\n' "$(printf '%s\n' "$out" | grep -m1 'Cannot checkpoint dl-undumpable')"
printf '  ..    nginx: %s\n' "$(printf '%s\n' "$nginx_out" | sed -n 's/^nginx.service: restored, //p')"
printf '  ..    SSH session: %s\n' "$(printf '%s\n' "$ssh_out" | sed -n 's/^session-[0-9]*.scope: restored as //p')"
"$VM" stop >/dev/null
