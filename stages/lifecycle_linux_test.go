package stages

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/nodeconfig"
	"github.com/nodeinit/nodeinit/plan"
)

// noMounts fails the test on any mount: a running node's stages use its existing
// mounts. Any other effect panics on the nil device.Machine it embeds.
type noMounts struct {
	device.Machine
	t *testing.T
}

func (noMounts) SyncAll() {}

func (m noMounts) Mount(source, target, fstype string, flags uintptr, data string) error {
	m.t.Errorf("unexpected mount of %s on %s", source, target)
	return os.ErrPermission
}

func (m noMounts) Unmount(target string) error {
	m.t.Errorf("unexpected unmount of %s", target)
	return os.ErrPermission
}

// TestMigrationCutThenOldSlotBoots runs the migrate-config stage against already
// mounted ESP and config directories (the `nodeinit upgrade` path), then boots the old
// slot as after a power cut before the new entry: the boot restores the snapshot and
// records the interrupted upgrade once.
func TestMigrationCutThenOldSlotBoots(t *testing.T) {
	esp, config := t.TempDir(), t.TempDir()
	at := time.Unix(1700000000, 0)
	l := boot.NewLedger("id")
	l.RecordSlot(at, "a", boot.SlotGood, "1.0", "node")
	l.RecordSlot(at, "b", boot.SlotReady, "2.0", "node")
	l.SetActive("a")
	if err := l.Write(boot.DirFS(esp)); err != nil {
		t.Fatal(err)
	}
	if err := boot.WriteEntry(boot.DirFS(esp), boot.Entry{Slot: "a", Version: "1.0"}); err != nil {
		t.Fatal(err)
	}
	if err := nodeconfig.Seed(config, nodeconfig.Config{Hostname: "node1"}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(config, "etc/hostname"))

	facts := &plan.Facts{Disks: []disk.Disk{{Name: "vda", Path: "/dev/vda", Partitions: []disk.Partition{
		{Number: 1, Name: "vda1", PartLabel: "NODE-ESP"}, {Number: 5, Name: "vda5", PartLabel: "node-config"}}}}}
	p, _ := cmdline.Parse("upgrade")
	j := &Job{Params: p, Facts: facts, Plan: &plan.Blueprint{Action: cmdline.ActionUpgrade}, Dev: noMounts{t: t}, RunDir: t.TempDir(),
		Now:     func() time.Time { return at },
		Bundle:  &image.Bundle{Manifest: &image.Manifest{Name: "node", Version: "2.0", Migrations: []image.Migration{{Op: image.OpSet, Path: "/etc/migrated", Value: "yes\n"}}}},
		Mounted: map[string]string{"NODE-ESP": esp, "node-config": config}}
	var lines []string
	r := &Reporter{stage: plan.StageMigrateConfig, now: time.Now, sink: SinkFunc(func(e Event) { lines = append(lines, e.Message) })}
	step := plan.MigrateConfig{Disk: "vda", Slot: "b", From: "1.0", To: "2.0"}
	if err := j.migrateConfig(context.Background(), step, r); err != nil {
		t.Fatalf("migrate-config: %v", err)
	}
	if _, err := os.Stat(filepath.Join(config, "etc/migrated")); err != nil {
		t.Fatalf("the migration did not run: %v", err)
	}
	if l, _ := boot.ReadLedger(boot.DirFS(esp)); l.Last == nil || l.Last.Action != ActionMigrating {
		t.Fatalf("the ledger does not say migrations started: %+v", l.Last)
	}

	// Power cut here: the report stage never wrote node-b+3.conf. The old slot boots.
	lines = nil
	if err := j.recordBoot(boot.DirFS(esp), config, "a", r); err != nil {
		t.Fatalf("boot of the old slot: %v", err)
	}
	if _, err := os.Stat(filepath.Join(config, "etc/migrated")); !os.IsNotExist(err) {
		t.Errorf("the migrated file survived the restore (stat: %v)", err)
	}
	if after, _ := os.ReadFile(filepath.Join(config, "etc/hostname")); string(after) != string(before) {
		t.Errorf("hostname after restore %q, want %q", after, before)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "UPGRADE INTERRUPTED: slot b (version 2.0)") {
		t.Errorf("the boot did not report the interruption:\n%s", strings.Join(lines, "\n"))
	}
	got, _ := boot.ReadLedger(boot.DirFS(esp))
	if got.Slots["b"].State != boot.SlotBad || got.Last.Action != ActionInterrupted || got.Active != "a" {
		t.Errorf("ledger after the boot: slot b %s, last %+v, active %s", got.Slots["b"].State, got.Last, got.Active)
	}

	// The next boot has nothing to report and writes nothing.
	seq := got.Seq
	if err := j.recordBoot(boot.DirFS(esp), config, "a", r); err != nil {
		t.Fatal(err)
	}
	if again, _ := boot.ReadLedger(boot.DirFS(esp)); again.Seq != seq {
		t.Errorf("a plain boot after the recorded interruption rewrote the ledger (seq %d → %d)", seq, again.Seq)
	}
}

// TestUpgradeRunningRefusesBeforeWriting: without a slot on the command line or a
// ledger on the ESP, `nodeinit upgrade` stops with a hint and writes nothing.
func TestUpgradeRunningRefusesBeforeWriting(t *testing.T) {
	esp, config := t.TempDir(), t.TempDir()
	for _, tc := range []struct {
		name, cmdline, want string
	}{
		{"no slot", "console=ttyS0", "no nodeinit.slot"},
		{"no ledger", "nodeinit.slot=a", "no install ledger"},
	} {
		_, err := UpgradeRunning(context.Background(), RunningUpgradeOptions{Image: "/nonexistent", Cmdline: tc.cmdline,
			ESPDir: esp, ConfigDir: config, RunDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	for _, dir := range []string{esp, config} {
		if des, _ := os.ReadDir(dir); len(des) != 0 {
			t.Errorf("a refused upgrade wrote into %s", dir)
		}
	}
}
