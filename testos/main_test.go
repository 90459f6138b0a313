package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/nodeconfig"
)

func TestCmdlineValue(t *testing.T) {
	cl := `BOOT_IMAGE=/vmlinuz nodeinit.slot=a console=ttyS0 testos.action="reboot" node-init.x=1 nodeinit.slot=b`
	if got := cmdlineValue(cl, "nodeinit.slot"); got != "b" {
		t.Errorf("slot = %q (last value wins)", got)
	}
	if got := cmdlineValue(cl, "testos.action"); got != "reboot" {
		t.Errorf("testos.action = %q", got)
	}
	if got := cmdlineValue(cl, "missing"); got != "" {
		t.Errorf("missing = %q", got)
	}
}

func TestParseActions(t *testing.T) {
	acts, err := parseActions("# comment\nwrite /etc/testos/written hello world\n\nbless\npoweroff\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) != 3 || acts[0].verb != "write" || !slices.Equal(acts[0].args, []string{"/etc/testos/written", "hello", "world"}) ||
		acts[1].verb != "bless" || acts[2].verb != "poweroff" {
		t.Errorf("acts = %+v", acts)
	}
	for _, bad := range []string{"explode", "write", "write relative text"} {
		if _, err := parseActions(bad); err == nil {
			t.Errorf("parseActions(%q) accepted", bad)
		}
	}
}

// fakeNode lays out a node root in a temp dir: the config partition at
// /run/nodeinit/config and the ESP at /run/nodeinit/esp.
func fakeNode(t *testing.T, cmdline string) (node, *bytes.Buffer) {
	t.Helper()
	root := t.TempDir()
	for p, c := range map[string]string{
		"/etc/hostname":     "node7\n",
		"/etc/node-release": "NAME=node\nVERSION=\"2.0\"\n",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte(c), 0o644)
	}
	os.MkdirAll(filepath.Join(root, ConfigMount), 0o755)
	var out bytes.Buffer
	mounts := "overlay / overlay rw 0 0\n/dev/vda5 /run/nodeinit/config ext4 rw 0 0\n"
	return node{root: root, cmdline: cmdline, mounts: mounts, out: &out}, &out
}

