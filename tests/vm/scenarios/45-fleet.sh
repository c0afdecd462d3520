# suite: full
# A commit gated by a real etcd cluster ([Fleet] Strategy=etcd): three etcd
# members run on the host (the build environment's etcd-server, on loopback
# ports, data in a tmpfs), and the guest reaches them through qemu's user
# network at 10.0.2.2.
#  1. Another machine ("other") holds the group's only slot: the guest's
#     commit waits, `updatectl status` says why, nothing switches.
#  2. An admin frees the slot from the guest (`updatectl fleet release other`):
#     the commit takes it and switches v1 → v2 with kexec.
#  3. Once v2's boot check has blessed it, updaterd (started by the boot
#     check) gives the slot back: etcd's history of the key is "other",
#     nobody, the guest, nobody.

server=$top/tests/vm/release-server.sh
port=$("$server" start "$RELEASE_ROOT")

# Six ports nothing listens on now: three for clients, three for peers.
read -r c0 c1 c2 p0 p1 p2 < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')
# In the build environment (etcd-server is in tools/devroot.packages), so the
# host gets no etcd service; its /tmp is a tmpfs that goes with it.
"$top/tools/env.sh" bash -c '
        set -u
        trap "kill \$(jobs -p) 2>/dev/null; wait" EXIT TERM INT
        cluster=m0=http://127.0.0.1:$4,m1=http://127.0.0.1:$5,m2=http://127.0.0.1:$6
        for i in 0 1 2; do
                eval c=\${$((i + 1))} p=\${$((i + 4))}
                etcd --name m$i --data-dir /tmp/m$i --log-level warn \
                        --listen-client-urls http://127.0.0.1:$c --advertise-client-urls http://127.0.0.1:$c \
                        --listen-peer-urls http://127.0.0.1:$p --initial-advertise-peer-urls http://127.0.0.1:$p \
                        --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token dl-vm &
        done
        wait' _ "$c0" "$c1" "$c2" "$p0" "$p1" "$p2" >"$VM_RUN_DIR/etcd.log" 2>&1 &
etcd_pid=$!
trap 'kill "$etcd_pid" 2>/dev/null; wait "$etcd_pid" 2>/dev/null; "$server" stop; vm_cleanup' EXIT

key=/dreamlink/fleet/vm/semaphore
b64() { printf %s "$1" | base64 -w0; }
# etcd_value [REVISION]: the key's value (as of REVISION), or nothing.
etcd_value() {
        curl -sf --max-time 20 "http://127.0.0.1:$c0/v3/kv/range" \
                -d "{\"key\":\"$(b64 "$key")\"${1:+,\"revision\":\"$1\"}}" |
                python3 -c 'import base64, json, sys; kvs = json.load(sys.stdin).get("kvs") or [{}]; print(base64.b64decode(kvs[0].get("value", "")).decode())'
}
# etcd_holders_history: the holders the key listed, one value per line, oldest first.
etcd_holders_history() {
        local now rev
        now=$(curl -sf --max-time 20 "http://127.0.0.1:$c0/v3/kv/range" -d "{\"key\":\"$(b64 "$key")\"}" |
                python3 -c 'import json, sys; print(json.load(sys.stdin)["header"]["revision"])') || return 1
        for rev in $(seq 2 "$now"); do etcd_value "$rev"; done |
                python3 -c 'import json, sys
last = None
for line in sys.stdin:
    if line.strip():
        h = json.loads(line)["holders"] or []
        if h != last:
            print(",".join(h) or "-")
        last = h'
}

for _ in $(seq 150); do
        curl -sf --max-time 5 "http://127.0.0.1:$c0/v3/kv/range" -d "{\"key\":\"$(b64 /ping)\"}" >/dev/null && break
        sleep 2
done
check "the etcd cluster answers (quorum)" curl -sf --max-time 20 "http://127.0.0.1:$c0/v3/kv/put" \
        -d "{\"key\":\"$(b64 "$key")\",\"value\":\"$(b64 '{"semaphore":0,"max":1,"holders":["other"]}')\"}" -o /dev/null

