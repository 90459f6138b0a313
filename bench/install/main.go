// Command install measures a whole unattended install under QEMU (TCG) against dd
// in the same VM: issue 15's P6 and P7.
//
//   - nodeinit: a 512 MiB VM boots the cloud kernel and nodeinit's initramfs under
//     OVMF with `install storage_init=serial:… nodeinit.image=label:NODEINIT`. The
//     signed bundle of about 1 GiB (the test OS plus an incompressible filler) is on
//     a second virtio disk, an ext4 filesystem labelled NODEINIT. The time is the
//     guest's printk stamp of "reboot: Restarting system": kernel start to reboot,
//     every stage included (probe, partition, filesystems, the verified slot write,
//     the ESP, the config). /init's peak RSS is what it prints at the hand-off
//     (getrusage).
//   - dd: the same VM, kernel and disks boot the rescue shell of the same
//     initramfs with Debian's dd added, mount the same ext4 read-only, and run
//     `dd bs=4M oflag=direct conv=fsync` of the same rootfs onto the other slot
//     partition. The time is dd's own, from /proc/uptime around it.
//
// Both slots are then read back on the host and compared with the bundle's
// rootfs.
//
// Run as root: go run ./bench/install [-size 1024] [-mem 512] [-v]
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/early"
	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/initramfs"
	"github.com/nodeinit/nodeinit/internal/benchutil"
	"github.com/nodeinit/nodeinit/qemu-tests/fixture"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/install:", err)
		os.Exit(1)
	}
}

// Serials of the two disks, and the budgets this bench judges.
const (
	targetSerial = "BENCHINSTALL"
	mediumSerial = "BENCHMEDIUM"
	budgetP6MiB  = 64
	budgetP7     = 1.3
)

