#!/bin/bash
# The bash completion of updatectl, as bash calls it: COMP_WORDS/COMP_CWORD
# in, COMPREPLY out. $1: the configured completion file, $2: the CLI's name.
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

expect "registered for $name" "yes" "$(complete -p "$name" >/dev/null 2>&1 && echo yes)"
expect "the verbs" "status check stage commit rollback cancel" "$(complete_line '')"
expect "verbs by prefix" "check commit cancel" "$(complete_line c)"
expect "commit's options" "--no-handoff" "$(complete_line commit --no)"
expect "commit --reboot" "--reboot" "$(complete_line commit --reb)"
expect "rollback's options" "--no-handoff" "$(complete_line --quiet rollback --no-)"
expect "status --json" "--json" "$(complete_line status --js)"
expect "no commit options for stage" "" "$(complete_line stage --no)"
expect "nothing after a verb" "" "$(complete_line commit '')"
# Counted with the cmocka suites (tools/check-unit.sh reads these lines).
printf '[  PASSED  ] %d test(s).\n' "$passed"
[ "$failed" -eq 0 ] || printf '[  FAILED  ] test-completion: %d test(s)\n' "$failed"
[ "$failed" -eq 0 ]
