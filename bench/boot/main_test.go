package main

import (
	"strings"
	"testing"
)

// console is the part of a nodeinit boot's serial log that parseTiming reads,
// as the 6.1 cloud kernel and the test OS print it.
const console = `[    2.367383] Run /init as init process
nodeinit: /init started 2.600s after kernel start, writing to 1 console(s): ttyS0
nodeinit: switch_root into /newroot, exec /sbin/init at 3.469s after kernel start
[    3.553845] Not activating Mandatory Access Control as /sbin/tomoyo-init does not exist.
TESTOS-START uptime=3.867s
TESTOS-READY
bench-wall=9.500
`

// TestParseTiming reads the three guest times and the host wall time, and
// refuses a log without the exec line, which P5a needs.
func TestParseTiming(t *testing.T) {
	got, err := parseTiming(console)
	if err != nil {
		t.Fatal(err)
	}
	if want := (timing{initStart: 2.367383, rootExec: 3.553845, rootInit: 3.867, wall: 9.5}); got != want {
		t.Errorf("parseTiming = %+v, want %+v", got, want)
	}
	noExec := strings.Replace(console, "Not activating", "Activating", 1)
	if _, err := parseTiming(noExec); err == nil || !strings.Contains(err.Error(), "TOMOYO") {
		t.Errorf("parseTiming without the exec line: %v, want an error naming it", err)
	}
}
