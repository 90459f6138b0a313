package disk

import (
	"context"
	"errors"
	"fmt"
	"time"

	nodedev "github.com/nodeinit/nodeinit/device"
)

// EraseMode is how a wipe erases a disk (nodeinit.erase=).
type EraseMode string

// Erase modes. Each clears every signature region (PlanWipe) in the end, so a
// disk is blank to blkid after any of them; they differ in what happens to
// the bytes between the signatures.
const (
	// EraseSignatures zeroes the signature regions only: the start and end of
	// the disk, of every partition, PV, LV and md array, the LVM and LUKS
	// metadata and the backup superblocks. Old file contents stay on the
	// disk, unreachable by any tool that reads metadata, but readable raw.
	EraseSignatures EraseMode = "signatures"
	// EraseDiscard discards every byte not kept (BLKDISCARD, BLKSECDISCARD
	// when secure), then zeroes the signature regions. Whether the discarded
	// bytes read back as zeroes is up to the device: the report says what it
	// guarantees. A device without discard gets the signature wipe only.
	EraseDiscard EraseMode = "discard"
	// EraseZero makes every byte not kept read back as zero (BLKZEROOUT).
	// It takes as long as writing the disk, unless the device offloads it.
	EraseZero EraseMode = "zero"
)

// ParseEraseMode accepts signatures, discard and zero ("" is signatures).
func ParseEraseMode(s string) (EraseMode, error) {
	switch m := EraseMode(s); m {
	case "":
		return EraseSignatures, nil
	case EraseSignatures, EraseDiscard, EraseZero:
		return m, nil
	}
	return "", fmt.Errorf("erase mode %q: want signatures, discard or zero", s)
}

// Describe says plainly what the mode does and does not guarantee, for the plan.
func (m EraseMode) Describe() string {
	switch m {
	case EraseDiscard:
		return "discard every block not kept, then zero all signatures; discarded blocks read back as zeroes only where the device guarantees it (the report says)"
	case EraseZero:
		return "write zeroes over every block not kept: nothing of the old contents can be read back through the device (flash may keep remapped copies)"
	}
	return "zero every signature, partition table, volume-manager and encryption header and backup superblock; old file data stays on the disk unreferenced"
}

// DiscardZeroer is what a device.Block may also implement to say whether
// discarded blocks read back as zeroes. how names the source (the ioctl or
// sysfs file) for the report.
type DiscardZeroer interface {
	DiscardZeroes() (zeroes bool, how string)
}

// zeroMethoder is implemented by our own Block to say how ZeroRange cleared.
type zeroMethoder interface{ ZeroMethod() string }

// eraseChunk is how much the first Discard or ZeroRange call covers, so that
// a cancel is seen and progress moves on a 1 TiB disk. A device that clears a
// chunk in under quickChunk (it offloads the work) gets doubled chunks, up to
// maxEraseChunk: per-call overhead then stops adding up over a terabyte.
const (
	eraseChunk    = 1 << 30
	maxEraseChunk = 64 << 30
	quickChunk    = 50 * time.Millisecond
)

