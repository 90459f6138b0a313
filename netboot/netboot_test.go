package netboot

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/cmdline"
)

// fakeSystem is the kernel edge in memory: links gain carrier once set up (when wired),
// and every change is recorded as a line.
type fakeSystem struct {
	mu      sync.Mutex
	links   []Link
	wired   map[string]bool // carrier appears when set up
	appear  map[string]int  // the link is listed only from this call of Links on
	calls   int
	log     []string
	dhcpErr error
	lease   Lease
}

func (f *fakeSystem) Links() ([]Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	var out []Link
	for _, l := range f.links {
		if n, ok := f.appear[l.Name]; ok && f.calls < n {
			continue
		}
		out = append(out, l)
	}
	return out, nil
}

func (f *fakeSystem) record(format string, a ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, fmt.Sprintf(format, a...))
}

func (f *fakeSystem) SetUp(name string, mtu int) error {
	f.record("up %s mtu=%d", name, mtu)
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.links {
		if f.links[i].Name == name && f.wired[name] {
			f.links[i].Carrier = true
		}
	}
	return nil
}

func (f *fakeSystem) AddVLAN(parent, name string, id int) error {
	f.record("vlan %s on %s id=%d", name, parent, id)
	f.mu.Lock()
	f.links = append(f.links, Link{Name: name, Index: 100, MAC: "vlan"})
	f.mu.Unlock()
	return nil
}

func (f *fakeSystem) AddAddress(name string, addr netip.Prefix) error {
	f.record("addr %s %s", name, addr)
	return nil
}

func (f *fakeSystem) AddDefaultRoute(name string, gw netip.Addr) error {
	f.record("route %s via %s", name, gw)
	return nil
}

func (f *fakeSystem) DHCP(_ context.Context, name string, v6 bool) (Lease, error) {
	f.record("dhcp %s v6=%v", name, v6)
	return f.lease, f.dhcpErr
}

func (f *fakeSystem) WriteResolvConf(dns []netip.Addr) error {
	f.record("resolv %s", joinAddrs(dns))
	return nil
}

// twoNICs: eth0 has no cable, eth1 has one; neither shows carrier until it is up.
func twoNICs() *fakeSystem {
	return &fakeSystem{
		links: []Link{
			{Name: "lo", Index: 1, MAC: "00:00:00:00:00:00"},
			{Name: "eth0", Index: 2, MAC: "52:54:00:00:00:01", Physical: true},
			{Name: "eth1", Index: 3, MAC: "52:54:00:00:00:02", Physical: true},
		},
		wired: map[string]bool{"eth1": true},
		lease: Lease{Address: netip.MustParsePrefix("10.0.2.15/24"), Gateway: netip.MustParseAddr("10.0.2.2"),
			DNS: []netip.Addr{netip.MustParseAddr("10.0.2.3")}, Hostname: "from-dhcp"},
	}
}

func parse(t *testing.T, line string) *cmdline.Params {
	t.Helper()
	p, err := cmdline.Parse(line)
	if err != nil {
		t.Fatalf("parse %q: %v", line, err)
	}
	return p
}

var fast = Options{LinkTimeout: 300 * time.Millisecond, CarrierTimeout: 300 * time.Millisecond, Poll: 10 * time.Millisecond}

func up(t *testing.T, sys *fakeSystem, line string) (*Result, error) {
	t.Helper()
	o := fast
	o.System = sys
	return Up(context.Background(), parse(t, line), o)
}

