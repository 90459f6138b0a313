//go:build !initramfs

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/internal/testtpm"
	"github.com/nodeinit/nodeinit/measure"
	"github.com/nodeinit/nodeinit/plan"
)

// TestTPMCommands: log, check, quote and verify on a boot measured into swtpm,
// and verify's refusals of another nonce, another image and a tampered log.
func TestTPMCommands(t *testing.T) {
	sock := testtpm.Server(t)
	tpm, err := measure.Open(sock)
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "tpm2-measure.log")
	m := &measure.Measurer{TPM: tpm, LogPath: logPath}
	image := strings.Repeat("5e", 32)
	m.Phase(measure.PhaseEnterInitrd)
	m.Plan(&plan.Blueprint{Action: cmdline.ActionBoot, Slot: "b"}, measure.Image{ManifestSHA256: image, Version: "2.0"})
	m.BeforeStep(t.Context(), plan.StageMountRoot)
	m.BeforeStep(t.Context(), plan.StageSwitchRoot)
	tpm.Close()

	out, err := runCLI(t, "tpm", "log", "--log", logPath)
	if err != nil || !strings.Contains(out, "phase     enter-initrd") || !strings.Contains(out, "nodeinit:slot:b") {
		t.Fatalf("tpm log: %v\n%s", err, out)
	}
	out, err = runCLI(t, "tpm", "check", "--log", logPath, "--tpm", sock)
	if err != nil || !strings.Contains(out, "match the 8 records") {
		t.Fatalf("tpm check: %v\n%s", err, out)
	}
	var q strings.Builder
	if err := run([]string{"tpm", "quote", "--nonce", "c0ffee00", "--log", logPath, "--tpm", sock}, &q, os.Stderr); err != nil {
		t.Fatalf("tpm quote: %v", err)
	}
	qf := filepath.Join(t.TempDir(), "quote.json")
	os.WriteFile(qf, []byte(q.String()), 0o644)

	out, err = runCLI(t, "tpm", "verify", qf, "--nonce", "c0ffee00", "--expect-image", image, "--expect-action", "boot",
		"--expect-steps", "mount-root,switch-root", "--ak", qf)
	if err != nil || !strings.Contains(out, "the node booted as expected") {
		t.Fatalf("tpm verify: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "tpm", "verify", qf, "--nonce", "c0ffee01", "--expect-image", image); err == nil || !strings.Contains(err.Error(), "nonce") {
		t.Errorf("another nonce: %v", err)
	}
	if _, err := runCLI(t, "tpm", "verify", qf, "--nonce", "c0ffee00", "--expect-image", strings.Repeat("00", 32)); err == nil || !strings.Contains(err.Error(), "did not boot as expected") {
		t.Errorf("another image: %v", err)
	}
	if _, err := runCLI(t, "tpm", "verify", qf, "--expect-image", image); err == nil || !strings.Contains(err.Error(), "--nonce") {
		t.Errorf("no nonce: %v", err)
	}

	// A record dropped from the log: check exits non-zero.
	raw, _ := os.ReadFile(logPath)
	recs := strings.SplitAfter(string(raw), "\n")
	os.WriteFile(logPath, []byte(strings.Join(append(recs[:2:2], recs[3:]...), "")), 0o600)
	if out, err := runCLI(t, "tpm", "check", "--log", logPath, "--tpm", sock); err == nil || !strings.Contains(out, "MISMATCH") {
		t.Errorf("tampered log passed the check: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "tpm", "check", "--tpm", filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), "no TPM") {
		t.Errorf("no TPM: %v", err)
	}
}
