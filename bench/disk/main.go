// Command disk benchmarks partitioning, formatting and wiping a 1 TiB sparse
// loop device: nodeinit's disk package (WriteTable, MakeFS, Wipe) next to the
// usual tools doing the same job in the same run (sgdisk + partx, mkfs.vfat +
// mkfs.ext4 + mkswap, wipefs -a on every partition and the disk). It prints
// the times, the ratios, and whether blkid still finds anything after each
// wipe (wipefs -a on the disk alone leaves the filesystems inside the old
// partitions; Wipe does not).
//
// A second table times each erase mode (nodeinit.erase=signatures, discard,
// zero) of the same wipe next to the tool that does that job: wipefs -a on
// every partition and the disk, blkdiscard, and blkdiscard -z. Signatures and
// discard run on the 1 TiB device. Zero runs, for both, on a separate
// -zero-gib sparse loop device (1 TiB too): zeroing a loop device allocates
// its backing file, so past 64 GiB that file lives in a sparse ext4
// container, where a zeroed terabyte costs megabytes of this machine's disk.
// Before each row the device gets the layout with its filesystems and
// marker bytes; after it, blkid must find nothing and the discarded or
// zeroed device must read back as zeroes.
//
// Run as root: go run ./bench/disk [-size-gib 1024] [-zero-gib 1024] [-sectors 512,4096] [-dir /var/tmp]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/disk/diskio"
	"github.com/nodeinit/nodeinit/internal/benchutil"
)

func main() {
	sizeGiB := flag.Int64("size-gib", 1024, "size of the sparse loop device in GiB")
	sectors := flag.String("sectors", "512,4096", "logical sector sizes to run, comma separated")
	zeroGiB := flag.Int64("zero-gib", 1024, "size of the sparse loop device the zero-mode rows run on, in GiB")
	dir := flag.String("dir", "/var/tmp", "directory for the sparse backing file")
	flag.Parse()
	benchutil.UndoOnSignal("bench/disk", "loop devices, mounts and backing files")
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench/disk: needs root (loop devices); run: sudo go run ./bench/disk")
		os.Exit(2)
	}
	for _, s := range strings.Split(*sectors, ",") {
		ss, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			fail(fmt.Errorf("-sectors %q: %w", s, err))
		}
		if err := bench(*sizeGiB<<30, ss, *dir); err != nil {
			fail(err)
		}
		if err := benchErase(*sizeGiB<<30, *zeroGiB<<30, ss, *dir); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/disk:", err)
	os.Exit(1)
}

type result struct {
	partition, format, wipe time.Duration
	leftovers               int           // signatures blkid finds after the wipe
	discard                 time.Duration // nodeinit only: Wipe with Discard on the whole device
	discarded               bool
}

