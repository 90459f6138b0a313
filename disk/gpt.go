package disk

import (
	"fmt"
	"unicode"
)

// PartitionPath returns the device path of partition n of disk, following the
// kernel's naming: a disk name ending in a digit takes a "p" (nvme0n1p1,
// mmcblk0p1, loop0p1), any other takes the number directly (sda1, vda1).
func PartitionPath(disk string, n int) string {
	if disk == "" {
		return ""
	}
	last := rune(disk[len(disk)-1])
	if unicode.IsDigit(last) {
		return fmt.Sprintf("%sp%d", disk, n)
	}
	return fmt.Sprintf("%s%d", disk, n)
}
