//go:build !initramfs

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/disk/diskio"
	"github.com/nodeinit/nodeinit/media"
	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/stages"
)

func TestUpgradeBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
		fix  string
	}{
		{nil, "no image", ""},
		{[]string{"--image", "/x", "extra"}, `unexpected argument "extra"`, "--image extra"},
		{[]string{"--image", "/x", "--tries", "-1"}, "--tries -1 is negative", ""},
		{[]string{"--image", "/x", "--iso", "/y"}, "--image /x and --iso /y name different images", ""},
		{[]string{"--image", "/x", "--reboot", "30"}, `unexpected argument "30"`, "--reboot=30"},
		{[]string{"--image", "/x", "--reboot=-5"}, "negative delay -5", ""},
		{[]string{"--image", "/x", "--reboot=soon"}, "want true, false or a delay in seconds", ""},
	} {
		var out, errw bytes.Buffer
		err := runUpgrade(tc.args, &out, &errw)
		if err == nil || !strings.Contains(err.Error(), tc.want) || operr.Describe(err).Fix == "" || !strings.Contains(operr.Describe(err).Fix, tc.fix) {
			t.Errorf("upgrade %q: err = %v (fix %q), want %q with a fix containing %q", tc.args, err, operr.Describe(err).Fix, tc.want, tc.fix)
		}
	}
}

// TestUpgradeRebootFlag: --reboot keeps its boolean forms and takes oVirt's
// --reboot=N, a delay in seconds, where a number is never a boolean.
func TestUpgradeRebootFlag(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		on    bool
		delay time.Duration
	}{
		{nil, true, 0},
		{[]string{"--reboot"}, true, 0},
		{[]string{"--reboot=false"}, false, 0},
		{[]string{"--reboot=true"}, true, 0},
		{[]string{"--reboot=0"}, true, 0},
		{[]string{"--reboot=1"}, true, time.Second},
		{[]string{"--reboot=30"}, true, 30 * time.Second},
	} {
		fs := flag.NewFlagSet("upgrade", flag.ContinueOnError)
		r := &rebootFlag{on: true}
		fs.Var(r, "reboot", "")
		if err := parseFlags(fs, tc.args); err != nil || r.on != tc.on || r.delay != tc.delay {
			t.Errorf("%q: on %v delay %s (err %v), want on %v delay %s", tc.args, r.on, r.delay, err, tc.on, tc.delay)
		}
	}
}

// fakeNode is a running node as `nodeinit upgrade` sees it, in temp dirs: a
// sysfs and /proc with one virtio disk whose device node is an image file
// holding nodeinit's partition table, the mounted ESP with a ledger (slot a,
// version 1.0, good, running), node-config, and the boot's command line.
type fakeNode struct {
	root, esp, config, cmdline string
}

