package diskio

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/disk"
)

func TestFixProtectiveMBR(t *testing.T) {
	mbr := make([]byte, 512)
	mbr[446+4] = 0xee
	sectors := uint64(3<<40) / 512
	binary.LittleEndian.PutUint32(mbr[446+12:], uint32(sectors-1)) // truncated
	if !fixProtectiveMBR(mbr, (3<<40)/512) || binary.LittleEndian.Uint32(mbr[446+12:]) != 0xffffffff {
		t.Error("3 TiB at 512-byte sectors not clamped to 0xffffffff")
	}
	small := make([]byte, 512)
	small[446+4] = 0xee
	binary.LittleEndian.PutUint32(small[446+12:], 1000)
	if fixProtectiveMBR(small, 1001) || binary.LittleEndian.Uint32(small[446+12:]) != 1000 {
		t.Error("small disk changed")
	}
}

// sparseImage makes a sparse file of size bytes in a temp dir.
func dwSparse(t *testing.T, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

func dwNeedTool(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s not installed", n)
		}
	}
}

// run runs a command and returns its combined output; it fails the test on error.
func dwRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestWriteTableImage writes the layout into an image file (no root needed)
// and asks sgdisk for the verdict, then reads it back.
func TestWriteTableImage(t *testing.T) {
	dwNeedTool(t, "sgdisk")
	for _, size := range []int64{20 * gibibyte, 3 << 40} { // 3 TiB: protective MBR past 32 bits
		img := dwSparse(t, size)
		l, err := disk.PlanLayout(size, 512, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteTable(img, l); err != nil {
			t.Fatal(err)
		}
		out := dwRun(t, "sgdisk", "-v", img)
		if !strings.Contains(out, "No problems found") {
			t.Errorf("sgdisk -v on %d gibibyte image:\n%s", size/gibibyte, out)
		}
		parts, err := ReadGPT(img, 512)
		if err != nil {
			t.Fatal(err)
		}
		if d := l.Compare(parts); !d.Matches() {
			t.Errorf("read back differs: %s", d)
		}
		info := dwRun(t, "sgdisk", "-i", "1", img)
		if !strings.Contains(strings.ToLower(info), disk.TypeESP) || !strings.Contains(info, "'NODE-ESP'") {
			t.Errorf("sgdisk -i 1:\n%s", info)
		}
	}
}

func TestWriteTableRefusesOtherDisk(t *testing.T) {
	img := dwSparse(t, 20*gibibyte)
	l, err := disk.PlanLayout(30*gibibyte, 512, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = WriteTable(img, l)
	if err == nil || !strings.Contains(err.Error(), "plan again for this disk") {
		t.Fatalf("err %v", err)
	}
	if parts, err := ReadGPT(img, 512); err == nil && len(parts) > 0 {
		t.Errorf("a table was written: %+v", parts)
	}
}
