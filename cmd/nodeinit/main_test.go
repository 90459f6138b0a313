package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(args, &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestPlanCommandPrintsTargetAndLayout(t *testing.T) {
	out, err := runCLI(t, "plan", "--facts", "../../testdata/facts/one-nvme.json",
		"--cmdline", "install storage_init=serial:S5GXNF0R100001 BOOTIF=link")
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	for _, want := range []string{"action:   install", "/dev/nvme0n1", "serial=S5GXNF0R100001", "node-root-a", "1. partition", "then:     reboot"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
}

func TestPlanCommandJSON(t *testing.T) {
	out, err := runCLI(t, "plan", "--json", "--facts", "../../testdata/facts/installed-v1.1-image.json", "--cmdline", "upgrade")
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	var doc struct {
		Plan struct {
			Action string `json:"action"`
			Slot   string `json:"slot"`
		} `json:"plan"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if p := doc.Plan; p.Action != "upgrade" || p.Slot != "b" {
		t.Fatalf("plan = %+v, want upgrade into slot b", p)
	}
}

func TestPlanCommandRefusalNamesDisksAndHint(t *testing.T) {
	_, err := runCLI(t, "plan", "--facts", "../../testdata/facts/two-identical.json", "--cmdline", "install storage_init=nvme:ALL")
	if err == nil {
		t.Fatal("an ambiguous storage_init was accepted")
	}
	for _, want := range []string{"nothing will be written", "/dev/nvme0n1", "/dev/nvme1n1", "storage_init=serial:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestPlanCommandBadCmdline(t *testing.T) {
	_, err := runCLI(t, "plan", "--facts", "../../testdata/facts/one-nvme.json", "--cmdline", "install adminpw=secret123")
	if err == nil || !strings.Contains(err.Error(), "adminpw") || strings.Contains(err.Error(), "secret123") {
		t.Fatalf("plaintext password: err = %v (must name adminpw and not echo the value)", err)
	}
}

func TestUnknownCommand(t *testing.T) {
	out, err := runCLI(t, "frobnicate")
	if err == nil || !strings.Contains(out, "plan") {
		t.Fatalf("err = %v, usage = %q", err, out)
	}
}
