package early

import (
	"io"
	"strings"
	"testing"
)

// TestOutputHold: a held console gets nothing until it is released, and is not dropped as
// broken; kmsg, the saved log and the other consoles keep every line.
func TestOutputHold(t *testing.T) {
	var serial, vga, kmsg strings.Builder
	o := NewNamedOutput(&kmsg, []string{"ttyS0", "tty0"}, []io.Writer{&serial, &vga})
	release := o.Hold("ttyS0")
	o.Write([]byte("while the screen is up\n"))
	if serial.Len() != 0 {
		t.Errorf("the held console got %q", serial.String())
	}
	if vga.String() != "while the screen is up\n" || !strings.Contains(kmsg.String(), "while the screen is up") ||
		!strings.Contains(string(o.Log()), "while the screen is up") {
		t.Errorf("the other console, kmsg or the log lost a line: %q, %q, %q", vga.String(), kmsg.String(), o.Log())
	}
	if o.Consoles() != 2 {
		t.Errorf("the held console was dropped: %d consoles", o.Consoles())
	}
	release()
	release() // a second call does nothing
	o.Write([]byte("after\n"))
	if serial.String() != "after\n" {
		t.Errorf("the released console got %q", serial.String())
	}
	// Two holds need two releases; an unknown name holds nothing.
	r1, r2 := o.Hold("tty0"), o.Hold("tty0")
	o.Hold("ttyS9")()
	r1()
	o.Write([]byte("x\n"))
	if strings.Contains(vga.String(), "x\n") {
		t.Error("tty0 was written with one of its two holds left")
	}
	r2()
	o.Write([]byte("y\n"))
	if !strings.HasSuffix(vga.String(), "y\n") || !strings.HasSuffix(serial.String(), "x\ny\n") {
		t.Errorf("after both releases: tty0 %q, ttyS0 %q", vga.String(), serial.String())
	}
}
