package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hugelgupf/vmtest/qemu"
)

// Interface is how a disk is attached.
type Interface string

// Disk interfaces. NVMe and Virtio are PCI devices of their own; the others are disks
// behind a controller that Config.Args adds: one xhci for all USB disks, one SCSI
// controller per disk. The cloud kernel
// drives only NVMe, Virtio and SCSI; the rest need Debian's generic kernel.
const (
	NVMe    Interface = "nvme"
	Virtio  Interface = "virtio"
	SATA    Interface = "sata"    // q35's own AHCI controller (ide-hd); 512-byte sectors only
	SCSI    Interface = "scsi"    // virtio-scsi (scsi-hd)
	USB     Interface = "usb"     // usb-storage on qemu-xhci
	MegaSAS Interface = "megasas" // LSI MegaRAID SAS (megaraid_sas), scsi-hd behind it
	LSI     Interface = "lsi"     // LSI 53C895A (sym53c8xx), scsi-hd behind it
	PVSCSI  Interface = "pvscsi"  // VMware paravirtual SCSI (vmw_pvscsi), scsi-hd behind it
)

// scsiControllers are the QEMU devices of the interfaces whose disks are scsi-hd on a bus.
var scsiControllers = map[Interface]string{SCSI: "virtio-scsi-pci", MegaSAS: "megasas", LSI: "lsi53c895a", PVSCSI: "pvscsi"}

// Disk is a raw image file attached to the VM.
type Disk struct {
	Path       string
	Interface  Interface
	Serial     string // the serial the guest sees (sysfs, by-id); required
	SectorSize int    // logical and physical block size: 0 or 512, or 4096
}

// Config describes one boot. The same Config started again is a power cycle: the disks and
// the OVMF variables are files that keep their contents.
type Config struct {
	// Direct kernel boot: Kernel and Initramfs are given to QEMU, Append is the command line.
	Kernel, Initramfs, Append string
	// UEFI boot: OVMFCode is the read-only firmware, OVMFVars a writable copy (see NewVars).
	OVMFCode, OVMFVars string
	Disks              []Disk
	MemoryMiB          int  // default 1024
	Net                bool // virtio-net on QEMU user networking, restricted to this machine
	NoReboot           bool // a guest reboot ends QEMU instead
	ExtraArgs          []string
	Timeout            time.Duration // the whole VM's life; default 10 minutes
	// Events, when set, is a file that receives the guest's second serial port
	// (ttyS1): with nodeinit.events=ttyS1 on the command line, nodeinit's event
	// stream as JSON lines. Tests assert on those events, not on console prose.
	Events string
	// Netns, when set, runs QEMU inside that network namespace (see Network), so a
	// tap netdev in ExtraArgs finds its device there.
	Netns string
}

// VM is a running QEMU with its serial console captured.
type VM struct {
	t       testing.TB
	vm      *qemu.VM
	console *console
	exited  chan struct{}
	exitErr error
	events  string // Config.Events
	seen    int    // events already matched by ExpectEvent
}

// Accel returns the QEMU accelerator: tcg, or kvm when NODEINIT_KVM=1 (KVM hangs on some
// of our machines, so it is never the default).
func Accel() string {
	if os.Getenv("NODEINIT_KVM") == "1" {
		return "kvm"
	}
	return "tcg"
}

// CPU is the guests' -cpu model: $NODEINIT_QEMU_CPU, or defaultCPU.
func CPU() string {
	if c := os.Getenv("NODEINIT_QEMU_CPU"); c != "" {
		return c
	}
	return defaultCPU
}

// defaultCPU is every feature TCG emulates except ERMS and FSRM: with them the
// guest kernel copies memory with "rep movsb", which TCG runs a byte at a time.
// Without them an install and a boot took 11% less wall time here (two runs of
// TestEarlyBoot and TestInstall4KVirtio each, 146.7 s against 130.2 s), and the
// kernel unpacked the initramfs in 0.44-0.55 s instead of 0.70-0.91 s
// (bench/initrd).
const defaultCPU = "max,-erms,-fsrm"

// SkipWithoutQEMU skips the test when qemu-system-x86_64 is not installed.
func SkipWithoutQEMU(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 not installed (Debian package qemu-system-x86)")
	}
}

// NewDisk creates a sparse raw disk image of size bytes in the test's temp dir.
func NewDisk(t testing.TB, name string, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := CreateDisk(p, size); err != nil {
		t.Fatal(err)
	}
	return p
}

// CreateDisk creates (or empties) the sparse raw disk image path of size bytes.
func CreateDisk(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("new disk %s: %w", path, err)
	}
	return f.Close()
}

