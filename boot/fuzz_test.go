package boot

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadLedger feeds arbitrary bytes as both ledger copies: ReadLedger returns
// a ledger or an error, never panics.
func FuzzReadLedger(f *testing.F) {
	f.Add([]byte(`{"format":1,"install_id":"x","seq":3,"active":"a","slots":{"a":{"state":"good","version":"1.0"}}}`))
	f.Add([]byte(`{"format":1,"slots":null}`))
	f.Add([]byte("\x00\x00{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, LedgerFile), b, 0o644)
		os.WriteFile(filepath.Join(dir, LedgerBackupFile), b, 0o644)
		if l, err := ReadLedger(DirFS(dir)); err == nil && l.Slots == nil {
			t.Fatal("ReadLedger returned a ledger without slots")
		}
	})
}

// FuzzEntries feeds arbitrary entry names and bodies to the loader entry
// reader, as a crafted or torn ESP would.
func FuzzEntries(f *testing.F) {
	f.Add("node-a+3-1.conf", []byte("title x\nversion 2-1.0\nlinux /node/a/vmlinuz\noptions nodeinit.slot=a\n"))
	f.Add("node-b+0-9999999999999999999.conf", []byte("options "))
	f.Fuzz(func(t *testing.T, name string, body []byte) {
		if filepath.Base(name) != name || name == "" || name == "." || name == ".." {
			return
		}
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, EntriesDir), 0o755)
		if os.WriteFile(filepath.Join(dir, EntriesDir, name), body, 0o644) != nil {
			return
		}
		entries, err := Entries(DirFS(dir))
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.Counting && (e.TriesLeft < 0 || e.TriesDone < 0) {
				t.Fatalf("negative counters from %q: %+v", name, e)
			}
		}
	})
}

// FuzzGrubenv: a block that parses writes back to a block that parses to the
// same variables, of exactly GrubenvSize bytes.
func FuzzGrubenv(f *testing.F) {
	f.Add([]byte(grubenvHeader + "node_b_left=2\nnode_b_done=1\n" + "#####"))
	f.Add([]byte(grubenvHeader + `x=a\\b\` + "\n" + "c\n"))
	f.Add([]byte(grubenvHeader + "=\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := ParseGrubenv(b)
		if err != nil {
			return
		}
		out, err := env.Bytes()
		if err != nil {
			return // names or sizes Bytes refuses
		}
		if len(out) != GrubenvSize {
			t.Fatalf("block of %d bytes", len(out))
		}
		back, err := ParseGrubenv(out)
		if err != nil || len(back) != len(env) {
			t.Fatalf("round trip: %q → %q (%v)", env, back, err)
		}
		for k, v := range env {
			if back[k] != v {
				t.Fatalf("round trip of %s: %q → %q", k, v, back[k])
			}
		}
	})
}

// FuzzGrubConfig feeds arbitrary grub.cfg and grubenv files to Entries on a
// GRUB ESP, as a crafted or torn ESP would: entries or an error, never a panic.
func FuzzGrubConfig(f *testing.F) {
	f.Add([]byte(grubMarker+"\n"+grubEntryPrefix+`{"slot":"b","version":"2","generation":2,"tries":3,"options":["nodeinit.slot=b"]}`+"\n"), []byte(grubenvHeader+"node_b_left=x\n"))
	f.Add([]byte(grubMarker+"\n"+grubEntryPrefix+"{\n"), []byte{})
	f.Fuzz(func(t *testing.T, cfg, env []byte) {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "grub"), 0o755)
		os.WriteFile(filepath.Join(dir, GrubConfigPath), cfg, 0o644)
		os.WriteFile(filepath.Join(dir, GrubenvPath), env, 0o644)
		es, err := Entries(DirFS(dir))
		if err != nil {
			return
		}
		for _, e := range es {
			if ValidSlot(e.Slot) != nil {
				t.Fatalf("entry of slot %q", e.Slot)
			}
		}
	})
}
