# suite: full
# Podman containers run by quadlet units, opted in with one handoff.d line each, each with a
# client on the host holding one redis connection: one on podman's default bridge network with a
# published port (netavark's DNAT), one with Network=host. A third cannot be checkpointed (its
# process holds an AF_ALG socket, which CRIU cannot dump): `dreamlink-handoff list` says so, and the
# commit restarts it fresh. Release 1 → 2 by `updatectl commit`, back by `updatectl rollback`:
# the same container IDs run afterwards, owned by their units (conmon the main process), with
# their in-memory state and their AppArmor confinement (podman's profile, loaded again by the
# handoff: podman loads it only when it starts a container), and `podman ps`/`podman logs` work.
# Debian's redis-server.service, carried as a plain service beside them with a client of its own,
# gives the figures to compare. A lingering user's rootless quadlet container is not carried: `list`
# says so, and the user's manager starts it fresh in the new boot.

export VM_FWD="6379 6380 6381"
server=$top/tests/vm/release-server.sh
port=$("$server" start "$RELEASE_ROOT")
trap '"$server" stop; vm_cleanup' EXIT

disk=$(vm_disk_from containers "$DISK_V1")
vm_start "$disk" || return 1
updaterd_use_test_server "$port" stable "$(printf '[Handoff]\nStopTimeout=10s')"

# The image the tests carry in /var (build-tree.sh), then the quadlets as a user writes them,
# then the one-line opt-ins. A quadlet unit starts at boot only with [Install]: the unfit one
# must, to start fresh after the switch.
redis_handoff_setup
guest 'set -e
        zstd -dc /var/lib/dreamlink-test/redis-container.tar.zst | podman import -q - localhost/dl-redis >/dev/null
        mkdir -p /etc/containers/systemd /etc/dreamlink/handoff.d
        cd /etc/containers/systemd
        printf "[Container]\nImage=localhost/dl-redis\nExec=/usr/bin/redis-server --protected-mode no\nPublishPort=6380:6379\n[Install]\nWantedBy=multi-user.target\n" >dl-bridge.container
        printf "[Container]\nImage=localhost/dl-redis\nExec=/usr/bin/redis-server --protected-mode no --port 6381\nNetwork=host\n[Install]\nWantedBy=multi-user.target\n" >dl-host.container
        printf "[Container]\nImage=localhost/dl-redis\nExec=/usr/bin/perl -e \"socket(S, 38, 5, 0) or die; sleep\"\n[Install]\nWantedBy=multi-user.target\n" >dl-unfit.container
        cd /etc/dreamlink/handoff.d
        for c in bridge host unfit; do printf "[Handoff]\nUnit=dl-$c.service\n" >dl-$c.conf; done
        systemctl daemon-reload
        systemctl start dl-bridge.service dl-host.service dl-unfit.service'
units="dl-bridge.service dl-host.service dl-unfit.service"
declare -A cid label
# label_of ID: the AppArmor label of the container's process.
label_of() {
        guest "cat /proc/\$(podman inspect -f '{{.State.Pid}}' $1)/attr/apparmor/current"
}
for u in $units; do
        expect_eq "$u runs" active "$(guest systemctl is-active $u)"
        cid[$u]=$(guest "podman ps -q --no-trunc --filter label=PODMAN_SYSTEMD_UNIT=$u")
        expect_match "$u: podman runs its container" '^[0-9a-f]{64}$' "${cid[$u]}"
        label[$u]=$(label_of "${cid[$u]}")
        expect_match "$u: its container is confined by podman's AppArmor profile" \
                '^containers-default-[0-9.]+ \(enforce\)$' "${label[$u]}"
done

# A lingering user's own quadlet, rootless; their systemd reached as `systemctl --user -M dl@`.
user_systemctl() { guest "systemctl --user -M dl@ $*"; }
guest 'set -e
        useradd -m dl
        loginctl enable-linger dl
        for i in $(seq 300); do test -S /run/user/$(id -u dl)/bus && break; sleep 1; done
        mkdir -p ~dl/.config/containers/systemd
        printf "[Container]\nImage=localhost/dl-redis\nExec=/usr/bin/redis-server --protected-mode no --port 6390\n[Install]\nWantedBy=default.target\n" \
                >~dl/.config/containers/systemd/dl-rootless.container
        chown -R dl: ~dl/.config
        # Rootless podman enters its user namespace in the working directory: not root'"'"'s home (0700).
        cd /
        zstd -dc /var/lib/dreamlink-test/redis-container.tar.zst |
                runuser -u dl -- env XDG_RUNTIME_DIR=/run/user/$(id -u dl) podman import -q - localhost/dl-redis >/dev/null'