func TestUpChoosesInterface(t *testing.T) {
	tests := []struct {
		line      string
		iface     string
		device    string
		method    string
		wantLog   []string // substrings, in order
		wantNoLog string
	}{
		{line: "BOOTIF=01-52-54-00-00-00-01", iface: "eth0", device: "eth0", method: "dhcp",
			wantLog: []string{"up eth0", "dhcp eth0 v6=false"}, wantNoLog: "up eth1"},
		{line: "BOOTIF=52:54:00:00:00:02", iface: "eth1", device: "eth1", method: "dhcp",
			wantLog: []string{"up eth1", "dhcp eth1"}, wantNoLog: "up eth0"},
		{line: "BOOTIF=eth0", iface: "eth0", device: "eth0", method: "dhcp", wantNoLog: "up eth1"},
		// link: both are raised to look for carrier; eth1 has the cable.
		{line: "BOOTIF=link", iface: "eth1", device: "eth1", method: "dhcp",
			wantLog: []string{"up eth0", "up eth1", "dhcp eth1"}, wantNoLog: "dhcp eth0"},
		// no BOOTIF and two NICs: the first with carrier.
		{line: "ip=dhcp", iface: "eth1", device: "eth1", method: "dhcp"},
		{line: "ip=eth0:dhcp", iface: "eth0", device: "eth0", method: "dhcp"},
		{line: "ip=10.1.2.3::10.1.2.1:255.255.255.0:node1:eth0:none dns=10.1.2.53", iface: "eth0", device: "eth0", method: "static",
			wantLog: []string{"up eth0", "addr eth0 10.1.2.3/24", "route eth0 via 10.1.2.1", "resolv 10.1.2.53"}, wantNoLog: "dhcp"},
		{line: "BOOTIF=52:54:00:00:00:02 ip=10.1.2.3 netmask=16 gateway=10.1.0.1", iface: "eth1", device: "eth1", method: "static",
			wantLog: []string{"addr eth1 10.1.2.3/16", "route eth1 via 10.1.0.1"}},
		{line: "BOOTIF=52:54:00:00:00:01 vlan=100", iface: "eth0.100", device: "eth0", method: "dhcp",
			wantLog: []string{"up eth0", "vlan eth0.100 on eth0 id=100", "up eth0.100", "dhcp eth0.100"}},
		{line: "vlan=42:eth1 ip=10.9.0.5::10.9.0.1:255.255.255.0", iface: "eth1.42", device: "eth1", method: "static",
			wantLog: []string{"vlan eth1.42 on eth1 id=42", "addr eth1.42 10.9.0.5/24"}},
		{line: "vlan=mgmt7:eth0", iface: "mgmt7", device: "eth0", method: "dhcp", wantLog: []string{"vlan mgmt7 on eth0 id=7"}},
		{line: "BOOTIF=eth1 ip=dhcp6", iface: "eth1", device: "eth1", method: "dhcp6", wantLog: []string{"dhcp eth1 v6=true"}},
		{line: "BOOTIF=eth1 ip=eth1:dhcp:9000", iface: "eth1", device: "eth1", method: "dhcp", wantLog: []string{"up eth1 mtu=9000"}},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			sys := twoNICs()
			res, err := up(t, sys, tt.line)
			if err != nil {
				t.Fatalf("Up: %v\nlog: %q", err, sys.log)
			}
			if res.Interface != tt.iface || res.Device != tt.device || res.Method != tt.method {
				t.Errorf("got %s on %s by %s, want %s on %s by %s", res.Interface, res.Device, res.Method, tt.iface, tt.device, tt.method)
			}
			log := strings.Join(sys.log, "\n")
			at := 0
			for _, w := range tt.wantLog {
				i := strings.Index(log[at:], w)
				if i < 0 {
					t.Errorf("log lacks %q after position %d:\n%s", w, at, log)
					break
				}
				at += i + len(w)
			}
			if tt.wantNoLog != "" && strings.Contains(log, tt.wantNoLog) {
				t.Errorf("log has %q:\n%s", tt.wantNoLog, log)
			}
		})
	}
}

func TestUpDHCPResult(t *testing.T) {
	sys := twoNICs()
	res, err := up(t, sys, "BOOTIF=01-52-54-00-00-00-02 dns=1.1.1.1")
	if err != nil {
		t.Fatal(err)
	}
	if res.MAC != "52:54:00:00:00:02" || res.Address.String() != "10.0.2.15/24" || res.Gateway.String() != "10.0.2.2" || res.Hostname != "from-dhcp" {
		t.Errorf("result %+v", res)
	}
	// dns= on the command line overrides the server's.
	if joinAddrs(res.DNS) != "1.1.1.1" || sys.log[len(sys.log)-1] != "resolv 1.1.1.1" {
		t.Errorf("dns %v, log %q", res.DNS, sys.log)
	}
	if got := res.String(); !strings.Contains(got, "eth1 (52:54:00:00:00:02) dhcp 10.0.2.15/24 via 10.0.2.2") {
		t.Errorf("String() = %q", got)
	}
}

func TestUpWaitsForLateNIC(t *testing.T) {
	sys := twoNICs()
	sys.appear = map[string]int{"eth1": 5} // the driver binds a moment later
	res, err := up(t, sys, "BOOTIF=52:54:00:00:00:02")
	if err != nil {
		t.Fatal(err)
	}
	if res.Interface != "eth1" || sys.calls < 5 {
		t.Errorf("got %s after %d looks", res.Interface, sys.calls)
	}
}

