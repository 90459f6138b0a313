//go:build !initramfs

package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/media"
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
	for _, want := range []string{"action:   install", "/dev/nvme0n1", "serial=S5GXNF0R100001", "node-root-a", "1. fetch-boot-files", "2. partition", "then:     reboot"} {
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

// TestEverySubcommandAnswersHelp: -h prints the subcommand's usage and is no error.
func TestEverySubcommandAnswersHelp(t *testing.T) {
	for name := range commands {
		var out, errOut strings.Builder
		if err := run([]string{name, "-h"}, &out, &errOut); err != nil {
			t.Errorf("%s -h: %v", name, err)
		}
		if !strings.Contains(errOut.String()+out.String(), "Usage") && !strings.Contains(errOut.String()+out.String(), "-") {
			t.Errorf("%s -h printed no usage:\n%s%s", name, out.String(), errOut.String())
		}
	}
}

// TestMkmediaNeverPrintsTheHash: the menu listing shows every entry's arguments,
// with the admin password hash redacted.
func TestMkmediaNeverPrintsTheHash(t *testing.T) {
	var b strings.Builder
	printMedia(&b, &media.ISOResult{Path: "node.iso", Entries: []media.Entry{
		{Title: "Install", Args: []string{"install", "adminpw=$6$salt$secrethash", "console=ttyS0"}, Default: true},
	}})
	if strings.Contains(b.String(), "secrethash") || !strings.Contains(b.String(), "adminpw=<redacted>") || !strings.Contains(b.String(), "console=ttyS0") {
		t.Fatalf("mkmedia listing:\n%s", b.String())
	}
}
