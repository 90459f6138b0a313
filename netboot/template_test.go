package netboot

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/cmdline"
)

var vars = Vars{MAC: "52:54:00:ab:cd:ef", Serial: "SN 42.7", UUID: "4c4c4544-0042-3510-8052-b7c04f4e3232", Hostname: "node7", IP: "192.0.2.7"}

func TestExpand(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://10.0.2.2:8080/bundle/", "http://10.0.2.2:8080/bundle/"},
		{"http://h/${mac}/", "http://h/52:54:00:ab:cd:ef/"},
		{"http://h/${MAC}/", "http://h/52:54:00:ab:cd:ef/"},
		{"http://h/${mac_hyphen}/", "http://h/52-54-00-ab-cd-ef/"},
		{"http://h/by-uuid/${uuid}/", "http://h/by-uuid/4c4c4544-0042-3510-8052-b7c04f4e3232/"},
		// a serial is escaped for the path (a slash is refused: TestExpandKeepsThePathShape).
		{"http://h/${serial}/", "http://h/SN%2042.7/"},
		{"http://h/s?host=${hostname}&m=${mac}", "http://h/s?host=node7&m=52:54:00:ab:cd:ef"},
		// oVirt's and Cobbler's @HOSTNAME@, and the @MAC@ form the iPXE/GRUB configs carry.
		{"http://cobbler/cblr/svc/op/nopxe/system/@HOSTNAME@", "http://cobbler/cblr/svc/op/nopxe/system/node7"},
		{"http://h/@MAC@/", "http://h/52:54:00:ab:cd:ef/"},
		{"http://h/by-ip/${ip}/", "http://h/by-ip/192.0.2.7/"},
		{"http://h/@IP@/", "http://h/192.0.2.7/"},
		// Mirrors: every URL of the list expands.
		{"http://a/${mac}/,http://b/${mac}/", "http://a/52:54:00:ab:cd:ef/,http://b/52:54:00:ab:cd:ef/"},
		// @ that is not a known template stays.
		{"http://user@h/@x@/@FOO@", "http://user@h/@x@/@FOO@"},
		{"", ""},
	}
	for _, tt := range tests {
		got, err := Expand(tt.in, vars)
		if err != nil || got != tt.want {
			t.Errorf("Expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestExpandErrors(t *testing.T) {
	tests := []struct {
		in   string
		v    Vars
		want []string
	}{
		{"http://h/${nic}/", vars, []string{"unknown name ${nic}", "${mac}", "${hostname}"}},
		{"http://h/${mac/", vars, []string{"not closed"}},
		{"http://h/${serial}/", Vars{MAC: "x"}, []string{"${serial} is empty", "DMI", "${mac}"}},
		{"http://h/${hostname}/", Vars{MAC: "x"}, []string{"hostname=NAME"}},
		{"http://h/@MAC@/", Vars{}, []string{"${mac} is empty", "BOOTIF="}},
		{"http://h/${ip}/", Vars{MAC: "x"}, []string{"${ip} is empty", "${mac}"}},
	}
	for _, tt := range tests {
		_, err := Expand(tt.in, tt.v)
		if err == nil {
			t.Errorf("Expand(%q) succeeded", tt.in)
			continue
		}
		if !errors.Is(err, ErrTemplate) {
			t.Errorf("Expand(%q): %v is not ErrTemplate", tt.in, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Expand(%q) error %q lacks %q", tt.in, err, w)
			}
		}
	}
}

func TestExpandParams(t *testing.T) {
	p := parse(t, "install nodeinit.image=http://10.0.2.2/${mac}/ nodeinit.status_url=http://h/s/${uuid} "+
		"local_boot_trigger=cobbler/nopxe/@HOSTNAME@ hostname=node7")
	if !NeedsVars(p) {
		t.Fatal("NeedsVars = false")
	}
	if err := ExpandParams(p, vars); err != nil {
		t.Fatal(err)
	}
	if p.Node.Image != "http://10.0.2.2/52:54:00:ab:cd:ef/" || p.Node.StatusURL != "http://h/s/"+vars.UUID || p.LocalBootTrigger != "cobbler/nopxe/node7" {
		t.Errorf("expanded: %q %q %q", p.Node.Image, p.Node.StatusURL, p.LocalBootTrigger)
	}
	if NeedsVars(p) {
		t.Error("NeedsVars after expansion")
	}

	// One failure leaves every field as written and names the key.
	p = parse(t, "install nodeinit.image=http://10.0.2.2/${mac}/ nodeinit.status_url=http://h/s/${serial}")
	err := ExpandParams(p, Vars{MAC: "52:54:00:ab:cd:ef"})
	if err == nil || !strings.Contains(err.Error(), "nodeinit.status_url") {
		t.Fatalf("err = %v, want one naming nodeinit.status_url", err)
	}
	if p.Node.Image != "http://10.0.2.2/${mac}/" {
		t.Errorf("image changed on failure: %q", p.Node.Image)
	}
}

func TestToAtForm(t *testing.T) {
	in := "nodeinit.image=http://h/${mac}/${serial}/ hostname=${hostname} x=${other}"
	want := "nodeinit.image=http://h/@MAC@/@SERIAL@/ hostname=@HOSTNAME@ x=${other}"
	if got := ToAtForm(in); got != want {
		t.Errorf("ToAtForm = %q, want %q", got, want)
	}
	// Both forms expand alike.
	a, _ := Expand("http://h/${mac}/${uuid}", vars)
	b, _ := Expand(ToAtForm("http://h/${mac}/${uuid}"), vars)
	if a != b {
		t.Errorf("%q != %q", a, b)
	}
}

func TestReadDMI(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "sys/class/dmi/id")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "product_serial"), []byte("ABC123\n"), 0o444)
	os.WriteFile(filepath.Join(dir, "product_uuid"), []byte("4C4C4544-0042-3510-8052-B7C04F4E3232\n"), 0o444)
	s, u := ReadDMI(root)
	if s != "ABC123" || u != "4c4c4544-0042-3510-8052-b7c04f4e3232" {
		t.Errorf("ReadDMI = %q %q", s, u)
	}
	os.WriteFile(filepath.Join(dir, "product_serial"), []byte("To Be Filled By O.E.M.\n"), 0o444)
	os.WriteFile(filepath.Join(dir, "product_uuid"), []byte("00000000-0000-0000-0000-000000000000\n"), 0o444)
	if s, u := ReadDMI(root); s != "" || u != "" {
		t.Errorf("placeholders read as %q %q", s, u)
	}
}

