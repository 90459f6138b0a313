package operr

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

func TestErrorNeverRepeatsTheFix(t *testing.T) {
	e := New("/dev/sda holds data nodeinit did not write", "found ext4 'data'", "add nodeinit.wipe=S1 to erase it", "nodeinit.wipe=S1")
	if strings.Contains(e.Error(), e.Fix) || strings.Contains(e.Error(), "nodeinit.wipe=S1") {
		t.Fatalf("Error() repeats the fix or the argument: %q", e.Error())
	}
	if got, want := e.Error(), "/dev/sda holds data nodeinit did not write: found ext4 'data'"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestDescribeFindsTheOperatorErrorThroughWrapping(t *testing.T) {
	cause := Wrap(fs.ErrNotExist, "read /dev/sdb", "check the cable", "")
	err := fmt.Errorf("stage wipe: %w", cause)
	f := Describe(err)
	if f.Fix != "check the cable" || f.Arg != "" {
		t.Fatalf("Describe = %+v", f)
	}
	if f.Message != "stage wipe: read /dev/sdb: file does not exist" {
		t.Fatalf("message %q", f.Message)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("the cause is not reachable through Unwrap")
	}
	if Describe(errors.New("plain")).Fix != "" {
		t.Fatal("a plain error has no fix")
	}
	if Describe(nil) != (Fields{}) {
		t.Fatal("nil has no fields")
	}
}