func TestUpErrors(t *testing.T) {
	tests := []struct {
		name   string
		sys    func() *fakeSystem
		line   string
		want   []string
		wantIs error
		// atParse: the parser already refuses the line, so it never reaches Up; the
		// refusal must name the argument and carry the fix (want is matched in the hint).
		atParse string
	}{
		{name: "unknown MAC", sys: twoNICs, line: "BOOTIF=01-aa-bb-cc-dd-ee-ff",
			want: []string{"BOOTIF=aa:bb:cc:dd:ee:ff", "eth0 (52:54:00:00:00:01)", "eth1 (52:54:00:00:00:02)", "BOOTIF=link"}, wantIs: ErrNoInterface},
		{name: "unknown name", sys: twoNICs, line: "BOOTIF=eth7", want: []string{"BOOTIF=eth7", "eth0"}, wantIs: ErrNoInterface},
		{name: "no carrier", sys: func() *fakeSystem { s := twoNICs(); s.wired = nil; return s }, line: "BOOTIF=link",
			want: []string{"no cable", "eth0", "eth1", "BOOTIF="}, wantIs: ErrNoInterface},
		{name: "no NIC", sys: func() *fakeSystem { return &fakeSystem{} }, line: "ip=dhcp",
			want: []string{"no network interface", "driver"}, wantIs: ErrNoInterface},
		{name: "no netmask", sys: twoNICs, line: "BOOTIF=eth0 ip=10.1.2.3", want: []string{"netmask=255.255.255.0", "ip=ADDR/24"}, atParse: "ip=10.1.2.3"},
		{name: "gateway off net", sys: twoNICs, line: "BOOTIF=eth0 ip=10.1.2.3::10.9.9.1:255.255.255.0", want: []string{"gateway 10.9.9.1", "10.1.2.0/24"}},
		{name: "ip=none", sys: twoNICs, line: "BOOTIF=eth0 ip=none", want: []string{"without an address", "ip=dhcp"}},
		{name: "dhcp fails", sys: func() *fakeSystem { s := twoNICs(); s.dhcpErr = errors.New("timeout"); return s },
			line: "BOOTIF=eth1", want: []string{"dhcp on eth1", "timeout", "DHCP server", "ip=ADDR"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.atParse != "" {
				_, err := cmdline.Parse(tt.line)
				var e *cmdline.Error
				if !errors.As(err, &e) {
					t.Fatalf("Parse(%q) = %v, want a *cmdline.Error", tt.line, err)
				}
				if e.Token != tt.atParse || e.Key != "ip" || !strings.Contains(err.Error(), tt.atParse) {
					t.Errorf("refusal names %q (key %q), want %q: %v", e.Token, e.Key, tt.atParse, err)
				}
				for _, w := range tt.want {
					if !strings.Contains(e.Hint, w) {
						t.Errorf("fix %q lacks %q", e.Hint, w)
					}
				}
				return
			}
			sys := tt.sys()
			_, err := up(t, sys, tt.line)
			if err == nil {
				t.Fatal("Up succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
		})
	}
}

// Bad addressing is refused before any link is touched.
func TestUpBadInputTouchesNothing(t *testing.T) {
	sys := twoNICs()
	if _, err := up(t, sys, "BOOTIF=eth0 ip=10.1.2.3::10.9.9.1:255.255.255.0"); err == nil {
		t.Fatal("Up succeeded")
	}
	if len(sys.log) != 0 {
		t.Errorf("changes made: %q", sys.log)
	}
}

func TestNeeded(t *testing.T) {
	tests := []struct {
		line             string
		needed, required bool
	}{
		{"install storage_init", false, false},
		{"install nodeinit.image=http://10.0.2.2/b/", true, true},
		{"install nodeinit.image=https://h/b/ BOOTIF=link", true, true},
		{"install nodeinit.status_url=http://h/s", true, false},
		{"upgrade local_boot_trigger=http://h/x/@HOSTNAME@", true, false},
		{"install nodeinit.image=label:NODEINIT BOOTIF=eth0", false, false},
	}
	for _, tt := range tests {
		p := parse(t, tt.line)
		if Needed(p) != tt.needed || Required(p) != tt.required {
			t.Errorf("%q: needed=%v required=%v, want %v %v", tt.line, Needed(p), Required(p), tt.needed, tt.required)
		}
	}
}

func TestPrepare(t *testing.T) {
	root := t.TempDir()
	dmi := root + "/sys/class/dmi/id"
	if err := mkfile(dmi+"/product_serial", "SER-9"); err != nil {
		t.Fatal(err)
	}
	o := PrepareOptions{Options: fast, Root: root}

	// Nothing needs the network: nothing is touched.
	sys := twoNICs()
	o.System = sys
	res, warns, err := Prepare(context.Background(), parse(t, "install storage_init BOOTIF=eth0"), o)
	if res != nil || warns != nil || err != nil || len(sys.log) != 0 {
		t.Fatalf("Prepare without need: %v %v %v, log %q", res, warns, err, sys.log)
	}

	// An HTTP image with templates: up, then expanded with the boot NIC's MAC and DMI.
	p := parse(t, "install nodeinit.image=http://10.0.2.2/n/${mac}/${serial}/ BOOTIF=01-52-54-00-00-00-02")
	res, _, err = Prepare(context.Background(), p, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Interface != "eth1" || p.Node.Image != "http://10.0.2.2/n/52:54:00:00:00:02/SER-9/" {
		t.Errorf("interface %s, image %q", res.Interface, p.Node.Image)
	}

	// The network fails: fatal for an HTTP image, a warning for a status URL, which is dropped.
	o.System = func() *fakeSystem { s := twoNICs(); s.dhcpErr = errors.New("no offer"); return s }()
	if _, _, err := Prepare(context.Background(), parse(t, "install nodeinit.image=http://h/b/"), o); err == nil ||
		!strings.Contains(err.Error(), "nodeinit.image=http://h/b/") {
		t.Errorf("HTTP image without network: %v", err)
	}
	p = parse(t, "install nodeinit.status_url=http://h/s/${mac}")
	_, warns, err = Prepare(context.Background(), p, o)
	if err != nil || len(warns) != 1 || p.Node.StatusURL != "" {
		t.Errorf("status URL without network: err %v, warnings %q, status_url %q", err, warns, p.Node.StatusURL)
	}
}

func mkfile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}
