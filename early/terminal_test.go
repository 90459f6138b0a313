package early

import "testing"

// TestTerminals: console= names become the device, TERM and speed the screen uses.
func TestTerminals(t *testing.T) {
	got := Terminals("console=ttyS0,115200n8 console=tty0 console=ttyS1 console=tty2 console=hvc0,9600")
	want := []Terminal{
		{Name: "ttyS0", Dev: "ttyS0", Term: "vt100", Baud: 115200},
		{Name: "tty0", Dev: "tty1", Term: "linux"},
		{Name: "ttyS1", Dev: "ttyS1", Term: "vt100"},
		{Name: "tty2", Dev: "tty2", Term: "linux"},
		{Name: "hvc0", Dev: "hvc0", Term: "vt100", Baud: 9600},
	}
	if len(got) != len(want) {
		t.Fatalf("Terminals = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Terminals[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	if got := Terminals("quiet"); len(got) != 1 || got[0].Dev != "console" || got[0].Term != "vt100" {
		t.Errorf("no console=: %+v", got)
	}
}
