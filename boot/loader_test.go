package boot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestInstallLoader(t *testing.T) {
	src := writeFile(t, filepath.Join(t.TempDir(), "systemd-bootx64.efi"), "MZ fake PE")
	esp := t.TempDir()
	for i := 0; i < 2; i++ { // idempotent
		if err := InstallLoader(DirFS(esp), src); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	for _, rel := range []string{FallbackLoaderPath, SystemdLoaderPath} {
		got, err := os.ReadFile(filepath.Join(esp, rel))
		if err != nil || string(got) != "MZ fake PE" {
			t.Errorf("%s = %q, %v", rel, got, err)
		}
	}
	conf, err := os.ReadFile(filepath.Join(esp, LoaderConfPath))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\ntimeout 1\n", "\ndefault node-*\n", "\neditor no\n", "\nconsole-mode keep\n"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("loader.conf lacks %q:\n%s", want, conf)
		}
	}
	if st, err := os.Stat(filepath.Join(esp, EntriesDir)); err != nil || !st.IsDir() {
		t.Errorf("entries dir: %v", err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(esp, "*", ".*tmp*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestInstallLoaderRefusesNonPE(t *testing.T) {
	src := writeFile(t, filepath.Join(t.TempDir(), "loader.efi"), "#!/bin/sh\n")
	esp := t.TempDir()
	err := InstallLoader(DirFS(esp), src)
	if err == nil || !strings.Contains(err.Error(), "not an EFI executable") {
		t.Fatalf("InstallLoader = %v", err)
	}
	if des, _ := os.ReadDir(esp); len(des) != 0 {
		t.Errorf("ESP written despite the error: %v", des)
	}
	if err := InstallLoader(DirFS(esp), filepath.Join(t.TempDir(), "missing.efi")); err == nil {
		t.Error("missing loader accepted")
	}
}

func TestInstallSlot(t *testing.T) {
	src := t.TempDir()
	k := writeFile(t, filepath.Join(src, "vmlinuz"), "kernel")
	i := writeFile(t, filepath.Join(src, "initrd.img"), "initrd")
	m := writeFile(t, filepath.Join(src, "manifest.json"), "{}")
	esp := t.TempDir()
	if err := InstallSlot(DirFS(esp), "b", k, i, m); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{KernelName: "kernel", InitrdName: "initrd", ManifestName: "{}"} {
		got, err := os.ReadFile(filepath.Join(esp, "node", "b", name))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v", name, got, err)
		}
	}
	if err := InstallSlot(DirFS(esp), "c", k, i, m); err == nil || !strings.Contains(err.Error(), "nodeinit.slot=a") {
		t.Errorf("slot c: %v", err)
	}
	esp2 := t.TempDir()
	if err := InstallSlot(DirFS(esp2), "a", k, filepath.Join(src, "nope"), m); err == nil {
		t.Error("missing initrd accepted")
	}
	if des, _ := os.ReadDir(esp2); len(des) != 0 {
		t.Errorf("ESP written despite a missing source: %v", des)
	}
}
