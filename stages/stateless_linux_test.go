package stages

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/nodeconfig"
	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/plan"
)

// bundleAdminHash is the admin password hash the stateless tests put into the bundle.
const bundleAdminHash = "$6$statelesssalt$HashFromTheSignedBundleNotTheCommandLine0123456789abcdefghij/."

// bindRecorder records the bind mounts a stateless boot makes over the new root and
// makes none; any other effect panics on the nil device.Machine it embeds.
type bindRecorder struct {
	device.Machine
	binds []string
}

func (b *bindRecorder) Mount(source, target, fstype string, flags uintptr, data string) error {
	b.binds = append(b.binds, source+" -> "+target)
	return nil
}

// signedBundle builds and signs a small bundle whose manifest lists adminpw.hash, and
// returns its directory and the directory of the trusted key.
func signedBundle(t *testing.T) (dir, keys string) {
	t.Helper()
	in, keys := t.TempDir(), t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(in, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	priv := filepath.Join(in, "node.key")
	if err := image.GenerateKey(filepath.Join(keys, "node.pub"), priv, ""); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(t.TempDir(), "bundle")
	if _, err := image.Build(image.BuildOptions{Squashfs: write("root.sqfs", "hsqs not really a root"), Kernel: write("vmlinuz", "kernel"),
		Initrd: write("initrd", "initrd"), Loader: write("loader", "MZ"), Name: "node", Version: "1.0",
		AdminHashFile: write("admin.hash", bundleAdminHash+"\n"), Out: dir}); err != nil {
		t.Fatal(err)
	}
	if err := image.Sign(dir, priv, ""); err != nil {
		t.Fatal(err)
	}
	return dir, keys
}

// probeStateless parses line, probes a machine without disks and plans.
func probeStateless(t *testing.T, line, keys string) (*cmdline.Params, *Machine, *plan.Blueprint, error) {
	t.Helper()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "sys/block"), 0o755)
	p, err := cmdline.Parse(line)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Probe(context.Background(), p, GatherOptions{Root: root, KeysDir: keys, RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	bp, err := plan.Plan(m.Params(p), m.Facts)
	return p, m, bp, err
}

// TestStatelessAdminHashFromBundle: a stateless line with nodeinit.adminpw=bundle and no
// adminpw= gives the node the admin password hash from the bundle's adminpw.hash. The
// node's /etc/shadow holds it, and the line the node keeps in /proc/cmdline, its canonical
// and params forms, the facts, the plan and every event do not.
func TestStatelessAdminHashFromBundle(t *testing.T) {
	dir, keys := signedBundle(t)
	line := "stateless nodeinit.image=" + dir + " nodeinit.adminpw=bundle hostname=ram1"
	p, m, bp, err := probeStateless(t, line, keys)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if !m.Facts.Image.AdminHash || m.AdminHash.Reveal() != bundleAdminHash {
		t.Fatalf("the probe did not read the bundle's hash: facts %+v", m.Facts.Image)
	}
	if p.AdminPW != "" {
		t.Fatal("Params.AdminPW of the parsed line is set: the hash would be on the command line")
	}

	var events []Event
	eng := &Engine{Sink: SinkFunc(func(e Event) { events = append(events, e) })}
	eng.Announce(bp)
	newRoot, config := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(newRoot, "etc"), 0o755)
	os.WriteFile(filepath.Join(newRoot, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(newRoot, "etc/shadow"), []byte("root:*:19000:0:99999:7:::\n"), 0o640)
	dev := &bindRecorder{}
	j := &Job{Params: m.Params(p), Facts: m.Facts, Plan: bp, Bundle: m.Bundle, Dev: dev, RunDir: t.TempDir(), NewRoot: newRoot}
	if err := eng.Step(context.Background(), plan.StageMountRoot, "seed the stateless config", func(r *Reporter) error {
		return j.seedStateless(config, r)
	}); err != nil {
		t.Fatalf("seed: %v", err)
	}

	shadow, _ := os.ReadFile(filepath.Join(newRoot, "etc/shadow"))
	if !strings.Contains(string(shadow), nodeconfig.AdminUser+":"+bundleAdminHash+":") {
		t.Fatalf("the node's /etc/shadow does not give admin the bundle's hash:\n%s", shadow)
	}
	if passwd, _ := os.ReadFile(filepath.Join(newRoot, "etc/passwd")); !strings.Contains(string(passwd), nodeconfig.AdminUser+":x:") {
		t.Errorf("admin was not added to /etc/passwd:\n%s", passwd)
	}
	if len(dev.binds) == 0 {
		t.Error("no persisted file was bound over the new root")
	}
	facts, _ := json.Marshal(m.Facts)
	plainPlan, _ := json.Marshal(bp)
	evs, _ := json.Marshal(events)
	redacted, _ := json.Marshal(j.Params.Redacted())
	for what, s := range map[string]string{
		"the kernel command line (/proc/cmdline of the node)": line,
		"the parsed line, canonical":                          p.Canonical(true),
		"the job's params, printed":                           j.Params.String(),
		"the job's params, params view":                       string(redacted),
		"the facts":                                           string(facts),
		"the plan":                                            string(plainPlan),
		"the events":                                          string(evs),
	} {
		if strings.Contains(s, "HashFromTheSignedBundle") {
			t.Errorf("%s shows the admin hash: %s", what, s)
		}
	}
	if !strings.Contains(string(evs), image.AdminHashName) {
		t.Errorf("no event says where the admin hash came from: %s", evs)
	}
}

// TestStatelessRefusesTamperedAdminHash: an adminpw.hash that does not match the signed
// manifest makes the image unusable, and the plan refuses before anything runs, naming
// the file and how to fix it. A bundle without the file is refused too.
func TestStatelessRefusesTamperedAdminHash(t *testing.T) {
	dir, keys := signedBundle(t)
	evil := strings.Replace(bundleAdminHash, "HashFromThe", "AttackersOwn", 1)[:len(bundleAdminHash)]
	if err := os.WriteFile(filepath.Join(dir, image.AdminHashName), []byte(evil+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, m, bp, err := probeStateless(t, "stateless nodeinit.image="+dir+" nodeinit.adminpw=bundle", keys)
	e := operr.Of(err)
	if bp != nil || e == nil || !strings.Contains(err.Error(), image.AdminHashName) || !strings.Contains(err.Error(), image.ErrDigestMismatch.Error()) || e.Fix == "" {
		t.Fatalf("plan with a tampered %s = %v, want a refusal naming it, with a fix", image.AdminHashName, err)
	}
	if m.Bundle != nil || m.AdminHash != "" {
		t.Error("the probe kept the bundle or the hash of a tampered bundle")
	}
	if strings.Contains(err.Error(), "AttackersOwn") || strings.Contains(e.Fix, "AttackersOwn") {
		t.Errorf("the refusal shows the hash: %v", err)
	}

	if err := os.Remove(filepath.Join(dir, image.AdminHashName)); err != nil {
		t.Fatal(err)
	}
	_, _, _, err = probeStateless(t, "stateless nodeinit.image="+dir+" nodeinit.adminpw=bundle", keys)
	if err == nil || !strings.Contains(err.Error(), image.AdminHashName) || operr.Of(err) == nil || operr.Of(err).Fix == "" {
		t.Fatalf("plan with %s missing = %v, want a refusal naming it", image.AdminHashName, err)
	}
}
