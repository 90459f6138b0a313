package benchutil

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// FiguresEnv names the file the benches append their figures to, one JSON object
// per line, for bench/budget to judge. Unset, Record does nothing.
const FiguresEnv = "NODEINIT_BENCH_FIGURES"

// Figure is one measured number of a bench run.
type Figure struct {
	Name  string  `json:"name"`           // e.g. "boot.size_ratio"
	Value float64 `json:"value"`          // in Unit
	Unit  string  `json:"unit,omitempty"` // "x" for a ratio, "s", "MiB"
	Note  string  `json:"note,omitempty"` // what was compared, for the table
}

// Record appends f to the figures file named by FiguresEnv.
func Record(f Figure) error {
	path := os.Getenv(FiguresEnv)
	if path == "" {
		return nil
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("bench figures %s: %w", path, err)
	}
	if _, err := out.Write(append(b, '\n')); err != nil {
		out.Close()
		return fmt.Errorf("bench figures %s: %w", path, err)
	}
	return out.Close()
}

// ReadFigures reads a figures file; a name recorded twice keeps its last value.
func ReadFigures(path string) (map[string]Figure, error) {
	in, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	out := map[string]Figure{}
	sc := bufio.NewScanner(in)
	for line := 1; sc.Scan(); line++ {
		var f Figure
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out[f.Name] = f
	}
	return out, sc.Err()
}

// CPUKind names the CPU features that decide which chunk digest is faster: AVX-512
// (BLAKE3's widest code path) and SHA-NI (SHA-256 in hardware), from /proc/cpuinfo.
func CPUKind() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	flags := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
			for _, f := range strings.Fields(v) {
				flags[f] = true
			}
			break
		}
	}
	kind := "no AVX-512"
	if flags["avx512f"] {
		kind = "AVX-512"
	} else if flags["avx2"] {
		kind = "AVX2, no AVX-512"
	}
	if flags["sha_ni"] {
		return kind + ", SHA-NI"
	}
	return kind + ", no SHA-NI"
}
