# nodeinit build, test and demo entry points. See README.md.
SHELL := /bin/bash
GO ?= go
BUILD := build
export NODEINIT_CACHE ?= /var/cache/nodeinit
FUZZTIME ?= 30s

.PHONY: all build test unit fuzz lint bench demo deps fetch clean

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
	$(GO) run ./qemu-tests/vm/cmd/fetch

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
bench:
	$(GO) run ./bench/image
	$(GO) run ./bench/disk

## demo: plan previews on the sample command lines
demo: build
	@for f in testdata/plans/install-nvme.txt testdata/plans/refuse-ambiguous.txt testdata/plans/upgrade.txt; do \
		facts=$$(sed -n 's/^# facts: //p' $$f); line=$$(grep -v '^#' $$f); \
		echo "== nodeinit plan --cmdline '$$line'"; \
		$(BUILD)/nodeinit plan --facts testdata/facts/$$facts --cmdline "$$line" || true; echo; \
	done

clean:
	rm -rf $(BUILD)
