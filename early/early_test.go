package early

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/operr"
)

func TestCommandLine(t *testing.T) {
	line := `console=ttyS0,115200n8 hostname="a b" nodeinit.onfail=reboot console=tty0 console=ttyS0 rescue -- nodeinit.onfail=halt`
	if got := strings.Join(Fields(line), "|"); got != `console=ttyS0,115200n8|hostname=a b|nodeinit.onfail=reboot|console=tty0|console=ttyS0|rescue` {
		t.Errorf("Fields = %s", got)
	}
	if got := strings.Join(ConsoleNames(line), " "); got != "ttyS0 tty0" {
		t.Errorf("ConsoleNames = %q, want every console= once, in order", got)
	}
	if got := ConsoleNames("quiet"); len(got) != 1 || got[0] != "console" {
		t.Errorf("no console= gives %v, want [console]", got)
	}
	if v, ok := LookupArg(line, "rescue"); !ok || v != "" {
		t.Errorf("bare flag: %q %v", v, ok)
	}
	for _, tc := range []struct {
		line string
		want OnFail
		err  bool
	}{
		{"quiet", OnFailHalt, false},
		{line, OnFailReboot, false}, // after -- belongs to the OS
		{"nodeinit.onfail=shell nodeinit.onfail=PowerOff", OnFailPowerOff, false},
		{"nodeinit.onfail=explode", OnFailHalt, true},
	} {
		got, err := ParseOnFail(tc.line)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseOnFail(%q) = %s, %v; want %s, error %v", tc.line, got, err, tc.want, tc.err)
		}
	}
}

func TestFailureScreen(t *testing.T) {
	err := &operr.Error{What: "storage_init matches 2 disks", Fix: "name one disk by serial", Arg: "storage_init=serial:ABC", Err: errors.New("nvme0n1, vda")}
	s := FailureScreen(fmtWrap(err), OnFailPowerOff, "/boot/efi/nodeinit.log")
	for _, want := range []string{FailureScreenMarker, "storage_init matches 2 disks: nvme0n1, vda", "name one disk by serial", "storage_init=serial:ABC", "/boot/efi/nodeinit.log", "powering off"} {
		if !strings.Contains(s, want) {
			t.Errorf("screen lacks %q:\n%s", want, s)
		}
	}
	plain := FailureScreen(errors.New("boom"), OnFailHalt, "")
	if !strings.Contains(plain, "boom") || !strings.Contains(plain, "not saved") || !strings.Contains(plain, "halting") {
		t.Errorf("plain error screen:\n%s", plain)
	}
}

func fmtWrap(err error) error { return errors.Join(errors.New("stage partition"), err) }

type failWriter struct{}

func (failWriter) Write(p []byte) (int, error) { return 0, errors.New("gone") }

func TestOutputEveryConsoleAndKmsg(t *testing.T) {
	var a, b, kmsg strings.Builder
	o := NewOutput(&kmsg, &a, failWriter{}, &b)
	o.Write([]byte("one\ntw"))
	o.Write([]byte("o\n"))
	if a.String() != "one\ntwo\n" || b.String() != "one\ntwo\n" {
		t.Errorf("consoles got %q and %q", a.String(), b.String())
	}
	if o.Consoles() != 2 {
		t.Errorf("broken console kept: %d consoles", o.Consoles())
	}
	if kmsg.String() != "<15>nodeinit: one\n<15>nodeinit: two\n" {
		t.Errorf("kmsg got %q, want one record per line", kmsg.String())
	}
	dir := t.TempDir()
	p, err := o.SaveLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	o.Write([]byte("three\n"))
	if _, err := o.SaveLog(dir); err != nil {
		t.Fatal(err)
	}
	cur, _ := os.ReadFile(p)
	old, _ := os.ReadFile(p + ".old")
	if string(cur) != "one\ntwo\nthree\n" || string(old) != "one\ntwo\n" {
		t.Errorf("saved %q, previous %q", cur, old)
	}
	if _, err := o.SaveLog(filepath.Join(dir, "missing")); err == nil {
		t.Error("SaveLog into a missing directory succeeded")
	}
}

type fakePower struct{ calls []string }

func (f *fakePower) Reboot() error   { f.calls = append(f.calls, "reboot"); return nil }
func (f *fakePower) PowerOff() error { f.calls = append(f.calls, "poweroff"); return nil }
func (f *fakePower) Halt() error     { f.calls = append(f.calls, "halt"); return errors.New("no") }

