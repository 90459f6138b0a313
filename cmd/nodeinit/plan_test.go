//go:build !initramfs

package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestPlanCommandJSONParams: plan --json shows what was parsed next to the plan, with the
// password hash redacted (issue 12).
func TestPlanCommandJSONParams(t *testing.T) {
	const hash = "$6$x$y"
	out, err := runCLI(t, "plan", "--json", "--facts", "../../testdata/facts/one-nvme.json",
		"--cmdline", "install storage_init=/dev/nvme0n1 adminpw="+hash+" nodeinit.dryrun")
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	var doc struct {
		Params map[string]any `json:"params"`
		Plan   struct {
			Action string `json:"action"`
			Target struct {
				Path string `json:"path"`
			} `json:"target"`
		} `json:"plan"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if strings.Contains(out, hash) || strings.Contains(out, "$x$") {
		t.Errorf("the output shows the password hash:\n%s", out)
	}
	for k, v := range map[string]any{"storage_init": "/dev/nvme0n1", "adminpw": "<redacted>", "nodeinit.dryrun": true, "action": "install"} {
		if doc.Params[k] != v {
			t.Errorf("params[%q] = %#v, want %#v\n%s", k, doc.Params[k], v, out)
		}
	}
	if doc.Plan.Action != "install" || doc.Plan.Target.Path != "/dev/nvme0n1" {
		t.Errorf("plan = %+v, want an install onto /dev/nvme0n1", doc.Plan)
	}
}

// TestPlanCommandRefusalFixOnItsOwnLine: a refusal prints the message, then the fix and
// the kernel argument on lines of their own, each once.
func TestPlanCommandRefusalFixOnItsOwnLine(t *testing.T) {
	_, err := runCLI(t, "plan", "--facts", "../../testdata/facts/two-identical.json", "--cmdline", "install storage_init=nvme:ALL")
	if err == nil {
		t.Fatal("an ambiguous storage_init was accepted")
	}
	msg := err.Error()
	lines := strings.Split(msg, "\n")
	last, fix := lines[len(lines)-1], lines[len(lines)-2]
	if last != "kernel argument: storage_init=serial:S5GXNF0R100001" || !strings.HasPrefix(fix, "fix: ") {
		t.Fatalf("refusal does not end with the fix and the argument:\n%s", msg)
	}
	if strings.Count(msg, "storage_init=serial:S5GXNF0R100001") != 1 || strings.Count(msg, strings.TrimPrefix(fix, "fix: ")) != 1 {
		t.Errorf("the fix or the argument is shown twice:\n%s", msg)
	}
}