// NewVars copies the OVMF variable store template into the test's temp dir, so a VM can
// write boot entries there and keep them over power cycles.
func NewVars(t testing.TB, template string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "OVMF_VARS.fd")
	if err := CopyVars(template, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// CopyVars copies the OVMF variable store template to path, a fresh store for one machine.
func CopyVars(template, path string) error {
	data, err := os.ReadFile(template)
	if err != nil {
		return fmt.Errorf("OVMF vars template: %w (run make fetch)", err)
	}
	return os.WriteFile(path, data, 0o644)
}

// Args returns the QEMU arguments for c, after the binary and before -kernel.
func (c Config) Args() ([]string, error) {
	mem := c.MemoryMiB
	if mem == 0 {
		mem = 1024
	}
	args := []string{"-accel", Accel(), "-machine", "q35", "-cpu", CPU(), "-m", fmt.Sprint(mem), "-smp", "2", "-nodefaults", "-vga", "none"}
	// -nographic puts the serial port on stdio; -nodefaults removed it, so add it back.
	args = append(args, "-serial", "mon:stdio")
	if c.Events != "" {
		args = append(args, "-serial", "file:"+c.Events)
	}
	if c.OVMFCode != "" {
		if c.OVMFVars == "" {
			return nil, errors.New("vm: OVMFCode without OVMFVars: give a writable copy from NewVars")
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+c.OVMFCode,
			"-drive", "if=pflash,format=raw,unit=1,file="+c.OVMFVars)
	}
	controllers := map[Interface]bool{} // added already, for the disks behind one (xhci)
	sata := 0                           // next free AHCI port
	for i, d := range c.Disks {
		if d.Serial == "" {
			return nil, fmt.Errorf("vm: disk %s has no serial", d.Path)
		}
		id := fmt.Sprintf("disk%d", i)
		args = append(args, "-drive", fmt.Sprintf("file=%s,if=none,id=%s,format=raw,cache=writeback", d.Path, id))
		block := ""
		switch d.SectorSize {
		case 0, 512:
		case 4096:
			block = ",logical_block_size=4096,physical_block_size=4096"
		default:
			return nil, fmt.Errorf("vm: disk %s: sector size %d, want 512 or 4096", d.Path, d.SectorSize)
		}
		switch d.Interface {
		case NVMe:
			args = append(args, "-device", fmt.Sprintf("nvme,serial=%s,drive=%s%s", d.Serial, id, block))
		case Virtio, "":
			args = append(args, "-device", fmt.Sprintf("virtio-blk-pci,serial=%s,drive=%s%s", d.Serial, id, block))
		case SATA:
			if block != "" {
				return nil, fmt.Errorf("vm: disk %s: QEMU's ide-hd has 512-byte sectors only", d.Path)
			}
			if sata >= 6 {
				return nil, fmt.Errorf("vm: disk %s: q35's AHCI has 6 ports", d.Path)
			}
			args = append(args, "-device", fmt.Sprintf("ide-hd,bus=ide.%d,serial=%s,drive=%s", sata, d.Serial, id))
			sata++
		case USB:
			if !controllers[USB] {
				controllers[USB] = true
				args = append(args, "-device", "qemu-xhci,id=xhci")
			}
			if block == "" {
				args = append(args, "-device", fmt.Sprintf("usb-storage,bus=xhci.0,serial=%s,drive=%s", d.Serial, id))
				break
			}
			// usb-storage reports 512-byte sectors whatever its drive says; a bulk-only
			// transport with a SCSI disk behind it passes the disk's block size on.
			args = append(args, "-device", fmt.Sprintf("usb-bot,bus=xhci.0,id=bot%d,serial=%s", i, d.Serial),
				"-device", fmt.Sprintf("scsi-hd,bus=bot%d.0,drive=%s%s", i, id, block))
		default:
			ctrl, ok := scsiControllers[d.Interface]
			if !ok {
				return nil, fmt.Errorf("vm: disk %s: interface %q, want nvme, virtio, sata, scsi, usb, megasas, lsi or pvscsi", d.Path, d.Interface)
			}
			// A controller of its own for each disk: QEMU refused a third target ID on
			// one virtio-scsi bus ("bad scsi device id: 2").
			args = append(args, "-device", fmt.Sprintf("%s,id=hba%d", ctrl, i),
				"-device", fmt.Sprintf("scsi-hd,bus=hba%d.0,serial=%s,drive=%s%s", i, d.Serial, id, block))
		}
	}
	if c.Net {
		args = append(args, "-nic", "user,model=virtio-net-pci,restrict=on")
	} else {
		args = append(args, "-nic", "none")
	}
	if c.NoReboot {
		args = append(args, "-no-reboot")
	}
	return append(args, c.ExtraArgs...), nil
}

// Start boots c. The VM is killed when the test ends; its console is logged on failure.
// It uses hugelgupf/vmtest's qemu package to run QEMU and relay the serial console, and
// passes firmware and disks as plain arguments: vmtest has no pflash or NVMe devices.
func Start(t testing.TB, c Config) *VM {
	t.Helper()
	SkipWithoutQEMU(t)
	args, err := c.Args()
	if err != nil {
		t.Fatal(err)
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	con := newConsole()
	command := "qemu-system-x86_64"
	if c.Netns != "" {
		command = "ip netns exec " + c.Netns + " " + command
	}
	fns := []qemu.Fn{
		qemu.WithQEMUCommand(command),
		qemu.ArbitraryArgs(args...),
		qemu.WithSerialOutput(con),
		qemu.WithVMTimeout(timeout),
	}
	if c.Kernel != "" {
		fns = append(fns, qemu.WithKernel(c.Kernel), qemu.WithInitramfs(c.Initramfs), qemu.WithAppendKernel(c.Append))
	}
	opts, err := qemu.OptionsFor(qemu.ArchAMD64, fns...)
	if err != nil {
		t.Fatal(err)
	}
	// vmtest adds -nographic; with -nodefaults and our explicit -serial that is what we want.
	qvm, err := opts.Start(context.Background())
	if err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	v := &VM{t: t, vm: qvm, console: con, exited: make(chan struct{}), events: c.Events}
	t.Logf("qemu: %s", qvm.CmdlineQuoted())
	// Wait drains the console (a full pty would stop the guest) and reaps QEMU.
	go func() {
		v.exitErr = qvm.Wait()
		close(v.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-v.exited:
		default:
			qvm.Kill()
			<-v.exited
		}
		if t.Failed() {
			t.Logf("serial console:\n%s", v.Output())
		}
	})
	return v
}

// Output returns everything the serial console printed so far.
func (v *VM) Output() string { return v.console.String() }

// Expect waits until re matches the serial output after the previous match, and returns the
// submatches. On timeout, or when QEMU exits first, it fails the test with the last console
// lines.
func (v *VM) Expect(re string, timeout time.Duration) []string {
	v.t.Helper()
	m, err := v.console.expect(regexp.MustCompile(re), timeout, v.exited)
	if err != nil {
		v.t.Fatalf("waiting for /%s/: %v\nlast console lines:\n%s", re, err, v.console.tail(40))
	}
	return m
}

// Send types s on the serial console.
func (v *VM) Send(s string) {
	v.t.Helper()
	if _, err := v.vm.Console.Send(s); err != nil {
		v.t.Fatalf("send to console: %v", err)
	}
}

// WaitExit waits for QEMU to exit (guest power-off, or reboot with NoReboot) and returns
// its exit error; it fails the test with the last console lines on timeout.
func (v *VM) WaitExit(timeout time.Duration) error {
	v.t.Helper()
	select {
	case <-v.exited:
		return v.exitErr
	case <-time.After(timeout):
		v.t.Fatalf("VM did not exit within %s\nlast console lines:\n%s", timeout, v.console.tail(40))
		return nil
	}
}

// Kill stops QEMU at once, like pulling the power cord, and waits for it to go.
func (v *VM) Kill() {
	v.vm.Kill()
	<-v.exited
}

// console collects serial output and lets Expect wait for it.
type console struct {
	mu     sync.Mutex
	buf    strings.Builder
	cursor int
	change chan struct{}
}

func newConsole() *console { return &console{change: make(chan struct{})} }

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	// Drop carriage returns so lines read cleanly in test logs.
	c.buf.WriteString(strings.ReplaceAll(string(p), "\r", ""))
	close(c.change)
	c.change = make(chan struct{})
	c.mu.Unlock()
	return len(p), nil
}

func (c *console) Close() error { return nil }

func (c *console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func (c *console) tail(n int) string {
	lines := strings.Split(strings.TrimRight(c.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (c *console) expect(re *regexp.Regexp, timeout time.Duration, exited <-chan struct{}) ([]string, error) {
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		s := c.buf.String()
		changed := c.change
		if loc := re.FindStringSubmatchIndex(s[c.cursor:]); loc != nil {
			m := make([]string, 0, len(loc)/2)
			for i := 0; i < len(loc); i += 2 {
				if loc[i] < 0 {
					m = append(m, "")
					continue
				}
				m = append(m, s[c.cursor+loc[i]:c.cursor+loc[i+1]])
			}
			c.cursor += loc[1]
			c.mu.Unlock()
			return m, nil
		}
		c.mu.Unlock()
		select {
		case <-changed:
		case <-exited:
			// One last look: the final bytes may have arrived with the exit.
			if m := re.FindStringSubmatch(c.String()[c.cursor:]); m != nil {
				return m, nil
			}
			return nil, errors.New("QEMU exited")
		case <-deadline:
			return nil, fmt.Errorf("timed out after %s", timeout)
		}
	}
}

var _ io.WriteCloser = (*console)(nil)
