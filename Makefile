# nodeinit build, test and demo entry points. See README.md.
SHELL := /bin/bash
GO ?= go
BUILD := build
export NODEINIT_CACHE ?= /var/cache/nodeinit
FUZZTIME ?= 5s

.PHONY: all build test unit lint bench demo plans deps fetch clean crashtest fuzz

# deps runs once per machine: a stamp in the cache remembers it, so `make test`
# and `make demo` on a fresh Debian 12 install what they need by themselves.
DEPS_STAMP := $(NODEINIT_CACHE)/.deps-$(shell sha256sum .ci/deps.sh | cut -c1-12)

all: build

## deps: install the Debian packages the build and tests need (run as root)
deps: $(DEPS_STAMP)

$(DEPS_STAMP): .ci/deps.sh
	bash .ci/deps.sh
	mkdir -p $(NODEINIT_CACHE) && touch $@

# INITRAMFS_GOFLAGS build nodeinit-initramfs, the /init build of the same binary without
# the build-host commands; they are initramfs.GoBuildFlags (a test checks).
INITRAMFS_GOFLAGS := -tags=initramfs -trimpath '-ldflags=-s -w' -gcflags=all=-l -gcflags=runtime= -gcflags=github.com/klauspost/compress/...= -gcflags=lukechampine.com/blake3/...=

## build: build/nodeinit (the CLI) and build/nodeinit-initramfs (what the CLI's mkinitramfs puts in as /init)
build:
	mkdir -p $(BUILD)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BUILD)/nodeinit ./cmd/nodeinit
	CGO_ENABLED=0 $(GO) build $(INITRAMFS_GOFLAGS) -o $(BUILD)/nodeinit-initramfs ./cmd/nodeinit

## fetch: Debian kernel, modules, OVMF and systemd-boot into $(NODEINIT_CACHE)
fetch: $(DEPS_STAMP)
	$(GO) run ./qemu-tests/vm/cmd/fetch -cache $(NODEINIT_CACHE)

## test: every test: unit, root loop-device tests, a bounded fuzz run, and the QEMU tests
test: fetch
	$(GO) vet ./...
	@# Every package in one run, verbose into a log; the blackbox crash-point harness runs
	@# beside the QEMU tests (-p 2). The summary shows each package, every failure with its
	@# output, the tests of 5 s or more with their time, and the harness's counts per action;
	@# last, what each failed test reported (its own lines, without the consoles), so that the
	@# end of a failed run's output says why. A test's lines are those under its own go test
	@# headers (=== RUN/CONT/NAME), as the long QEMU tests run two at a time.
	@mkdir -p $(BUILD); $(GO) test -count=1 -timeout 70m -v ./... > $(BUILD)/test.log 2>&1; rc=$$?; \
		grep -E '^(--- FAIL|ok|FAIL|panic:|CRASHPOINTS|EIO |UNBOOTABLE)|^--- PASS: .* \(([0-9]{2,}|[5-9])\.[0-9]+s\)|crash points:|I/O errors:|open gap:' $(BUILD)/test.log; \
		failed=$$(sed -n 's/^--- FAIL: \([^ ]*\) .*/\1/p' $(BUILD)/test.log); \
		linesOf() { awk -v n="$$1" '/^=== (RUN|CONT|NAME|PAUSE) /{cur=$$3; next} /^--- (PASS|FAIL|SKIP): /{if ($$3==n) print; cur=""; next} cur==n' $(BUILD)/test.log; }; \
		for name in $$failed; do echo "=== output of $$name"; linesOf $$name | tail -400; done; \
		if [ $$rc -ne 0 ]; then tail -20 $(BUILD)/test.log; fi; \
		for name in $$failed; do echo "=== what $$name reported"; linesOf $$name | \
			grep -E '^ +[A-Za-z0-9_]+_test\.go:[0-9]+: ' | grep -vE '_test\.go:[0-9]+: (qemu|serial console):' | tail -25; done; exit $$rc
	$(MAKE) --no-print-directory fuzz

# fuzz: every fuzz target for a bounded time: the command line, the config writers and the
# accept-implies-seed property, the probe on crafted disks, LVM metadata, the manifest, the
# ledger and loader entry readers, and the modules.alias glob against path.Match.
FUZZ_TARGETS := FuzzParse:./cmdline FuzzAcceptImpliesSeed:./nodeconfig FuzzSeedWriters:./nodeconfig/spec \
	FuzzCheckConfigImpliesSeed:./plan FuzzProbeDevice:./disk FuzzParseVGMetadata:./disk FuzzPlanWipe:./disk \
	FuzzParseManifest:./image FuzzReadLedger:./boot FuzzEntries:./boot \
	FuzzGlob:./modalias FuzzGrubenv:./boot FuzzGrubConfig:./boot
fuzz:
	@set -o pipefail; for t in $(FUZZ_TARGETS); do name=$${t%%:*}; pkg=$${t#*:}; \
		echo "fuzz $$name $$pkg ($(FUZZTIME))"; \
		$(GO) test -count=1 -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg | tail -1 || exit 1; done

## crashtest: the crash-point harness with every combination at every crash point,
## and the re-run of the same command line on every state (make test samples them)
crashtest: $(DEPS_STAMP)
	NODEINIT_CRASH_FULL=1 $(GO) test -count=1 -timeout 120m -run 'TestCrash' -v ./blackbox | grep -E '^(=== RUN|--- |CRASHPOINTS|PASS|FAIL|ok)|crash points:'

## unit: the quick tests only (no QEMU)
unit:
	$(GO) test -count=1 -short ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## bench: our numbers next to dd, bmaptool, wipefs+sgdisk+mkfs.ext4, curl|dd from nginx and Debian's initramfs, with ratios;
## bench ends with issue 15's budget table (bench/budget): every figure, its target, PASS or FAIL
bench: export NODEINIT_BENCH_FIGURES = $(abspath $(BUILD))/bench-figures.jsonl
bench: fetch
	mkdir -p $(BUILD) && rm -f $(NODEINIT_BENCH_FIGURES)
	$(GO) run ./bench/image
	$(GO) run ./bench/disk
	$(GO) run ./bench/fleet
	$(GO) run ./bench/initrd
	$(GO) run ./bench/boot
	$(GO) run ./bench/install
	$(GO) run ./bench/budget

## demo: boot a VM from our initramfs, install the demo node image onto a blank NVMe disk,
## then boot the installed node from that disk (OVMF → systemd-boot → nodeinit → node OS)
demo: fetch
	$(GO) run ./qemu-tests/cmd/demo -out $(BUILD)/demo

## plans: the plan preview on sample command lines (no VM)
plans: build
	@for f in testdata/plans/install-nvme.txt testdata/plans/refuse-ambiguous.txt testdata/plans/upgrade.txt; do \
		facts=$$(sed -n 's/^# facts: //p' $$f); line=$$(grep -v '^#' $$f); \
		echo "== nodeinit plan --cmdline '$$line'"; \
		$(BUILD)/nodeinit plan --facts testdata/facts/$$facts --cmdline "$$line" || true; echo; \
	done

clean:
	rm -rf $(BUILD)