// TestExpandKeepsThePathShape: a value that would change which path the URL
// names ("." and "..", which JoinPath and URL resolution clean away, a
// slash, a backslash, a control character) or a DHCP host name that is no
// host name is refused, naming the template; ordinary values expand.
func TestExpandKeepsThePathShape(t *testing.T) {
	const tmpl = "http://srv/nodes/${serial}/bundle/?h=${hostname}"
	for _, c := range []struct {
		v    Vars
		want string
	}{
		{Vars{Serial: "..", Hostname: "n1"}, "${serial}"},
		{Vars{Serial: ".", Hostname: "n1"}, "${serial}"},
		{Vars{Serial: "a/../../etc", Hostname: "n1"}, "${serial}"},
		{Vars{Serial: `a\b`, Hostname: "n1"}, "${serial}"},
		{Vars{Serial: "a\nb", Hostname: "n1"}, "${serial}"},
		{Vars{Serial: "S1", Hostname: ".."}, "${hostname}"},
		{Vars{Serial: "S1", Hostname: "evil host"}, "${hostname}"},
		{Vars{Serial: "S1", Hostname: "-bad.example.com"}, "${hostname}"},
	} {
		got, err := Expand(tmpl, c.v)
		if err == nil || !errors.Is(err, ErrTemplate) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Expand with %+v = %q, %v; want an error naming %s", c.v, got, err, c.want)
		}
	}
	got, err := Expand(tmpl, Vars{Serial: "VMware-56 4d.1a", Hostname: "node-7.example.com"})
	if err != nil || got != "http://srv/nodes/VMware-56%204d.1a/bundle/?h=node-7.example.com" {
		t.Errorf("Expand of ordinary values = %q, %v", got, err)
	}
}

func TestResultVarsCarryTheAddress(t *testing.T) {
	r := &Result{MAC: "52:54:00:ab:cd:ef", Address: netip.MustParsePrefix("192.0.2.7/24")}
	if v := r.Vars(&cmdline.Params{}, "s", "u"); v.IP != "192.0.2.7" || v.MAC != r.MAC || v.Serial != "s" {
		t.Errorf("Vars = %+v", v)
	}
	if v := (&Result{MAC: "m"}).Vars(&cmdline.Params{}, "", ""); v.IP != "" {
		t.Errorf("no address gave ${ip} = %q", v.IP)
	}
}

func TestIdentify(t *testing.T) {
	root := t.TempDir()
	dmi := filepath.Join(root, "sys/class/dmi/id")
	os.MkdirAll(dmi, 0o755)
	os.WriteFile(filepath.Join(dmi, "product_serial"), []byte("VM-7\n"), 0o644)
	os.WriteFile(filepath.Join(dmi, "product_uuid"), []byte("4C4C4544-0037\n"), 0o644)
	link := &Result{MAC: "52:54:00:ab:cd:ef", Address: netip.MustParsePrefix("192.0.2.7/24"), Hostname: "from-dhcp"}
	got := Identify(&cmdline.Params{}, link, root)
	want := Identity{Hostname: "from-dhcp", MAC: link.MAC, IP: "192.0.2.7", Serial: "VM-7", UUID: "4c4c4544-0037"}
	if got != want {
		t.Errorf("Identify = %+v, want %+v", got, want)
	}
	if got := Identify(&cmdline.Params{Hostname: "node7"}, nil, root); got.Hostname != "node7" || got.MAC != "" || got.Serial != "VM-7" {
		t.Errorf("Identify without a link = %+v", got)
	}
}
