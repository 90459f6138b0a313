package qemutests

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-crypt/crypt/algorithm/shacrypt"
	"golang.org/x/sys/unix"

	"github.com/nodeinit/nodeinit/early"
	"github.com/nodeinit/nodeinit/media"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
	"github.com/nodeinit/nodeinit/stages"
)

// The installer screen's tests boot the ISO's default entry, "install" with no
// storage_init, under OVMF with the serial console only, and type on it as a person
// would: Enter at the prompt, then the pages' keys.

// tuiArgs go on every entry of the screen's test media.
var tuiArgs = []string{"console=ttyS0,115200n8", "panic=5", "nodeinit.events=ttyS1", "nodeinit.onfail=poweroff"}

// tuiISO builds the ISO of version whose default entry is the plain "install" that leaves
// the disk to the screen (or, with unattended, a complete line); testos is the test OS's
// testos.action for the installed node.
func tuiISO(t *testing.T, version, name, unattended, testos string) string {
	t.Helper()
	iso, err := fixtures(t).ISO(version, name, media.ISOOptions{Menu: media.MenuOptions{Timeout: time.Second,
		Unattended: unattended, ExtraArgs: append(append([]string(nil), tuiArgs...), testos)}})
	if err != nil {
		t.Fatal(err)
	}
	return iso
}

// bootCD powers the node on from the CD under OVMF.
func (n *node) bootCD(iso string) *vm.VM {
	n.t.Helper()
	return vm.Start(n.t, vm.Config{OVMFCode: n.f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, NoReboot: true,
		MemoryMiB: 1536, ExtraArgs: cdrom(iso), Events: n.eventsFile()})
}

// screenKeys are the bytes a VT100 sends for the keys the tests press. Down is Ctrl-N,
// which the screen takes where there are no arrow keys: an escape sequence cut in two on
// the serial line would read as Esc.
var screenKeys = map[string]string{"enter": "\r", "tab": "\t", "down": "\x0e", "ctrl+c": "\x03"}

// press types keys on the serial console, a key name or "=text", with a pause after each
// so that the screen under TCG takes them one at a time.
func press(t *testing.T, v *vm.VM, keys ...string) {
	t.Helper()
	for _, k := range keys {
		b, ok := screenKeys[k]
		if text, isText := strings.CutPrefix(k, "="); isText {
			b, ok = text, true
		}
		if !ok {
			t.Fatalf("no bytes for key %q", k)
		}
		v.Send(b)
		time.Sleep(200 * time.Millisecond)
	}
}

// tabs is Tab n times.
func tabs(n int) []string { return strings.Split(strings.Repeat("tab ", n), " ")[:n] }

// csi matches one control sequence the screen's renderer may put between two words.
const csi = `\x1b\[[0-9;?<>=]*[ -/]*[@-~]`

// see waits for a phrase on the screen: its words in order, separated by spaces, line
// ends or cursor movements, as the renderer draws them.
func see(v *vm.VM, phrase string, timeout time.Duration) []string {
	words := strings.Fields(phrase)
	for i, w := range words {
		words[i] = regexp.QuoteMeta(w)
	}
	return v.Expect(strings.Join(words, `(?:\s|`+csi+`)+`), timeout)
}

// startScreen waits for the prompt and answers it with Enter on the serial console; the
// screen then shows its welcome page.
func startScreen(t *testing.T, v *vm.VM) {
	t.Helper()
	v.ExpectEvent("the screen's prompt", vm.InfoHas("probe", "installer screen: waiting"), 4*time.Minute)
	v.Expect(`Press Enter to start the installer on this console \(ttyS0\)`, 30*time.Second)
	press(t, v, "enter")
	v.ExpectEvent("the screen on ttyS0", vm.InfoHas("probe", "installer screen on ttyS0"), 30*time.Second)
	see(v, "What should this machine do?", time.Minute)
}

// passwordAndHost fills the password page (the password twice, and sshKey unless it is
// empty) and the network page (a host name, DHCP, no NIC in these machines), and waits for
// the plan page.
func passwordAndHost(t *testing.T, v *vm.VM, password, sshKey, hostname string) {
	t.Helper()
	see(v, "only the hash goes on the command line", time.Minute)
	press(t, v, "="+password, "tab", "="+password, "tab")
	if sshKey != "" {
		press(t, v, "="+sshKey)
	}
	press(t, v, "tab", "enter")
	see(v, "Network and identity", time.Minute)
	press(t, v, "="+hostname)
	press(t, v, append(tabs(5), "enter")...)
	see(v, "nothing has been written yet", time.Minute)
}

// unwritten reports whether the sparse disk image holds no data at all: nothing was
// ever written to it (a write of zeros would show as data too). It reads no bytes,
// so a 10 GiB disk costs nothing to judge.
func unwritten(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = unix.Seek(int(f.Fd()), 0, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) {
		return true
	}
	if err != nil {
		t.Fatalf("SEEK_DATA %s: %v", path, err)
	}
	return false
}

