package disk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	nodedev "github.com/nodeinit/nodeinit/device"
)

// fakeBlock is a device.Block over a memDisk that records discards and
// zeroings, and can refuse secure discard or discard altogether.
type fakeBlock struct {
	*memDisk
	block        bool
	noSecure     bool
	noDiscard    bool
	zeroes       bool
	discards     []string
	zeroed       int64
	flushed      bool
	failZeroAt   int64
	cancelOnZero context.CancelFunc
}

func (b *fakeBlock) Size() int64             { return b.size }
func (b *fakeBlock) LogicalSectorSize() int  { return 512 }
func (b *fakeBlock) PhysicalSectorSize() int { return 4096 }
func (b *fakeBlock) IsBlockDevice() bool     { return b.block }
func (b *fakeBlock) Path() string            { return "/dev/fake" }
func (b *fakeBlock) Close() error            { return nil }
func (b *fakeBlock) Flush() error            { b.flushed = true; return nil }
func (b *fakeBlock) DiscardZeroes() (bool, string) {
	return b.zeroes, "fake"
}
func (b *fakeBlock) Discard(off, n int64, secure bool) error {
	if b.noDiscard || (secure && b.noSecure) {
		return nodedev.ErrUnsupported
	}
	b.discards = append(b.discards, fmt.Sprintf("%v:%d+%d", secure, off, n))
	b.zero(off, n)
	return nil
}
func (b *fakeBlock) ZeroRange(off, n int64) error {
	if b.failZeroAt > 0 && off <= b.failZeroAt && b.failZeroAt < off+n {
		return errors.New("EIO")
	}
	if b.cancelOnZero != nil {
		b.cancelOnZero()
	}
	b.zero(off, n)
	b.zeroed += n
	return nil
}

// newFakeOVirt is a 4 GiB disk with an MBR data partition at 1 GiB (kept in
// some tests) and a PV at 2 GiB holding HostVG, with marker bytes in the
// middle of both (old file data) and at an LV's start.
func newFakeOVirt() *fakeBlock {
	d := newMemDisk(4 << 30)
	mbr := make([]byte, 512)
	put := func(i int, typ byte, start, n uint32) {
		e := mbr[446+16*i:]
		e[4] = typ
		e[8], e[9], e[10], e[11] = byte(start), byte(start>>8), byte(start>>16), byte(start>>24)
		e[12], e[13], e[14], e[15] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	}
	put(0, 0x83, 1<<21, 1<<21) // 1 GiB at 1 GiB
	put(1, 0x8e, 2<<21, 1<<21) // PV: 1 GiB at 2 GiB
	mbr[510], mbr[511] = 0x55, 0xaa
	d.WriteAt(mbr, 0)
	writeTestPV(d, 2<<30, testVGText, false)
	d.WriteAt([]byte("kept-data"), 1<<30+300<<20)
	d.WriteAt([]byte("old-file"), 2<<30+500<<20)
	d.WriteAt([]byte("LVSTART"), 2<<30+1<<20+10*4<<20+100) // Config LV start
	return &fakeBlock{memDisk: d, block: true}
}

func (b *fakeBlock) has(off int64, s string) bool {
	buf := make([]byte, len(s))
	b.ReadAt(buf, off)
	return string(buf) == s
}

