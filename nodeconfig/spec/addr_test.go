package spec

import (
	"net"
	"strings"
	"testing"
)

// addrSamples are inputs on which our net replacements must agree with package net.
var addrSamples = []string{
	"", ":", "[", "]", "[]", "[]:", "[::1]", "[::1]:", "[::1]:443", "[::1]:44:3", "[::1]x", "[::1]]:1", "[[::1]:1",
	"::1", "2001:db8::1", "host", "host:", "host:514", "host:5:14", "ho[st:1", "host:]1", "a]b:1", "[a]b:1",
	"[2001:db8::1%eth0]:443", "192.0.2.1:65535", ":80", "[:80",
	"52:54:00:12:34:56", "52-54-00-12-34-56", "52:54:00:12:34", "52:54:00:12:34:56:78", "52:54:00:12:34:56:78:9a",
	"52-54:00-12-34-56", "5:54:00:12:34:56", "52:54:00:12:34:5g", "AA:BB:CC:DD:EE:FF", "a:b:c:d:e:f",
	"00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", "5254.0012.3456", "52:54:00:12:34:56\n",
}

func checkAddrHelpers(t *testing.T, s string) {
	h, p, ok := cutPort(s)
	nh, np, err := net.SplitHostPort(s)
	if ok != (err == nil) || ok && (h != nh || p != np) {
		t.Errorf("cutPort(%q) = %q, %q, %v; net.SplitHostPort = %q, %q, %v", s, h, p, ok, nh, np, err)
	}
	if got, want := joinHostPort(s, "514"), net.JoinHostPort(s, "514"); got != want {
		t.Errorf("joinHostPort(%q) = %q, net.JoinHostPort = %q", s, got, want)
	}
	mac, ok := parseMAC(s)
	hw, err := net.ParseMAC(s)
	switch {
	case ok && (err != nil || hw.String() != mac):
		t.Errorf("parseMAC(%q) = %q, net.ParseMAC = %v, %v", s, mac, hw, err)
	case !ok && err == nil && strings.ContainsAny(s, ":-") && !strings.Contains(s, "."):
		// Cisco's dotted form and bare hex digits are what we leave out: BOOTIF and
		// the facts write MACs with ':' or '-'.
		t.Errorf("parseMAC(%q) refused what net.ParseMAC reads as %v", s, hw)
	}
}

// TestAddrHelpersMatchNet: cutPort, joinHostPort and parseMAC read what package net reads.
func TestAddrHelpersMatchNet(t *testing.T) {
	for _, s := range append(addrSamples, hostile...) {
		checkAddrHelpers(t, s)
	}
}

// FuzzAddrHelpers compares the helpers with package net on any input.
func FuzzAddrHelpers(f *testing.F) {
	for _, s := range append(addrSamples, hostile...) {
		f.Add(s)
	}
	f.Fuzz(checkAddrHelpers)
}

// TestMaskBitsMatchesNet: maskBits is net.IPMask.Size for every mask of one or two
// runs of ones and for scattered bits (net says 0, 0 for a non-contiguous mask).
func TestMaskBitsMatchesNet(t *testing.T) {
	check := func(v uint32) {
		m := [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
		want, bits := net.IPMask(m[:]).Size()
		if bits == 0 {
			want = -1
		}
		if got := maskBits(m); got != want {
			t.Errorf("maskBits(%v) = %d, net says %d", m, got, want)
		}
	}
	for i := 0; i <= 32; i++ {
		for j := 0; j <= 32; j++ {
			check(^uint32(0)<<(32-i)&^(^uint32(0)<<(32-j)) | 1<<(i%32)) // a run, then a stray bit
			if i < 32 {
				check(^uint32(0) << i)
			}
		}
	}
	for _, v := range []uint32{0, 0xffffffff, 0xffffff00, 0xfffffe00, 0xff00ff00, 0x80000000, 0x00000001, 0x7fffffff} {
		check(v)
	}
}

// TestPrefixLen: the netmask forms FromParams turns into an Address prefix.
func TestPrefixLen(t *testing.T) {
	for mask, want := range map[string]int{"24": 24, "255.255.255.0": 24, "255.255.254.0": 23, "0.0.0.0": 0, "255.255.255.255": 32,
		"255.0.255.0": -1, "2001:db8::": -1, "x": -1} {
		if got := prefixLen(mask); got != want {
			t.Errorf("prefixLen(%q) = %d, want %d", mask, got, want)
		}
	}
}