user_systemctl daemon-reload
user_systemctl start dl-rootless.service
rootless_id() { guest 'cd / && runuser -u dl -- env XDG_RUNTIME_DIR=/run/user/$(id -u dl) podman ps -q --no-trunc'; }
expect_eq "the rootless quadlet unit runs" active "$(user_systemctl is-active dl-rootless.service)"
rootless_cid=$(rootless_id)
expect_match "the rootless unit runs its container" '^[0-9a-f]{64}$' "$rootless_cid"
guest 'systemctl status --no-pager dl-bridge.service | head -n 12; podman ps' | sed 's/^/        /'

out=$(guest updatectl stage 2>&1)
expect_eq "v2 is staged" 0 "$?"

declare -A log stop pid
clients="bridge host service"
for c in $clients; do
        log[$c]=$VM_RUN_DIR/containers-$c.log stop[$c]=$VM_RUN_DIR/containers-$c.stop
done
client_start redis 6380 "${log[bridge]}" "${stop[bridge]}"; pid[bridge]=$client_pid
client_start redis 6381 "${log[host]}" "${stop[host]}"; pid[host]=$client_pid
client_start redis 6379 "${log[service]}" "${stop[service]}"; pid[service]=$client_pid
# A subscriber to the bridge container only listens: after a switch the container speaks first
# on its connection, which then depends on the connection's address translation (conntrack) made
# again before the container runs.
sublog=$VM_RUN_DIR/containers-subscriber.log substop=$VM_RUN_DIR/containers-subscriber.stop
client_start subscriber 6380 "$sublog" "$substop" dl-news; pid[subscriber]=$client_pid
sleep 5
for c in $clients; do
        expect_match "the $c container's client is served" '^[0-9.]+ [0-9]+$' "$(tail -n1 "${log[$c]}")"
done
expect_match "the subscriber is subscribed" '^[0-9.]+ subscribe 1$' "$(tail -n1 "$sublog")"
# In-memory state the clients do not touch.
for p in 6380 6381; do guest "printf 'SET dl-state kept-$p\r\n' | timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$p; cat >&3; head -c5 <&3'" >/dev/null; done

list=$(guest dreamlink-handoff list 2>&1)
printf '%s\n' "$list" | sed 's/^/        /'
declare -A predicted
for u in $units; do
        predicted[$u]=$(printf '%s\n' "$list" | sed -n "/^$u: /,/on dump failure/p" |
                sed -n 's/^  can be checkpointed now: \(yes\|no\).*/\1/p')
done
expect_eq "list: the bridge container can be carried" yes "${predicted[dl-bridge.service]}"
expect_eq "list: the host-network container can be carried" yes "${predicted[dl-host.service]}"
expect_match "list: the unfit container cannot, with CRIU's reason" 'can be checkpointed now: no, .*(socket|family|criu)' \
        "$(printf '%s\n' "$list" | sed -n '/^dl-unfit.service: /,/on dump failure/p' | tr '\n' ' ')"
expect_match "list: the rootless container will start fresh" 'rootless containers of dl: 1 running' "$list"

# wait_for_line FILE LINE: a client logged "TIME LINE"; the bound only ends a wait for a connection
# that is gone.
wait_for_line() {
        local t0=$SECONDS
        until grep -qE "^[0-9.]+ $2\$" "$1"; do
                [ $((SECONDS - t0)) -lt 300 ] || return 1
                sleep 1
        done
}

# wait_for_user_unit: the user's manager, started after the boot, runs the rootless unit with a
# new container; the bound only ends a wait for one that never comes.
wait_for_user_unit() {
        local t0=$SECONDS id
        until [ "$(user_systemctl is-active dl-rootless.service)" = active ]; do
                [ $((SECONDS - t0)) -lt 300 ] || return 1
                sleep 2
        done
        id=$(rootless_id)
        [[ $id =~ ^[0-9a-f]{64}$ ]] && [ "$id" != "$rootless_cid" ] && rootless_cid=$id
}