func bench(size int64, sectorSize int, dir string) error {
	img := filepath.Join(dir, fmt.Sprintf("nodeinit-bench-disk-%d.img", os.Getpid()))
	f, err := os.Create(img)
	if err != nil {
		return err
	}
	defer os.Remove(img)
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	f.Close()
	out, err := exec.Command("losetup", "-f", "--show", "--sector-size", strconv.Itoa(sectorSize), img).CombinedOutput()
	if err != nil {
		return fmt.Errorf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	defer benchutil.AtInterrupt(func() {
		exec.Command("partx", "-d", dev).Run()
		exec.Command("losetup", "-d", dev).Run()
		os.Remove(img)
	})()

	l, err := disk.PlanLayout(size, sectorSize, nil)
	if err != nil {
		return err
	}
	ours, err := runOurs(dev, l)
	if err != nil {
		return fmt.Errorf("nodeinit: %w", err)
	}
	theirs, err := runTools(dev, l)
	if err != nil {
		return fmt.Errorf("tools: %w", err)
	}

	fmt.Printf("\n== disk: %d GiB sparse loop device, %d-byte sectors, %d partitions (data %d GiB)\n",
		size>>30, sectorSize, len(l.Partitions), dataSize(l)>>30)
	fmt.Printf("%-10s %12s %28s %8s\n", "step", "nodeinit", "wipefs/sgdisk/mkfs.*", "ratio")
	row := func(name string, a, b time.Duration) {
		fmt.Printf("%-10s %12s %28s %7.2fx\n", name, a.Round(time.Millisecond), b.Round(time.Millisecond), a.Seconds()/b.Seconds())
	}
	row("partition", ours.partition, theirs.partition)
	row("format", ours.format, theirs.format)
	row("wipe", ours.wipe, theirs.wipe)
	row("total", ours.partition+ours.format+ours.wipe, theirs.partition+theirs.format+theirs.wipe)
	fmt.Printf("%-10s %12d %28d   (signatures blkid still finds after the wipe)\n", "leftovers", ours.leftovers, theirs.leftovers)
	fmt.Printf("%-10s %12s %28s   (nodeinit Wipe with Discard, whole device; discarded=%v)\n", "+discard", ours.discard.Round(time.Millisecond), "-", ours.discarded)
	return nil
}

func dataSize(l disk.Layout) int64 {
	p, _ := l.Find(disk.LabelData)
	return p.Size
}

func runOurs(dev string, l disk.Layout) (result, error) {
	var r result
	t := time.Now()
	if err := diskio.WriteTable(dev, l); err != nil {
		return r, err
	}
	r.partition = time.Since(t)
	t = time.Now()
	for _, p := range l.Partitions {
		label := p.Name
		if len(label) > 11 && p.FS == disk.FSVfat {
			label = label[:11]
		}
		ft := time.Now()
		if err := diskio.MakeFS(disk.PartitionPath(dev, p.Number), p.FS, label, disk.MkfsOptions{}); err != nil {
			return r, err
		}
		if os.Getenv("BENCH_VERBOSE") != "" {
			fmt.Printf("  mkfs %s (%s): %s\n", p.Name, p.FS, time.Since(ft))
		}
	}
	r.format = time.Since(t)
	t = time.Now()
	if _, err := diskio.Wipe(dev, disk.WipeOptions{}); err != nil {
		return r, err
	}
	r.wipe = time.Since(t)
	r.leftovers = leftovers(dev, l)
	// The whole-device discard is timed apart: the tools' run does none.
	t = time.Now()
	rep, err := diskio.Wipe(dev, disk.WipeOptions{Discard: true})
	if err != nil {
		return r, err
	}
	r.discard = time.Since(t)
	r.discarded = rep.Discarded
	return r, nil
}

func runTools(dev string, l disk.Layout) (result, error) {
	var r result
	args := []string{"-o"}
	for _, p := range l.Partitions {
		ss := int64(l.SectorSize)
		args = append(args,
			"-n", fmt.Sprintf("%d:%d:%d", p.Number, p.Start/ss, p.End()/ss-1),
			"-t", fmt.Sprintf("%d:%s", p.Number, p.TypeGUID),
			"-c", fmt.Sprintf("%d:%s", p.Number, p.Name))
	}
	t := time.Now()
	if err := sh("sgdisk", append(args, dev)...); err != nil {
		return r, err
	}
	if err := sh("partx", "-a", dev); err != nil {
		return r, err
	}
	r.partition = time.Since(t)
	t = time.Now()
	for _, p := range l.Partitions {
		part := disk.PartitionPath(dev, p.Number)
		var err error
		switch p.FS {
		case disk.FSVfat:
			err = sh("mkfs.vfat", "-F", "32", "-n", "NODE-ESP", part)
		case disk.FSExt4:
			err = sh("mkfs.ext4", "-F", "-q", "-L", p.Name, part)
		case disk.FSSwap:
			err = sh("mkswap", "-L", p.Name, part)
		}
		if err != nil {
			return r, err
		}
	}
	r.format = time.Since(t)
	t = time.Now()
	for _, p := range l.Partitions {
		if err := sh("wipefs", "-a", disk.PartitionPath(dev, p.Number)); err != nil {
			return r, err
		}
	}
	if err := sh("wipefs", "-a", dev); err != nil {
		return r, err
	}
	r.wipe = time.Since(t)
	r.leftovers = leftovers(dev, l)
	exec.Command("partx", "-d", dev).Run()
	return r, nil
}

// leftovers counts the places in the old layout where blkid still finds a signature.
func leftovers(dev string, l disk.Layout) int {
	n := 0
	if exec.Command("blkid", "-p", dev).Run() == nil {
		n++
	}
	for _, p := range l.Partitions {
		if exec.Command("blkid", "-p", "-O", strconv.FormatInt(p.Start, 10), "-S", strconv.FormatInt(p.Size, 10), dev).Run() == nil {
			n++
		}
	}
	return n
}

func sh(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}
