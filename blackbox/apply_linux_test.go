package blackbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/device/linuxdev"
	"github.com/nodeinit/nodeinit/internal/testloop"
	"github.com/nodeinit/nodeinit/plan"
	"github.com/nodeinit/nodeinit/stages"
)

// buildCLI builds the nodeinit binary once per test.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nodeinit")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/nodeinit/nodeinit/cmd/nodeinit")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// loop attaches img to a new loop device, detached when the test ends or
// when detach is called, whichever comes first.
func loop(t *testing.T, img string) (dev string, detach func()) {
	t.Helper()
	l := testloop.Attach(t, img, "-P")
	return l.Dev, func() {
		if err := l.Detach(); err != nil {
			t.Fatal(err)
		}
	}
}

func fileHash(t *testing.T, p string) [32]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// TestApplyInstallsOntoALoopDevice runs `nodeinit apply` from its binary on a
// loop device: it prints the same plan /init computes from the same facts,
// installs, and the disk then boots the image.
func TestApplyInstallsOntoALoopDevice(t *testing.T) {
	e := newEnv(t)
	b1 := e.bundle(release{version: "1.0", fillerMiB: 1})
	img := e.newDisk("apply.img")
	dev, detach := loop(t, img)
	line := "install storage_init=" + dev + " nodeinit.image=" + b1 + " " + vols + " hostname=applied.example.com"

	// The plan /init would make: the same probe and the same pure planner.
	p, err := cmdline.Parse(line)
	if err != nil {
		t.Fatal(err)
	}
	m, err := stages.Probe(context.Background(), p, stages.GatherOptions{Root: "/", OnlyDisks: []string{filepath.Base(dev)},
		KeysDir: e.keys, RunDir: t.TempDir(), Dev: &linuxdev.Machine{}})
	if err != nil {
		t.Fatal(err)
	}
	bp, err := plan.Plan(p, m.Facts)
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	bp.WriteText(&want)

	out, err := exec.Command(buildCLI(t), "apply", "--cmdline", line, "--keys", e.keys).CombinedOutput()
	if err != nil {
		t.Fatalf("nodeinit apply: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), want.String()) {
		t.Errorf("apply printed another plan than /init's:\n--- apply\n%s\n--- /init\n%s", out, want.String())
	}
	detach()
	in, err := newInspector(512, t.TempDir(), b1)
	if err != nil {
		t.Fatal(err)
	}
	v, err := in.inspect(img)
	if err != nil {
		t.Fatal(err)
	}
	if v.boots != "a" || v.version != "1.0" || v.liveConfig()["etc/hostname"] != "applied.example.com\n" {
		t.Fatalf("after apply: %s, hostname %q", v, v.liveConfig()["etc/hostname"])
	}
}

// TestApplyRefusesAForeignLoopDevice: a loop device holding ext4 is refused
// without nodeinit.wipe=, with the argument to add, and is byte-identical after.
func TestApplyRefusesAForeignLoopDevice(t *testing.T) {
	e := newEnv(t)
	b1 := e.bundle(release{version: "1.0"})
	img := e.newDisk("foreign.img")
	run(t, "mke2fs", "-q", "-F", "-t", "ext4", "-L", "precious", img)
	before := fileHash(t, img)
	dev, detach := loop(t, img)
	out, err := exec.Command(buildCLI(t), "apply", "--cmdline", "install storage_init="+dev+" nodeinit.image="+b1+" "+vols,
		"--keys", e.keys).CombinedOutput()
	if err == nil {
		t.Fatalf("apply installed over a foreign disk:\n%s", out)
	}
	for _, want := range []string{"holds data nodeinit did not write", "nodeinit.wipe=", "nothing was written"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the refusal lacks %q:\n%s", want, out)
		}
	}
	detach()
	if fileHash(t, img) != before {
		t.Fatal("the refused foreign disk changed")
	}
}
