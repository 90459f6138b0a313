package qemutests

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/internal/testtpm"
	"github.com/nodeinit/nodeinit/measure"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
)

// tpmNonce is the challenge the node's quote must answer.
const tpmNonce = "6e6f6465696e69742d71656d752d7470"

// swtpmArgs starts swtpm with the TPM 2.0 state in dir (kept across the
// node's power cycles, so the attestation key stays the same) and returns the
// QEMU arguments that attach it to the guest as a TPM 2.0 CRB device.
func swtpmArgs(t *testing.T, dir string) []string {
	t.Helper()
	sock := testtpm.Control(t, dir)
	return []string{"-chardev", "socket,id=chrtpm,path=" + sock, "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
		"-device", "tpm-crb,tpmdev=tpm0"}
}

// tpmBoot powers the node on from its disks with a fresh swtpm process on the
// node's TPM state.
func (n *node) tpmBoot(tpmDir string) *vm.VM {
	n.t.Helper()
	return vm.Start(n.t, vm.Config{OVMFCode: n.f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, NoReboot: true, MemoryMiB: 1536,
		Events: n.eventsFile(), ExtraArgs: swtpmArgs(n.t, tpmDir)})
}

// tpmActions make the test OS check the measured boot, quote it, and show
// PCR 11 as the kernel reads it, then power off.
const tpmActions = "testos.action=run:/usr/sbin/nodeinit:tpm:check,run:/usr/sbin/nodeinit:tpm:log," +
	"run:/usr/sbin/nodeinit:tpm:quote:--nonce:" + tpmNonce + ",show:/sys/class/tpm/tpm0/pcr-sha256/11," +
	"show:/sys/class/tpm/tpm0/pcr-sha256/23,poweroff"

var quoteJSON = regexp.MustCompile(`(?s)(\{\s*"format": "nodeinit-tpm-quote/1".*?\n\})\s*\nTESTOS-RUN /usr/sbin/nodeinit exit=0`)

