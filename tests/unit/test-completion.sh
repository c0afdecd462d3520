#!/bin/bash
# The bash completion of updatectl, as bash calls it: COMP_WORDS/COMP_CWORD
# in, COMPREPLY out. $1: the configured completion file, $2: the CLI's name.
# The completion uses no bash-completion helpers (_init_completion, _filedir):
# plain bash runs it, as in the devroot, which has no bash-completion.
set -euo pipefail
. "$1"
name=$2
failed=0 passed=0

# complete_line WORDS...: completes the last word (may be empty).
complete_line() {
        COMP_WORDS=("$name" "$@")
        COMP_CWORD=$#
        COMPREPLY=()
        local fn
        fn=$(complete -p "$name" | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
        "$fn" "$name" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
        echo "${COMPREPLY[*]}"
}

expect() { # DESCRIPTION EXPECTED ACTUAL
        if [ "$2" = "$3" ]; then
                echo "ok    $1"
                passed=$((passed + 1))
        else
                echo "FAIL  $1: expected '$2', got '$3'"
                failed=$((failed + 1))
        fi
}

# expect_offers DESCRIPTION WORD COMPLETION: WORD is among the completions.
expect_offers() {
        expect "$1" "$2" "$(tr ' ' '\n' <<<"$3" | grep -Fx -- "$2" || true)"
}

expect "registered for $name" "yes" "$(complete -p "$name" >/dev/null 2>&1 && echo yes)"
expect "the verbs" "status check stage commit rollback cancel fleet" "$(complete_line '')"
expect_offers "'$name ' offers commit" commit "$(complete_line '')"
expect "verbs by prefix" "check commit cancel" "$(complete_line c)"
expect_offers "'$name commit --' offers --no-handoff" --no-handoff "$(complete_line commit --)"
expect_offers "'$name commit --' offers --reboot" --reboot "$(complete_line commit --)"
expect "commit's options" "--no-handoff" "$(complete_line commit --no)"
expect "rollback's options" "--no-handoff" "$(complete_line --quiet rollback --no-)"
expect "status --json" "--json" "$(complete_line status --js)"
expect "stage -" "-h --help --version -q --quiet" "$(complete_line stage -)"
expect "no commit options for stage" "" "$(complete_line stage --no)"
expect "check takes no options of its own" "--help --version" "$(complete_line check --)"
expect "options before the verb, as in updatectl(8)" "--no-handoff" "$(complete_line --no)"
expect "--json before the verb" "--json" "$(complete_line --js)"
expect "a verb after options" "commit" "$(complete_line -q --reboot com)"
expect "nothing after a verb" "" "$(complete_line commit '')"
expect "fleet's subcommands" "status release" "$(complete_line fleet '')"
expect "fleet release takes ids, not words" "" "$(complete_line fleet release '')"
# Counted with the cmocka suites (tools/check-unit.sh reads these lines).
printf '[  PASSED  ] %d test(s).\n' "$passed"
[ "$failed" -eq 0 ] || printf '[  FAILED  ] test-completion: %d test(s)\n' "$failed"
[ "$failed" -eq 0 ]
