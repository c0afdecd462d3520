# suite: full
# Power cuts at five points of a commit: while the services are being
# dumped, after the dump before the kexec, in the new boot before the
# restores are reported, during a restore, and after the health check
# before the slot is blessed. Each time the machine is powered on again and
# must come up on a good slot with every service running and the
# transaction closed. The cut is the guest's own sysrq poweroff, injected by
# the test hook of lib/fault.h (nothing is synced, as when the plug is
# pulled); qemu ends with it and the test powers the machine on again.

export VM_FWD="6379"
server=$top/tests/vm/release-server.sh
port=$("$server" start "$RELEASE_ROOT")
trap '"$server" stop; vm_cleanup' EXIT

disk=$(vm_disk_from power-cut "$DISK_V1")
vm_start "$disk" || return 1
updaterd_use_test_server "$port" stable "$(printf '[Health]\nRequiredUnits=redis-server.service nginx.service')"
redis_handoff_setup
guest 'printf "[Handoff]\nUnit=nginx.service\n" >/etc/dreamlink/handoff.d/nginx.conf && sync'

slot_state() { # SLOT: its state in slots.json
        guest "python3 -c 'import json; print(json.load(open(\"/var/lib/dreamlink/slots.json\"))[\"slots\"][\"$1\"][\"state\"])'"
}

for point in dumping dumped booted restoring healthy; do
        printf '  --    power cut: %s\n' "$point"
        if [ "$(slot_state b)" != staged ]; then
                guest 'updatectl stage >/dev/null' || fail "$point: staging v2 again"
        fi
        guest "echo $point >/var/lib/dreamlink/test-power-cut && sync"
        guest updatectl commit >/dev/null 2>&1 || true
        for _ in $(seq 300); do "$VM" status >/dev/null 2>&1 || break; sleep 2; done
        if "$VM" status >/dev/null 2>&1; then
                fail "$point: the power cut happened"
                "$VM" kill >/dev/null
        fi
        vm_start "$disk" || return 1
        wait_boot_check
        booted=$(guest 'lsblk -no PARTLABEL "$(findmnt -no SOURCE /)"' | sed 's/root-//')
        expect_eq "$point: back on a good slot (slot $booted)" good "$(slot_state "$booted")"
        expect_eq "$point: redis-server and nginx run" "active active" \
                "$(guest 'systemctl is-active redis-server.service nginx.service' | tr '\n' ' ' | sed 's/ $//')"
        expect_match "$point: the transaction is closed" '"outcome" : "(failed|succeeded)"' \
                "$(guest cat /var/lib/dreamlink/transaction.json)"
        check "$point: the hook fired once (its file is gone)" guest '! test -e /var/lib/dreamlink/test-power-cut'
        check "$point: no checkpoint images or network locks are left" \
                guest 'test -z "$(ls -A /var/lib/dreamlink/handoff 2>/dev/null)" && ! nft list tables | grep -q CRIU-'
        expect_eq "$point: the default entry is the booted slot" "default dreamlink-$booted.conf" \
                "$(guest 'grep ^default /efi/loader/loader.conf' | tr -s ' ')"
        # Back to v1 for the next cut (a cut after the bless would leave v2 running).
        if [ "$booted" = b ]; then
                old_boot=$(guest cat /proc/sys/kernel/random/boot_id)
                guest updatectl rollback >/dev/null 2>&1 || true
                wait_new_boot "$old_boot" >/dev/null && wait_boot_check
        fi
done
"$VM" stop >/dev/null
