package mkext4

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestKernelMountsAndFills: this machine's kernel mounts a filesystem Format
// made through a loop device, takes 600 files in a directory (enough for the
// kernel to turn it into an htree) and 64 MiB of data, and after the unmount
// e2fsck -fn still calls it clean, with the counts the kernel left.
func TestKernelMountsAndFills(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a loop device and a mount")
	}
	needTools(t, "losetup", "e2fsck")
	img := sparse(t, 1<<30)
	format(t, img, 1<<30, Options{Label: "node-data", UUID: testUUID})
	out, err := exec.Command("losetup", "-f", "--show", img).Output()
	if err != nil {
		t.Fatalf("losetup: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	dir := t.TempDir()
	if err := unix.Mount(dev, dir, "ext4", 0, ""); err != nil {
		t.Fatalf("mount %s: %v", dev, err)
	}
	mounted := true
	t.Cleanup(func() {
		if mounted {
			unix.Unmount(dir, 0)
		}
	})
	if _, err := os.Stat(filepath.Join(dir, "lost+found")); err != nil {
		t.Errorf("lost+found: %v", err)
	}
	many := filepath.Join(dir, "many")
	if err := os.Mkdir(many, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 600; i++ {
		if err := os.WriteFile(filepath.Join(many, fmt.Sprintf("file-with-a-longer-name-%04d", i)), []byte{byte(i)}, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data := make([]byte, 64<<20)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(dir, "data"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatalf("unmount: %v", err)
	}
	mounted = false
	out, err = exec.Command("e2fsck", "-fn", dev).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck -fn after use: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "613/65536 files") {
		t.Errorf("e2fsck counts: want 613 inodes in use (11 reserved, the directory, 600 files, the data):\n%s", out)
	}
}
