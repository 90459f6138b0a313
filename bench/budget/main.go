// Command budget prints issue 15's budget table from the figures the other benches
// of the same `make bench` run recorded (benchutil.Record, into the file that
// NODEINIT_BENCH_FIGURES names): each budget with its figure, target, the value
// measured and PASS or FAIL.
//
// A budget that is over prints FAIL and does not fail the run: the benches
// measure, they assert nothing. A figure that is missing means a bench did not
// run to the end, and that is an error.
//
// Run: go run ./bench/budget [FILE]
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nodeinit/nodeinit/internal/benchutil"
)

func main() {
	path := os.Getenv(benchutil.FiguresEnv)
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	if path == "" {
		fmt.Fprintf(os.Stderr, "bench/budget: give the figures file, or set %s\n", benchutil.FiguresEnv)
		os.Exit(2)
	}
	figs, err := benchutil.ReadFigures(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/budget:", err)
		os.Exit(1)
	}
	if missing := report(os.Stdout, figs); len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "bench/budget: no figure for %s: that bench did not finish\n", strings.Join(missing, ", "))
		os.Exit(1)
	}
}

// budget is one line of the table.
type budget struct {
	id, what, figure string
	limit            float64
	atLeast          bool // the figure must be >= limit (a throughput); else <= limit
	unit             string
}

// budgets are issue 15's, in its order. P5a ends where the issue says, at the
// exec of the root's init; the time to that init's first line, which adds the
// root's own start, is reported beside it. P5b's companion, kernel start to
// /init, is reported without a target, and so are the writes with one chunk digest only:
// W holds for the default bundle, whose writer checks whichever of its two
// digests is faster on the machine (on a CPU with AVX-512, BLAKE3; with AVX2
// and SHA-NI only, SHA-256), and the single-digest rows show what each would
// give alone.
var budgets = []budget{
	{"P4", "initramfs size, nodeinit/Debian (stock MODULES=most)", "boot.size_ratio", 0.5, false, "x"},
	{"P4b", "all but modules and firmware, compressed", "initrd.core", 4, false, "MiB"},
	{"P5a", "/init start to exec of root init, nodeinit/Debian", "boot.in_initramfs_ratio", 0.25, false, "x"},
	{"", "/init start to root init's first line, nodeinit/Debian", "boot.to_root_start_ratio", 0, false, "x"},
	{"P5b", "kernel start to root init, nodeinit/Debian", "boot.kernel_to_root_ratio", 0.6, false, "x"},
	{"", "kernel start to /init, nodeinit/Debian", "boot.kernel_to_init_ratio", 0, false, "x"},
	{"P6", "peak RSS of /init, 1 GiB install, 512 MiB VM", "install.peak_rss", 64, false, "MiB"},
	{"P7", "1 GiB install, kernel to reboot, nodeinit/dd", "install.ratio_to_dd", 1.3, false, "x"},
	{"W", "slot write, dd/nodeinit, default bundle", "image.write", 0.95, true, "x"},
	{"", "slot write, dd/nodeinit, BLAKE3 chunks only", "image.write_blake3", 0, true, "x"},
	{"", "slot write, dd/nodeinit, SHA-256 chunks only", "image.write_sha256", 0, true, "x"},
}

// report prints the table and returns the figures it did not find.
func report(w io.Writer, figs map[string]benchutil.Figure) (missing []string) {
	fmt.Fprintf(w, "budget: issue 15, from this run's figures\n")
	fmt.Fprintf(w, "  %-4s %-52s %12s %10s  %s\n", "", "figure", "target", "measured", "verdict")
	pass, fail := 0, 0
	for _, b := range budgets {
		f, ok := figs[b.figure]
		if !ok {
			missing = append(missing, b.figure)
			fmt.Fprintf(w, "  %-4s %-52s %12s %10s  MISSING\n", b.id, b.what, target(b), "-")
			continue
		}
		v := "-"
		if b.id != "" {
			ok := f.Value <= b.limit
			if b.atLeast {
				ok = f.Value >= b.limit
			}
			if v = "FAIL"; ok {
				v = "PASS"
				pass++
			} else {
				fail++
			}
		}
		line := fmt.Sprintf("  %-4s %-52s %12s %10s  %-7s %s", b.id, b.what, target(b), value(f.Value, b.unit), v, f.Note)
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	fmt.Fprintf(w, "  %d PASS, %d FAIL\n", pass, fail)
	return missing
}

func target(b budget) string {
	switch {
	case b.id == "":
		return "(report)"
	case b.atLeast:
		return ">= " + value(b.limit, b.unit)
	}
	return "<= " + value(b.limit, b.unit)
}

func value(v float64, unit string) string {
	if unit == "x" {
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.2f %s", v, unit)
}