// TestTPMMeasuredBoot installs a node with swtpm attached as its TPM 2.0 under
// OVMF, then boots it twice. Inside the node `nodeinit tpm check` passes and
// PCR 11 as the kernel shows it equals the log's replay; both boots give the
// same PCRs; the quote taken inside verifies on the host for the installed
// image, and is refused with another nonce or another image digest. Then the
// same machine runs stateless, from the same image and from another one:
// PCR 11 (the phases) stays, and PCR 23 (what nodeinit did) differs from the
// installed boot's and between the two images.
func TestTPMMeasuredBoot(t *testing.T) {
	vm.SkipWithoutQEMU(t)
	tpmDir := t.TempDir()
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "TPMNODE1"})
	initrd, err := n.f.Installer("1.0")
	if err != nil {
		t.Fatal(err)
	}
	v := vm.Start(t, vm.Config{Kernel: n.f.Debian.Vmlinuz, Initramfs: initrd,
		Append:   "console=ttyS0 panic=5 nodeinit.events=ttyS1 install storage_init=serial:TPMNODE1 hostname=tpm1 " + tpmActions,
		OVMFCode: n.f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, NoReboot: true, MemoryMiB: 1536,
		Events: n.eventsFile(), ExtraArgs: swtpmArgs(t, tpmDir)})
	v.ExpectEvent("install finished", vm.Finished, 5*time.Minute)
	waitExit(t, v)

	image := sha256File(t, filepath.Join(n.f.Bundles["1.0"], "manifest.json"))
	var pcr11, pcr23 []string
	for boot := 1; boot <= 2; boot++ {
		v = n.tpmBoot(tpmDir)
		v.Expect(`TESTOS version=1\.0 build=1\.0 slot=a hostname=tpm1`, 3*time.Minute)
		v.Expect(`the TPM's PCRs \[11 23\] match the \d+ records`, time.Minute)
		v.Expect(`TESTOS-RUN /usr/sbin/nodeinit exit=0`, 30*time.Second)
		v.Expect(`nodeinit:image:sha256:`+image+`:version:1\.0`, time.Minute)
		m := v.Expect(`TESTOS-SHOW /sys/class/tpm/tpm0/pcr-sha256/11 "([0-9A-Fa-f]{64})\\n"`, 2*time.Minute)
		pcr11 = append(pcr11, strings.ToLower(m[1]))
		pcr23 = append(pcr23, showPCR(v, 23))
		out := strings.ReplaceAll(v.Output(), "\r", "")
		q := quoteJSON.FindStringSubmatch(out)
		if q == nil {
			t.Fatalf("boot %d: no quote on the console:\n%s", boot, tail(out, 60))
		}
		qf := filepath.Join(t.TempDir(), "quote.json")
		if err := os.WriteFile(qf, []byte(q[1]), 0o644); err != nil {
			t.Fatal(err)
		}
		checkQuote(t, qf, image)
		var doc measure.Quote
		if err := json.Unmarshal([]byte(q[1]), &doc); err != nil {
			t.Fatal(err)
		}
		replay, err := measure.Replay(doc.EventLog, measure.SHA256, []uint32{measure.PCRPhase})
		if err != nil || hex.EncodeToString(replay[measure.PCRPhase]) != pcr11[len(pcr11)-1] {
			t.Errorf("boot %d: PCR 11 in sysfs %s, the log replays to %x (%v)", boot, pcr11[len(pcr11)-1], replay[measure.PCRPhase], err)
		}
		v.Expect(`TESTOS-READY`, time.Minute)
		waitExit(t, v)
	}
	// PCR 11 is enter-initrd then leave-initrd, the same on every boot; PCR 23
	// holds the boot action, the plan, the image and the slot: the same too.
	if pcr11[0] != pcr11[1] || pcr23[0] != pcr23[1] {
		t.Errorf("two boots of the same node differ: PCR 11 %s %s, PCR 23 %s %s", pcr11[0], pcr11[1], pcr23[0], pcr23[1])
	}

	// Another action (stateless), then another image: PCR 23 tells them apart.
	for _, version := range []string{"1.0", "2.0"} {
		initrd, err := n.f.Installer(version)
		if err != nil {
			t.Fatal(err)
		}
		v := vm.Start(t, vm.Config{Kernel: n.f.Debian.Vmlinuz, Initramfs: initrd,
			Append:   "console=ttyS0 panic=5 nodeinit.events=ttyS1 stateless hostname=tpm2 " + tpmActions,
			OVMFCode: n.f.Debian.OVMFCode, OVMFVars: n.vars, NoReboot: true, MemoryMiB: 1536,
			Events: n.eventsFile(), ExtraArgs: swtpmArgs(t, tpmDir)})
		v.Expect(`TESTOS version=`+regexp.QuoteMeta(version)+` `, 3*time.Minute)
		v.Expect(`the TPM's PCRs \[11 23\] match the \d+ records`, time.Minute)
		pcr11 = append(pcr11, showPCR(v, 11))
		pcr23 = append(pcr23, showPCR(v, 23))
		waitExit(t, v)
	}
	t.Logf("PCR 11: %q\nPCR 23: %q (boot, boot, stateless 1.0, stateless 2.0)", pcr11, pcr23)
	if pcr11[2] != pcr11[0] || pcr11[3] != pcr11[0] {
		t.Errorf("PCR 11 (the phases) differs between a boot and a stateless run: %q", pcr11)
	}
	if pcr23[2] == pcr23[0] {
		t.Errorf("a stateless run of the same image gives the installed boot's PCR 23 %s", pcr23[0])
	}
	if pcr23[3] == pcr23[2] {
		t.Errorf("stateless runs of images 1.0 and 2.0 give the same PCR 23 %s", pcr23[2])
	}
}

// showPCR waits for the test OS to show a SHA-256 PCR from sysfs, and returns
// its value in lower case.
func showPCR(v *vm.VM, pcr int) string {
	m := v.Expect(fmt.Sprintf(`TESTOS-SHOW /sys/class/tpm/tpm0/pcr-sha256/%d "([0-9A-Fa-f]{64})\\n"`, pcr), 2*time.Minute)
	return strings.ToLower(m[1])
}

// checkQuote runs the host's `nodeinit tpm verify` on the node's quote: it
// passes for image and this nonce, and fails for another nonce or image.
func checkQuote(t *testing.T, qf, image string) {
	t.Helper()
	nodeinit := buildNodeinit(t)
	verify := func(args ...string) (string, error) {
		out, err := exec.Command(nodeinit, append([]string{"tpm", "verify", qf}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := verify("--nonce", tpmNonce, "--expect-image", image, "--expect-action", "boot"); err != nil {
		t.Errorf("the node's quote does not verify: %v\n%s", err, out)
	}
	if out, err := verify("--nonce", "00"+tpmNonce[2:], "--expect-image", image); err == nil {
		t.Errorf("the quote verified with another nonce:\n%s", out)
	}
	if out, err := verify("--nonce", tpmNonce, "--expect-image", strings.Repeat("0", 64)); err == nil {
		t.Errorf("the quote verified for another image:\n%s", out)
	}
	// The log inside the quote replays to the PCR 11 the node reported.
	q, err := os.ReadFile(qf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(q), `"string": "`+measure.PhaseLeaveInitrd+`"`) {
		t.Errorf("the node's log has no leave-initrd record")
	}
}

// buildNodeinit builds the operator CLI for the host, once per test.
func buildNodeinit(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nodeinit")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/nodeinit/nodeinit/cmd/nodeinit")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build nodeinit: %v\n%s", err, out)
	}
	return bin
}