func newFakeNode(t *testing.T) fakeNode {
	t.Helper()
	n := fakeNode{root: t.TempDir(), esp: t.TempDir(), config: t.TempDir()}
	file := func(rel, content string) {
		p := filepath.Join(n.root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(rel, target string) {
		p := filepath.Join(n.root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	const size = 16 << 30
	layout, err := disk.PlanLayout(size, 512, nil)
	if err != nil {
		t.Fatal(err)
	}
	file("dev/vda", "")
	if err := os.Truncate(filepath.Join(n.root, "dev/vda"), size); err != nil {
		t.Fatal(err)
	}
	if err := diskio.WriteTable(filepath.Join(n.root, "dev/vda"), layout); err != nil {
		t.Fatal(err)
	}
	dev := "sys/devices/pci0000:00/0000:00:04.0/virtio2"
	file(dev+"/block/vda/size", "33554432\n")
	file(dev+"/block/vda/dev", "252:0\n")
	for _, attr := range []string{"ro", "removable", "queue/rotational"} {
		file(dev+"/block/vda/"+attr, "0\n")
	}
	file(dev+"/block/vda/queue/logical_block_size", "512\n")
	file(dev+"/block/vda/queue/physical_block_size", "512\n")
	link(dev+"/block/vda/device", "../../../virtio2")
	link("sys/block/vda", "../devices/pci0000:00/0000:00:04.0/virtio2/block/vda")
	file("proc/self/mountinfo", "")
	file("proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n")

	at := time.Unix(1700000000, 0)
	l := boot.NewLedger("fake-node")
	l.RecordSlot(at, "a", boot.SlotGood, "1.0", "node")
	l.SetActive("a")
	if err := l.Write(boot.DirFS(n.esp)); err != nil {
		t.Fatal(err)
	}
	n.cmdline = filepath.Join(t.TempDir(), "cmdline")
	if err := os.WriteFile(n.cmdline, []byte("BOOT_IMAGE=/vmlinuz nodeinit.slot=a console=ttyS0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return n
}

// upgrade runs `nodeinit upgrade` on the node with stdin and args, and returns
// its stdout and stderr.
func (n fakeNode) upgrade(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errw bytes.Buffer
	env := upgradeEnv{stdin: stdin, cmdline: n.cmdline, root: n.root, runDir: t.TempDir()}
	err = env.run(append(args, "--esp", n.esp, "--config", n.config), &out, &errw)
	return out.String(), errw.String(), err
}

// signedISO builds a signed bundle (version 1.0) and an ISO of it with the
// CLI, `image sign` and `mkmedia iso`, and returns the ISO and the key directory.
func signedISO(t *testing.T) (iso, keyDir string) {
	t.Helper()
	if _, err := os.Stat(media.DebianSyslinux("/").IsolinuxBin); err != nil {
		t.Skipf("needs Debian packages isolinux and syslinux-common: %v", err)
	}
	priv, keyDir, bundle := cliBundle(t)
	if out, err := runCLI(t, "image", "sign", bundle, "--key", priv); err != nil {
		t.Fatalf("image sign: %v\n%s", err, out)
	}
	iso = filepath.Join(t.TempDir(), "node.iso")
	if out, err := runCLI(t, "mkmedia", "iso", "--bundle", bundle, iso); err != nil {
		t.Fatalf("mkmedia iso: %v\n%s", err, out)
	}
	return iso, keyDir
}

// statusLines parses stdout of `upgrade --status`: every line must be one
// JSON event.
func statusLines(t *testing.T, stdout string) []stages.Event {
	t.Helper()
	var evs []stages.Event
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var e stages.Event
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil || e.Stage == "" || e.Kind == "" || e.Time.IsZero() {
			t.Fatalf("status line %q is not an event: %v\nstdout:\n%s", sc.Text(), err, stdout)
		}
		evs = append(evs, e)
	}
	return evs
}

// transitions renders events as "stage kind" for comparison.
func transitions(evs []stages.Event) []string {
	var s []string
	for _, e := range evs {
		s = append(s, e.Stage+" "+string(e.Kind))
	}
	return s
}

// TestUpgradeStatusFromISO runs `nodeinit upgrade --status --dry-run` on a fake
// running node with the ISO that mkmedia writes, given as a file (--image and
// oVirt's --iso) and on standard input (--image -). Stdout holds only JSON
// events: one per stage transition, in plan order, then the outcome; the human
// text, the plan included, is on stderr. The ISO received on standard input
// leaves nothing in --tmpdir.
func TestUpgradeStatusFromISO(t *testing.T) {
	iso, keyDir := signedISO(t)
	n := newFakeNode(t)
	planSteps := []string{"fetch-boot-files", "write-slot", "copy-boot-files", "migrate-config", "add-boot-entry", "report"}
	want := []string{"probe start", "probe done"}
	for _, s := range planSteps {
		want = append(want, s+" skipped")
	}
	want = append(want, "upgrade done")

	f, err := os.Open(iso)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pr, pw := io.Pipe()
	go func() { io.Copy(pw, f); pw.Close() }()
	tmp := t.TempDir()
	for _, tc := range []struct {
		name  string
		stdin io.Reader
		args  []string
		want  []string
	}{
		{"--image FILE", nil, []string{"--image", iso}, want},
		{"--iso FILE", nil, []string{"--iso", iso}, want},
		{"--image -", pr, []string{"--image", "-", "--tmpdir", tmp}, append([]string{"receive-image start", "receive-image done"}, want...)},
	} {
		// --force: the node runs 1.0 already, the version cliBundle builds.
		stdout, stderr, err := n.upgrade(t, tc.stdin, append(tc.args, "--dry-run", "--status", "--force", "--keys", keyDir)...)
		if err != nil {
			t.Fatalf("%s: %v (fix: %s)\nstderr:\n%s", tc.name, err, operr.Describe(err).Fix, stderr)
		}
		evs := statusLines(t, stdout)
		if got := transitions(evs); !slices.Equal(got, tc.want) {
			t.Errorf("%s: status lines\n  %q\nwant\n  %q", tc.name, got, tc.want)
			continue
		}
		if probe := evs[len(evs)-len(planSteps)-2]; !strings.Contains(probe.Message, "upgrade /dev/vda with node 1.0") {
			t.Errorf("%s: probe done says %q, want the plan's summary", tc.name, probe.Message)
		}
		if last := evs[len(evs)-1]; !strings.Contains(last.Message, "dry run") {
			t.Errorf("%s: outcome %+v", tc.name, last)
		}
		if !strings.Contains(stderr, "nodeinit: plan:") || !strings.Contains(stderr, "dry run: nothing was written") {
			t.Errorf("%s: the human text is not on stderr:\n%s", tc.name, stderr)
		}
	}
	expectEmptyDir(t, tmp)

	// Without --status, stdout has the human text and no JSON.
	stdout, _, err := n.upgrade(t, nil, "--image", iso, "--dry-run", "--force", "--keys", keyDir)
	if err != nil || !strings.Contains(stdout, "nodeinit: plan:") || strings.Contains(stdout, `"stage"`) {
		t.Errorf("without --status: %v\n%s", err, stdout)
	}
}

// TestUpgradeStatusFailures: a refused image ends the status lines with the
// failed probe and a failed outcome that carries the error and its fix; an
// error before any stage (no slot on the command line) still gives the outcome.
func TestUpgradeStatusFailures(t *testing.T) {
	n := newFakeNode(t)
	notISO := filepath.Join(t.TempDir(), "node.iso")
	if err := os.WriteFile(notISO, bytes.Repeat([]byte("x"), 40000), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := n.upgrade(t, nil, "--image", notISO, "--status", "--keys", t.TempDir())
	evs := statusLines(t, stdout)
	if err == nil || !slices.Equal(transitions(evs), []string{"probe start", "probe failed", "upgrade failed"}) {
		t.Fatalf("not an ISO: err %v, status %q\nstderr:\n%s", err, transitions(evs), stderr)
	}
	for _, e := range evs[1:] {
		if !strings.Contains(e.Error, notISO+": not an ISO 9660 image") || !strings.Contains(e.Hint, "mkmedia iso") {
			t.Errorf("failed event %+v lacks the error or its fix", e)
		}
	}

	pr, pw := io.Pipe()
	go func() { pw.Write(bytes.Repeat([]byte("x"), 1<<20)); pw.Close() }()
	tmp := t.TempDir()
	stdout, _, err = n.upgrade(t, pr, "--image", "-", "--tmpdir", tmp, "--status")
	evs = statusLines(t, stdout)
	if err == nil || !slices.Equal(transitions(evs), []string{"receive-image start", "receive-image failed", "upgrade failed"}) ||
		!strings.Contains(evs[2].Error, "standard input: not an ISO") {
		t.Errorf("--image - with no ISO: err %v, status %q", err, stdout)
	}
	expectEmptyDir(t, tmp)

	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	stdout, _, err = n.upgrade(t, devNull, "--image", "-", "--status")
	if evs = statusLines(t, stdout); err == nil || len(evs) != 1 || !strings.Contains(evs[0].Error, "terminal or device") || !strings.Contains(evs[0].Hint, "< node.iso") {
		t.Errorf("--image - from a device: err %v, status %q", err, stdout)
	}

	os.WriteFile(n.cmdline, []byte("console=ttyS0\n"), 0o644)
	stdout, _, err = n.upgrade(t, nil, "--image", notISO, "--status")
	evs = statusLines(t, stdout)
	if err == nil || len(evs) != 1 || evs[0].Stage != stages.StageUpgrade || evs[0].Kind != stages.EventFailed ||
		!strings.Contains(evs[0].Error, "no nodeinit.slot") || evs[0].Hint == "" {
		t.Errorf("no slot: err %v, status %q", err, stdout)
	}
}

func expectEmptyDir(t *testing.T, dir string) {
	t.Helper()
	if des, _ := os.ReadDir(dir); len(des) != 0 {
		t.Errorf("%s holds %s, want nothing", dir, des[0].Name())
	}
}