func TestWipeBlockModes(t *testing.T) {
	keep := []Partition{{Number: 1, StartByte: 1 << 30, SizeBytes: 1 << 30}}
	for _, c := range []struct {
		mode       EraseMode
		keep       bool
		secure     bool
		noSecure   bool
		oldFile    bool // the unreferenced old file bytes survive
		wantErased int64
		discards   int
	}{
		{mode: EraseSignatures, oldFile: true},
		{mode: EraseZero, wantErased: 4 << 30},
		{mode: EraseZero, keep: true, wantErased: 3 << 30},
		{mode: EraseDiscard, wantErased: 4 << 30, discards: 4},
		{mode: EraseDiscard, keep: true, secure: true, wantErased: 3 << 30, discards: 3},
		{mode: EraseDiscard, secure: true, noSecure: true, wantErased: 4 << 30, discards: 4},
	} {
		t.Run(fmt.Sprintf("%s/keep=%v/secure=%v/nosecure=%v", c.mode, c.keep, c.secure, c.noSecure), func(t *testing.T) {
			b := newFakeOVirt()
			b.noSecure = c.noSecure
			opts := WipeOptions{Mode: c.mode, Secure: c.secure}
			if c.keep {
				opts.Keep = keep
			}
			var last, calls, total int64
			opts.Progress = func(done, tot int64) {
				if done < last || done > tot || (total != 0 && tot != total) {
					t.Errorf("progress %d of %d after %d of %d", done, tot, last, total)
				}
				last, total = done, tot
				calls++
			}
			rep, err := WipeBlock(context.Background(), b, opts)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Mode != c.mode || !b.flushed {
				t.Errorf("mode %q flushed %v", rep.Mode, b.flushed)
			}
			if last != total || calls == 0 {
				t.Errorf("progress ended at %d of %d after %d calls", last, total, calls)
			}
			if b.has(2<<30+1<<20+10*4<<20+100, "LVSTART") {
				t.Error("the LV start survived")
			}
			if got := b.has(2<<30+500<<20, "old-file"); got != c.oldFile {
				t.Errorf("old file bytes present %v, want %v", got, c.oldFile)
			}
			if want := c.keep || c.oldFile; want != b.has(1<<30+300<<20, "kept-data") {
				t.Errorf("data partition bytes present %v, want %v", !want, want)
			}
			// Chunks start at eraseChunk and double on a device as quick as the
			// fake: never more calls than 1 GiB pieces, never fewer than one.
			if rep.Erased != c.wantErased || len(b.discards) > c.discards || (c.discards > 0 && len(b.discards) == 0) {
				t.Errorf("erased %d (discards %v), want %d in at most %d calls", rep.Erased, b.discards, c.wantErased, c.discards)
			}
			if c.mode == EraseDiscard {
				if c.noSecure && (rep.DiscardMethod != "BLKDISCARD" || !strings.Contains(rep.DiscardError, "secure discard not supported")) {
					t.Errorf("secure fallback: %q %q", rep.DiscardMethod, rep.DiscardError)
				}
				if c.secure && !c.noSecure && (rep.DiscardMethod != "BLKSECDISCARD" || !strings.HasPrefix(b.discards[0], "true:")) {
					t.Errorf("secure discard: %q %v", rep.DiscardMethod, b.discards)
				}
				if rep.DiscardZeroes != "not guaranteed (fake)" || rep.Regions == 0 {
					t.Errorf("discard-zeroes %q; regions %d (signatures are zeroed after a discard)", rep.DiscardZeroes, rep.Regions)
				}
			}
			if c.mode == EraseSignatures && (rep.Regions == 0 || b.zeroed != rep.Bytes || rep.Bytes > 200<<20) {
				t.Errorf("signatures: %d regions, %d bytes, %d zeroed", rep.Regions, rep.Bytes, b.zeroed)
			}
		})
	}
}

func TestWipeBlockRefusals(t *testing.T) {
	b := newFakeOVirt()
	if _, err := WipeBlock(context.Background(), b, WipeOptions{SectorSize: 4096}); err == nil || !strings.Contains(err.Error(), "check which disk was meant") {
		t.Errorf("sector size mismatch: %v", err)
	}
	if _, err := WipeBlock(context.Background(), b, WipeOptions{Mode: "shred"}); err == nil {
		t.Error("unknown mode accepted")
	}
	b.failZeroAt = 2<<30 + 1<<20 + 10*4<<20
	if _, err := WipeBlock(context.Background(), b, WipeOptions{}); err == nil || !strings.Contains(err.Error(), "run the wipe again") {
		t.Errorf("EIO: %v", err)
	}
	b = newFakeOVirt()
	ctx, cancel := context.WithCancel(context.Background())
	b.cancelOnZero = cancel
	if _, err := WipeBlock(ctx, b, WipeOptions{Mode: EraseZero}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancel: %v", err)
	}
	if b.zeroed != eraseChunk {
		t.Errorf("zeroed %d after cancel, want one chunk", b.zeroed)
	}
	b = newFakeOVirt()
	b.block = false
	rep, err := WipeBlock(context.Background(), b, WipeOptions{Mode: EraseDiscard})
	if err != nil || rep.Discarded || rep.DiscardError != "not a block device" || rep.Regions == 0 {
		t.Errorf("discard on an image: %+v %v", rep, err)
	}
}

func TestParseEraseMode(t *testing.T) {
	for in, want := range map[string]EraseMode{"": EraseSignatures, "signatures": EraseSignatures, "discard": EraseDiscard, "zero": EraseZero} {
		if got, err := ParseEraseMode(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
		if want.Describe() == "" {
			t.Errorf("%s has no description", want)
		}
	}
	if _, err := ParseEraseMode("secure"); err == nil {
		t.Error("secure accepted")
	}
}
