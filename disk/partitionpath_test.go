package disk

import "testing"

func TestPartitionPath(t *testing.T) {
	for disk, want := range map[string]string{
		"/dev/sda":     "/dev/sda3",
		"/dev/vda":     "/dev/vda3",
		"/dev/nvme0n1": "/dev/nvme0n1p3",
		"/dev/mmcblk0": "/dev/mmcblk0p3",
		"/dev/loop7":   "/dev/loop7p3",
		"/dev/md127":   "/dev/md127p3",
		"sdb":          "sdb3",
		"":             "",
	} {
		if got := PartitionPath(disk, 3); got != want {
			t.Errorf("PartitionPath(%q, 3) = %q, want %q", disk, got, want)
		}
	}
}
