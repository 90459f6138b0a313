// Command boot compares nodeinit's initramfs with Debian's own
// initramfs-tools initrd for the same cloud kernel, in the same run: the
// size of each (compressed bytes) and, under QEMU (TCG), the time from
// kernel start to the real root's init, read from the guest's own clock.
//
// Both boot the same node image (the test OS of qemu-tests/fixture, whose
// /sbin/init prints "TESTOS-START uptime=<s>" first thing) from a virtio disk:
//
//   - nodeinit: the installer puts version 1.0 on a blank disk once, then
//     each run powers the node on through OVMF and systemd-boot, and our
//     /init mounts the squashfs slot under a tmpfs overlay and switch_roots;
//   - nodeinit with a TPM: the same boot with swtpm attached as a TPM 2.0, so
//     nodeinit measures its phases and steps (measure/); the difference in
//     time spent in the initramfs is the cost of measuring;
//   - Debian: direct kernel boot with its stock initrd for the same kernel
//     (benchutil.StockInitrd: mkinitramfs with initramfs-tools' defaults,
//     MODULES=most, inside a minbase root with no lvm2, mdadm or cryptsetup
//     hooks) and root=/dev/vda, an ext4 image holding the same root tree.
//
// Firmware time is left out: every figure is guest uptime (CLOCK_BOOTTIME
// and printk timestamps), which starts at zero when the kernel starts.
// The runs are interleaved and the medians printed with min and max.
//
// Run as root: go run ./bench/boot [-runs 3] [-v]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/internal/benchutil"
	"github.com/nodeinit/nodeinit/internal/testtpm"
	"github.com/nodeinit/nodeinit/qemu-tests/fixture"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/boot:", err)
		os.Exit(1)
	}
}

// diskSerial names the node's disk for storage_init=.
const diskSerial = "BENCHBOOT1"

func run() error {
	runs := flag.Int("runs", 3, "boots of each initramfs (the median is reported)")
	cache := flag.String("cache", vm.DefaultCacheDir(), "Debian kernel and firmware cache (make fetch)")
	keep := flag.Bool("keep", false, "keep the work directory")
	verbose := flag.Bool("v", false, "stream the serial consoles")
	flag.Parse()
	if *runs < 1 {
		return fmt.Errorf("-runs %d: give at least 1", *runs)
	}
	if err := benchutil.NeedTools("qemu-system-x86_64", "unsquashfs", "mkfs.ext4"); err != nil {
		return err
	}
	ctx := context.Background()
	deb, err := benchutil.Debian(ctx, *cache)
	if err != nil {
		return err
	}
	work, cleanup, err := benchutil.WorkDir("", "nodeinit-bench-boot-", *keep)
	if err != nil {
		return err
	}
	defer cleanup()
	logw := io.Discard
	if *verbose {
		logw = os.Stderr
	}

	start := time.Now()
	debianInitrd, err := benchutil.StockInitrd(ctx, *cache, deb.KernelVersion, logw)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench/boot: Debian's stock initrd %s (%s)\n", debianInitrd, time.Since(start).Round(time.Second))
	fx, err := fixture.Build(ctx, fixture.Options{CacheDir: *cache, OutDir: filepath.Join(work, "fixture"),
		Versions: []fixture.Version{{Version: "1.0"}}, Log: logw})
	if err != nil {
		return err
	}
	debianRoot := filepath.Join(work, "debian-root.img")
	if err := rootImage(ctx, fx.Bundles["1.0"], filepath.Join(work, "root"), debianRoot); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench/boot: fixtures built in %s; installing nodeinit onto the node disk\n", time.Since(start).Round(time.Second))

	n := &nodeMachine{deb: deb, disk: filepath.Join(work, "node.img"), vars: filepath.Join(work, "OVMF_VARS.fd"), log: logw}
	if err := n.install(ctx, fx); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench/boot: installed in %s; booting %d times each\n", time.Since(start).Round(time.Second), *runs)

	debian := vm.Config{Kernel: deb.Vmlinuz, Initramfs: debianInitrd,
		Append:    "console=ttyS0 panic=5 root=/dev/vda rootfstype=ext4 ro testos.action=poweroff",
		Disks:     []vm.Disk{{Path: debianRoot, Interface: vm.Virtio, Serial: diskSerial}},
		NoReboot:  true,
		MemoryMiB: 1536,
	}
	var ours, measured, theirs []timing
	tpmDir := filepath.Join(work, "tpm")
	if err := os.MkdirAll(tpmDir, 0o700); err != nil {
		return err
	}
	for i := 0; i < *runs; i++ {
		t, err := n.boot(ctx, "")
		if err != nil {
			return fmt.Errorf("nodeinit boot %d: %w", i+1, err)
		}
		ours = append(ours, t)
		if t, err = n.boot(ctx, tpmDir); err != nil {
			return fmt.Errorf("nodeinit boot %d with a TPM: %w", i+1, err)
		}
		measured = append(measured, t)
		out, err := qemu(ctx, debian, 3*time.Minute, logw)
		if err != nil {
			return fmt.Errorf("Debian boot %d: %w\n%s", i+1, err, benchutil.Tail(out, 30))
		}
		if t, err = parseTiming(out); err != nil {
			return fmt.Errorf("Debian boot %d: %w\n%s", i+1, err, benchutil.Tail(out, 30))
		}
		theirs = append(theirs, t)
		fmt.Fprintf(os.Stderr, "bench/boot: run %d: nodeinit %.3fs (with a TPM %.3fs), Debian %.3fs to root init\n",
			i+1, ours[i].rootInit, measured[i].rootInit, theirs[i].rootInit)
	}

	oursSize, err := fileSize(fx.Initramfs)
	if err != nil {
		return err
	}
	theirSize, err := fileSize(debianInitrd)
	if err != nil {
		return err
	}
	if err := report(os.Stdout, deb.KernelVersion, *runs, oursSize, theirSize, ours, measured, theirs); err != nil {
		return err
	}
	fmt.Printf("  total bench time %s\n", time.Since(start).Round(time.Second))
	return nil
}

