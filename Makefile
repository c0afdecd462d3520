# dreamlink: the two commands a newcomer needs are `make demo` and `make check`.
# Everything runs in a Debian 13 (trixie) build environment: natively on a
# trixie host, in a cached devroot elsewhere (tools/env.sh).
SHELL := /bin/bash

.PHONY: all build check check-unit check-vm check-vm-full fuzz demo bench devroot clean

all: build

build:
	tools/env.sh bash -c '[ -e build/build.ninja ] || meson setup build; meson compile -C build'

# All tests: unit tests (plain and sanitized builds), then the core VM scenarios.
check: check-unit check-vm

check-unit:
	tools/env.sh tools/check-unit.sh

# Each fuzz target for FUZZ_SECONDS on its corpus (clang, libFuzzer, ASan+UBSan; see
# fuzz/README.md); FUZZ_TARGETS picks some. `make check` only replays the corpora.
FUZZ_SECONDS ?= 60
fuzz:
	tools/env.sh tools/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

check-vm:
	@if [ -x tests/vm/run.sh ]; then tests/vm/run.sh core; \
	else echo "check-vm: no VM scenarios yet (the image-tools issue adds the harness)"; fi

# The long fault matrix, run before resolving the issues that touch it.
check-vm-full:
	@if [ -x tests/vm/run.sh ]; then tests/vm/run.sh full; \
	else echo "check-vm-full: no VM scenarios yet"; fi

# A VM updated from release 1 (kernel 6.12) to 2 (7.3) while an SSH session
# and a TCP client carry on; INTERACTIVE=1 leaves a shell in it.
demo:
	INTERACTIVE=$(INTERACTIVE) tools/demo.sh

# Figures measured in one VM run: a table, and bench/results/*.json.
bench:
	bench/run.sh

devroot:
	tools/devroot.sh

clean:
	rm -rf build build-sanitize build-fuzz
