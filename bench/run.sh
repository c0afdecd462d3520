#!/bin/bash
# bench/run.sh: dreamlink's figures, measured in one run on one VM (make bench).
#
#   1. what staging a one-package change downloads (a static delta) against
#      the full tree;
#   2. checkpoint throughput (a redis holding ~200 MiB, PreDump=no and yes)
#      against the guest disk's sequential write bandwidth (dd, fsync);
#   3. idle updaterd: gone after its idle time, and how long a call takes
#      that starts it again (D-Bus activation); its RSS while it ran;
#   5. a fleet rollout of 100 simulated machines through a real 3-member etcd
#      cluster ([Fleet] Strategy=etcd): total time, the most machines
#      switching at once, etcd requests per machine (no VM: fleet-rollout);
#   4. the client-observed blackout of redis (a client that reconnects),
#      still holding the ~200 MiB of 2., saved as RDB, for
#      (a) a commit with handoff (v1 → v2, kernel 6.12 → 7.3), (b) a plain
#      kexec without handoff (commit --no-handoff), (c) a firmware reboot
#      (commit --reboot), each from v1 into v2, with their phases (the new
#      kernel's start → redis answering, → multi-user.target); and the way
#      back to v1 with and without handoff.
#
# Prints a table and writes bench/results/YYYYMMDD-HHMMSS.json. Times are
# under TCG emulation on the machine that runs it: compare the ratios.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
. "$top/tools/lib.sh"
. "$top/tests/vm/host.sh"

vm_host_prepare bench

t_start=$SECONDS
vm_images
. "$top/tests/vm/harness.sh"
export VM_NAME=bench VM_FWD="6379"
server=$top/tests/vm/release-server.sh
port=$("$server" start "$RELEASE_ROOT")
trap '"$server" stop; vm_cleanup' EXIT

step() { printf '==> %s\n' "$*" >&2; }
results=$VM_RUN_DIR/bench-results.txt
: >"$results"
put() { printf '%s=%s\n' "$1" "$2" >>"$results"; } # KEY VALUE for the JSON