func run() error {
	sizeMiB := flag.Int("size", 1024, "MiB of incompressible filler in the image's root")
	memMiB := flag.Int("mem", 512, "VM memory in MiB")
	cache := flag.String("cache", vm.DefaultCacheDir(), "Debian kernel and firmware cache (make fetch)")
	keep := flag.Bool("keep", false, "keep the work directory")
	verbose := flag.Bool("v", false, "stream the serial consoles")
	flag.Parse()
	if err := benchutil.NeedTools("qemu-system-x86_64", "mkfs.ext4", "sgdisk", "dd"); err != nil {
		return err
	}
	ctx := context.Background()
	deb, err := benchutil.Debian(ctx, *cache)
	if err != nil {
		return err
	}
	// On disk, not in a tmpfs: the image and the two disks are a few GiB.
	work, cleanup, err := benchutil.WorkDir("/var/tmp", "nodeinit-bench-install-", *keep)
	if err != nil {
		return err
	}
	defer cleanup()
	logw := io.Discard
	if *verbose {
		logw = os.Stderr
	}

	start := time.Now()
	fx, err := fixture.Build(ctx, fixture.Options{CacheDir: *cache, OutDir: filepath.Join(work, "fixture"),
		Versions: []fixture.Version{{Version: "1.0", FillerMiB: *sizeMiB}}, Log: logw})
	if err != nil {
		return err
	}
	bundle := fx.Bundles["1.0"]
	rootfs := filepath.Join(bundle, image.RootfsName)
	st, err := os.Stat(rootfs)
	if err != nil {
		return err
	}
	withDD, err := fx.InitramfsBuiltWith(ctx, "with-dd", initramfs.Options{Files: []string{"/usr/bin/dd"}})
	if err != nil {
		return err
	}
	medium := filepath.Join(work, "medium.img")
	if err := ext4Of(ctx, bundle, medium, st.Size()+128<<20); err != nil {
		return err
	}
	target := filepath.Join(work, "target.img")
	if err := vm.CreateDisk(target, 16<<30); err != nil {
		return err
	}
	vars := filepath.Join(work, "OVMF_VARS.fd")
	if b, err := os.ReadFile(deb.BenchOVMFVars); err != nil {
		return fmt.Errorf("OVMF vars template: %w (run make fetch)", err)
	} else if err := os.WriteFile(vars, b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench/install: a %d MiB image built in %s; installing\n", st.Size()>>20, time.Since(start).Round(time.Second))

	cfg := vm.Config{OVMFCode: deb.BenchOVMFCode, OVMFVars: vars, Kernel: deb.Vmlinuz, NoReboot: true, MemoryMiB: *memMiB,
		Disks: []vm.Disk{{Path: target, Interface: vm.Virtio, Serial: targetSerial}, {Path: medium, Interface: vm.Virtio, Serial: mediumSerial}}}
	cfg.Initramfs = fx.Initramfs
	cfg.Append = "console=ttyS0 panic=5 printk.time=1 install storage_init=serial:" + targetSerial +
		" nodeinit.image=label:NODEINIT hostname=bench"
	ins, err := measureInstall(ctx, cfg, logw)
	if err != nil {
		return err
	}
	want, err := sha256Prefix(rootfs, st.Size())
	if err != nil {
		return err
	}
	if err := checkSlot(target, 2, st.Size(), want); err != nil {
		return fmt.Errorf("after the install: %w", err)
	}
	fmt.Fprintf(os.Stderr, "bench/install: nodeinit installed in %.2f s (guest); dd next\n", ins.total)

	cfg.Initramfs = withDD
	cfg.Append = "console=ttyS0 panic=5 printk.time=1 rescue"
	ddSeconds, err := measureDD(ctx, cfg, logw)
	if err != nil {
		return err
	}
	if err := checkSlot(target, 3, st.Size(), want); err != nil {
		return fmt.Errorf("after dd: %w", err)
	}

	ratio := ins.total / ddSeconds
	fmt.Printf("install: an unattended install of a %d MiB image under QEMU %s (-cpu %s, %d MiB), against dd of the same rootfs in the same VM\n",
		st.Size()>>20, vm.Accel(), vm.CPU(), *memMiB)
	fmt.Printf("  nodeinit, kernel start to reboot: %.2f s (the hand-off at %.2f s)\n", ins.total, ins.handoff)
	fmt.Printf("  dd bs=4M oflag=direct conv=fsync alone: %.2f s (%.0f MB/s)\n", ddSeconds, float64(st.Size())/ddSeconds/1e6)
	fmt.Printf("  ratio install/dd: %.2f (issue 15's P7: <= %.1f): %s\n", ratio, budgetP7, verdict(ratio <= budgetP7))
	fmt.Printf("  peak RSS of /init: %.1f MiB, of its largest child %.1f MiB (P6: <= %d MiB): %s\n",
		ins.rssMiB, ins.childMiB, budgetP6MiB, verdict(ins.rssMiB <= budgetP6MiB))
	fmt.Printf("  stages: %s\n", ins.stages)
	fmt.Printf("  total bench time %s\n", time.Since(start).Round(time.Second))
	for _, f := range []benchutil.Figure{
		{Name: "install.ratio_to_dd", Value: ratio, Unit: "x", Note: fmt.Sprintf("%.2f s against dd %.2f s, %d MiB, %d MiB VM", ins.total, ddSeconds, st.Size()>>20, *memMiB)},
		{Name: "install.peak_rss", Value: ins.rssMiB, Unit: "MiB", Note: fmt.Sprintf("largest child %.1f MiB", ins.childMiB)},
	} {
		if err := benchutil.Record(f); err != nil {
			return err
		}
	}
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// install is what the installer's console says about one install.
type install struct {
	total, handoff   float64 // guest seconds: reboot, and the hand-off's timing line
	rssMiB, childMiB float64
	stages           string
}

var (
	rebootRE = regexp.MustCompile(`\[\s*([0-9]+\.[0-9]+)\] reboot: Restarting system`)
	timingRE = regexp.MustCompile(`nodeinit: timing: (.*), kernel→hand-off ([0-9.]+)s, peak RSS ([0-9.]+) MiB \(children ([0-9.]+) MiB\)`)
)

// measureInstall runs the unattended install until QEMU exits at the reboot.
func measureInstall(ctx context.Context, cfg vm.Config, logw io.Writer) (install, error) {
	c, err := benchutil.StartQEMU(ctx, cfg, 15*time.Minute, logw)
	if err != nil {
		return install{}, err
	}
	out, err := c.Wait()
	if err == nil && !strings.Contains(out, "nodeinit: install complete") {
		err = errors.New(`no "nodeinit: install complete" on the console`)
	}
	if err != nil {
		return install{}, fmt.Errorf("install: %w\n%s", err, benchutil.Tail(out, 40))
	}
	var r install
	m := rebootRE.FindStringSubmatch(out)
	t := timingRE.FindStringSubmatch(out)
	if m == nil || t == nil {
		return install{}, fmt.Errorf("install: no reboot stamp or timing line on the console (printk.time=1)\n%s", benchutil.Tail(out, 40))
	}
	r.total, _ = strconv.ParseFloat(m[1], 64)
	r.handoff, _ = strconv.ParseFloat(t[2], 64)
	r.rssMiB, _ = strconv.ParseFloat(t[3], 64)
	r.childMiB, _ = strconv.ParseFloat(t[4], 64)
	r.stages = t[1]
	return r, nil
}

// measureDD boots the rescue shell and times dd of the medium's rootfs onto slot b
// (/dev/vda3; the target is the first virtio disk, the medium the second).
func measureDD(ctx context.Context, cfg vm.Config, logw io.Writer) (float64, error) {
	c, err := benchutil.StartQEMU(ctx, cfg, 15*time.Minute, logw)
	if err != nil {
		return 0, err
	}
	defer c.Kill()
	if _, err := c.Expect(regexp.QuoteMeta(early.RescueShellBanner), 5*time.Minute); err != nil {
		return 0, err
	}
	time.Sleep(2 * time.Second) // let the shell draw its prompt
	// The marker is made by the shell ($s, $a, $c), so the echo of the typed line
	// cannot match it.
	c.Send("mkdir -p /mnt && mount -t ext4 -o ro /dev/vdb /mnt && read a x < /proc/uptime && " +
		"/usr/bin/dd if=/mnt/" + image.RootfsName + " of=/dev/vda3 bs=4M oflag=direct conv=fsync status=none; s=$?; " +
		"read c x < /proc/uptime; echo DD-$s-$a-$c-END\r")
	m, err := c.Expect(`DD-(\d+)-([0-9.]+)-([0-9.]+)-END`, 10*time.Minute)
	if err != nil {
		return 0, err
	}
	if m[1] != "0" {
		return 0, fmt.Errorf("dd exited %s\n%s", m[1], benchutil.Tail(c.Output(), 20))
	}
	a, _ := strconv.ParseFloat(m[2], 64)
	b, _ := strconv.ParseFloat(m[3], 64)
	c.Send("umount /mnt; poweroff\r")
	if _, err := c.Wait(); err != nil {
		return 0, err
	}
	return b - a, nil
}

// ext4Of makes an ext4 image of size bytes labelled NODEINIT holding dir's files.
func ext4Of(ctx context.Context, dir, img string, size int64) error {
	if err := vm.CreateDisk(img, size); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-L", "NODEINIT", "-d", dir, img).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4 -d %s %s: %v: %s", dir, img, err, out)
	}
	return nil
}

// checkSlot compares the first n bytes of partition part of the disk image with
// the rootfs's SHA-256.
func checkSlot(disk string, part int, n int64, want [32]byte) error {
	out, err := exec.Command("sgdisk", "-i", strconv.Itoa(part), disk).CombinedOutput()
	if err != nil {
		return fmt.Errorf("sgdisk -i %d %s: %v: %s", part, disk, err, out)
	}
	m := regexp.MustCompile(`First sector: (\d+)`).FindSubmatch(out)
	if m == nil {
		return fmt.Errorf("partition %d of %s: no first sector:\n%s", part, disk, out)
	}
	first, _ := strconv.ParseInt(string(m[1]), 10, 64)
	f, err := os.Open(disk)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, first*512, n)); err != nil {
		return err
	}
	if got := [32]byte(h.Sum(nil)); got != want {
		return fmt.Errorf("partition %d of %s does not hold the rootfs (sha256 %x, want %x)", part, disk, got, want)
	}
	return nil
}

func sha256Prefix(path string, n int64) ([32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, bufio.NewReader(io.LimitReader(f, n))); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}