// rootImage unpacks the bundle's squashfs root and makes an ext4 image of
// it, the root Debian's initrd mounts.
func rootImage(ctx context.Context, bundle, dir, img string) error {
	sq := filepath.Join(bundle, image.RootfsName)
	if out, err := exec.CommandContext(ctx, "unsquashfs", "-q", "-n", "-d", dir, sq).CombinedOutput(); err != nil {
		return fmt.Errorf("unsquashfs %s: %v: %s", sq, err, out)
	}
	f, err := os.Create(img)
	if err != nil {
		return err
	}
	if err := f.Truncate(256 << 20); err != nil {
		f.Close()
		return err
	}
	f.Close()
	if out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-L", "debianroot", "-d", dir, img).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4 -d %s %s: %v: %s", dir, img, err, out)
	}
	return nil
}

// nodeMachine is the nodeinit side: one disk and one OVMF variable store
// that keep their contents across boots.
type nodeMachine struct {
	deb  vm.Artifacts
	disk string
	vars string
	log  io.Writer
}

func (n *nodeMachine) config() vm.Config {
	return vm.Config{OVMFCode: n.deb.BenchOVMFCode, OVMFVars: n.vars,
		Disks: []vm.Disk{{Path: n.disk, Interface: vm.Virtio, Serial: diskSerial}}, NoReboot: true, MemoryMiB: 1536}
}

// install runs the installer once onto a blank 16 GiB sparse disk.
func (n *nodeMachine) install(ctx context.Context, fx *fixture.Artifacts) error {
	vars, err := os.ReadFile(n.deb.BenchOVMFVars)
	if err != nil {
		return fmt.Errorf("OVMF vars template: %w (run make fetch)", err)
	}
	if err := os.WriteFile(n.vars, vars, 0o644); err != nil {
		return err
	}
	f, err := os.Create(n.disk)
	if err != nil {
		return err
	}
	err = f.Truncate(16 << 30)
	f.Close()
	if err != nil {
		return err
	}
	initrd, err := fx.Installer("1.0")
	if err != nil {
		return err
	}
	c := n.config()
	c.Kernel, c.Initramfs = n.deb.Vmlinuz, initrd
	// Every boot shows PCR 23, nodeinit's own: a hash when the TPM measured the
	// boot, "missing" without a TPM.
	c.Append = "console=ttyS0 panic=5 install storage_init=serial:" + diskSerial + " BOOTIF=link hostname=bench " +
		"testos.action=show:/sys/class/tpm/tpm0/pcr-sha256/23,poweroff"
	out, err := qemu(ctx, c, 5*time.Minute, n.log)
	if err == nil && !strings.Contains(out, "nodeinit: install complete") {
		err = errors.New(`no "nodeinit: install complete" on the console`)
	}
	if err != nil {
		return fmt.Errorf("install: %w\n%s", err, benchutil.Tail(out, 40))
	}
	return nil
}

