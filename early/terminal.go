package early

import (
	"strconv"
	"strings"
)

// Terminal is a console as a full-screen program sees it: where to read keys and draw,
// with which TERM and at which line speed.
type Terminal struct {
	// Name is the console as console= names it (ttyS0, tty0): the Output console to hold
	// while a screen is drawn on it.
	Name string
	// Dev is the device under /dev to read and draw on: tty0, the current virtual
	// terminal, is tty1 (the one /init's output shows on at boot).
	Dev string
	// Term is linux for a virtual terminal, vt100 for a serial line (and for the
	// kernel's own console when console= is absent, whatever it turns out to be).
	Term string
	// Baud is the speed console= gives (ttyS0,115200n8 gives 115200); 0 keeps the
	// line's speed.
	Baud int
}

// Terminals returns the Terminal of each console ConsoleNames returns, in that order, with
// the options of the console= that named it first.
func Terminals(cmdline string) []Terminal {
	opts := map[string]string{}
	for _, v := range Values(cmdline, "console") {
		name, o, _ := strings.Cut(v, ",")
		name = strings.TrimPrefix(name, "/dev/")
		if _, ok := opts[name]; !ok {
			opts[name] = o
		}
	}
	var out []Terminal
	for _, name := range ConsoleNames(cmdline) {
		t := Terminal{Name: name, Dev: name, Term: "vt100"}
		if n, ok := strings.CutPrefix(name, "tty"); ok && (n == "" || isDigits(n)) {
			t.Term = "linux"
			if n == "" || n == "0" {
				t.Dev = "tty1"
			}
		} else {
			digits := opts[name]
			for i, r := range digits {
				if r < '0' || r > '9' {
					digits = digits[:i]
					break
				}
			}
			t.Baud, _ = strconv.Atoi(digits)
		}
		out = append(out, t)
	}
	return out
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