// WipeBlock erases the open disk b (a device.Block) according to opts: everything PlanWipe
// finds (signatures, nested volumes, backup superblocks) is zeroed, and in
// discard or zero mode every byte not in opts.Keep is discarded or zeroed as
// well. It flushes at the end. It does not touch the kernel's partition list:
// the caller tells the kernel the disk has none (Machine.SetPartitions).
func WipeBlock(ctx context.Context, b nodedev.Block, opts WipeOptions) (WipeReport, error) {
	began := time.Now()
	rep := WipeReport{Device: b.Path()}
	mode := opts.Mode
	if mode == "" {
		mode = EraseSignatures
		if opts.Discard {
			mode = EraseDiscard
		}
	}
	if _, err := ParseEraseMode(string(mode)); err != nil {
		return rep, fmt.Errorf("wipe %s: %w", b.Path(), err)
	}
	rep.Mode = mode
	ss := b.LogicalSectorSize()
	if opts.SectorSize > 0 && b.IsBlockDevice() && opts.SectorSize != ss {
		return rep, fmt.Errorf("wipe %s: the disk has %d-byte sectors, not %d as asked: check which disk was meant", b.Path(), ss, opts.SectorSize)
	}
	if !b.IsBlockDevice() && opts.SectorSize > 0 {
		ss = opts.SectorSize
	}
	size := b.Size()
	var parts []Range
	for _, p := range opts.Partitions {
		parts = append(parts, Range{p.StartByte, p.SizeBytes})
	}
	plan, err := PlanWipe(b, size, ss, parts)
	if err != nil {
		return rep, fmt.Errorf("wipe %s: read what is on it: %w", b.Path(), err)
	}
	rep.Found, rep.Remote = plan.Found, plan.Remote
	for _, f := range plan.Found {
		if f.Kind == "partition" {
			rep.Partitions++
		}
	}
	var keep []extent
	for _, k := range opts.Keep {
		keep = append(keep, extent{k.StartByte, k.SizeBytes})
	}
	var regions []extent
	for _, r := range plan.Regions {
		regions = append(regions, extent{r.Start, r.Size})
	}
	regions = subtractKept(regions, keep)
	// What discard and zero cover: the whole disk, less what is kept.
	whole := subtractKept([]extent{{0, size}}, keep)

	var total, done int64
	progress := func(n int64) {
		done += n
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	for _, r := range regions {
		total += r.Size
	}
	switch mode {
	case EraseZero:
		total = 0
		for _, r := range whole {
			total += r.Size
		}
		if err := eachChunk(ctx, whole, func(off, n int64) error {
			if err := b.ZeroRange(off, n); err != nil {
				return fmt.Errorf("zero %d bytes at %d: %w", n, off, err)
			}
			progress(n)
			return nil
		}); err != nil {
			return rep, fmt.Errorf("wipe %s: %w; the disk is partly erased, run the wipe again", b.Path(), err)
		}
		rep.Erased = total
		regions = nil // inside what was just zeroed
	case EraseDiscard:
		rep.discard(ctx, b, whole, opts.Secure)
		if z, ok := b.(DiscardZeroer); ok {
			yes, how := z.DiscardZeroes()
			if yes {
				rep.DiscardZeroes = "guaranteed (" + how + ")"
			} else {
				rep.DiscardZeroes = "not guaranteed (" + how + ")"
			}
		} else {
			rep.DiscardZeroes = "not guaranteed (the device does not say)"
		}
	}
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("wipe %s: %w", b.Path(), err)
	}
	for _, r := range regions {
		if err := b.ZeroRange(r.Start, r.Size); err != nil {
			return rep, fmt.Errorf("wipe %s: zero %d bytes at %d: %w; signatures may remain, run the wipe again", b.Path(), r.Size, r.Start, err)
		}
		if mode != EraseZero {
			progress(r.Size)
		}
		rep.Regions++
		rep.Bytes += r.Size
	}
	rep.Method = "zeroout"
	if m, ok := b.(zeroMethoder); ok {
		rep.Method = m.ZeroMethod()
	}
	if err := b.Flush(); err != nil {
		return rep, fmt.Errorf("wipe %s: flush: %w", b.Path(), err)
	}
	rep.Duration = time.Since(began)
	return rep, nil
}

// discard discards the extents, secure when asked and possible, recording
// the outcome in the report. A failed discard is not a failed wipe: the
// signature regions are zeroed afterwards regardless.
func (rep *WipeReport) discard(ctx context.Context, b nodedev.Block, whole []extent, secure bool) {
	if !b.IsBlockDevice() {
		rep.DiscardError = "not a block device"
		return
	}
	method := "BLKDISCARD"
	if secure {
		method = "BLKSECDISCARD"
	}
	var erased int64
	err := eachChunk(ctx, whole, func(off, n int64) error {
		err := b.Discard(off, n, secure)
		if err != nil && secure && erased == 0 && errors.Is(err, nodedev.ErrUnsupported) {
			rep.DiscardError = "secure discard not supported; plain discard used"
			secure, method = false, "BLKDISCARD"
			err = b.Discard(off, n, false)
		}
		if err == nil {
			erased += n
		}
		return err
	})
	if err != nil {
		rep.DiscardError = fmt.Sprintf("%s after %d bytes: %v", method, erased, err)
		rep.Erased = erased
		return
	}
	rep.Discarded, rep.DiscardMethod, rep.Erased = true, method, erased
}

// eachChunk calls fn over the extents in pieces of eraseChunk, doubled after
// each call that took less than quickChunk (up to maxEraseChunk), stopping
// when ctx is done.
func eachChunk(ctx context.Context, es []extent, fn func(off, n int64) error) error {
	chunk := int64(eraseChunk)
	for _, e := range es {
		for off := e.Start; off < e.end(); {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := min(chunk, e.end()-off)
			began := time.Now()
			if err := fn(off, n); err != nil {
				return err
			}
			if n == chunk && time.Since(began) < quickChunk {
				chunk = min(2*chunk, maxEraseChunk)
			}
			off += n
		}
	}
	return nil
}
