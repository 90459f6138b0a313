package image

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/nodeinit/nodeinit/operr"
)

// TestSlotWriteLoopDevice writes rootfs.squashfs into a loop device with
// direct I/O, at offset 0 and at a 1 MiB partition-like offset, on 512- and
// 4096-byte sector devices, then reads the device back and compares.
func TestSlotWriteLoopDevice(t *testing.T) {
	needRoot(t, "losetup")
	priv, keys := testKeys(t)
	dir, _ := testBundle(t, priv)
	want, _ := os.ReadFile(filepath.Join(dir, RootfsName))
	for _, tc := range []struct {
		name   string
		sector int
		offset int64
	}{
		{"512 at 0", 512, 0},
		{"512 at 1MiB", 512, 1 << 20},
		{"4096 at 1MiB", 4096, 1 << 20},
		{"4096 at 3MiB", 4096, 3 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := loopDevice(t, 32<<20, tc.sector)
			fillPattern(t, dev, 1<<20)
			b := mustOpen(t, openDir(t, dir), mustKeyring(t, keys), VerifyOptions{})
			var final Progress
			if err := b.WriteFile(context.Background(), RootfsName, dev, tc.offset, func(p Progress) { final = p }); err != nil {
				t.Fatalf("WriteFile(%s, offset %d): %v", dev, tc.offset, err)
			}
			if !final.Final || final.Done != int64(len(want)) {
				t.Errorf("final progress = %+v", final)
			}
			dropCaches(t, dev)
			if got := readAt(t, dev, tc.offset, len(want)); !bytes.Equal(got, want) {
				t.Fatal("read back from the loop device differs from rootfs.squashfs")
			}
			if tc.offset >= 1<<20 {
				if got := readAt(t, dev, 0, 1<<20); !bytes.Equal(got, pattern(1<<20)) {
					t.Fatal("bytes before the slot offset changed")
				}
			}
		})
	}
}

func TestSlotWriteRefusesTooSmallDevice(t *testing.T) {
	needRoot(t, "losetup")
	priv, keys := testKeys(t)
	dir, _ := testBundle(t, priv)
	dev := loopDevice(t, 8<<20, 0)
	fillPattern(t, dev, 1<<20)
	b := mustOpen(t, openDir(t, dir), mustKeyring(t, keys), VerifyOptions{})
	err := b.WriteFile(context.Background(), RootfsName, dev, 1<<20, nil)
	if ie := operr.Of(err); ie == nil || ie.Fix == "" {
		t.Fatalf("WriteFile onto a too-small device = %v, want an operator error with a fix", err)
	}
	if got := readAt(t, dev, 0, 1<<20); !bytes.Equal(got, pattern(1<<20)) {
		t.Fatal("the device was written although the image does not fit")
	}
}

func TestSlotWriteTamperedLoopDevice(t *testing.T) {
	needRoot(t, "losetup")
	priv, keys := testKeys(t)
	dir, _ := testBundle(t, priv)
	flipByte(t, filepath.Join(dir, RootfsName), 5<<20)
	dev := loopDevice(t, 32<<20, 4096)
	b := mustOpen(t, openDir(t, dir), mustKeyring(t, keys), VerifyOptions{})
	if err := b.WriteFile(context.Background(), RootfsName, dev, 1<<20, nil); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("WriteFile = %v, want ErrDigestMismatch", err)
	}
	dropCaches(t, dev)
	if got := readAt(t, dev, 1<<20, 4096); !bytes.Equal(got, make([]byte, 4096)) {
		t.Fatal("the rejected slot still starts with the image header")
	}
}

// dropCaches flushes the block device's page cache so reads hit the device.
func dropCaches(t *testing.T, dev string) {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := flushBufs(f); err != nil {
		t.Logf("BLKFLSBUF %s: %v", dev, err)
	}
}
