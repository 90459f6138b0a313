package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/disk/diskio"
	"github.com/nodeinit/nodeinit/internal/benchutil"
)

// marker is written at a few offsets of every data partition before each
// erase row, so that the read-back after discard or zero has bytes to miss.
var marker = bytes.Repeat([]byte("nodeinit-bench-marker "), 2979) // ~64 KiB

// eraseRow is one erase mode of nodeinit's wipe next to the tool doing that job.
type eraseRow struct {
	mode         disk.EraseMode
	tool         string   // the tool's command, for the output
	toolArgs     []string // its arguments before the device
	zeroes       bool     // afterwards the whole device must read back as zeroes
	perPartition bool     // the tool runs on every partition, then the disk
}

// loopDev is a sparse loop device made for the bench.
type loopDev struct {
	img, dev string
	undo     func()
	size     int64
	layout   disk.Layout
	// readBack, when set, has check read back only what the seed wrote
	// (seeded) and samples, not every data extent: a zeroed file in a
	// container is a terabyte of written zeroes.
	readBack bool
	seeded   [][2]int64
}

func newLoop(dir string, size int64, sectorSize int, tag string) (*loopDev, error) {
	img := filepath.Join(dir, fmt.Sprintf("nodeinit-bench-erase-%s-%d.img", tag, os.Getpid()))
	f, err := os.Create(img)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		os.Remove(img)
		return nil, err
	}
	f.Close()
	out, err := exec.Command("losetup", "-f", "--show", "--sector-size", strconv.Itoa(sectorSize), img).CombinedOutput()
	if err != nil {
		os.Remove(img)
		return nil, fmt.Errorf("losetup: %v: %s", err, out)
	}
	// The default sizes need about 9 GiB; a small zero-mode device gets the
	// minimums of storage_vol and data takes the rest.
	var vols map[string]int64
	if size < 64<<30 {
		vols = map[string]int64{"root": 512, "logging": 256, "swap": 256}
	}
	l, err := disk.PlanLayout(size, sectorSize, vols)
	d := &loopDev{img: img, dev: strings.TrimSpace(string(out)), size: size, layout: l}
	d.undo = benchutil.AtInterrupt(func() {
		exec.Command("partx", "-d", d.dev).Run()
		exec.Command("losetup", "-d", d.dev).Run()
		os.Remove(d.img)
	})
	if err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

func (d *loopDev) close() { d.undo() }

