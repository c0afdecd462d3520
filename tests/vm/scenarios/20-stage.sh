# Staging over updaterd's D-Bus API, as a user drives it with updatectl:
# check sees v2; a stage cut short by a power cut leaves v1 running and no
# half-written slot bootable; a full ESP is refused before the slot is
# touched; a stage after both finishes; status shows slot
# B staged; tampered, expired and rolled-back manifests are refused; a
# one-package release downloads far less than a full tree.

server=$top/tests/vm/release-server.sh
port=$("$server" start "$RELEASE_ROOT")
trap '"$server" stop; vm_cleanup' EXIT

disk=$(vm_disk_from stage "$DISK_V1")
vm_start "$disk" || return 1

use_channel() { updaterd_use_test_server "$port" "$1"; }
status_field() { # JQ-ish path for python: prints a field of `updatectl status --json`
        guest "updatectl status --json" | python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1" 2>/dev/null
}

use_channel stable
out=$(guest updatectl check 2>&1)
expect_contains "updatectl check sees v2" "Update available: 2 (release 2, kernel $V2_KERNEL)" "$out"

# --- a power cut in the middle of a stage ---------------------------------
guest 'systemd-run --quiet --unit=stage-cut --collect updatectl stage'
cut_at=
for _ in $(seq 300); do
        step=$(status_field "['transaction']['step']" || true)
        bytes=$(status_field "['progress']['bytes']" || true)
        # Cut once the download is well under way, or the slot is being written.
        if [ "$step" = pulled ] || [ "${bytes:-0}" -gt 1000000 ]; then
                cut_at="step $step, $bytes bytes downloaded"
                break
        fi
        sleep 1
done
check "a stage was in progress when the power was cut ($cut_at)" test -n "$cut_at"
"$VM" kill >/dev/null
vm_start "$disk" || return 1
expect_eq "after the power cut, still running v1" "1|root-a" \
        "$(guest '. /etc/os-release; echo "$IMAGE_VERSION|$(lsblk -no PARTLABEL "$(findmnt -no SOURCE /)")"')"
check "after the power cut, slot B has no boot entry" guest '! ls /efi/loader/entries/dreamlink-b* 2>/dev/null'
b_state=$(status_field "['slots']['b']['state']")
check "after the power cut, slot B is not staged (it is ${b_state:-empty})" test "$b_state" != staged
expect_eq "after the power cut, the interrupted transaction is on record" "in-progress" \
        "$(status_field "['transaction']['outcome']")"

# --- an ESP too full for the new kernel: refused before the slot is touched --
guest 'avail=$(df --output=avail -B1M /efi | tail -n1); head -c $(( (avail - 1) * 1048576 )) /dev/zero >/efi/filler; sync'
out=$(guest 'updatectl stage' 2>&1); rc=$?
check "a stage onto a full ESP fails (exit $rc)" test "$rc" -ne 0
printf '  ..    %s\n' "$(tail -n1 <<<"$out")"
expect_match "it says how much to free on the ESP" \
        "The ESP /efi has [0-9.]+[KM]? free for slot b, the kernel and initrd of 2 need [0-9.]+M: free [0-9.]+M more on it" "$out"
expect_eq "the full ESP left slot B as it was" "${b_state:-empty}" "$(status_field "['slots']['b']['state']")"
check "… and without a boot entry" guest '! ls /efi/loader/entries/dreamlink-b* 2>/dev/null'
expect_eq "the refusal is on record" "failed" "$(status_field "['transaction']['outcome']")"
guest 'rm /efi/filler'

# --- stage again: finishes ---------------------------------------------------
t0=$SECONDS
out=$(guest 'updatectl stage' 2>&1); rc=$?
printf '  ..    stage took %d s\n' $((SECONDS - t0))
expect_eq "updatectl stage succeeds after the power cut and the full ESP" 0 "$rc"
expect_contains "it says what it staged" "Staged 2 (kernel $V2_KERNEL) into slot b" "$out"
expect_match "it shows progress" "[0-9]+%" "$out"
echo "$out" | grep -E '%|Staged' | tail -n 4 | sed 's/^/        /'
expect_eq "status: slot B staged with v2" "staged 2 $V2_COMMIT" \
        "$(status_field "['slots']['b']['state']") $(status_field "['slots']['b']['version']") $(status_field "['slots']['b']['commit']")"
expect_eq "status: the booted slot is still A, v1" "a 1" "$(status_field "['booted']['slot']") $(status_field "['booted']['version']")"
expect_match "slot B has a counted boot entry that is not the default" "dreamlink-b\+3\.conf.*default dreamlink-a\.conf" \
        "$(guest 'ls /efi/loader/entries/; grep ^default /efi/loader/loader.conf' | tr '\n' ' ')"
expect_eq "slot B holds v2's tree" "2" "$(guest 'mount -o ro /dev/disk/by-partlabel/root-b /mnt && . /mnt/etc/os-release && echo $IMAGE_VERSION; umount /mnt')"
out=$(guest updatectl check 2>&1)
expect_match "check now says v2 is staged" "^Up to date" "$out"

# --- bad manifests are refused, the staged slot stays -----------------------
refused() { # CHANNEL REGEX
        use_channel "$1"
        local out rc
        out=$(guest updatectl check 2>&1); rc=$?
        if [ "$rc" -ne 0 ] && [[ $out =~ $2 ]]; then pass "$1 manifest refused: $(echo "$out" | tail -n1)"
        else fail "$1 manifest: expected a refusal matching /$2/, got (exit $rc) $out"; fi
}
refused tampered "signature does not match"
refused expired "Manifest for 2 expired at"
refused rollback "refusing a rollback to 1"
expect_eq "the staged slot survived the refusals" "staged" "$(status_field "['slots']['b']['state']")"

# --- a one-package change downloads far less than the tree --------------------
use_channel onepkg
out=$(guest 'updatectl stage' 2>&1); rc=$?
expect_eq "staging v1.1 over the staged v2 succeeds" 0 "$rc"
pulled=$(guest "journalctl -u updaterd.service -o cat | grep -E '^Pulled 1\.1 ' | tail -n1")
downloaded=$(sed -n 's/.*: \([0-9]*\) bytes (.*/\1/p' <<<"$pulled")
tree=$(sed -n 's/.*the full tree is \([0-9]*\) bytes.*/\1/p' <<<"$pulled")
printf '  ..    one-package update: %s bytes downloaded; full tree %s bytes\n' "$downloaded" "$tree"
check "a one-package update downloads under a tenth of the full tree" test "${downloaded:-999999999999}" -lt $((${tree:-0} / 10))
expect_eq "slot B now holds 1.1" "staged 1.1" "$(status_field "['slots']['b']['state']") $(status_field "['slots']['b']['version']")"

"$VM" stop >/dev/null