// boot powers the installed node on and times it. With tpmDir it attaches
// swtpm (its state in tpmDir) as a TPM 2.0, and checks that the boot was
// measured: PCR 23 is no longer all zeroes.
func (n *nodeMachine) boot(ctx context.Context, tpmDir string) (timing, error) {
	c := n.config()
	if tpmDir != "" {
		sock, sw, err := testtpm.StartControl(tpmDir)
		if err != nil {
			return timing{}, err
		}
		defer sw.Stop()
		c.ExtraArgs = []string{"-chardev", "socket,id=chrtpm,path=" + sock, "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
			"-device", "tpm-crb,tpmdev=tpm0"}
	}
	out, err := qemu(ctx, c, 3*time.Minute, n.log)
	if err != nil {
		return timing{}, fmt.Errorf("%w\n%s", err, benchutil.Tail(out, 30))
	}
	t, err := parseTiming(out)
	if err != nil {
		return timing{}, fmt.Errorf("%w\n%s", err, benchutil.Tail(out, 30))
	}
	m := pcr23RE.FindStringSubmatch(out)
	switch measured := m != nil && strings.Trim(m[1], "0") != ""; {
	case tpmDir != "" && !measured:
		return timing{}, fmt.Errorf("the boot with a TPM left PCR 23 unmeasured\n%s", benchutil.Tail(out, 30))
	case tpmDir == "" && m != nil:
		return timing{}, fmt.Errorf("the boot without a TPM shows a PCR 23\n%s", benchutil.Tail(out, 30))
	}
	return t, nil
}

// pcr23RE is the test OS showing nodeinit's PCR from sysfs.
var pcr23RE = regexp.MustCompile(`TESTOS-SHOW /sys/class/tpm/tpm0/pcr-sha256/23 "([0-9A-Fa-f]{64})`)

// timing is one boot, in seconds of guest uptime.
type timing struct {
	initStart float64 // the kernel runs the initramfs /init
	rootExec  float64 // the kernel executes the real root's /sbin/init
	rootInit  float64 // the real root's init starts (its first line)
	wall      float64 // host seconds for the whole VM (firmware, boot, power-off)
}

var (
	runInitRE  = regexp.MustCompile(`\[\s*([0-9]+\.[0-9]+)\] Run /init as init process`)
	nodeInitRE = regexp.MustCompile(`nodeinit: /init started ([0-9.]+)s after kernel start`)
	startRE    = regexp.MustCompile(`TESTOS-START uptime=([0-9.]+)s`)
	// execRE is the line the kernel's TOMOYO module prints when /sbin/init is
	// executed while no policy loader exists: in both boots, the moment the
	// initramfs hands over (nodeinit's switch_root, initramfs-tools' run-init).
	execRE = regexp.MustCompile(`\[\s*([0-9]+\.[0-9]+)\] Not activating Mandatory Access Control as /sbin/tomoyo-init does not exist`)
)

// parseTiming reads the guest's timestamps from a serial console log.
func parseTiming(out string) (timing, error) {
	var t timing
	m := runInitRE.FindStringSubmatch(out)
	if m == nil {
		m = nodeInitRE.FindStringSubmatch(out)
	}
	if m == nil {
		return t, errors.New(`no "Run /init as init process" on the console`)
	}
	t.initStart, _ = strconv.ParseFloat(m[1], 64)
	m = startRE.FindStringSubmatch(out)
	if m == nil {
		return t, errors.New("the node OS's init never printed TESTOS-START")
	}
	t.rootInit, _ = strconv.ParseFloat(m[1], 64)
	m = execRE.FindStringSubmatch(out)
	if m == nil {
		return t, errors.New("no TOMOYO line at the exec of /sbin/init: this kernel does not say when the initramfs handed over")
	}
	t.rootExec, _ = strconv.ParseFloat(m[1], 64)
	if !strings.Contains(out, "TESTOS-READY") {
		return t, errors.New("no TESTOS-READY: the node OS did not come up")
	}
	if i := strings.LastIndex(out, "bench-wall="); i >= 0 {
		t.wall, _ = strconv.ParseFloat(strings.Fields(out[i+len("bench-wall="):])[0], 64)
	}
	return t, nil
}

// qemu runs one VM until it powers off (the test OS ends with poweroff and
// QEMU runs with -no-reboot) or timeout passes, and returns its console
// followed by a "bench-wall=<seconds>" line.
func qemu(ctx context.Context, c vm.Config, timeout time.Duration, log io.Writer) (string, error) {
	start := time.Now()
	con, err := benchutil.StartQEMU(ctx, c, timeout, log)
	if err != nil {
		return "", err
	}
	out, err := con.Wait()
	return out + fmt.Sprintf("\nbench-wall=%.3f\n", time.Since(start).Seconds()), err
}