// seed writes the layout, its filesystems and the markers; it checks that
// blkid finds them, so that a clean result afterwards means something.
func (d *loopDev) seed() error {
	if err := diskio.WriteTable(d.dev, d.layout); err != nil {
		return err
	}
	f, err := os.OpenFile(d.dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	for _, p := range d.layout.Partitions {
		label := p.Name
		if len(label) > 11 && p.FS == disk.FSVfat {
			label = label[:11]
		}
		if err := diskio.MakeFS(disk.PartitionPath(d.dev, p.Number), p.FS, label, disk.MkfsOptions{}); err != nil {
			f.Close()
			return err
		}
		// Markers in the middle and near the end, where no signature lives.
		for _, off := range []int64{p.Start + p.Size/2, p.End() - 8<<20} {
			if _, err := f.WriteAt(marker, off&^4095); err != nil {
				f.Close()
				return err
			}
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	f.Close()
	want := 1 // the GPT
	for _, p := range d.layout.Partitions {
		if p.FS != disk.FSRaw { // the root slots hold only the markers
			want++
		}
	}
	if n := leftovers(d.dev, d.layout); n != want {
		return fmt.Errorf("seed %s: blkid finds %d of the %d signatures written", d.dev, n, want)
	}
	if d.readBack {
		var err error
		if d.seeded, err = dataExtents(d.img); err != nil {
			return err
		}
	}
	return nil
}

// check says what is left after a row: the places blkid still finds a
// signature, and, when zeroes is set, the first non-zero byte of the device
// (-1 when it reads back as zeroes).
func (d *loopDev) check(zeroes bool) (int, int64, error) {
	exec.Command("partx", "-d", d.dev).Run()
	if err := sh("blockdev", "--flushbufs", d.dev); err != nil {
		return 0, 0, err
	}
	n := leftovers(d.dev, d.layout)
	if !zeroes {
		return n, -1, nil
	}
	if d.seeded != nil {
		// Every byte the seed wrote, and 1 MiB at 1024 places between.
		at, err := firstNonZeroIn(d.img, append(d.seeded, samples(d.size, 1024)...))
		return n, at, err
	}
	at, err := firstNonZero(d.img)
	return n, at, err
}

// firstNonZero reads the backing file's data extents (SEEK_DATA; holes read
// as zeroes) and returns the first non-zero byte's offset, or -1.
func firstNonZero(img string) (int64, error) {
	ranges, err := dataExtents(img)
	if err != nil {
		return 0, err
	}
	return firstNonZeroIn(img, ranges)
}

// dataExtents are the [start, end) ranges of img that hold data (SEEK_DATA and
// SEEK_HOLE): everything else reads as zeroes.
func dataExtents(img string) ([][2]int64, error) {
	f, err := os.Open(img)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	fd := int(f.Fd())
	var out [][2]int64
	for off := int64(0); off < st.Size(); {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if err != nil {
			return nil, err
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		out = append(out, [2]int64{data, hole})
		off = hole
	}
	return out, nil
}

// firstNonZeroIn reads the ranges of img and returns the first non-zero
// byte's offset, or -1.
func firstNonZeroIn(img string, ranges [][2]int64) (int64, error) {
	f, err := os.Open(img)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 4<<20)
	for _, r := range ranges {
		for at := r[0]; at < r[1]; at += int64(len(buf)) {
			n, err := f.ReadAt(buf[:min(int64(len(buf)), r[1]-at)], at)
			if err != nil && err != io.EOF {
				return 0, err
			}
			for i, b := range buf[:n] {
				if b != 0 {
					return at + int64(i), nil
				}
			}
		}
	}
	return -1, nil
}

// samples are count ranges of 1 MiB spread evenly over size bytes.
func samples(size int64, count int) [][2]int64 {
	out := make([][2]int64, 0, count)
	for i := range int64(count) {
		at := (size / int64(count) * i) &^ (1<<20 - 1)
		out = append(out, [2]int64{at, min(at+1<<20, size)})
	}
	return out
}

// allocated is how much of the sparse backing file holds blocks.
func allocated(img string) int64 {
	var st unix.Stat_t
	if unix.Stat(img, &st) != nil {
		return -1
	}
	return st.Blocks * 512
}

// benchErase times nodeinit's wipe in each erase mode next to wipefs -a,
// blkdiscard and blkdiscard -z, each on a freshly seeded device.
func benchErase(size, zeroSize int64, sectorSize int, dir string) error {
	big, err := newLoop(dir, size, sectorSize, "big")
	if err != nil {
		return err
	}
	defer big.close()
	// Zeroing a loop device makes the kernel allocate its backing file
	// (FALLOC_FL_ZERO_RANGE), for nodeinit and blkdiscard -z alike: past what
	// fits in dir, the zero device's file lives in a sparse ext4 container.
	zeroDir := dir
	if zeroSize > 64<<30 {
		c, err := newContainer(dir, zeroSize)
		if err != nil {
			return err
		}
		defer c.close()
		zeroDir = c.mnt
	}
	small, err := newLoop(zeroDir, zeroSize, sectorSize, "zero")
	if err != nil {
		return err
	}
	defer small.close()
	small.readBack = zeroDir != dir

	rows := []eraseRow{
		{mode: disk.EraseSignatures, tool: "wipefs -a", toolArgs: []string{"wipefs", "-a"}, perPartition: true},
		{mode: disk.EraseDiscard, tool: "blkdiscard", toolArgs: []string{"blkdiscard", "-f"}, zeroes: true},
		{mode: disk.EraseZero, tool: "blkdiscard -z", toolArgs: []string{"blkdiscard", "-f", "-z"}, zeroes: true},
	}
	fmt.Printf("\n== erase modes, %d-byte sectors: signatures and discard on the %d GiB sparse loop device; zero on a separate %d GiB sparse loop device\n",
		sectorSize, size>>30, zeroSize>>30)
	if zeroDir != dir {
		fmt.Printf("   (BLKZEROOUT on a loop device allocates its backing file: the zero device's file sits in a sparse ext4\n" +
			"    container, so that only the container's bitmaps and extent blocks reach this machine's disk; the read-back checks every byte\n" +
			"    the seed wrote and 1 MiB at 1024 places between, since the zeroed file is a terabyte of written zeroes)\n")
	}
	fmt.Printf("   (each tool's time includes blockdev --flushbufs: nodeinit's wipe ends with a flush)\n")
	fmt.Printf("%-11s %9s %12s %14s %12s %7s   %s\n", "mode", "device", "nodeinit", "tool", "tool time", "ratio", "after (nodeinit | tool)")
	for _, r := range rows {
		d := big
		if r.mode == disk.EraseZero {
			d = small
			if d.readBack {
				// The container's block groups are initialised on their first
				// allocation: one untimed zeroing first, so that neither row
				// pays for it.
				if err := sh("blkdiscard", "-f", "-z", d.dev); err != nil {
					return err
				}
			}
		}
		// nodeinit
		if err := d.seed(); err != nil {
			return err
		}
		t := time.Now()
		rep, err := diskio.Wipe(d.dev, disk.WipeOptions{Mode: r.mode})
		if err != nil {
			return fmt.Errorf("nodeinit wipe %s: %w", r.mode, err)
		}
		ours := time.Since(t)
		oursLeft, oursNZ, err := d.check(r.zeroes)
		if err != nil {
			return err
		}
		oursAlloc := allocated(d.img)
		// the tool
		if err := d.seed(); err != nil {
			return err
		}
		t = time.Now()
		if r.perPartition {
			for _, p := range d.layout.Partitions {
				if err := sh(r.toolArgs[0], append(r.toolArgs[1:], disk.PartitionPath(d.dev, p.Number))...); err != nil {
					return err
				}
			}
		}
		if err := sh(r.toolArgs[0], append(r.toolArgs[1:], d.dev)...); err != nil {
			return err
		}
		// nodeinit's wipe ends with a flush; the tool's time includes one too.
		if err := sh("blockdev", "--flushbufs", d.dev); err != nil {
			return err
		}
		theirs := time.Since(t)
		toolLeft, toolNZ, err := d.check(r.zeroes)
		if err != nil {
			return err
		}
		toolAlloc := allocated(d.img)

		fmt.Printf("%-11s %6d GiB %12s %14s %12s %6.2fx   %s | %s\n", r.mode, d.size>>30,
			ours.Round(time.Millisecond), r.tool, theirs.Round(time.Millisecond), ours.Seconds()/theirs.Seconds(),
			verdict(oursLeft, oursNZ, r.zeroes, oursAlloc), verdict(toolLeft, toolNZ, r.zeroes, toolAlloc))
		detail := fmt.Sprintf("%d regions, %d KiB by %s", rep.Regions, rep.Bytes>>10, rep.Method)
		if r.mode != disk.EraseSignatures {
			detail += fmt.Sprintf("; erased %d GiB", rep.Erased>>30)
		}
		if r.mode == disk.EraseDiscard {
			detail += fmt.Sprintf("; discarded=%v %s; zeroes: %s", rep.Discarded, rep.DiscardMethod, rep.DiscardZeroes)
		}
		fmt.Printf("%-11s %s\n", "", "nodeinit: "+detail)
		if oursLeft > 0 || oursNZ >= 0 {
			return fmt.Errorf("erase %s: nodeinit left %s", r.mode, verdict(oursLeft, oursNZ, r.zeroes, oursAlloc))
		}
	}
	return nil
}

// verdict says what a row left: blkid's finds, whether the device reads back
// as zeroes, and how much of the sparse backing file is still allocated.
func verdict(left int, nonZero int64, zeroes bool, alloc int64) string {
	s := fmt.Sprintf("blkid finds %d", left)
	if zeroes {
		if nonZero < 0 {
			s += ", reads back all zero"
		} else {
			s += fmt.Sprintf(", non-zero byte at %d", nonZero)
		}
	}
	return s + fmt.Sprintf(", %d MiB allocated", alloc>>20)
}

// container is a sparse ext4 filesystem image, loop-mounted under dir, with
// room for a zero-mode device's backing file. Allocating a terabyte in it
// writes only its block bitmaps and extent blocks to dir's filesystem (the
// zeroes themselves reach the container's loop device as write-zeroes, which
// become holes in the container's file).
type container struct {
	img, dev, mnt string
	undo          func()
}

func newContainer(dir string, room int64) (c *container, err error) {
	c = &container{img: filepath.Join(dir, fmt.Sprintf("nodeinit-bench-container-%d.img", os.Getpid()))}
	c.undo = benchutil.AtInterrupt(c.remove)
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	f, err := os.Create(c.img)
	if err != nil {
		return nil, err
	}
	err = f.Truncate(room + room/16 + 4<<30)
	f.Close()
	if err != nil {
		return nil, err
	}
	// Few inodes and no journal: mke2fs and the kernel have next to nothing
	// to write (noinit_itable keeps the lazy inode-table zeroing off).
	if err := sh("mke2fs", "-q", "-F", "-t", "ext4", "-N", "1024", "-m", "0", "-O", "^has_journal", "-E", "nodiscard", c.img); err != nil {
		return nil, err
	}
	out, err := exec.Command("losetup", "-f", "--show", c.img).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("losetup: %v: %s", err, out)
	}
	c.dev = strings.TrimSpace(string(out))
	if c.mnt, err = os.MkdirTemp(dir, "nodeinit-bench-container-"); err != nil {
		return nil, err
	}
	return c, sh("mount", "-o", "noinit_itable", c.dev, c.mnt)
}

func (c *container) close() { c.undo() }

func (c *container) remove() {
	if c.mnt != "" {
		exec.Command("umount", c.mnt).Run()
		os.Remove(c.mnt)
	}
	if c.dev != "" {
		exec.Command("losetup", "-d", c.dev).Run()
	}
	os.Remove(c.img)
}
