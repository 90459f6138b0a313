package kernelparts

import (
	"errors"
	"slices"
	"syscall"
	"testing"

	"github.com/nodeinit/nodeinit/device"
)

// fakeKernel is partitionKernel in memory; busy partitions refuse deletion.
type fakeKernel struct {
	parts     []device.Partition
	busy      map[int]bool
	rereadErr error
	calls     []string
}

func (k *fakeKernel) Reread() error { k.calls = append(k.calls, "reread"); return k.rereadErr }
func (k *fakeKernel) Partitions() ([]device.Partition, error) {
	return slices.Clone(k.parts), nil
}
func (k *fakeKernel) Add(p device.Partition) error {
	k.calls = append(k.calls, "add")
	k.parts = append(k.parts, p)
	return nil
}
func (k *fakeKernel) Delete(n int) error {
	k.calls = append(k.calls, "delete")
	if k.busy[n] {
		return syscall.EBUSY
	}
	k.parts = slices.DeleteFunc(k.parts, func(p device.Partition) bool { return p.Number == n })
	return nil
}

func TestSyncPartitions(t *testing.T) {
	p1 := device.Partition{Number: 1, StartByte: 1 << 20, SizeBytes: 8 << 20}
	p2 := device.Partition{Number: 2, StartByte: 9 << 20, SizeBytes: 8 << 20}
	p2big := device.Partition{Number: 2, StartByte: 9 << 20, SizeBytes: 16 << 20}
	old3 := device.Partition{Number: 3, StartByte: 40 << 20, SizeBytes: 1 << 20}

	k := &fakeKernel{parts: []device.Partition{p1, p2}}
	if how, err := syncPartitions(k, []device.Partition{p1, p2}); err != nil || how != "unchanged" || len(k.calls) != 0 {
		t.Errorf("same table: %q, %v, calls %v; want unchanged and no calls", how, err, k.calls)
	}

	k = &fakeKernel{parts: []device.Partition{p1, p2, old3}}
	how, err := syncPartitions(k, []device.Partition{p1, p2big})
	if err != nil || how != "blkpg" || !matches(k.parts, []device.Partition{p1, p2big}) {
		t.Errorf("resize 2, drop 3: %q, %v, kernel has %v", how, err, k.parts)
	}
	if want := []string{"delete", "delete", "add"}; !slices.Equal(k.calls, want) {
		t.Errorf("calls = %v, want %v (partition 1 untouched)", k.calls, want)
	}

	k = &fakeKernel{parts: []device.Partition{p1, p2}, busy: map[int]bool{2: true}, rereadErr: syscall.EBUSY}
	_, err = syncPartitions(k, []device.Partition{p1, p2big})
	if !errors.Is(err, device.ErrRereadDeferred) {
		t.Errorf("busy partition: err = %v, want ErrRereadDeferred", err)
	}
}
