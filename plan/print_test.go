package plan

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/disk"
)

// TestWriteTextStatesTheMinimumDisk: the plan an operator reads says how
// large a disk its layout needs, the number disk.MinDiskBytes computes for
// the storage_vol given.
func TestWriteTextStatesTheMinimumDisk(t *testing.T) {
	f, err := loadFacts("../testdata/facts/one-nvme.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		line string
		vols map[string]int64
	}{
		{"install storage_init=/dev/nvme0n1 BOOTIF=link", nil},
		{"install storage_init=/dev/nvme0n1 BOOTIF=link storage_vol=3000,Data", map[string]int64{"data": 3000}},
	} {
		p, err := cmdline.Parse(c.line)
		if err != nil {
			t.Fatal(err)
		}
		bp, err := Plan(p, f)
		if err != nil {
			t.Fatalf("%s: %v", c.line, err)
		}
		var out strings.Builder
		if err := bp.WriteText(&out); err != nil {
			t.Fatal(err)
		}
		min, err := disk.MinDiskBytes(512, c.vols)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("\n          minimum disk size for this layout: %d MiB\n", min/disk.MiB); !strings.Contains(out.String(), want) {
			t.Errorf("%s: the plan lacks %q:\n%s", c.line, want, out.String())
		}
	}
}