// expectCanceled waits for the refusal a canceled screen makes, then the power-off of
// nodeinit.onfail=poweroff, and checks that no plan was run: no plan event, no stage
// after the probe started.
func expectCanceled(t *testing.T, v *vm.VM) {
	t.Helper()
	refused := v.ExpectEvent("the cancel", vm.StageIs("probe", stages.EventFailed), 2*time.Minute)
	if !strings.Contains(refused.Error, "canceled") || !strings.Contains(refused.Error, "nothing was written") {
		t.Errorf("the refusal does not say the screen was canceled and nothing was written: %+v", refused)
	}
	v.Expect(early.FailureScreenMarker, time.Minute)
	waitExit(t, v)
	for _, e := range v.Events() {
		if e.Kind == stages.EventPlan || e.Kind == stages.EventStart && e.Stage != "network" && e.Stage != "probe" {
			t.Errorf("after the cancel the engine still ran: %+v", e)
		}
	}
}

// TestTUIInstallOnTheSecondDisk: two blank disks; on the screen the person picks the
// second (the disk page lists both with their serials), types a password twice, an SSH key
// and a host name, and installs. The plan installs on that disk, the done page gives the
// unattended line naming it by its serial, the first disk is never written, and the
// installed node boots with the host name, the hash of that password and the key seeded.
func TestTUIInstallOnTheSecondDisk(t *testing.T) {
	iso := tuiISO(t, "1.0", "tui-install", "", "testos.action=show:/etc/hostname,show:/etc/nodeinit/shadow.d/admin,show:/etc/nodeinit/ssh/admin,poweroff")
	n := newNode(t,
		vm.Disk{Path: vm.NewDisk(t, "first.img", 10<<30), Interface: vm.NVMe, Serial: "TUIDISK1"},
		vm.Disk{Path: vm.NewDisk(t, "second.img", 10<<30), Interface: vm.NVMe, Serial: "TUIDISK2"})
	v := n.bootCD(iso)
	startScreen(t, v)
	press(t, v, "enter") // Install 1.0
	see(v, "TUIDISK1", time.Minute)
	see(v, "TUIDISK2", time.Minute)
	press(t, v, "down", "enter", "tab", "enter") // the second disk, Next
	see(v, "Partitions of /dev/nvme1n1", time.Minute)
	press(t, v, append(tabs(6), "enter")...) // the default layout, Next
	const password = "tui-secret-1"
	const sshKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl tui@example.com"
	passwordAndHost(t, v, password, sshKey, "tuinode1")
	press(t, v, "tab", "enter") // Install
	p := v.ExpectPlan(time.Minute)
	if p.Action != "install" || p.TargetPath() != "/dev/nvme1n1" {
		t.Errorf("the plan is %s on %q, want install on /dev/nvme1n1", p.Action, p.TargetPath())
	}
	v.ExpectEvent("seed-config done", vm.StageDone("seed-config"), 4*time.Minute)
	see(v, "To repeat this unattended", 3*time.Minute)
	see(v, "storage_init=serial:TUIDISK2", 30*time.Second)
	press(t, v, "enter") // Finish
	v.ExpectEvent("the reboot", vm.Finished, time.Minute)
	waitExit(t, v)
	if strings.Contains(v.Output(), password) {
		t.Error("the password reached the console")
	}
	if !unwritten(t, n.disks[0].Path) {
		t.Error("the disk that was not chosen was written")
	}
	checkInstalledDisk(t, n.disks[1].Path)

	v = n.powerOn()
	v.Expect(`TESTOS version=1\.0 build=1\.0 slot=a hostname=tuinode1`, 3*time.Minute)
	v.Expect(`TESTOS-SHOW /etc/hostname "tuinode1\\n"`, 30*time.Second)
	hash := v.Expect(`TESTOS-SHOW /etc/nodeinit/shadow\.d/admin "admin:(\$6\$[^:"]+):`, 30*time.Second)[1]
	if d, err := shacrypt.Decode(hash); err != nil || !d.Match(password) {
		t.Errorf("the seeded admin hash %q is not the typed password's: %v", hash, err)
	}
	v.Expect(`TESTOS-SHOW /etc/nodeinit/ssh/admin "`+regexp.QuoteMeta(sshKey)+`\\n"`, 30*time.Second)
	waitExit(t, v)
}

