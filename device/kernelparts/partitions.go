package kernelparts

import (
	"fmt"
	"sort"
	"strings"

	"github.com/nodeinit/nodeinit/device"
)

// partitionKernel is the kernel's partition view of one open disk: the
// syscall edge of SetPartitions, kept apart so its logic is tested without a
// kernel.
type partitionKernel interface {
	Reread() error                           // BLKRRPART
	Partitions() ([]device.Partition, error) // what sysfs lists now
	Add(p device.Partition) error            // BLKPG_ADD_PARTITION
	Delete(number int) error                 // BLKPG_DEL_PARTITION
}

// syncPartitions makes the kernel show exactly want. BLKPG comes first,
// touching only partitions that differ, because it works on kernels without
// a GPT parser (this build machine's) and while other partitions of the disk
// are in use; BLKRRPART is the fallback when BLKPG fails. The error wraps
// device.ErrRereadDeferred when the kernel could not be told.
func syncPartitions(k partitionKernel, want []device.Partition) (how string, err error) {
	have, err := k.Partitions()
	if err != nil {
		return "", fmt.Errorf("%w: list kernel partitions: %w", device.ErrRereadDeferred, err)
	}
	if matches(have, want) {
		return "unchanged", nil
	}
	byNumber := map[int]device.Partition{}
	for _, p := range want {
		byNumber[p.Number] = p
	}
	var problems []string
	present := map[int]bool{}
	for _, h := range have {
		if w, ok := byNumber[h.Number]; ok && w == h {
			present[h.Number] = true
			continue
		}
		if err := k.Delete(h.Number); err != nil {
			problems = append(problems, fmt.Sprintf("remove partition %d: %v", h.Number, err))
		}
	}
	for _, p := range sorted(want) {
		if present[p.Number] {
			continue
		}
		if err := k.Add(p); err != nil {
			problems = append(problems, fmt.Sprintf("add partition %d: %v", p.Number, err))
		}
	}
	if len(problems) == 0 {
		if have, err := k.Partitions(); err == nil && matches(have, want) {
			return "blkpg", nil
		}
		problems = append(problems, "the kernel still lists other partitions")
	}
	reread := k.Reread()
	if reread == nil {
		if have, err := k.Partitions(); err == nil && matches(have, want) {
			return "reread", nil
		}
	}
	rr := "did not show the table"
	if reread != nil {
		rr = reread.Error()
	}
	return "", fmt.Errorf("%w: BLKPG: %s; BLKRRPART: %s: close whatever holds a partition of the disk (mount, swap, LVM, md) and retry, or reboot",
		device.ErrRereadDeferred, strings.Join(problems, "; "), rr)
}

// matches reports whether the kernel lists exactly want.
func matches(have, want []device.Partition) bool {
	if len(have) != len(want) {
		return false
	}
	byNumber := map[int]device.Partition{}
	for _, h := range have {
		byNumber[h.Number] = h
	}
	for _, p := range want {
		if byNumber[p.Number] != p {
			return false
		}
	}
	return true
}

func sorted(parts []device.Partition) []device.Partition {
	out := append([]device.Partition(nil), parts...)
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out
}
