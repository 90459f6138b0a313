package disk

import (
	"bytes"
	"testing"
)

// FuzzProbeDevice probes crafted disk heads (GPT, MBR, superblocks, ISO): the
// probe returns signatures or an error, never panics, and never allocates by a
// size read from the disk (a crafted GPT entry size once made PID 1 allocate
// what the device held).
func FuzzProbeDevice(f *testing.F) {
	head := make([]byte, 64<<10)
	copy(head[512:], "EFI PART")
	f.Add(head, 512)
	mbr := make([]byte, 4096)
	mbr[510], mbr[511] = 0x55, 0xaa
	f.Add(mbr, 4096)
	f.Fuzz(func(t *testing.T, b []byte, sector int) {
		if sector != 512 && sector != 4096 {
			sector = 512
		}
		ProbeDevice(bytes.NewReader(b), int64(len(b))*1024, sector)
	})
}