func TestFailAppliesOnFail(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		want    string
	}{
		{"", "halt"},
		{"nodeinit.onfail=poweroff", "poweroff"},
		{"nodeinit.onfail=reboot", "slept reboot"},
		{"nodeinit.onfail=shell", "shell reboot"},
	} {
		var out strings.Builder
		power := &fakePower{}
		var seq []string
		env := &Env{Cmdline: tc.cmdline, Out: NewOutput(nil, &out), Power: power, LogDir: t.TempDir(),
			sleepFn:  func(time.Duration) { seq = append(seq, "slept") },
			rescueFn: func(string) error { seq = append(seq, "shell"); return nil }}
		err := env.Fail(errors.New("no disk"))
		got := strings.Join(append(seq, power.calls...), " ")
		if got != tc.want {
			t.Errorf("%q: did %q, want %q", tc.cmdline, got, tc.want)
		}
		if tc.want == "halt" && err == nil {
			t.Errorf("a failing Halt must be reported")
		}
		if !strings.Contains(out.String(), FailureScreenMarker) || !strings.Contains(out.String(), "nodeinit.log") {
			t.Errorf("%q: no screen naming the saved log:\n%s", tc.cmdline, out.String())
		}
		saved, _ := os.ReadFile(filepath.Join(env.LogDir, "nodeinit.log"))
		if !strings.Contains(string(saved), FailureScreenMarker) {
			t.Errorf("saved log lacks the failure screen")
		}
	}
}

type step struct {
	name string
	err  error
	ran  *[]string
}

func (s step) Create() error  { *s.ran = append(*s.ran, s.name); return s.err }
func (s step) String() string { return s.name }

func TestRunSteps(t *testing.T) {
	var ran []string
	boom := errors.New("boom")
	res, err := RunSteps([]Step{
		{Creator: step{"a", nil, &ran}},
		{Creator: step{"efi", nil, &ran}, When: "/nonexistent/efi"},
		{Creator: step{"opt", boom, &ran}, Optional: true},
		{Creator: step{"must", boom, &ran}},
		{Creator: step{"never", nil, &ran}},
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "must") {
		t.Errorf("err = %v, want the failing required step named", err)
	}
	if strings.Join(ran, " ") != "a opt must" {
		t.Errorf("ran %v", ran)
	}
	if len(res) != 4 || !res[1].Skipped || !strings.HasPrefix(res[2].String(), "FAIL opt") {
		t.Errorf("results %v", res)
	}
}

func TestWaitBlockDevicesSettles(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "vda"), 0o755)
	go func() {
		time.Sleep(100 * time.Millisecond)
		os.Mkdir(filepath.Join(dir, "nvme0n1"), 0o755)
	}()
	got := WaitBlockDevices(t.Context(), dir, 300*time.Millisecond, 5*time.Second)
	if strings.Join(got, " ") != "nvme0n1 vda" {
		t.Errorf("got %v, want the disk that appeared late too", got)
	}
}

