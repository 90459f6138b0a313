package boot

import (
	"strings"
	"testing"
	"time"
)

// TestUninstallRecord: the record round-trips through the variable, replaces
// an older one, is absent on a machine that never had one, and a record too
// large for firmware is refused without writing.
func TestUninstallRecord(t *testing.T) {
	v := fakeVars{}
	if r, err := ReadUninstallRecord(v); r != nil || err != nil {
		t.Fatalf("no variable: %+v, %v; want nil, nil", r, err)
	}
	when := time.Date(2026, 12, 1, 17, 0, 0, 0, time.UTC)
	for _, mode := range []string{"signatures", "zero"} {
		r := UninstallRecord{Time: when, Disks: []ErasedDisk{{Disk: "/dev/nvme0n1 (S123)",
			EraseRecord: EraseRecord{Time: when, Mode: mode, ErasedBytes: 16 << 30, Bytes: 1 << 20}}}}
		if err := WriteUninstallRecord(v, r); err != nil {
			t.Fatal(err)
		}
		got, err := ReadUninstallRecord(v)
		if err != nil || got == nil || len(got.Disks) != 1 || got.Disks[0].Mode != mode || got.Disks[0].ErasedBytes != 16<<30 || !got.Time.Equal(when) {
			t.Fatalf("read back %+v, %v; want mode %s", got, err, mode)
		}
	}
	var many UninstallRecord
	for i := 0; i < 100; i++ {
		many.Disks = append(many.Disks, ErasedDisk{Disk: strings.Repeat("x", 30), EraseRecord: EraseRecord{Mode: "zero"}})
	}
	if err := WriteUninstallRecord(v, many); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("an oversized record: %v, want refused", err)
	}
	if got, _ := ReadUninstallRecord(v); got == nil || len(got.Disks) != 1 {
		t.Errorf("the refused record replaced the old one: %+v", got)
	}
	v[UninstallVar] = []byte("{not json")
	if _, err := ReadUninstallRecord(v); err == nil {
		t.Error("a corrupt variable was read without an error")
	}
}
