package cmdline

import (
	"encoding/json"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const redactHash = "$6$saltsalt$GyB1s3q6Esx33IRI49rK5RM7VdJObU"

// TestRedactedShowsParsedNeverSecrets: the params view names what was parsed, with the
// values an operator checks, and never a hash or a URL credential.
func TestRedactedShowsParsedNeverSecrets(t *testing.T) {
	line := "reinstall storage_init=/dev/sda;serial:X2 storage_vol=:4096::5:2048:-1 BOOTIF=01-52:54:00:12:34:56 " +
		"ip=10.0.0.5/24 gateway=10.0.0.1 dns=10.0.0.53 ntp=ntp.example.com hostname=node1 management_server=[2001:db8::1]:443 " +
		"adminpw=" + redactHash + " ovirt_rootpw=RHhwCLrQXB8zE " +
		"nodeinit.image=https://bob:hunter2@images.example.com/b/?X-Amz-Signature=topsecret nodeinit.status_url=http://tok3n@h/s#frag " +
		"local_boot_trigger=cobbler:redhat123@h/nopxe/@HOSTNAME@ nodeinit.keep=data nodeinit.dryrun nodeinit.force quiet"
	p := mustParse(t, line)
	r := p.Redacted()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{redactHash, "GyB1s3q6", "RHhwCLrQXB8zE", "hunter2", "bob", "topsecret", "tok3n", "frag", "redhat123", "cobbler"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("params show %q: %s", secret, b)
		}
	}
	want := map[string]any{
		"action":              "reinstall",
		"storage_init":        "/dev/sda;serial:X2",
		"BOOTIF":              "52:54:00:12:34:56",
		"ip":                  "10.0.0.5::10.0.0.1:24",
		"dns":                 "10.0.0.53",
		"ntp":                 "ntp.example.com",
		"hostname":            "node1",
		"management_server":   "[2001:db8::1]:443",
		"adminpw":             Redacted,
		"rootpw":              Redacted,
		"nodeinit.image":      "https://<redacted>@images.example.com/b/?<redacted>",
		"nodeinit.status_url": "http://<redacted>@h/s#<redacted>",
		"local_boot_trigger":  "<redacted>@h/nopxe/@HOSTNAME@",
		"nodeinit.keep":       "data",
		"nodeinit.dryrun":     true,
		"nodeinit.force":      true,
	}
	for k, v := range want {
		if r[k] != v {
			t.Errorf("params[%q] = %#v, want %#v", k, r[k], v)
		}
	}
	if _, ok := r["storage_vol"]; !ok {
		t.Errorf("params lack storage_vol: %s", b)
	}
	for _, k := range []string{"quiet", "nodeinit.debug", "reinstall", "gateway"} {
		if _, ok := r[k]; ok {
			t.Errorf("params show %q, which was not given or not interpreted: %s", k, b)
		}
	}
}

// TestRedactedCoversEveryNodeKey: every nodeinit.* key the parser knows appears in the view
// when given, so a new key cannot be forgotten.
func TestRedactedCoversEveryNodeKey(t *testing.T) {
	line := "reinstall storage_init=/dev/sda nodeinit.image=label:X nodeinit.image.sha256=" + strings.Repeat("ab", 32) +
		" nodeinit.dryrun nodeinit.debug nodeinit.insecure nodeinit.force nodeinit.break=partition nodeinit.onfail=shell" +
		" nodeinit.status_url=http://h/s nodeinit.status_stages nodeinit.events=ttyS1 nodeinit.wipe=S1 nodeinit.keep=data nodeinit.slot=b nodeinit.tries=2 nodeinit.firmware=bios" +
		" nodeinit.erase=zero nodeinit.erase.secure nodeinit.adminpw=bundle nodeinit.tpm=required nodeinit.interactive=0"
	r := mustParse(t, line).Redacted()
	var got []string
	for k := range r {
		if strings.HasPrefix(k, "nodeinit.") {
			got = append(got, k)
		}
	}
	sort.Strings(got)
	if want := nodeKeyNames(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("params show the nodeinit keys\n %q\nwant\n %q", got, want)
	}
}

// TestRedactedGoldens: no golden line's params view shows a secret.
func TestRedactedGoldens(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.txt"))
	if err != nil || len(files) < 40 {
		t.Fatalf("golden lines: %d, %v", len(files), err)
	}
	for _, f := range files {
		p, err := Parse(readLine(t, f))
		if err != nil {
			continue
		}
		b, _ := json.Marshal(p.Redacted())
		checkNoSecret(t, filepath.Base(f), string(b))
		if p.AdminPW != "" && strings.Contains(string(b), p.AdminPW.Reveal()) || p.RootPW != "" && strings.Contains(string(b), p.RootPW.Reveal()) {
			t.Errorf("%s: params show a password hash: %s", f, b)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://h/b/":                      "https://h/b/",
		"label:NODEINIT":                    "label:NODEINIT",
		"/run/media/bundle":                 "/run/media/bundle",
		"https://u:p@h:8443/b":              "https://<redacted>@h:8443/b",
		"https://h/b?":                      "https://h/b?<redacted>",
		"h/nopxe/@HOSTNAME@":                "h/nopxe/@HOSTNAME@",
		"https://h/b?sig=1&x":               "https://h/b?<redacted>",
		"http://[2001:db8::1]:80/a?t=1":     "http://[2001:db8::1]:80/a?<redacted>",
		"http://%zz@h/":                     Redacted,
		"http://h/p%20q?t=1":                "http://h/p%20q?<redacted>",
		"https://h/nodes/@MAC@/bundle/#x=1": "https://h/nodes/@MAC@/bundle/#<redacted>",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