// TestPendingDisks builds the sysfs shape of a USB stick whose interface usb-storage has
// bound: it is pending until its SCSI disk's block directory appears; an interface of
// another class, and a mass-storage one no driver bound, never are.
func TestPendingDisks(t *testing.T) {
	sys := t.TempDir()
	mk := func(rel string) string {
		p := filepath.Join(sys, rel)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write := func(rel, data string) {
		if err := os.WriteFile(filepath.Join(sys, rel), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	usbDir := "devices/pci0000:00/0000:00:04.0/usb2/2-1/2-1:1.0"
	mk(usbDir)
	mk("bus/usb/drivers/usb-storage")
	mk("bus/usb/devices")
	write(usbDir+"/bInterfaceClass", "08\n")
	link := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(sys, name)); err != nil {
			t.Fatal(err)
		}
	}
	link(filepath.Join(sys, usbDir), "bus/usb/devices/2-1:1.0")
	if got := PendingDisks(sys); len(got) != 0 {
		t.Errorf("no driver bound: pending %v, want none", got)
	}
	link(filepath.Join(sys, "bus/usb/drivers/usb-storage"), usbDir+"/driver")
	hid := "devices/pci0000:00/0000:00:04.0/usb2/2-2/2-2:1.0"
	mk(hid)
	write(hid+"/bInterfaceClass", "03\n")
	link(filepath.Join(sys, hid), "bus/usb/devices/2-2:1.0")
	if got := PendingDisks(sys); len(got) != 1 || !strings.HasSuffix(got[0], "2-1:1.0") {
		t.Errorf("bound, no disk yet: pending %v, want the stick's interface alone", got)
	}
	mk(usbDir + "/host0/target0:0:0/0:0:0:0/block/sda")
	if got := PendingDisks(sys); len(got) != 0 {
		t.Errorf("the disk appeared: pending %v, want none", got)
	}
}

// TestWaitBlockDevicesWaitsForAStick: the disk list is quiet, but a bound USB
// mass-storage interface has no disk yet, so the wait goes on until it has.
func TestWaitBlockDevicesWaitsForAStick(t *testing.T) {
	sys := t.TempDir()
	iface := filepath.Join(sys, "devices/usb1/1-1/1-1:1.0")
	for _, d := range []string{iface, filepath.Join(sys, "bus/usb/devices"), filepath.Join(sys, "bus/usb/drivers/usb-storage"), filepath.Join(sys, "block/vda")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(iface, "bInterfaceClass"), []byte("08\n"), 0o644)
	os.Symlink(filepath.Join(sys, "bus/usb/drivers/usb-storage"), filepath.Join(iface, "driver"))
	os.Symlink(iface, filepath.Join(sys, "bus/usb/devices/1-1:1.0"))
	go func() {
		time.Sleep(time.Second) // usb-storage's delay_use
		os.MkdirAll(filepath.Join(iface, "host0/target0:0:0/0:0:0:0/block/sda"), 0o755)
		os.Mkdir(filepath.Join(sys, "block/sda"), 0o755)
	}()
	got := WaitBlockDevices(t.Context(), filepath.Join(sys, "block"), 300*time.Millisecond, 5*time.Second)
	if strings.Join(got, " ") != "sda vda" {
		t.Errorf("got %v, want the stick that came after a quiet 300 ms", got)
	}
}

// TestDetailOnlyWithDebug: detail lines reach kmsg and the saved log always,
// the consoles only with nodeinit.debug; the command line's last
// nodeinit.debug wins.
func TestDetailOnlyWithDebug(t *testing.T) {
	for _, verbose := range []bool{false, true} {
		var console, kmsg bytes.Buffer
		o := NewOutput(&kmsg, &console)
		o.Verbose = verbose
		o.Detailf("nodeinit: early ok   mount %q", "/proc")
		fmt.Fprintln(o, "nodeinit: plan")
		// What a library logs through the standard log package is detail too.
		lg := log.New(o.Detail(), "nodeinit: ", 0)
		lg.Printf("switch_root: moving mounts")
		if got := strings.Contains(console.String(), "early ok"); got != verbose {
			t.Errorf("verbose=%v: the console shows the detail: %v\n%s", verbose, got, console.String())
		}
		if !strings.Contains(console.String(), "nodeinit: plan") {
			t.Errorf("verbose=%v: the console lost a normal line", verbose)
		}
		if !strings.Contains(kmsg.String(), "early ok") || !strings.Contains(string(o.Log()), "early ok") {
			t.Errorf("verbose=%v: the detail is not in kmsg or the log", verbose)
		}
		if got := strings.Contains(console.String(), "switch_root: moving mounts"); got != verbose {
			t.Errorf("verbose=%v: the console shows a library's log line: %v\n%s", verbose, got, console.String())
		}
		if !strings.Contains(string(o.Log()), "nodeinit: switch_root: moving mounts\n") || strings.Contains(string(o.Log()), "mounts\n\n") {
			t.Errorf("verbose=%v: the library's log line is not one line of the saved log:\n%s", verbose, o.Log())
		}
	}
	for line, want := range map[string]bool{
		"console=ttyS0":                        false,
		"nodeinit.debug":                       true,
		"nodeinit.debug=yes quiet":             true,
		"nodeinit.debug nodeinit.debug=0":      false,
		"nodeinit.debugger=1 nodeinit.debug=n": false,
	} {
		if got := verbose(line); got != want {
			t.Errorf("verbose(%q) = %v, want %v", line, got, want)
		}
	}
}

// TestWaitLateReportsTheLateMountsOnce: the late mounts Setup started are
// recorded and a failed one shown when the engine waits for them; a second
// wait returns at once with the same outcome, and an Env without late
// mounts (tests, a failed early setup) does not block.
func TestWaitLateReportsTheLateMountsOnce(t *testing.T) {
	var console bytes.Buffer
	env := &Env{Out: NewOutput(nil, &console), late: make(chan lateSteps, 1)}
	failed := StepResult{Step: "driver for filesystem efivarfs", Err: errors.New("no such module")}
	env.late <- lateSteps{results: []StepResult{failed}}
	if err := env.WaitLate(); err != nil {
		t.Fatalf("WaitLate: %v (the step was optional)", err)
	}
	if len(env.Steps) != 1 || !strings.Contains(console.String(), "no such module") {
		t.Errorf("after WaitLate: steps %v, console %q; want the failed step recorded and shown", env.Steps, console.String())
	}
	if err := env.WaitLate(); err != nil || len(env.Steps) != 1 {
		t.Errorf("second WaitLate: %v, %d steps; want nil and the step once", err, len(env.Steps))
	}
	if err := (&Env{}).WaitLate(); err != nil {
		t.Errorf("WaitLate without late mounts: %v", err)
	}
}
