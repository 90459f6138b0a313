package cmdline

import (
	"strconv"
	"strings"
	"testing"
)

func TestImageMirrors(t *testing.T) {
	p := mustParse(t, "nodeinit.image=http://a/bundle/,https://b:8443/x,y/bundle/")
	if got := SplitMirrors(p.Node.Image); strings.Join(got, " ") != "http://a/bundle/ https://b:8443/x,y/bundle/" {
		t.Errorf("mirrors %q", got)
	}
	if _, err := Parse("nodeinit.image=http://a/,http://"); err == nil {
		t.Error("a mirror without a host was accepted")
	}
}

func TestSyslogTransport(t *testing.T) {
	for line, want := range map[string]string{
		"syslog=192.0.2.1":               "192.0.2.1 0 ",
		"syslog=tcp://192.0.2.1:601":     "192.0.2.1 601 tcp",
		"syslog=UDP://logs.example":      "logs.example 0 udp",
		"syslog=tcp://[2001:db8::1]:514": "2001:db8::1 514 tcp",
	} {
		hp := mustParse(t, line).Syslog
		if got := hp.Host + " " + strconv.Itoa(hp.Port) + " " + hp.Proto; got != want {
			t.Errorf("%s: %q, want %q", line, got, want)
		}
		// Format gives back what Parse reads.
		again := mustParse(t, mustParse(t, line).Canonical(true)).Syslog
		if *again != *hp {
			t.Errorf("%s: round trip %+v, want %+v", line, again, hp)
		}
	}
	if _, err := Parse("syslog=http://192.0.2.1"); err == nil {
		t.Error("syslog=http:// was accepted")
	}
}