func TestBootReportsAndWrites(t *testing.T) {
	n, out := fakeNode(t, "nodeinit.slot=b console=ttyS0")
	os.MkdirAll(filepath.Join(n.root, "etc/testos"), 0o755)
	os.WriteFile(filepath.Join(n.root, ActionsFile), []byte("write /etc/testos/written hello node\nreboot\n"), 0o644)
	final, err := n.boot()
	if err != nil || final != "reboot" {
		t.Fatalf("boot = %q, %v", final, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{
		"TESTOS version=2.0 build=dev slot=b hostname=node7 persisted=none mounts=/:overlay,/run/nodeinit/config:ext4",
		"TESTOS-WROTE /etc/testos/written",
		Marker,
	}
	if !slices.Equal(lines, want) {
		t.Errorf("output:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	cfg := filepath.Join(n.root, ConfigMount)
	if got, _ := os.ReadFile(filepath.Join(cfg, "etc/testos/written")); string(got) != "hello node\n" {
		t.Errorf("persisted copy = %q", got)
	}
	if list, _ := nodeconfig.Persisted(cfg); !slices.Equal(list, []string{"/etc/testos/written"}) {
		t.Errorf("persisted = %v", list)
	}
	// The next boot reports it.
	out.Reset()
	n.cmdline = "nodeinit.slot=b testos.action=poweroff"
	if final, err := n.boot(); err != nil || final != "poweroff" {
		t.Fatalf("second boot = %q, %v", final, err)
	}
	if !strings.Contains(out.String(), "persisted=/etc/testos/written ") {
		t.Errorf("second boot output: %s", out.String())
	}
}

func TestBootBlessAndCrash(t *testing.T) {
	n, out := fakeNode(t, "nodeinit.slot=a testos.action=bless")
	esp := filepath.Join(n.root, ESPMount)
	if err := boot.WriteEntry(boot.DirFS(esp), boot.Entry{Slot: "a", Version: "2.0", Tries: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.boot(); err != nil {
		t.Fatal(err)
	}
	e, err := boot.EntryFor(boot.DirFS(esp), "a")
	if err != nil || !e.Blessed() {
		t.Errorf("entry after bless: %+v, %v", e, err)
	}
	if !strings.Contains(out.String(), "TESTOS-BLESSED slot=a\n"+Marker) {
		t.Errorf("output: %s", out.String())
	}
	out.Reset()
	n.cmdline = "nodeinit.slot=a testos.action=crash"
	if _, err := n.boot(); err != errCrash {
		t.Errorf("crash boot = %v", err)
	}
	if strings.Contains(out.String(), Marker) {
		t.Errorf("marker printed before a crash: %s", out.String())
	}
}

// TestImageActionsRunFirst: a crash baked into the image wins over the command line's
// actions, so a broken release crashes whatever its boot entry says; show prints files.
func TestImageActionsRunFirst(t *testing.T) {
	n, out := fakeNode(t, "nodeinit.slot=a testos.action=show:/etc/node-release,poweroff")
	os.MkdirAll(filepath.Join(n.root, "etc/testos"), 0o755)
	os.WriteFile(filepath.Join(n.root, ImageActionsFile), []byte("crash\n"), 0o644)
	if _, err := n.boot(); err != errCrash {
		t.Fatalf("boot = %v, want the image's crash", err)
	}
	os.Remove(filepath.Join(n.root, ImageActionsFile))
	out.Reset()
	if final, err := n.boot(); err != nil || final != "poweroff" {
		t.Fatalf("boot = %q, %v", final, err)
	}
	if !strings.Contains(out.String(), `TESTOS-SHOW /etc/node-release "NAME=node\nVERSION=\"2.0\"\n"`) {
		t.Errorf("show output: %s", out.String())
	}
}

func TestStartLine(t *testing.T) {
	if got, want := startLine(3141592653*time.Nanosecond), "TESTOS-START uptime=3.142s"; got != want {
		t.Errorf("startLine = %q, want %q", got, want)
	}
}

func TestCmdlineActionsEscapes(t *testing.T) {
	got := cmdlineActions("put:/data/keep:yes,run:/usr/sbin/nodeinit:upgrade:--image:label%3ANODEUPD,poweroff")
	want := "put /data/keep yes\nrun /usr/sbin/nodeinit upgrade --image label:NODEUPD\npoweroff"
	if got != want {
		t.Errorf("cmdlineActions = %q, want %q", got, want)
	}
}

func TestPutAndRun(t *testing.T) {
	n, out := fakeNode(t, "nodeinit.slot=a testos.action=put:/data/keep:kept:data,run:/bin/echo:hi,run:/bin/false,run:/nonexistent/prog")
	if _, err := n.boot(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(n.root, "data/keep"))
	if err != nil || string(data) != "kept data\n" {
		t.Errorf("put wrote %q, %v", data, err)
	}
	if p, _ := nodeconfig.Persisted(filepath.Join(n.root, ConfigMount)); len(p) != 0 {
		t.Errorf("put persisted %v; only write persists", p)
	}
	for _, want := range []string{"TESTOS-PUT /data/keep\n", "hi\nTESTOS-RUN /bin/echo exit=0\n", "TESTOS-RUN /bin/false exit=1\n", "TESTOS-RUN /nonexistent/prog exit=-1\n", Marker} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestPutWritesWithoutPersisting(t *testing.T) {
	n, out := fakeNode(t, "testos.action=put:/data/keep:me")
	os.MkdirAll(filepath.Join(n.root, "data"), 0o755)
	if _, err := n.boot(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(n.root, "data/keep")); string(got) != "me\n" {
		t.Errorf("/data/keep = %q", got)
	}
	if list, _ := nodeconfig.Persisted(filepath.Join(n.root, ConfigMount)); len(list) != 0 {
		t.Errorf("put persisted %v", list)
	}
	if !strings.Contains(out.String(), "TESTOS-PUT /data/keep") {
		t.Errorf("output: %s", out.String())
	}
}
