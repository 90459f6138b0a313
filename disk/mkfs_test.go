package disk

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

func TestSwapHeader(t *testing.T) {
	id := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	b, err := SwapHeader(1<<30, 4096, "node-swap", id)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 4096 || string(b[4096-10:]) != "SWAPSPACE2" {
		t.Fatalf("magic %q", b[4096-10:])
	}
	le := binary.LittleEndian
	if v, last, bad := le.Uint32(b[1024:]), le.Uint32(b[1028:]), le.Uint32(b[1032:]); v != 1 || last != (1<<30)/4096-1 || bad != 0 {
		t.Errorf("version %d last_page %d nr_badpages %d", v, last, bad)
	}
	if !bytes.Equal(b[1036:1052], id[:]) || string(bytes.TrimRight(b[1052:1068], "\x00")) != "node-swap" {
		t.Errorf("uuid/label % x / %q", b[1036:1052], b[1052:1068])
	}
	for _, c := range []struct {
		size  int64
		page  int
		label string
		want  string
	}{
		{9 * 4096, 4096, "x", "minimum of 10 pages"},
		{1 << 30, 4096, "a-label-longer-than-16", "longer than 16"},
		{1 << 30, 1000, "x", "page size"},
	} {
		if _, err := SwapHeader(c.size, c.page, c.label, id); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("SwapHeader(%d, %d, %q) error %v, want %q", c.size, c.page, c.label, err, c.want)
		}
	}
}