# outcomes SWITCH: each unit against the prediction; a carried one runs the same container,
# owned by its unit again, with its state.
outcomes() {
        local txn u want got
        txn=$(guest cat /var/lib/dreamlink/transaction.json)
        for u in $units; do
                want=restored
                [ "${predicted[$u]}" = yes ] || want=fresh
                got=$(printf '%s\n' "$txn" | sed -n "s/.*\"$u\" : \"\([a-z]*\)\".*/\1/p" | head -n1)
                expect_eq "$1: $u as list predicted (${predicted[$u]})" "$want" "$got"
                expect_eq "$1: $u is active" active "$(guest systemctl is-active $u)"
                [ "$want" = restored ] || continue
                expect_eq "$1: $u runs the same container" "${cid[$u]}" \
                        "$(guest "podman ps -q --no-trunc --filter label=PODMAN_SYSTEMD_UNIT=$u")"
                check "$1: $u's main process is conmon, the container in its cgroup" guest \
                        "pid=\$(systemctl show -P MainPID $u); test \"\$(cat /proc/\$pid/comm)\" = conmon &&
                         cg=/sys/fs/cgroup\$(systemctl show -P ControlGroup $u) &&
                         grep -qx \$(podman inspect -f '{{.State.Pid}}' ${cid[$u]}) \$cg/libpod-payload-${cid[$u]}/cgroup.procs"
                check "$1: podman logs $u's container" guest "podman logs ${cid[$u]} >/dev/null"
                check "$1: $u's cidfile names it, for quadlet's ExecStop=" guest "test \"\$(cat /run/${u%.service}.cid)\" = ${cid[$u]}"
                expect_eq "$1: $u's container keeps its AppArmor profile" "${label[$u]}" "$(label_of "${cid[$u]}")"
        done
        check "$1: the lingering user's rootless container started fresh" wait_for_user_unit
        expect_match "$1: the plain redis-server.service was restored" '"redis-server.service" : "restored"' "$txn"
        guest 'journalctl -b -1 -o cat | grep -E "^Checkpointed"; journalctl -b 0 -o cat | grep -E "^Restored"' |
                sed 's/^/  ..    /'
        for p in 6380 6381; do
                expect_eq "$1: the in-memory state of the container on $p" "\$9 kept-$p" \
                        "$(guest "printf 'GET dl-state\r\n' | timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$p; cat >&3; head -n2 <&3'" | tr -d '\r' | paste -sd' ')"
        done
        local news="after-${1##* }"
        guest "printf 'PUBLISH dl-news $news\r\n' | timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/6380; cat >&3; head -c4 <&3'" >/dev/null
        check "$1: the bridge container's subscriber hears what is published after the switch" \
                wait_for_line "$sublog" "message $news"
}

# --- v1 → v2 -----------------------------------------------------------------
old_boot=$(guest cat /proc/sys/kernel/random/boot_id)
out=$(guest updatectl commit 2>&1)
printf '%s\n' "$out" | sed 's/^/        /'
check "the machine switched to v2" wait_new_boot "$old_boot"
wait_boot_check
expect_eq "it runs v2's kernel" "$V2_KERNEL" "$(guest uname -r)"
outcomes "v1 → v2"
guest 'journalctl -b 0 -o short-monotonic -u "dl-*" | tail -n 30' | sed 's/^/        /'

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
for c in $clients; do touch "${stop[$c]}"; done
touch "$substop"
for c in $clients subscriber; do wait "${pid[$c]}"; done
expect_eq "subscriber: one connection throughout" DONE "$(tail -n1 "$sublog")"
for c in $clients; do
        expect_eq "$c: one connection throughout" DONE "$(tail -n1 "${log[$c]}")"
        expect_eq "$c: its counter went n → n+1, nothing lost or repeated" 0 "$(client_skips "${log[$c]}")"
done
printf '  ..    longest gap seen by each client over both switches: bridge %s s, host %s s, plain service %s s\n' \
        "$(client_gap "${log[bridge]}")" "$(client_gap "${log[host]}")" "$(client_gap "${log[service]}")"
check "quadlet's ExecStop= removes the restored container" guest \
        "systemctl stop dl-bridge.service && ! podman container exists ${cid[dl-bridge.service]}"
"$VM" stop >/dev/null
