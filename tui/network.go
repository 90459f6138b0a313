package tui

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/operr"
)

// The network page sets the host name, the interface (BOOTIF, by its MAC),
// DHCP or a static address, a VLAN and the management server. What it makes
// is checked by cmdline.Parse, the grammar every command line goes through.

// staticFields are the fields of a static address.
var staticFields = []struct{ id, label string }{
	{"addr", "Address"}, {"prefix", "Prefix"}, {"gw", "Gateway"}, {"dns", "DNS servers"},
}

func (s *State) networkItems() []item {
	it := []item{{id: "hostname", field: s.field("hostname")}}
	for _, n := range s.Facts.NICs {
		it = append(it, item{id: "nic:" + n.Name})
	}
	it = append(it, item{id: "ip:dhcp"}, item{id: "ip:static"})
	if s.static {
		for _, f := range staticFields {
			it = append(it, item{id: f.id, field: s.field(f.id)})
		}
	}
	return append(it, item{id: "vlan", field: s.field("vlan")}, item{id: "mgmt", field: s.field("mgmt")})
}

// prefillNetwork fills the page from the command line the screen started from.
func (s *State) prefillNetwork() {
	b, f := s.Base, s.Facts
	s.field("hostname").Set(b.Hostname)
	s.nic = ""
	if bi := b.BootIf; bi != nil {
		for _, n := range f.NICs {
			if bi.MAC != "" && strings.EqualFold(n.MAC, bi.MAC) || bi.Name != "" && n.Name == bi.Name {
				s.nic = n.Name
			}
		}
	}
	for _, n := range f.NICs {
		if s.nic == "" && n.Carrier {
			s.nic = n.Name
		}
	}
	if s.nic == "" && len(f.NICs) > 0 {
		s.nic = f.NICs[0].Name
	}
	s.static = false
	for _, id := range []string{"addr", "prefix", "gw", "dns", "vlan", "mgmt"} {
		s.field(id).Clear()
	}
	if ip := b.IP; ip != nil && ip.Address != "" {
		s.static = true
		s.field("addr").Set(ip.Address)
		s.field("prefix").Set(ip.Netmask)
		s.field("gw").Set(ip.Gateway)
		s.field("dns").Set(strings.Join(append(append([]string(nil), b.DNS...), ip.DNS...), ","))
	}
	if b.VLAN != nil {
		s.field("vlan").Set(strconv.Itoa(b.VLAN.ID))
	}
	if m := b.ManagementServer; m != nil {
		v := m.Host
		if m.Port != 0 {
			v = fmt.Sprintf("%s:%d", m.Host, m.Port)
			if strings.Contains(m.Host, ":") {
				v = fmt.Sprintf("[%s]:%d", m.Host, m.Port)
			}
		}
		s.field("mgmt").Set(v)
	}
}

// networkTokens are the page's kernel arguments.
func (s *State) networkTokens() []string {
	val := func(id string) string { return strings.TrimSpace(s.field(id).String()) }
	var t []string
	if h := val("hostname"); h != "" {
		t = append(t, "hostname="+h)
	}
	for _, n := range s.Facts.NICs {
		if n.Name == s.nic {
			t = append(t, "BOOTIF="+n.MAC)
		}
	}
	if s.static {
		t = append(t, "ip="+val("addr"), "netmask="+val("prefix"))
		if g := val("gw"); g != "" {
			t = append(t, "gateway="+g)
		}
		if d := strings.Join(strings.Fields(strings.ReplaceAll(val("dns"), ",", " ")), ","); d != "" {
			t = append(t, "dns="+d)
		}
	} else {
		t = append(t, "ip=dhcp")
	}
	if v := val("vlan"); v != "" {
		t = append(t, "vlan="+v)
	}
	if m := val("mgmt"); m != "" {
		t = append(t, "management_server="+m)
	}
	return t
}

// networkDone checks the page's arguments with cmdline.Parse.
func (s *State) networkDone() error {
	if s.static {
		for _, f := range staticFields[:2] {
			if s.field(f.id).Empty() {
				s.focus = f.id
				return fmt.Errorf("a static address needs the %s", strings.ToLower(f.label))
			}
		}
	}
	if _, err := cmdline.Parse(strings.Join(s.networkTokens(), " ")); err != nil {
		return errors.New(firstProblem(err))
	}
	return nil
}

// firstProblem is the first refusal of a parse in a sentence, with its fix.
func firstProblem(err error) string {
	for {
		j, ok := err.(interface{ Unwrap() []error })
		if !ok || len(j.Unwrap()) == 0 {
			break
		}
		err = j.Unwrap()[0]
	}
	d := operr.Describe(err)
	if d.Fix != "" {
		return d.Message + "; " + d.Fix
	}
	return d.Message
}

func (s *State) networkBody(b *body, w int) {
	fieldLine := func(id, label, note string, width int) {
		b.text(" %s %s", s.marker(id), pad(label, 18))
		b.add(s.focusAttr(id), "[%s]", pad(s.field(id).show(width), width))
		if note != "" {
			b.text("  %s", note)
		}
		b.nl()
	}
	fieldLine("hostname", "Host name", "", 40)
	b.nl()
	if len(s.Facts.NICs) == 0 {
		b.text("   Interface          none found: the node gets no network configuration")
		b.nl()
	}
	for i, n := range s.Facts.NICs {
		id := "nic:" + n.Name
		label := ""
		if i == 0 {
			label = "Interface"
		}
		mark := "( )"
		if n.Name == s.nic {
			mark = "(*)"
		}
		link := "no link"
		if n.Carrier {
			link = "link up"
		}
		b.text(" %s %s", s.marker(id), pad(label, 18))
		b.add(s.focusAttr(id), "%s %s", mark, pad(clean(n.Name), 10))
		b.text(" %s  %s  %s", clean(n.MAC), pad(link, 7), clean(n.Driver))
		b.nl()
	}
	for _, o := range []struct {
		id, label, text string
		on              bool
	}{{"ip:dhcp", "Address", "DHCP", !s.static}, {"ip:static", "", "static", s.static}} {
		mark := "( )"
		if o.on {
			mark = "(*)"
		}
		b.text(" %s %s", s.marker(o.id), pad(o.label, 18))
		b.add(s.focusAttr(o.id), "%s %s", mark, o.text)
		b.nl()
	}
	if s.static {
		for _, f := range staticFields {
			note := map[string]string{"prefix": "24 or 255.255.255.0", "dns": "comma separated"}[f.id]
			fieldLine(f.id, "  "+f.label, note, 30)
		}
	}
	b.nl()
	fieldLine("vlan", "VLAN ID", "empty: none", 6)
	fieldLine("mgmt", "Management server", "optional: HOST[:PORT]", 30)
	b.nl()
	s.buttons(b, "next", "back")
}