# --- 5. fleet rollout (no VM) ---------------------------------------------------
step "fleet rollout: 100 machines in 4 groups of 3 slots through a 3-member etcd cluster"
fleet=$("$top/tools/env.sh" bash -c '[ -e build/build.ninja ] || meson setup build >/dev/null
        meson compile -C build bench/fleet-rollout >/dev/null && build/bench/fleet-rollout --etcd /usr/bin/etcd \
                --machines 100 --groups 4 --slots 3 --switch-ms 500 --retry-sec 1') ||
        die "the fleet rollout failed: $fleet"
printf '%s\n' "$fleet" >>"$results"

step "booting v1"
disk=$(vm_disk_from bench "$DISK_V1")
vm_start "$disk" >&2 || die "the VM did not boot; see $("$VM" dir)/serial.log"
put machine "$(nproc) CPUs, $(($(awk '/MemTotal/ { print $2 }' /proc/meminfo) / 1024 / 1024)) GiB, $(. /etc/os-release; echo "$PRETTY_NAME"), qemu TCG"
put kernel_v1 "$V1_KERNEL"
put kernel_v2 "$V2_KERNEL"

# A redis machine: FRR (in the test image for 70-daemons) is not one of its services. Its unit
# is ordered before network.target and, by its default dependencies, after basic.target; every
# daemon ordered after network.target, redis too, would wait for the whole of basic.target and
# FRR's start in each boot, restored or fresh.
guest 'systemctl disable --now frr.service' >/dev/null 2>&1

# --- 2. checkpoint throughput -------------------------------------------------
step "checkpoint throughput: redis with ~200 MiB, against dd"
redis_handoff_setup
# 400000 keys of 400 bytes (Debian's redis refuses DEBUG POPULATE: a Lua loop).
guest "redis-cli EVAL \"local v = string.rep('x', 400) for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'bench:' .. i, v) end\" 0 400000 >/dev/null"
used=$(guest 'redis-cli INFO memory' | tr -d '\r' | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
[ "${used:-0}" -gt $((150 << 20)) ] || die "redis holds only ${used:-0} bytes after filling it"
put redis_used_bytes "$used"
# PreDump=no three times: the first dump is of the redis as it ran since its start, what an
# update dumps, and the figure; the next two of the restored redis, which dumps faster (2 s of
# 6 in a guest, not in its memory), reported beside it. dd three times, by its median: a shared
# machine's disk varies from one write to the next.
for pre in no yes; do
        guest "sed -i '/^PreDump=/d' /etc/dreamlink/handoff.d/redis.conf && echo PreDump=$pre >>/etc/dreamlink/handoff.d/redis.conf"
        lines=()
        for i in $( [ "$pre" = no ] && echo 1 2 3 || echo 1 ); do
                out=$(guest 'dreamlink-handoff cycle redis-server.service 2>/dev/null')
                lines+=("$(grep -m1 '^redis-server.service: restored' <<<"$out")")
        done
        dumps=$(printf '%s\n' "${lines[@]}" | sed -n 's/.*, dump \([0-9.]*\) s.*/\1/p')
        put "cycle_predump_${pre}_dump_all_s" "$(tr '\n' ' ' <<<"$dumps" | sed 's/ $//')"
        line=${lines[0]}
        put "cycle_predump_${pre}_dump_s" "$(sed -n 's/.*, dump \([0-9.]*\) s.*/\1/p' <<<"$line")"
        put "cycle_predump_${pre}_images_mib" "$(sed -n 's/.*, images \([0-9.]*\) MiB.*/\1/p' <<<"$line")"
        put "cycle_predump_${pre}_frozen_s" "$(sed -n 's/.*, frozen \([0-9.]*\) s.*/\1/p' <<<"$line")"
        put "cycle_predump_${pre}_restore_s" "$(sed -n 's/.*, restore \([0-9.]*\) s.*/\1/p' <<<"$line")"
        put "cycle_predump_${pre}_pre_s" "$(sed -n 's/.*, pre-dump \([0-9.]*\) s.*/\1/p' <<<"$line")"
        # criu's share: the pages it collected and how long writing them took.
        put "cycle_predump_${pre}_memory_mib" "$(sed -n 's/.*, memory \([0-9.]*\) MiB in.*/\1/p' <<<"$line")"
        put "cycle_predump_${pre}_memory_s" "$(sed -n 's/.*, memory [0-9.]* MiB in \([0-9.]*\) s.*/\1/p' <<<"$line")"
        put "cycle_predump_${pre}_memory_write_s" "$(sed -n 's/.*(written in \([0-9.]*\) s).*/\1/p' <<<"$line")"
        put "cycle_predump_${pre}_sync_s" "$(sed -n 's/.*, synced in \([0-9.]*\) s.*/\1/p' <<<"$line")"
done
# The data stays for the blackouts, persisted as Debian's redis.conf does it (RDB): a fresh start
# loads it again, a restore has it in memory.
guest 'sed -i "/^PreDump=/d" /etc/dreamlink/handoff.d/redis.conf; redis-cli SAVE >/dev/null'
# The same filesystem the images go to (VAR), synced like them.
dds=$(for i in 1 2 3; do
        guest 'dd if=/dev/zero of=/var/lib/dreamlink/bench.dd bs=1M count=256 conv=fsync 2>&1; rm -f /var/lib/dreamlink/bench.dd' | tail -n1
done | sed -n 's/^\([0-9]*\) bytes.*copied, \([0-9.]*\) s.*/\1 \2/p')
[ "$(wc -l <<<"$dds")" = 3 ] || die "dd did not report three writes: $dds"
put dd_all_s "$(awk '{ printf "%s%s", (NR > 1 ? " " : ""), $2 }' <<<"$dds")"
read -r dd_bytes dd_s < <(sort -k2 -n <<<"$dds" | sed -n 2p)
put dd_bytes "$dd_bytes"
put dd_s "$dd_s"

# --- 3. idle updaterd ---------------------------------------------------------
# updaterd exits when it has nothing to do (--exit-idle-time, 30 s); a call starts it again
# through D-Bus activation. Measured: its RSS and PSS while it answers, how long after the last
# call it is gone, and how long `updatectl status` takes when it has to start it first.
step "idle updaterd: exit and activation"
updaterd_use_test_server "$port" stable "$(printf '[Health]\nRequiredUnits=redis-server.service')"
idle=$(guest 'set -e
        updatectl status >/dev/null
        pid=$(systemctl show -P MainPID updaterd.service); [ "$pid" -gt 0 ]
        rss=$(awk "/^VmRSS/ { print \$2 }" /proc/$pid/status); pss=$(awk "/^Pss:/ { print \$2 }" /proc/$pid/smaps_rollup)
        t0=$(date +%s.%N)
        for i in $(seq 600); do [ "$(systemctl show -P ActiveState updaterd.service)" = inactive ] && break; sleep 0.2; done
        [ "$(systemctl show -P ActiveState updaterd.service)" = inactive ]
        t1=$(date +%s.%N)
        updatectl status >/dev/null
        t2=$(date +%s.%N)
        echo "$rss $pss $(awk -v a="$t0" -v b="$t1" -v c="$t2" "BEGIN { printf \"%.2f %.2f\", b - a, c - b }")"') || die "updaterd did not exit when idle, or did not answer after"
read -r rss pss gone activation <<<"$idle"
put idle_rss_kib "$rss"
put idle_pss_kib "$pss"
put idle_exit_s "$gone"
put idle_activation_s "$activation"

# --- 4. blackouts -------------------------------------------------------------
step "staging v2"
guest 'updatectl stage' >/dev/null
probe_log=$VM_RUN_DIR/bench-probe.log
probe_stop=$VM_RUN_DIR/bench-probe.stop
redis_probe_start "$probe_log" "$probe_stop"
sleep 5

# switch NAME COMMAND...: runs the switch, waits for the new boot's check;
# records the longest reply gap and whether the connection survived.
switch() {
        local name=$1 old_boot t0 t1 c0 c1
        shift
        step "$name: $*"
        old_boot=$(guest cat /proc/sys/kernel/random/boot_id)
        # Each boot is the first of its kernel, as an update's is: apparmor_parser keeps a
        # policy cache per kernel feature set in the shared /var, so without this only (a),
        # the first boot of 7.3, would compile the whole policy.
        guest 'keep=$(apparmor_parser --print-cache-dir) && for d in /var/cache/apparmor/*/; do [ "${d%/}" = "$keep" ] || rm -rf "$d"; done'
        t0=$(date +%s.%N)
        c0=$(tail -n1 "$probe_log" | awk '{ print $3 }')
        guest "$@" >/dev/null 2>&1 || true
        wait_new_boot "$old_boot" >&2 || die "$name: the machine did not come back"
        wait_boot_check || die "$name: the boot check did not finish"
        sleep 5
        t1=$(date +%s.%N)
        c1=$(tail -n1 "$probe_log" | awk '{ print $3 }')
        put "${name}_blackout_s" "$(awk -v a="$t0" -v b="$t1" 'NF == 3 && $1 >= a && $1 <= b { if (p && $1 - p > m) m = $1 - p; p = $1 } END { printf "%.1f", m }' "$probe_log")"
        put "${name}_connection_kept" "$([ "$c0" = "$c1" ] && echo yes || echo no)"
        # Phases, from the new boot.
        put "${name}_analyze" "$(guest 'systemd-analyze time 2>/dev/null | head -n1')"
        put "${name}_boot_check_s" "$(guest 'echo $(( ($(systemctl show -P ExecMainExitTimestampMonotonic dreamlink-boot-check.service) - $(systemctl show -P ExecMainStartTimestampMonotonic dreamlink-boot-check.service)) / 1000 ))' | awk '{ printf "%.1f", $1 / 1000 }')"
        put "${name}_os" "$(guest '. /etc/os-release; echo "$IMAGE_VERSION $(uname -r)"')"
        # From the new kernel's start: redis answering (restored, or started and its data loaded:
        # Type=notify, ready once loaded), against the end of the boot.
        put "${name}_redis_ready_s" "$(guest 'systemctl show -P ActiveEnterTimestampMonotonic redis-server.service' | awk '{ printf "%.1f", $1 / 1e6 }')"
        put "${name}_multi_user_s" "$(guest 'systemctl show -P ActiveEnterTimestampMonotonic multi-user.target' | awk '{ printf "%.1f", $1 / 1e6 }')"
        put "${name}_redis_keys" "$(guest 'redis-cli DBSIZE' | tr -d '\r')"
        # apparmor.service compiling the policy for this kernel (its cache was dropped).
        put "${name}_apparmor_s" "$(guest 'echo $(( $(systemctl show -P ActiveEnterTimestampMonotonic apparmor.service) - $(systemctl show -P InactiveExitTimestampMonotonic apparmor.service) ))' | awk '{ printf "%.1f", $1 / 1e6 }')"
        # The boot's whole account, from the kernel's start, to read where its time went (not
        # part of the results: a few MiB).
        guest 'journalctl -b 0 -o short-monotonic --no-pager' >"$VM_RUN_DIR/bench-$name.journal" 2>/dev/null || true
}

# The dumps of (a) are in the journal of the boot before it.
switch a_handoff updatectl commit
put a_handoff_dump_s "$(guest "journalctl -b -1 -u updaterd.service -o cat | sed -n 's/^Checkpointed redis-server.service .* in \([0-9.]*\) s.*/\1/p' | tail -n1")"
# The restore is the restored unit's start job: from leaving inactive to active.
put a_handoff_restore_s "$(guest 'echo $(( $(systemctl show -P ActiveEnterTimestampMonotonic redis-server.service) - $(systemctl show -P InactiveExitTimestampMonotonic redis-server.service) ))' | awk '{ printf "%.2f", $1 / 1e6 }')"
# What the restore waited for: /var (local-fs.target), its start job, then restore-exec's own
# account of its setup (the addresses, the automounts) and of criu.
put a_handoff_local_fs_s "$(guest 'systemctl show -P ActiveEnterTimestampMonotonic local-fs.target' | awk '{ printf "%.1f", $1 / 1e6 }')"
put a_handoff_var_initramfs "$(guest 'journalctl -b 0 -k -t dreamlink-handoff -o cat | grep -q "^/var mounted" && echo yes || echo no')"
put a_handoff_restore_start_s "$(guest 'systemctl show -P InactiveExitTimestampMonotonic redis-server.service' | awk '{ printf "%.1f", $1 / 1e6 }')"
restored=$(guest 'journalctl -b 0 -o cat | grep -m1 "^Restored redis-server.service as PID"' || true)
put a_handoff_restore_criu_s "$(sed -n 's/.*: criu \([0-9.]*\) s, .*/\1/p' <<<"$restored")"
put a_handoff_restore_setup_s "$(sed -n 's/.*, after \([0-9.]*\) s of setup.*/\1/p' <<<"$restored")"
put a_handoff_restore_addresses_s "$(sed -n 's/.*(waiting \([0-9.]*\) s for the addresses.*/\1/p' <<<"$restored")"
put a_handoff_restore_automounts_s "$(sed -n 's/.*, \([0-9.]*\) s more for the automounts.*/\1/p' <<<"$restored")"
switch a_back updatectl rollback
# Each kind into the same kernel (7.3), from the same one.
switch b_kexec updatectl commit --no-handoff
switch b_back updatectl rollback --no-handoff
switch c_reboot updatectl commit --reboot
touch "$probe_stop"
wait "$probe" || true
"$VM" stop >/dev/null

# --- 1. download sizes ------------------------------------------------------
step "staging a one-package release (v1.1) from v1, in a fresh v1 VM"
# A fresh VM: 1.1 is published on its own channel with counter 10, after
# which this machine would refuse stable's release 2 (counter 2) as a rollback.
disk=$(vm_disk_from bench "$DISK_V1")
vm_start "$disk" >&2 || die "the VM did not boot; see $("$VM" dir)/serial.log"
updaterd_use_test_server "$port" onepkg
guest 'updatectl stage' >/dev/null
pulled=$(guest "journalctl -u updaterd.service -o cat | grep -E '^Pulled 1\.1 ' | tail -n1")
put delta_bytes "$(sed -n 's/.*: \([0-9]*\) bytes (.*/\1/p' <<<"$pulled")"
put delta_used "$(grep -q 'as a static delta' <<<"$pulled" && echo yes || echo no)"
put tree_bytes "$(sed -n 's/.*the full tree is \([0-9]*\) bytes.*/\1/p' <<<"$pulled")"
"$VM" stop >/dev/null

# The same release pulled as plain objects (no delta), onto v1 and onto
# nothing: from the host, with the same libostree, from the same server.
step "pulling 1.1 as objects, from v1 and from nothing (host side)"
v1_commit=$(sed -n 's/.*"commit":"\([0-9a-f]*\)".*/\1/p' "$RELEASE_ROOT/channels/stable/1.json")
v11_commit=$(sed -n 's/.*"commit":"\([0-9a-f]*\)".*/\1/p' "$RELEASE_ROOT/channels/onepkg.json")
pulls=$("$top/tools/env.sh" bash -c '
        set -e
        ca=$1 port=$2 repo=$3 v1=$4 v11=$5
        pull() { # REPO: 1.1 over HTTPS without deltas; prints the KiB transferred
                ostree --repo="$1" remote add --no-gpg-verify --set=tls-ca-path="$ca" rel "https://127.0.0.1:$port/repo"
                ostree --repo="$1" pull --disable-static-deltas rel "$v11" | sed -n "s/.*; \([0-9]*\) KiB transferred.*/\1/p"
        }
        a=$(mktemp -d) b=$(mktemp -d)
        trap "rm -rf $a $b" EXIT
        ostree --repo="$a" init --mode=archive && ostree --repo="$b" init --mode=archive
        ostree --repo="$a" pull-local "$repo" "$v1" >/dev/null
        echo "$(pull "$a") $(pull "$b")"' \
        _ "$DREAMLINK_CACHE/vm/tls/ca.pem" "$port" "$RELEASE_ROOT/repo" "$v1_commit" "$v11_commit")
read -r objects_kib full_kib <<<"$pulls"
[ -n "${objects_kib:-}" ] && put objects_bytes "$((objects_kib * 1024))"
[ -n "${full_kib:-}" ] && put full_pull_bytes "$((full_kib * 1024))"

# --- the table and the JSON ---------------------------------------------------
mkdir -p "$here/results"
json=$here/results/$(date -u +%Y%m%d-%H%M%S).json
put bench_seconds "$((SECONDS - t_start))"
python3 - "$results" "$json" <<'PY'
import json, sys
r = {}
for line in open(sys.argv[1]):
    k, _, v = line.rstrip("\n").partition("=")
    try:
        r[k] = float(v) if "." in v or v.isdigit() else v
    except ValueError:
        r[k] = v
import re
def span(t):  # systemd's "1min 2.345s", "850ms"
    sec = 0.0
    for n, u in re.findall(r"([0-9.]+)(min|ms|s|h)", t):
        sec += float(n) * {"h": 3600, "min": 60, "s": 1, "ms": 0.001}[u]
    return sec
for k in [k for k in r if k.endswith("_analyze")]:
    name = k[: -len("_analyze")]
    for t, phase in re.findall(r"([0-9.hmins ]+?) \((firmware|loader|kernel|initrd|userspace)\)", str(r[k])):
        r["%s_%s_s" % (name, phase)] = round(span(t), 3)
def f(k, d=None):
    v = r.get(k, d)
    return v if isinstance(v, float) else d
out = {"note": "one run, qemu TCG (software emulation): compare ratios, not absolute times", **r}
dd = f("dd_bytes") / f("dd_s") / 1048576 if f("dd_s") else None
full = f("cycle_predump_no_images_mib") / f("cycle_predump_no_dump_s") if f("cycle_predump_no_dump_s") else None
out["dd_mib_s"] = dd
out["checkpoint_mib_s"] = full
out["checkpoint_vs_dd"] = full / dd if full and dd else None
write = f("cycle_predump_no_memory_mib") / f("cycle_predump_no_memory_write_s") if f("cycle_predump_no_memory_write_s") else None
out["memory_write_mib_s"] = write
out["delta_vs_tree"] = f("delta_bytes") / f("tree_bytes") if f("tree_bytes") else None
out["delta_vs_objects"] = f("delta_bytes") / f("objects_bytes") if f("objects_bytes") and f("delta_bytes") else None
out["delta_vs_full"] = f("delta_bytes") / f("full_pull_bytes") if f("full_pull_bytes") and f("delta_bytes") else None
json.dump(out, open(sys.argv[2], "w"), indent=2, sort_keys=True)

def fmt(v, unit="", d=1):
    return "n/a" if v is None else ("%.*f%s" % (d, v, unit))
rows = [
    ("Stage a one-package change", "static delta %s, objects %s, everything %s (uncompressed tree %s)%s" % (
        fmt(f("delta_bytes", 0) / 1048576, " MiB", 2), fmt(f("objects_bytes", 0) / 1048576, " MiB", 1),
        fmt(f("full_pull_bytes", 0) / 1048576, " MiB"), fmt(f("tree_bytes", 0) / 1048576, " MiB"),
        "" if r.get("delta_used") == "yes" else " (updaterd did not use the delta!)")),
    ("  ratios", "delta/objects %s, delta/everything %s" % (
        fmt(out["delta_vs_objects"], "", 4), fmt(out["delta_vs_full"], "", 4))),
    ("Checkpoint, PreDump=no", "%s of images in %s: %s (dd: %s, median of %s s; ratio %s); the restored redis: %s s" % (
        fmt(f("cycle_predump_no_images_mib"), " MiB"), fmt(f("cycle_predump_no_dump_s"), " s", 2), fmt(full, " MiB/s"),
        fmt(dd, " MiB/s"), str(r.get("dd_all_s", "?")).replace(" ", ", "), fmt(out["checkpoint_vs_dd"], "", 2),
        ", ".join(str(r.get("cycle_predump_no_dump_all_s", "?")).split(" ")[1:]) or "?")),
    ("  where the dump went", "criu: %s of memory in %s, of which writing %s (%s); the rest of the tree %s; the sync %s" % (
        fmt(f("cycle_predump_no_memory_mib"), " MiB"), fmt(f("cycle_predump_no_memory_s"), " s", 2),
        fmt(f("cycle_predump_no_memory_write_s"), " s", 2), fmt(write, " MiB/s"),
        fmt(f("cycle_predump_no_dump_s") - f("cycle_predump_no_memory_s") - f("cycle_predump_no_sync_s", 0) if f("cycle_predump_no_dump_s") and f("cycle_predump_no_memory_s") else None, " s", 2),
        fmt(f("cycle_predump_no_sync_s"), " s", 2))),
    ("Service stopped, PreDump=no", "frozen %s (dump %s, restore %s)" % (
        fmt(f("cycle_predump_no_frozen_s"), " s", 2), fmt(f("cycle_predump_no_dump_s"), " s", 2), fmt(f("cycle_predump_no_restore_s"), " s", 2))),
    ("Service stopped, PreDump=yes", "frozen %s (dump %s after a pre-dump of %s while it ran, restore %s)" % (
        fmt(f("cycle_predump_yes_frozen_s"), " s", 2), fmt(f("cycle_predump_yes_dump_s"), " s", 2), fmt(f("cycle_predump_yes_pre_s"), " s", 2),
        fmt(f("cycle_predump_yes_restore_s"), " s", 2))),
    ("Idle updaterd", "no process %s after the last call (RSS %s, PSS %s while it ran); status starting it again: %s" % (
        fmt(f("idle_exit_s"), " s"), fmt(f("idle_rss_kib", 0) / 1024, " MiB"), fmt(f("idle_pss_kib", 0) / 1024, " MiB"),
        fmt(f("idle_activation_s"), " s", 2))),
]
rows.append(("Fleet rollout (etcd, 3 members)", "%d machines, %d groups of %d slots, %s s switch each: %s, at most %d switching at once (%d in a group), %s etcd requests per machine (max %d), history %s" % (
    f("fleet_machines", 0), f("fleet_groups", 0), f("fleet_slots", 0), fmt(f("fleet_switch_s"), "", 1), fmt(f("fleet_total_s"), " s"),
    f("fleet_max_switching", 0), f("fleet_max_switching_in_group", 0), fmt(f("fleet_requests_per_machine"), "", 1),
    f("fleet_requests_max", 0), "a rollout" if r.get("fleet_history_ok") == "yes" else "WRONG")))
for name, label in (("a_handoff", "(a) commit, kexec + handoff"), ("b_kexec", "(b) kexec, no handoff"), ("c_reboot", "(c) firmware reboot")):
    fw = (f(name + "_firmware_s") or 0) + (f(name + "_loader_s") or 0)
    rows.append((label, "blackout %s, connection kept: %s; %skernel+initrd %s, userspace %s (AppArmor %s), boot check %s%s → %s" % (
        fmt(f(name + "_blackout_s"), " s"), r.get(name + "_connection_kept", "?"),
        ("firmware+loader %s, " % fmt(fw, " s")) if fw else "",
        fmt((f(name + "_kernel_s") or 0) + (f(name + "_initrd_s") or 0), " s"),
        fmt(f(name + "_userspace_s"), " s"), fmt(f(name + "_apparmor_s"), " s"), fmt(f(name + "_boot_check_s"), " s"),
        (", dump %s, restore %s" % (fmt(f("a_handoff_dump_s"), " s", 2), fmt(f("a_handoff_restore_s"), " s", 2))) if name == "a_handoff" else "", r.get(name + "_os", "?"))))
for name, label in (("a_handoff", "(a) kernel start → redis"), ("b_kexec", "(b) kernel start → redis"), ("c_reboot", "(c) kernel start → redis")):
    ready, mu = f(name + "_redis_ready_s"), f(name + "_multi_user_s")
    rows.append((label, "answering after %s (%s keys), multi-user.target after %s: ratio %s" % (
        fmt(ready, " s"), fmt(f(name + "_redis_keys"), "", 0), fmt(mu, " s"), fmt(ready / mu if ready and mu else None, "", 2))))
    if name == "a_handoff":
        rows.append(("  the restore's way", "local-fs.target %s (/var from the initramfs: %s), its start %s; setup %s (the addresses %s, then the automounts %s), criu %s" % (
            fmt(f("a_handoff_local_fs_s"), " s"), r.get("a_handoff_var_initramfs", "?"), fmt(f("a_handoff_restore_start_s"), " s"), fmt(f("a_handoff_restore_setup_s"), " s", 2),
            fmt(f("a_handoff_restore_addresses_s"), " s", 2), fmt(f("a_handoff_restore_automounts_s"), " s", 2),
            fmt(f("a_handoff_restore_criu_s"), " s", 2))))
rows.append(("back to v1 (6.12)", "with handoff %s (connection kept: %s), kexec without %s" % (
    fmt(f("a_back_blackout_s"), " s"), r.get("a_back_connection_kept", "?"), fmt(f("b_back_blackout_s"), " s"))))
a, b, c = f("a_handoff_blackout_s"), f("b_kexec_blackout_s"), f("c_reboot_blackout_s")
if a and b and c:
    rows.append(("Blackout ratios", "handoff/kexec %.2f, handoff/reboot %.2f, kexec/reboot %.2f" % (a / b, a / c, b / c)))
print("\n%-32s %s" % ("dreamlink bench", "(one run, qemu TCG: ratios matter, not absolute times)"))
for k, v in rows:
    print("%-32s %s" % (k, v))
print("\nwritten: %s" % sys.argv[2])
PY
