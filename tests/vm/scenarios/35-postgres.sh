# PostgreSQL 17 as Debian ships it, opted in with one line (postgres_handoff_setup):
# dreamlink's drop-in gives the instance an IPC namespace for its System V segment and
# a /dev/shm of its own for its dynamic shared memory. A client on the host holds one
# transaction open across `dreamlink-handoff cycle` and commits it afterwards: every
# row inserted before, during and after is there.

export VM_FWD="5432"
disk=$(vm_disk_from postgres "$DISK_V1")
vm_start "$disk" || return 1

postgres_handoff_setup
unit=postgresql@17-main.service
pid=$(guest systemctl show -P MainPID $unit)
check "the instance runs in an IPC namespace of its own" \
        guest "test \"\$(readlink /proc/$pid/ns/ipc)\" != \"\$(readlink /proc/1/ns/ipc)\""
check "its dynamic shared memory is in a /dev/shm of its own" \
        guest "grep -q ' /dev/shm/PostgreSQL' /proc/$pid/maps && test -z \"\$(ls -A /dev/shm)\""
list=$(guest dreamlink-handoff list 2>&1 | sed -n "/^$unit: /,/on dump failure/p")
printf '%s\n' "$list" | sed 's/^/        /'
expect_match "list: the instance can be checkpointed" 'can be checkpointed now: yes' "$list"
expect_match "list: the umbrella postgresql.service names the instance" "stands for $unit" \
        "$(guest 'printf "[Handoff]\nUnit=postgresql.service\n" >/etc/dreamlink/handoff.d/umbrella.conf && dreamlink-handoff list 2>&1; rm /etc/dreamlink/handoff.d/umbrella.conf' |
           sed -n '/^postgresql.service: /,/on dump failure/p' | tr '\n' ' ')"

log=$VM_RUN_DIR/pg-client.log
stop=$VM_RUN_DIR/pg-client.stop
pg_client_start "$log" "$stop"
sleep 5
before=$(grep -E '^[0-9.]+ [0-9]+$' "$log" | tail -n1 | cut -d' ' -f2)
expect_match "the client inserts within its open transaction" '^[0-9]+$' "$before"
out=$(guest dreamlink-handoff cycle $unit 2>&1)
expect_eq "cycle succeeded" 0 "$?"
printf '%s\n' "$out" | sed 's/^/        /'
expect_match "the instance was restored" "$unit: restored" "$out"
expect_eq "as the same postmaster, owned by its unit" "active $pid" \
        "$(guest systemctl show -P ActiveState $unit) $(guest systemctl show -P MainPID $unit)"
sleep 5
touch "$stop"
wait "$pg_client"
last=$(tail -n1 "$log")
printf '  ..    client-observed blackout: %s s\n' "$(client_gap "$log")"
expect_match "the transaction opened before the cycle committed after it" '^COMMITTED [0-9]+$' "$last"
expect_eq "its rows are all there, none lost or repeated" "${last#COMMITTED }" \
        "$(guest 'runuser -u postgres -- psql -tAc "SELECT count(*) FROM dl_ticks"')"
expect_eq "and each insert saw one more row than the last" 0 "$(client_skips "$log")"
"$VM" stop >/dev/null