// report prints the table and the ratios (ours/Debian).
func report(w io.Writer, kver string, runs int, oursSize, theirSize int64, ours, measured, theirs []timing) error {
	fmt.Fprintf(w, "boot: kernel %s, QEMU %s, %d interleaved boots each; guest seconds after kernel start (median [min-max])\n", kver, vm.Accel(), runs)
	fmt.Fprintf(w, "  %-22s %14s %24s %24s %10s\n", "initramfs", "size bytes", "/init starts", "root init starts", "host wall")
	row := func(name string, size int64, ts []timing) {
		fmt.Fprintf(w, "  %-22s %14d %24s %24s %9.1fs\n", name, size,
			spread(ts, func(t timing) float64 { return t.initStart }),
			spread(ts, func(t timing) float64 { return t.rootInit }),
			medianOf(ts, func(t timing) float64 { return t.wall }))
	}
	row("nodeinit (OVMF, disk)", oursSize, ours)
	row("nodeinit + swtpm TPM", oursSize, measured)
	row("Debian initramfs-tools", theirSize, theirs)
	root := func(t timing) float64 { return t.rootInit }
	inInitramfs := func(t timing) float64 { return t.rootExec - t.initStart }
	toRootStart := func(t timing) float64 { return t.rootInit - t.initStart }
	fmt.Fprintf(w, "  measured boot: time in the initramfs with a TPM %.3fs, without %.3fs (medians): %+.0f ms to measure each phase and step\n",
		medianOf(measured, inInitramfs), medianOf(ours, inInitramfs), 1000*(medianOf(measured, inInitramfs)-medianOf(ours, inInitramfs)))
	fmt.Fprintf(w, "  size ratio nodeinit/Debian:             %.3f\n", float64(oursSize)/float64(theirSize))
	fmt.Fprintf(w, "  time-to-root-init ratio nodeinit/Debian: %.3f\n", medianOf(ours, root)/medianOf(theirs, root))
	fmt.Fprintf(w, "  time in the initramfs (exec of the root's /sbin/init - /init start), medians: nodeinit %.3fs, Debian %.3fs, ratio %.3f\n",
		medianOf(ours, inInitramfs), medianOf(theirs, inInitramfs), medianOf(ours, inInitramfs)/medianOf(theirs, inInitramfs))
	fmt.Fprintf(w, "  /init start to the root init's first line, medians: nodeinit %.3fs, Debian %.3fs, ratio %.3f (the root's own start: squashfs under an overlay against ext4)\n",
		medianOf(ours, toRootStart), medianOf(theirs, toRootStart), medianOf(ours, toRootStart)/medianOf(theirs, toRootStart))
	fmt.Fprintln(w, "  (host wall includes OVMF and systemd-boot for nodeinit, which the Debian direct kernel boot skips)")
	initStart := func(t timing) float64 { return t.initStart }
	for _, f := range []benchutil.Figure{
		{Name: "boot.size_ratio", Value: float64(oursSize) / float64(theirSize), Unit: "x",
			Note: fmt.Sprintf("%.2f MB against %.2f MB", float64(oursSize)/1e6, float64(theirSize)/1e6)},
		{Name: "boot.in_initramfs_ratio", Value: medianOf(ours, inInitramfs) / medianOf(theirs, inInitramfs), Unit: "x",
			Note: fmt.Sprintf("%.3f s against %.3f s", medianOf(ours, inInitramfs), medianOf(theirs, inInitramfs))},
		{Name: "boot.to_root_start_ratio", Value: medianOf(ours, toRootStart) / medianOf(theirs, toRootStart), Unit: "x",
			Note: fmt.Sprintf("%.3f s against %.3f s", medianOf(ours, toRootStart), medianOf(theirs, toRootStart))},
		{Name: "boot.kernel_to_root_ratio", Value: medianOf(ours, root) / medianOf(theirs, root), Unit: "x",
			Note: fmt.Sprintf("%.3f s against %.3f s", medianOf(ours, root), medianOf(theirs, root))},
		{Name: "boot.kernel_to_init_ratio", Value: medianOf(ours, initStart) / medianOf(theirs, initStart), Unit: "x",
			Note: fmt.Sprintf("%.3f s against %.3f s (the kernel unpacks each initramfs)", medianOf(ours, initStart), medianOf(theirs, initStart))},
	} {
		if err := benchutil.Record(f); err != nil {
			return err
		}
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		// TCG runs the guest on host CPU: a busy host stretches the guest clock for both alike.
		fmt.Fprintf(w, "  host load average at the end: %s", la)
	}
	return nil
}

func spread(ts []timing, f func(timing) float64) string {
	vs := values(ts, f)
	return fmt.Sprintf("%.3f [%.3f-%.3f]", benchutil.Median(vs), vs[0], vs[len(vs)-1])
}

func medianOf(ts []timing, f func(timing) float64) float64 { return benchutil.Median(values(ts, f)) }

func values(ts []timing, f func(timing) float64) []float64 {
	vs := make([]float64, len(ts))
	for i, t := range ts {
		vs[i] = f(t)
	}
	sort.Float64s(vs)
	return vs
}

func fileSize(p string) (int64, error) {
	st, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
