package diskio

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nodeinit/nodeinit/disk"
)

// fakeKernel is partitionKernel with injectable failures.
type fakeKernel struct {
	parts               map[int]kernelPart
	rereadErr           error
	rereadParses        bool // BLKRRPART makes the kernel show want
	want                []kernelPart
	addErr, delErr      error
	adds, dels, rereads int
}

func (k *fakeKernel) Reread() error {
	k.rereads++
	if k.rereadErr != nil {
		return k.rereadErr
	}
	k.parts = map[int]kernelPart{}
	if k.rereadParses {
		for _, p := range k.want {
			k.parts[p.Number] = p
		}
	}
	return nil
}

func (k *fakeKernel) Partitions() ([]kernelPart, error) {
	var out []kernelPart
	for _, p := range k.parts {
		out = append(out, p)
	}
	return out, nil
}

func (k *fakeKernel) Add(p kernelPart) error {
	k.adds++
	if k.addErr != nil {
		return k.addErr
	}
	if _, ok := k.parts[p.Number]; ok {
		return syscall.EBUSY
	}
	k.parts[p.Number] = p
	return nil
}

func (k *fakeKernel) Delete(n int) error {
	k.dels++
	if k.delErr != nil {
		return k.delErr
	}
	delete(k.parts, n)
	return nil
}

func TestSyncKernelPartitions(t *testing.T) {
	l, err := disk.PlanLayout(64*gibibyte, 512, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want []kernelPart
	for _, p := range l.Partitions {
		want = append(want, kernelPart{p.Number, p.Start, p.Size})
	}
	old := map[int]kernelPart{1: {1, disk.MiB, 10 * disk.MiB}, 2: {2, 11 * disk.MiB, 10 * disk.MiB}}

	t.Run("kernel parses the table", func(t *testing.T) {
		k := &fakeKernel{parts: old, rereadParses: true, want: want}
		how, err := syncKernelPartitions(k, l)
		if err != nil || how != "reread" || k.adds != 0 {
			t.Fatalf("how %q err %v adds %d", how, err, k.adds)
		}
	})
	t.Run("kernel without a GPT parser gets BLKPG", func(t *testing.T) {
		k := &fakeKernel{parts: map[int]kernelPart{1: old[1]}, want: want}
		how, err := syncKernelPartitions(k, l)
		if err != nil || how != "blkpg" || k.adds != len(want) {
			t.Fatalf("how %q err %v adds %d", how, err, k.adds)
		}
	})
	t.Run("busy disk: BLKRRPART EBUSY, BLKPG replaces only what differs", func(t *testing.T) {
		parts := map[int]kernelPart{1: want[0], 2: {2, 600 * disk.MiB, disk.MiB}}
		k := &fakeKernel{parts: parts, rereadErr: syscall.EBUSY, want: want}
		how, err := syncKernelPartitions(k, l)
		if err != nil || how != "blkpg" || k.dels != 1 || k.adds != len(want)-1 {
			t.Fatalf("how %q err %v dels %d adds %d", how, err, k.dels, k.adds)
		}
	})
	t.Run("partition in use: deferred", func(t *testing.T) {
		k := &fakeKernel{parts: map[int]kernelPart{1: old[1]}, rereadErr: syscall.EBUSY, delErr: syscall.EBUSY, want: want}
		_, err := syncKernelPartitions(k, l)
		if !errors.Is(err, ErrRereadDeferred) {
			t.Fatalf("err %v, want ErrRereadDeferred", err)
		}
		for _, s := range []string{"BLKRRPART: device or resource busy", "remove partition 1", "retry, or reboot"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q lacks %q", err, s)
			}
		}
	})
	t.Run("empty layout removes everything", func(t *testing.T) {
		k := &fakeKernel{parts: map[int]kernelPart{1: old[1], 2: old[2]}, rereadErr: syscall.EBUSY}
		if _, err := syncKernelPartitions(k, disk.Layout{}); err != nil || len(k.parts) != 0 {
			t.Fatalf("err %v parts %v", err, k.parts)
		}
	})
}

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
		if _, err := findTool(n); err != nil {
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
