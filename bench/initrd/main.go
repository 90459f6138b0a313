// Command initrd measures the initramfs nodeinit builds for Debian's cloud
// kernel: what its bytes are, and which compression it should use.
//
// The initramfs is the one the QEMU tests boot (qemu-tests/fixture: the
// nodeinit binary, the default kernel modules, the test key, mke2fs). The
// bench decompresses it and reads its cpio records in Go, then
//
//   - splits the records into parts (the nodeinit binary with the links to
//     it, kernel modules, firmware, mke2fs with its libraries, etc/, the
//     rest) and compresses each part on its own with nodeinit's zstd level,
//     so the table says what each part costs in the shipped file;
//   - compresses the whole cpio with nodeinit's zstd, the zstd CLI at -19,
//     gzip -9, xz -9 and lz4 -l -9, those the kernel's config
//     (CONFIG_RD_*) can unpack, and records the size and the compressor's
//     host CPU time; every result is decompressed again and compared with
//     the cpio;
//   - boots the Debian kernel directly on each result under QEMU (TCG unless
//     NODEINIT_KVM=1), interleaved, and reads the kernel's unpack time from
//     its own printk timestamps (see kernelArgs), ending each boot right after;
//   - recommends the smallest format whose median unpack time is within
//     50 ms of the fastest's.
//
// Run: go run ./bench/initrd [-runs 3] [-v] [-keep]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/initramfs"
	"github.com/nodeinit/nodeinit/internal/benchutil"
	"github.com/nodeinit/nodeinit/qemu-tests/fixture"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
	"golang.org/x/sys/unix"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/initrd:", err)
		os.Exit(1)
	}
}

// withinUnpack is how much slower than the fastest a format may unpack and
// still be recommended for its size.
const withinUnpack = 0.050

// budgetP4b is issue 15's budget P4b for the initramfs without modules and
// firmware, compressed.
const budgetP4b = 4 << 20

// budgetP4 is issue 15's budget P4: the initramfs at most this share of
// Debian's stock initrd. The recommendation weighs it (recommend).
const budgetP4 = 0.5

func run() error {
	runs := flag.Int("runs", 3, "boots of each format (the median is reported)")
	cache := flag.String("cache", vm.DefaultCacheDir(), "Debian kernel cache (make fetch)")
	keep := flag.Bool("keep", false, "keep the work directory")
	verbose := flag.Bool("v", false, "stream the serial consoles")
	flag.Parse()
	if *runs < 1 {
		return fmt.Errorf("-runs %d: give at least 1", *runs)
	}
	start := time.Now()
	if err := needTools(); err != nil {
		return err
	}
	ctx := context.Background()
	deb, err := benchutil.Debian(ctx, *cache)
	if err != nil {
		return err
	}
	use, skipped, err := supported(formats, deb)
	if err != nil {
		return err
	}

	benchutil.UndoOnSignal("bench/initrd", "QEMU, the compressors and the work directory")
	work, err := os.MkdirTemp("", "nodeinit-bench-initrd-")
	if err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	if *keep {
		fmt.Println("work directory:", work)
	} else {
		defer benchutil.AtInterrupt(func() { os.RemoveAll(work) })()
	}
	// What the build makes in temporary directories (initramfs.Build's, the go
	// build's) goes inside work too, so an interrupt removes it with work.
	if err := os.Setenv("TMPDIR", work); err != nil {
		return fmt.Errorf("TMPDIR: %w", err)
	}
	logw := io.Discard
	if *verbose {
		logw = os.Stderr
	}

	in, err := buildInitramfs(ctx, *cache, work, logw)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench/initrd: initramfs built in %s; compressing\n", time.Since(start).Round(time.Second))
	// The parts are measured in this process while the compressors run.
	partsDone := make(chan error, 1)
	var parts partsReport
	go func() {
		var err error
		parts, err = measureParts(in.raw)
		partsDone <- err
	}()
	results, err := compressAll(ctx, use, in.cpioFile, work)
	if perr := <-partsDone; err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	if err := in.checkShipped(results); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench/initrd: compressed and checked at %s; booting each %d times\n", time.Since(start).Round(time.Second), *runs)
	unpacks, err := measureUnpacks(ctx, deb.Vmlinuz, results, *runs, logw)
	if err != nil {
		return err
	}

	w := os.Stdout
	fmt.Fprintf(w, "initrd: nodeinit's initramfs for %s (as qemu-tests/fixture builds it): %d records, cpio %d bytes, shipped %d bytes (zstd -%d)\n",
		deb.KernelVersion, parts.records(), len(in.raw), len(in.shipped), initramfs.ZstdLevel)
	reportParts(w, parts)
	debFile, err := benchutil.StockInitrd(ctx, *cache, deb.KernelVersion, logw)
	if err != nil {
		return err
	}
	st, err := os.Stat(debFile)
	if err != nil {
		return err
	}
	debSize := st.Size()
	reportFormats(w, results, unpacks, skipped, debFile, debSize, *runs)
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		// TCG runs the guest on host CPU: a busy host stretches every unpack alike.
		fmt.Fprintf(w, "  host load average at the end: %s", la)
	}
	fmt.Fprintf(w, "  total bench time %s (CPU: this process %s, its children %s)\n", time.Since(start).Round(100*time.Millisecond),
		cpuTime(unix.RUSAGE_SELF), cpuTime(unix.RUSAGE_CHILDREN))
	return benchutil.Record(benchutil.Figure{Name: "initrd.core", Value: mib(parts.coreZstd), Unit: "MiB",
		Note: "everything but modules and firmware, zstd"})
}

