# nodeinit build, test and demo entry points. See README.md.
SHELL := /bin/bash
GO ?= go
BUILD := build
export NODEINIT_CACHE ?= /var/cache/nodeinit
FUZZTIME ?= 30s

.PHONY: all build test unit lint bench demo plans deps fetch clean

all: build

## deps: install the Debian packages the build and tests need (run as root)
deps:
	bash .ci/deps.sh

build:
	mkdir -p $(BUILD)
	CGO_ENABLED=0 $(GO) build -o $(BUILD)/nodeinit ./cmd/nodeinit
	CGO_ENABLED=0 $(GO) build -o $(BUILD)/init ./cmd/init

## fetch: Debian kernel, modules, OVMF and systemd-boot into $(NODEINIT_CACHE)
fetch:
	$(GO) run ./qemu-tests/vm/cmd/fetch -cache $(NODEINIT_CACHE)

## test: every test: unit, root loop-device tests, a bounded fuzz run, and the QEMU tests
test: fetch
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 40m ./...
	$(GO) test -count=1 -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./cmdline

## unit: the quick tests only (no QEMU)
unit:
	$(GO) test -count=1 -short ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## bench: our numbers next to dd, bmaptool, wipefs+sgdisk+mkfs.ext4 and Debian's initramfs, with ratios
bench: fetch
	$(GO) run ./bench/image
	$(GO) run ./bench/disk
	$(GO) run ./bench/boot

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
