package main

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nodeinit/nodeinit/initramfs"
	"github.com/nodeinit/nodeinit/internal/benchutil"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
)

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// reportParts prints the parts table.
func reportParts(w io.Writer, r partsReport) {
	var rawTotal, zTotal int64
	for _, p := range r.parts {
		rawTotal += p.raw
		zTotal += p.zstd
	}
	fmt.Fprintf(w, "  parts, each compressed on its own as the initramfs is (zstd -%d); shares of the parts' totals\n", initramfs.ZstdLevel)
	fmt.Fprintf(w, "  %-60s %7s %10s %6s %10s %6s\n", "part", "records", "raw bytes", "share", "zstd bytes", "share")
	for i, p := range r.parts {
		if p.records == 0 {
			fmt.Fprintf(w, "  %-60s %7s\n", partNames[i], "none")
			continue
		}
		fmt.Fprintf(w, "  %-60s %7d %10d %5.1f%% %10d %5.1f%%\n", partNames[i], p.records,
			p.raw, 100*float64(p.raw)/float64(rawTotal), p.zstd, 100*float64(p.zstd)/float64(zTotal))
	}
	fmt.Fprintf(w, "  %-60s %7d %10d %6s %10d\n", fmt.Sprintf("total (with the %d-byte trailer: the whole cpio)", r.trailer),
		r.records(), rawTotal+r.trailer, "", zTotal)
	links := fmt.Sprintf("  bbin/: %d u-root commands, all symlinks to bin/nodeinit, in its row with /init and /bin/sh (a link is only a cpio header)", r.rescueLinks)
	if len(r.rescueOther) > 0 {
		links = fmt.Sprintf("  bbin/: %d u-root commands link to bin/nodeinit; not links to it: %s", r.rescueLinks, strings.Join(r.rescueOther, " "))
	}
	fmt.Fprintln(w, links)
	verdict := "within it"
	if r.coreZstd > budgetP4b {
		verdict = fmt.Sprintf("over by %.2f MiB", mib(r.coreZstd-budgetP4b))
	}
	fmt.Fprintf(w, "  non-module, non-firmware part, compressed: %.2f MiB (issue 15's budget P4b: <= 4 MiB): %s\n", mib(r.coreZstd), verdict)
}

// reportFormats prints the compression table and the recommendation.
func reportFormats(w io.Writer, cs []compressed, unpacks [][]float64, skipped []string, debianInitrd string, debianSize int64, runs int) {
	fw := firmware()
	if fw == "" {
		fw = "SeaBIOS"
	}
	fmt.Fprintf(w, "  whole cpio per format: kernel unpack time under QEMU %s (1 vCPU, -cpu %s, firmware %s), %d interleaved boots each, median [min-max]\n",
		vm.Accel(), vm.CPU(), filepath.Base(fw), runs)
	var ours int64 // nodeinit's current format's size
	current := ""
	for _, c := range cs {
		if c.shipped {
			ours, current = c.size, c.name
		}
	}
	fmt.Fprintf(w, "  %-16s %12s %11s %9s %13s %8s %22s\n", "format", "bytes", "vs nodeinit", "vs Debian", "compress CPU", "(wall)", "unpack ms")
	var rows []row
	for i, c := range cs {
		vs := sortedCopy(unpacks[i])
		rows = append(rows, row{name: c.name, size: c.size, unpack: benchutil.Median(vs)})
		deb, vs0 := fmt.Sprintf("%.3f", float64(c.size)/float64(debianSize)), "-"
		if ours > 0 {
			vs0 = fmt.Sprintf("%.3f", float64(c.size)/float64(ours))
		}
		fmt.Fprintf(w, "  %-16s %12d %11s %9s %12.2fs %7.1fs %22s\n", c.name, c.size, vs0, deb,
			c.cpu.Seconds(), c.wall.Seconds(), fmt.Sprintf("%.0f [%.0f-%.0f]", 1000*benchutil.Median(vs), 1000*vs[0], 1000*vs[len(vs)-1]))
	}
	for _, s := range skipped {
		fmt.Fprintln(w, "  "+s)
	}
	fmt.Fprintf(w, "  vs Debian: size / %s (%d bytes, its stock initramfs-tools initrd)\n", debianInitrd, debianSize)
	fmt.Fprintln(w, "  compress CPU: the compressor's user+system time on one thread; its wall time is longer when the host is busy")
	fmt.Fprintln(w, "  every result decompressed by its tool to the cpio's SHA-256, and unpacked by the kernel without error")
	sizeCap := int64(budgetP4 * float64(debianSize))
	best, fastest, near := recommend(rows, withinUnpack, sizeCap)
	fmt.Fprintf(w, "  recommendation: %s (%.2f MiB): among the formats within budget P4 (<= %.2f MiB, half of Debian's), the smallest whose median unpack is within %.0f ms of the fastest of them (%s, %.0f ms); within: %s\n",
		best.name, mib(best.size), mib(sizeCap), 1000*withinUnpack, fastest.name, 1000*fastest.unpack, strings.Join(near, ", "))
	switch {
	case current == "":
		fmt.Fprintln(w, "  (nodeinit's own zstd was not measured: this kernel cannot unpack it)")
	case best.name == current:
		fmt.Fprintln(w, "  that is what nodeinit uses now")
	default:
		for _, r := range rows {
			if r.name == current {
				fmt.Fprintf(w, "  nodeinit uses %s now: %.2f MiB, median unpack %.0f ms\n", current, mib(r.size), 1000*r.unpack)
			}
		}
	}
}

// row is one format's size and median unpack seconds.
type row struct {
	name   string
	size   int64
	unpack float64
}

// recommend picks the format by the two budgets it weighs on: among the rows
// no larger than sizeCap (budget P4; all of them when none is), those whose
// unpack is within slack of the fastest of them, and of those the smallest.
// It returns that row, the fastest, and the names within slack. rows must not
// be empty.
func recommend(rows []row, slack float64, sizeCap int64) (best, fastest row, near []string) {
	var fit []row
	for _, r := range rows {
		if r.size <= sizeCap {
			fit = append(fit, r)
		}
	}
	if len(fit) > 0 {
		rows = fit
	}
	fastest = rows[0]
	for _, r := range rows[1:] {
		if r.unpack < fastest.unpack {
			fastest = r
		}
	}
	first := true
	for _, r := range rows {
		if r.unpack > fastest.unpack+slack {
			continue
		}
		near = append(near, r.name)
		if first || r.size < best.size {
			best, first = r, false
		}
	}
	return best, fastest, near
}

func sortedCopy(vs []float64) []float64 {
	out := append([]float64(nil), vs...)
	sort.Float64s(out)
	return out
}