// supported returns the formats the kernel's config can unpack, and a line
// for each it cannot.
func supported(fs []format, deb vm.Artifacts) (use []format, skipped []string, err error) {
	configFile := filepath.Join(deb.CacheDir, "root", "boot", "config-"+deb.KernelVersion)
	kconfig, err := kernelConfig(configFile)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range fs {
		if v := kconfig[f.kconfig]; v != "y" {
			if v == "" {
				v = "not set"
			}
			skipped = append(skipped, fmt.Sprintf("%s: skipped, %s is %s in %s: this kernel cannot unpack it", f.name, f.kconfig, v, filepath.Base(configFile)))
			continue
		}
		use = append(use, f)
	}
	if len(use) == 0 {
		return nil, nil, fmt.Errorf("%s can unpack none of the formats: %s", configFile, strings.Join(skipped, "; "))
	}
	return use, skipped, nil
}

// builtInitramfs is nodeinit's initramfs as the QEMU tests build it.
type builtInitramfs struct {
	shipped  []byte // the compressed file initramfs.Build wrote
	raw      []byte // its cpio
	cpioFile string // raw, written out for the compressors
}

// buildInitramfs builds the initramfs with qemu-tests/fixture (the options
// the QEMU tests use: the fixture's nodeinit binary, the Debian kernel's
// default modules, the test key) and decompresses it.
func buildInitramfs(ctx context.Context, cache, work string, log io.Writer) (builtInitramfs, error) {
	var in builtInitramfs
	fx, err := fixture.Build(ctx, fixture.Options{CacheDir: cache, OutDir: filepath.Join(work, "fixture"), Log: log})
	if err != nil {
		return in, fmt.Errorf("build the initramfs: %w", err)
	}
	if in.shipped, err = os.ReadFile(fx.Initramfs); err != nil {
		return in, fmt.Errorf("read the initramfs: %w", err)
	}
	if in.raw, err = zstdDecompress(in.shipped); err != nil {
		return in, fmt.Errorf("decompress %s: %w", fx.Initramfs, err)
	}
	in.cpioFile = filepath.Join(work, "initrd.cpio")
	if err := os.WriteFile(in.cpioFile, in.raw, 0o644); err != nil {
		return in, fmt.Errorf("write the cpio: %w", err)
	}
	return in, nil
}

// checkShipped proves that nodeinit's row is the file initramfs.Build
// ships: compressed here as that row says, the cpio must give the same bytes.
func (in builtInitramfs) checkShipped(results []compressed) error {
	for _, c := range results {
		if !c.shipped {
			continue
		}
		ours, err := os.ReadFile(c.file)
		if err != nil {
			return fmt.Errorf("read %s: %w", c.file, err)
		}
		if !bytes.Equal(ours, in.shipped) {
			return fmt.Errorf("%s: compressing the cpio as this row does gives %d bytes, not the shipped initrd.img's %d: "+
				"initramfs.Build no longer compresses that way (update bench/initrd/compress.go)",
				c.name, len(ours), len(in.shipped))
		}
	}
	return nil
}

// measureUnpacks boots the kernel on each result runs times, interleaved
// (every round boots each format once), and returns the unpack seconds.
func measureUnpacks(ctx context.Context, kernel string, results []compressed, runs int, log io.Writer) ([][]float64, error) {
	unpacks := make([][]float64, len(results))
	for r := 0; r < runs; r++ {
		var line []string
		for i, c := range results {
			u, err := boot(ctx, kernel, c.file, log)
			if err != nil {
				return nil, fmt.Errorf("%s, boot %d: %w", c.name, r+1, err)
			}
			unpacks[i] = append(unpacks[i], u.seconds())
			line = append(line, fmt.Sprintf("%s %.0f ms", c.name, 1000*u.seconds()))
		}
		fmt.Fprintf(os.Stderr, "bench/initrd: round %d: %s\n", r+1, strings.Join(line, ", "))
	}
	return unpacks, nil
}

// needTools checks that QEMU and every format's tools are installed.
func needTools() error {
	if err := needTool([]string{"qemu-system-x86_64"}); err != nil {
		return err
	}
	for _, f := range formats {
		for _, argv := range [][]string{f.compress, f.decompress} {
			if err := needTool(argv); err != nil {
				return err
			}
		}
	}
	return nil
}

// cpuTime is the user and system time of this process or of its waited-for
// children (QEMU, the compressors, the go build of fixture.Build), rounded.
func cpuTime(who int) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Round(100 * time.Millisecond)
}

// needTool checks that argv's program is installed.
func needTool(argv []string) error {
	if len(argv) == 0 {
		return nil
	}
	if _, err := exec.LookPath(argv[0]); err != nil {
		pkg := tools[argv[0]]
		if pkg == "" {
			pkg = "qemu-system-x86"
		}
		return fmt.Errorf("needs %s: %w (apt-get install %s, or make deps)", argv[0], err, pkg)
	}
	return nil
}