// TestTUIUpgradeOffered: on a node running 1.0, the 1.5 ISO's screen offers "Upgrade 1.0
// to 1.5" first; choosing it goes straight to the plan, which writes slot b and keeps the
// config; after it the node boots 1.5 from slot b with its host name.
func TestTUIUpgradeOffered(t *testing.T) {
	const show = "testos.action=show:/etc/hostname,poweroff"
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 10<<30), Interface: vm.NVMe, Serial: "TUIUPG01"})
	v := n.installer("1.0", "install storage_init=serial:TUIUPG01 hostname=tuiup1 "+show)
	v.ExpectEvent("install finished", vm.Finished, 4*time.Minute)
	waitExit(t, v)

	v = n.bootCD(tuiISO(t, "1.5", "tui-upgrade", "", show))
	startScreen(t, v)
	see(v, "Upgrade 1.0 to 1.5", 30*time.Second)
	press(t, v, "enter") // the first offer
	see(v, "nothing has been written yet", time.Minute)
	press(t, v, "tab", "enter")
	p := v.ExpectPlan(time.Minute)
	if p.Action != "upgrade" || p.Slot != "b" || p.Image == nil || p.Image.Version != "1.5" {
		t.Fatalf("the screen's upgrade plans %s of %+v into slot %q", p.Action, p.Image, p.Slot)
	}
	v.ExpectEvent("migrate-config done", vm.StageDone("migrate-config"), 4*time.Minute)
	see(v, "To repeat this unattended", 3*time.Minute)
	press(t, v, "enter")
	v.ExpectEvent("the reboot", vm.Finished, time.Minute)
	waitExit(t, v)

	v = n.powerOn() // the CD is gone
	v.Expect(`TESTOS version=1\.5 build=1\.5 slot=b hostname=tuiup1`, 4*time.Minute)
	v.Expect(`TESTOS-SHOW /etc/hostname "tuiup1\\n"`, 30*time.Second)
	waitExit(t, v)
}

// TestTUIForeignDiskWrongSerial: the only disk holds foreign data; choosing it asks for
// its serial, a wrong one is refused on the disk page, and the person quits. Nothing was
// planned or run, and the disk is byte-identical.
func TestTUIForeignDiskWrongSerial(t *testing.T) {
	d := seededDisk(t, "foreign.img", 10<<30)
	before := hashFile(t, d)
	n := newNode(t, vm.Disk{Path: d, Interface: vm.NVMe, Serial: "TUIFOR01"})
	v := n.bootCD(tuiISO(t, "1.0", "tui-foreign", "", "testos.action=poweroff"))
	startScreen(t, v)
	press(t, v, "enter") // Install 1.0
	see(v, "foreign", time.Minute)
	press(t, v, "enter", "tab", "=TUIFOR99", "tab", "enter") // the disk, a wrong serial, Next
	see(v, "that is not the serial of /dev/nvme0n1", time.Minute)
	press(t, v, "ctrl+c")
	expectCanceled(t, v)
	if hashFile(t, d) != before {
		t.Fatal("the foreign disk changed although its serial was never typed")
	}
}

// TestTUICancelOnThePlanPage: the person goes through every page to the plan and quits
// there. Nothing was run, and every disk is byte-identical: the blank one chosen and the
// foreign one beside it.
func TestTUICancelOnThePlanPage(t *testing.T) {
	foreign := seededDisk(t, "foreign.img", 10<<30)
	before := hashFile(t, foreign)
	n := newNode(t,
		vm.Disk{Path: vm.NewDisk(t, "blank.img", 10<<30), Interface: vm.NVMe, Serial: "TUICAN01"},
		vm.Disk{Path: foreign, Interface: vm.NVMe, Serial: "TUICAN02"})
	v := n.bootCD(tuiISO(t, "1.0", "tui-cancel", "", "testos.action=poweroff"))
	startScreen(t, v)
	press(t, v, "enter")                                    // Install 1.0
	press(t, v, "enter", "tab", "tab", "enter")             // the blank disk, Next
	see(v, "Partitions of /dev/nvme0n1", time.Minute)       // the chosen disk's layout
	press(t, v, append(tabs(6), "enter")...)                // Next
	passwordAndHost(t, v, "tui-secret-2", "", "tuicancel1") // up to the plan page
	press(t, v, "ctrl+c")
	expectCanceled(t, v)
	if !unwritten(t, n.disks[0].Path) {
		t.Error("the blank disk was written although the plan was canceled")
	}
	if hashFile(t, foreign) != before {
		t.Error("the foreign disk changed although the plan was canceled")
	}
}

// TestTUIUnattendedNeverWaits: the ISO built with --unattended (storage_init on the
// default entry) leaves nothing open: no prompt is shown, and the plan follows the probe
// at once (guest clock), where a screen would wait minutes for Enter.
func TestTUIUnattendedNeverWaits(t *testing.T) {
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 10<<30), Interface: vm.NVMe, Serial: "TUIUNA01"})
	v := n.bootCD(tuiISO(t, "1.0", "tui-unattended", "serial:TUIUNA01", "testos.action=poweroff"))
	probed := v.ExpectEvent("probe done", vm.StageDone("probe"), 4*time.Minute)
	planned := v.ExpectEvent("the plan", func(e stages.Event) bool { return e.Kind == stages.EventPlan }, time.Minute)
	if gap := planned.Time.Sub(probed.Time); gap > 10*time.Second {
		t.Errorf("the plan came %s after the probe: the boot waited", gap)
	}
	for _, e := range v.Events() {
		if strings.Contains(e.Message, "installer screen") {
			t.Errorf("an unattended line reached the installer screen: %+v", e)
		}
	}
	if strings.Contains(v.Output(), "Press Enter to start the installer") {
		t.Error("an unattended line showed the screen's prompt")
	}
	v.Kill()
}
