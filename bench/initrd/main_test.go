package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/u-root/mkuimage/cpio"
)

// console6_1 is the unpack part of a real boot of Debian's
// 6.1.0-57-cloud-amd64 under TCG with kernelArgs.
const console6_1 = `[    1.564963] PCI: CLS 0 bytes, default 64
[    1.573500] Trying to unpack rootfs image as initramfs...
[    2.506199] Freeing initrd memory: 10572K
[    2.512000] Initialise system trusted keyrings
`

func TestParseUnpack(t *testing.T) {
	for _, tc := range []struct {
		name, console string
		want          unpack
		err           string
	}{
		{name: "6.1 boot", console: console6_1, want: unpack{start: 1.5735, end: 2.506199, freedKiB: 10572}},
		{name: "carriage returns", console: strings.ReplaceAll(console6_1, "\n", "\r\n"), want: unpack{start: 1.5735, end: 2.506199, freedKiB: 10572}},
		{name: "no BLK_DEV_RAM", console: "[    0.5] Unpacking initramfs...\n[    0.75] Freeing initrd memory: 8K\n", want: unpack{start: 0.5, end: 0.75, freedKiB: 8}},
		{name: "failed", console: "[    1.5] Trying to unpack rootfs image as initramfs...\n[    1.6] Initramfs unpacking failed: junk at the end of compressed archive\n[    1.7] Freeing initrd memory: 8K\n",
			err: "Initramfs unpacking failed: junk at the end of compressed archive"},
		{name: "no initrd", console: "[    1.5] PCI: CLS 0 bytes\n[    1.7] Freeing initrd memory: 8K\n", err: "the kernel got no initrd"},
		{name: "cut off", console: "[    1.5] Trying to unpack rootfs image as initramfs...\n", err: "did not finish"},
		{name: "clock backwards", console: "[    1.5] Trying to unpack rootfs image as initramfs...\n[    1.4] Freeing initrd memory: 8K\n", err: "before unpacking began"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseUnpack(tc.console)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestUnpackDone(t *testing.T) {
	for line, want := range map[string]bool{
		"[    2.506199] Freeing initrd memory: 10572K":                     true,
		"[    1.6] Initramfs unpacking failed: invalid magic at start":     true,
		"[    1.573500] Trying to unpack rootfs image as initramfs...":     false,
		"[    0.248829] Freeing SMP alternatives memory: 36K":              false,
		"[    3.954602] calling  kernel_do_mounts_initrd_sysctls_init+0x0": false,
	} {
		if got := unpackDone(line); got != want {
			t.Errorf("unpackDone(%q) = %v, want %v", line, got, want)
		}
	}
}

func TestRecommend(t *testing.T) {
	rows := []row{
		{name: "zstd", size: 100, unpack: 0.800},
		{name: "xz", size: 70, unpack: 3.300},
		{name: "lz4", size: 120, unpack: 0.500},
		{name: "gzip", size: 98, unpack: 0.549},
	}
	const noCap = 1 << 40
	best, fastest, near := recommend(rows, 0.050, noCap)
	if best.name != "gzip" || fastest.name != "lz4" || strings.Join(near, ",") != "lz4,gzip" {
		t.Fatalf("best %s, fastest %s, near %v; want gzip, lz4, [lz4 gzip]", best.name, fastest.name, near)
	}
	// With a slack that takes everything in, the smallest wins.
	if best, _, _ := recommend(rows, 10, noCap); best.name != "xz" {
		t.Fatalf("with 10 s of slack best is %s, want xz", best.name)
	}
	// The fastest is always a candidate, even when it is the largest.
	if best, _, _ := recommend(rows, 0, noCap); best.name != "lz4" {
		t.Fatalf("with no slack best is %s, want lz4", best.name)
	}
	// The size budget leaves lz4 and zstd out: of gzip and xz, gzip unpacks
	// faster by more than the slack.
	best, fastest, near = recommend(rows, 0.050, 99)
	if best.name != "gzip" || fastest.name != "gzip" || strings.Join(near, ",") != "gzip" {
		t.Fatalf("capped at 99: best %s, fastest %s, near %v; want gzip, gzip, [gzip]", best.name, fastest.name, near)
	}
	// When nothing fits the budget, every row competes.
	if best, _, _ := recommend(rows, 0.050, 10); best.name != "gzip" {
		t.Fatalf("capped at 10: best %s, want gzip", best.name)
	}
}

func TestParseKernelConfig(t *testing.T) {
	c := parseKernelConfig([]byte("# comment\nCONFIG_RD_GZIP=y\n# CONFIG_RD_XZ is not set\nCONFIG_RD_LZ4=y\nCONFIG_BLK_DEV_RAM=m\n"))
	if c["CONFIG_RD_GZIP"] != "y" || c["CONFIG_RD_LZ4"] != "y" || c["CONFIG_BLK_DEV_RAM"] != "m" {
		t.Fatalf("config %v", c)
	}
	if v, ok := c["CONFIG_RD_XZ"]; ok {
		t.Fatalf("CONFIG_RD_XZ is not set, parsed as %q", v)
	}
}

func TestGuestSMP(t *testing.T) {
	got, err := guestSMP([]string{"-accel", "tcg", "-cpu", "max,-erms,-fsrm", "-smp", "2", "-m", "512"})
	if err != nil || strings.Join(got, " ") != "-accel tcg -cpu max,-erms,-fsrm -smp 1 -m 512" {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := guestSMP([]string{"-accel", "tcg", "-cpu", "max"}); err == nil {
		t.Fatal("no -smp: want an error")
	}
}

// testArchive is a small nodeinit-shaped cpio.
func testArchive(t *testing.T) []byte {
	t.Helper()
	recs := []cpio.Record{
		cpio.Directory("bbin", 0o755),
		cpio.Symlink("bbin/ls", "../bin/nodeinit"),
		cpio.Symlink("bbin/odd", "/usr/bin/odd"),
		cpio.Directory("bin", 0o755),
		cpio.StaticFile("bin/nodeinit", strings.Repeat("nodeinit ", 1000), 0o755),
		cpio.Symlink("bin/sh", "nodeinit"),
		cpio.StaticFile("etc/nodeinit/keys/test.pub", "untrusted comment: k\nRWQ\n", 0o644),
		cpio.Symlink("init", "bin/nodeinit"),
		cpio.Directory("lib", 0o755),
		cpio.StaticFile("lib/firmware/x.bin", "fw", 0o644),
		cpio.StaticFile("lib/modules/6.1/kernel/a.ko", strings.Repeat("module ", 500), 0o644),
		cpio.StaticFile("lib/x86_64-linux-gnu/libc.so.6", "libc", 0o755),
		cpio.Symlink("lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
		cpio.StaticFile("usr/sbin/tool", "a program given with --files", 0o755),
		cpio.StaticFile("usr/sbin/other", "other", 0o755),
	}
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	for _, r := range recs {
		if err := w.WriteRecord(cpio.MakeReproducible(r)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestMeasureParts(t *testing.T) {
	raw := testArchive(t)
	r, err := measureParts(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := [numParts]int{partNodeinit: 4, partModules: 1, partFirmware: 1, partHostFiles: 4, partEtc: 1, partRest: 4}
	var sum int64
	for p, n := range want {
		if r.parts[p].records != n {
			t.Errorf("%s: %d records, want %d", partNames[p], r.parts[p].records, n)
		}
		if n > 0 && (r.parts[p].raw == 0 || r.parts[p].zstd == 0) {
			t.Errorf("%s: sizes %+v", partNames[p], r.parts[p])
		}
		sum += r.parts[p].raw
	}
	if sum+r.trailer != int64(len(raw)) {
		t.Errorf("parts %d + trailer %d bytes, the archive is %d", sum, r.trailer, len(raw))
	}
	if r.rescueLinks != 1 || strings.Join(r.rescueOther, " ") != "bbin/odd" {
		t.Errorf("bbin: %d links to nodeinit, others %v; want 1 and [bbin/odd]", r.rescueLinks, r.rescueOther)
	}
	if r.coreZstd == 0 {
		t.Error("no compressed size for the non-module, non-firmware part")
	}
}

func TestMeasurePartsRefusesForeignArchive(t *testing.T) {
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	if err := w.WriteRecord(cpio.StaticFile("init", "#!/bin/sh\n", 0o755)); err != nil {
		t.Fatal(err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	if _, err := measureParts(buf.Bytes()); err == nil || !strings.Contains(err.Error(), "not a nodeinit initramfs") {
		t.Fatalf("error %v, want one saying it is not a nodeinit initramfs", err)
	}
}