disk=$(vm_disk_from fleet "$DISK_V1")
vm_start "$disk" || return 1
updaterd_use_test_server "$port" stable "$(printf '[Fleet]\nStrategy=etcd\nEndpoints=http://10.0.2.2:%s http://10.0.2.2:%s http://10.0.2.2:%s\nGroup=vm\nID=dl-guest\nRetrySec=5s' "$c0" "$c1" "$c2")"
expect_eq "v2 is staged" 0 "$(guest updatectl stage >/dev/null 2>&1; echo $?)"

# --- 1. the slot is taken: the commit waits -------------------------------
old_boot=$(guest cat /proc/sys/kernel/random/boot_id)
guest 'systemd-run --unit=dl-commit --collect --quiet updatectl commit'
status=
for _ in $(seq 60); do
        status=$(guest updatectl status 2>&1)
        [[ $status == *"waiting for a fleet slot"* ]] && break
        sleep 3
done
printf '%s\n' "$status" | grep -E '^(State|Fleet):' | sed 's/^/        /'
expect_contains "status: the commit waits for a fleet slot, and says why" \
        "step waiting for a fleet slot: all 1 slot of group vm is taken: other" "$status"
expect_contains "status: the fleet line" "Fleet:      etcd, group vm, 1 at once; waiting for a fleet slot since" "$status"
expect_eq "no switch has started (the last transaction is the stage)" "stage" \
        "$(guest 'updatectl status --json' | python3 -c 'import json, sys; print(json.load(sys.stdin)["transaction"]["operation"])')"
sleep 10
expect_eq "still waiting, still on the same boot" "$old_boot" "$(guest cat /proc/sys/kernel/random/boot_id)"
expect_contains "updatectl fleet shows the holder" "Group vm: 1 of 1 slot taken by other" "$(guest updatectl fleet 2>&1)"

# --- 2. the admin frees the slot: the commit switches ----------------------
t0=$SECONDS
expect_contains "updatectl fleet release other" "other holds no slot of group vm now." \
        "$(guest updatectl fleet release other 2>&1)"
check "the machine switched (a new boot answers)" wait_new_boot "$old_boot"
wait_boot_check
printf '  ..    release to checked: %d s\n' $((SECONDS - t0))
expect_eq "v2 runs, from slot b" "$V2_KERNEL|2|root-b" \
        "$(guest '. /etc/os-release; echo "$(uname -r)|$IMAGE_VERSION|$(lsblk -no PARTLABEL "$(findmnt -no SOURCE /)")"')"
expect_contains "the commit took its slot in the boot before" "Took a slot of fleet group vm as dl-guest." \
        "$(guest 'journalctl -b -1 -o cat _COMM=updaterd' 2>&1)"

# --- 3. blessed: the slot is given back ------------------------------------
value=
for _ in $(seq 60); do
        value=$(etcd_value) || value=
        [[ $value == *'"holders":[]'* || $value == *'"holders":null'* ]] && break
        sleep 3
done
expect_match "etcd: nobody holds a slot of group vm any more" '"holders":(\[\]|null)' "$value"
expect_eq "etcd's history of the key: other, nobody (the admin's release), the guest, nobody" "other - dl-guest -" \
        "$(etcd_holders_history | tr '\n' ' ' | sed 's/ $//')"
status=$(guest updatectl status 2>&1)
expect_contains "status: no slot held" "Fleet:      etcd, group vm, 1 at once; no slot held" "$status"
expect_eq "the turn record is gone" "no" "$(guest 'test -e /var/lib/dreamlink/fleet-turn.json && echo yes || echo no')"
expect_contains "the release came after the blessing" "Gave back the slot of fleet group vm held as dl-guest." \
        "$(guest 'journalctl -b 0 -o cat _COMM=updaterd' 2>&1)"
