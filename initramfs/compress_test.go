package initramfs

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestCompressZstd: Zstd runs the zstd program at -19 when PATH has it and
// falls back to klauspost's best level when not, ZstdFast is klauspost's
// default; all three decompress to the input, and each names itself.
func TestCompressZstd(t *testing.T) {
	input, err := os.ReadFile(nodeinitBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	input = input[:4<<20]
	check := func(c Compression, wantName string) int {
		t.Helper()
		out, name, err := CompressZstd(input, c)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if !strings.Contains(name, wantName) {
			t.Errorf("%s: compressor %q, want it to mention %q", c, name, wantName)
		}
		dec, err := zstd.NewReader(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer dec.Close()
		back, err := dec.DecodeAll(out, nil)
		if err != nil || !bytes.Equal(back, input) {
			t.Fatalf("%s: does not decompress to the input: %v", c, err)
		}
		return len(out)
	}
	if path, _ := zstdProgram(); path != "" {
		check(Zstd, "zstd -19")
	}
	saved := zstdProgram
	zstdProgram = func() (string, string) { return "", "" }
	defer func() { zstdProgram = saved }()
	best := check(Zstd, "apt-get install zstd")
	fast := check(ZstdFast, "default level")
	if best >= fast {
		t.Errorf("klauspost's best level (%d bytes) is not smaller than its default (%d)", best, fast)
	}
}
