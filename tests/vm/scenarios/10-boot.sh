# The test disk boots as designed: v1 in slot A, the A/B partitions, systemd
# up, sshd answering, the release server reachable.

disk=$(vm_disk_from boot "$DISK_V1")
vm_start "$disk" || return 1

os=$(guest '. /etc/os-release; echo "$IMAGE_VERSION|$VERSION"')
expect_eq "running version" "1|dreamlink v1" "$os"
expect_eq "running kernel" "$V1_KERNEL" "$(guest uname -r)"

parts=$(guest 'lsblk -rno PARTLABEL,FSTYPE,PARTTYPE /dev/vda[1-4] | sort' | tr '\n' ' ')
expect_match "GPT has esp (vfat), root-a (ext4), root-b (empty), var (ext4)" \
        "^esp vfat c12a7328-f81f-11d2-ba4b-00a0c93ec93b root-a ext4 4f68bce3-e8cd-4db1-96e7-fbcaf984b709 root-b  4f68bce3-e8cd-4db1-96e7-fbcaf984b709 var ext4 4d21b016-b534-45c2-a9fb-5c16e091fd1d $" "$parts"
expect_eq "/ is slot A" "root-a" "$(guest 'lsblk -no PARTLABEL "$(findmnt -no SOURCE /)"')"
expect_eq "/var is the shared partition" "var" "$(guest 'lsblk -no PARTLABEL "$(findmnt -no SOURCE /var)"')"
expect_eq "a boot that is no handoff leaves /var to systemd" "0 active" \
        "$(guest 'echo $(journalctl -b 0 -k -t dreamlink-handoff -o cat | grep -c "^/var mounted") $(systemctl is-active var.mount)')"
expect_eq "ESP holds slot A's boot entry" "dreamlink-a.conf" "$(guest 'ls /efi/loader/entries/')"
expect_eq "the local repository holds the installed commit" "$V1_COMMIT" \
        "$(guest 'cat /var/lib/dreamlink/repo/refs/heads/dreamlink/slot/a')"
check "the release key is trusted by the OS" guest 'test -s /usr/lib/dreamlink/keys.d/test-release.pem'
expect_eq "updaterd (bus-activated) knows slot A: good, v1, release counter 1" "good 1 1 $V1_COMMIT" \
        "$(guest 'updatectl status --json' | python3 -c 'import json,sys; a=json.load(sys.stdin)["slots"]["a"]; print(a["state"], a["version"], a["counter"], a["commit"])')"

expect_eq "multi-user.target reached" "active" "$(guest systemctl is-active multi-user.target)"
state=$(guest 'systemctl is-system-running --wait')
expect_eq "system state" "running" "$state"
[ "$state" = running ] || guest 'systemctl --failed --no-legend' | sed 's/^/        /'
expect_eq "sshd is active" "active" "$(guest systemctl is-active ssh)"
check "sshd answers with a host key" bash -c "ssh-keyscan -T 10 -t ed25519 -p $("$VM" port 22) 127.0.0.1 2>/dev/null | grep -q ssh-ed25519"

port=$("$top/tests/vm/release-server.sh" start "$RELEASE_ROOT")
guest 'cat >/tmp/ca.pem' <"$("$top/tests/vm/release-server.sh" ca)"
expect_match "the guest fetches the channel manifest from the release server (HTTPS)" '"version":"2"' \
        "$(guest "curl -sf --cacert /tmp/ca.pem https://10.0.2.2:$port/channels/stable.json")"
"$top/tests/vm/release-server.sh" stop

printf '  ..    userspace: %s\n' "$(guest 'systemd-analyze | head -n1')"
"$VM" stop >/dev/null
