package qemutests

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/qemu-tests/fixture"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
)

// The Debian node's passwords: hashes of the first ones go on the install's command line
// (openssl passwd -6 -salt debnodeadmin Adm1n-first, and -salt debnoderoot R00t-first);
// the node makes each user change it at the first login of every boot (lastchg 0).
const (
	debAdminPW     = "Adm1n-first"
	debAdminHash   = "$6$debnodeadmin$LEbmtk7hwUUwRDPESvZSqLYyIcPqXAbO7QROpS4kNBAo7WkY.nl6uS0xVy6ykH.x4Uc6jp8sx8td4TjjK8.dX1"
	debRootPW      = "R00t-first"
	debRootHash    = "$6$debnoderoot$6VffkfQG3/od7xKWNvzJ4phP7t.iK0DaGJ815muWwhpktXF1ID10e3a/FXQlJViPnHT46Jfr7AR3N97Lt5USq1"
	debChangedPW   = "Changed-On-Serial-7"
	debNodeHost    = "debnode1"
	debLoginPrompt = debNodeHost + ` login: `
)

// TestDebianNode installs a real Debian 12 root (mmdebstrap minbase with systemd-sysv, udev,
// kmod, iproute2 and the cloud kernel, cached by package versions; see package debroot)
// with nodeinit, boots it and logs in on the serial console: the admin password from the
// command line works and must be changed, and as root systemd is running with no failed
// unit, the root is the overlay, /etc/hostname is the command line's, /var/log and /data
// are the node-logging and node-data partitions, the journal is on node-logging, and the
// image's nodeinit-bless.service blessed slot a. It then upgrades to a second build from
// a medium: slot b runs build 2.0 with the hostname, admin hash, a persisted file, /data
// and the machine ID kept, the journal holds the first boot, and the bless unit made slot
// b good in the loader entries and the ledger.
func TestDebianNode(t *testing.T) {
	longTest(t)
	f := fixtures(t)
	var logw io.Writer = io.Discard
	if testing.Verbose() {
		logw = os.Stderr
	}
	start := time.Now()
	bundles, root, err := f.DebianBundles(context.Background(), vm.DefaultCacheDir(), []fixture.DebianVersion{
		{Version: "1.0"}, {Version: "2.0", UpgradeFrom: []string{"1.x"}}}, logw)
	if err != nil {
		t.Fatalf("Debian node bundles: %v", err)
	}
	t.Logf("Debian root %s (kernel %s, %d packages, from the cache: %v) and two bundles in %s",
		root.Key, root.KernelVersion, len(root.Packages), root.Cached, time.Since(start).Round(time.Millisecond))
	medium1 := vm.Disk{Path: bundleDisk(t, bundles["1.0"], "DEBNODE1"), Interface: vm.Virtio, Serial: "DEBIMG01"}
	medium2 := vm.Disk{Path: bundleDisk(t, bundles["2.0"], "DEBNODE2"), Interface: vm.Virtio, Serial: "DEBIMG02"}
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "DEBN0001"}, medium1)
	disk := n.disks[0].Path

	phase := time.Now()
	v := n.installerFrom(f.Initramfs, "install storage_init=serial:DEBN0001 hostname="+debNodeHost+
		" adminpw="+debAdminHash+" rootpw="+debRootHash+" nodeinit.image=label:DEBNODE1 nodeinit.onfail=poweroff")
	if p := v.ExpectPlan(3 * time.Minute); p.Action != "install" || p.Image == nil || p.Image.Version != "1.0" {
		t.Fatalf("the install plans %s of %+v, want an install of %s 1.0", p.Action, p.Image, fixture.DebianImageName)
	}
	v.ExpectEvent("install finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)
	t.Logf("install: %s", time.Since(phase).Round(time.Second))

	// Boot 1: build 1.0 from slot a.
	phase = time.Now()
	v = n.powerOn()
	if p := v.ExpectPlan(3 * time.Minute); p.Action != "boot" || p.Slot != "a" {
		t.Errorf("the first boot's plan is %s of slot %q, want a boot of slot a", p.Action, p.Slot)
	}
	serialLogin(v, "admin", debAdminPW)
	if got := shell(v, "WHO", "id -un"); got != "admin" {
		t.Errorf("the admin password from adminpw= logged in as %q, want admin", got)
	}
	v.Send("exit\r")
	serialLogin(v, "root", debRootPW)
	if got := shell(v, "WHO", "id -un"); got != "root" {
		t.Fatalf("the root password from rootpw= logged in as %q, want root", got)
	}
	first := checkDebianNode(t, v, "1.0", "a")
	if got := shell(v, "PERSIST", "echo kept-1 > /etc/debnode-kept && nodeinit persist /etc/debnode-kept >/dev/null && echo ok"); got != "ok" {
		t.Errorf("nodeinit persist /etc/debnode-kept on the Debian node: %q", got)
	}
	if got := shell(v, "PUT", "echo data-1 > /data/debnode-data && sync && echo ok"); got != "ok" {
		t.Errorf("writing /data/debnode-data: %q", got)
	}
	v.Send("systemctl poweroff\r")
	waitExit(t, v)
	t.Logf("boot 1 (1.0, slot a), logins and checks: %s", time.Since(phase).Round(time.Second))
	checkBlessed(t, disk, "a", "1.0")

	// The upgrade from a medium holding build 2.0.
	phase = time.Now()
	n.disks[1] = medium2
	v = n.installerFrom(f.Initramfs, "upgrade nodeinit.image=label:DEBNODE2 nodeinit.onfail=poweroff")
	if p := v.ExpectPlan(3 * time.Minute); p.Action != "upgrade" || p.Slot != "b" || p.Image == nil || p.Image.Version != "2.0" {
		t.Fatalf("the 2.0 medium plans %s of %+v into slot %q, want an upgrade to 2.0 into slot b", p.Action, p.Image, p.Slot)
	}
	v.ExpectEvent("upgrade finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)
	if entries := mdir(t, disk, "/loader/entries"); !regexp.MustCompile(`node-b\+\d+\.conf`).MatchString(entries) {
		t.Errorf("after the upgrade slot b's entry is not on trial (node-b+N.conf):\n%s", entries)
	}
	t.Logf("upgrade: %s", time.Since(phase).Round(time.Second))

	// Boot 2: build 2.0 from slot b, config kept.
	phase = time.Now()
	v = n.powerOn()
	if p := v.ExpectPlan(3 * time.Minute); p.Action != "boot" || p.Slot != "b" {
		t.Errorf("the boot after the upgrade is %s of slot %q, want a boot of slot b", p.Action, p.Slot)
	}
	serialLogin(v, "root", debRootPW)
	if got := shell(v, "WHO", "id -un"); got != "root" {
		t.Fatalf("after the upgrade the root password from rootpw= logged in as %q, want root", got)
	}
	second := checkDebianNode(t, v, "2.0", "b")
	if second.machineID != first.machineID {
		t.Errorf("machine ID %q after the upgrade and reboot, %q before: not stable", second.machineID, first.machineID)
	}
	if !strings.Contains(second.boots, first.bootID) {
		t.Errorf("the journal after the reboot lists boots %q, without the first boot %s: not persistent", second.boots, first.bootID)
	}
	if got := shell(v, "ADMINHASH", "getent shadow admin | cut -d: -f2"); got != debAdminHash {
		t.Errorf("after the upgrade admin's hash is %q, want the one adminpw= gave at install", got)
	}
	if got := shell(v, "KEPT", "cat /etc/debnode-kept || echo missing"); got != "kept-1" {
		t.Errorf("the persisted /etc/debnode-kept after the upgrade: %q, want kept-1", got)
	}
	if got := shell(v, "DATAFILE", "cat /data/debnode-data || echo missing"); got != "data-1" {
		t.Errorf("/data/debnode-data after the upgrade: %q, want data-1", got)
	}
	v.Send("systemctl poweroff\r")
	waitExit(t, v)
	t.Logf("boot 2 (2.0, slot b), login and checks: %s", time.Since(phase).Round(time.Second))
	checkBlessed(t, disk, "b", "2.0")
}

// debianBoot is what checkDebianNode read on one boot.
type debianBoot struct {
	machineID, bootID, boots string
}

// checkDebianNode runs the checks every boot of the Debian node must pass, logged in as
// root on the serial console, and returns the boot's identity.
func checkDebianNode(t *testing.T, v *vm.VM, version, slot string) debianBoot {
	t.Helper()
	if got := shell(v, "STATE", "systemctl is-system-running --wait"); got != "running" {
		t.Errorf("%s: systemd is %q, want running; failed units: %s; errors: %s", version, got,
			shell(v, "FAILEDUNITS", "systemctl list-units --state=failed --no-legend --plain | tr '\\n' ' '"),
			shell(v, "ERRORS", "journalctl -b -p err --no-pager -q | tail -5 | tr '\\n' ' '"))
	}
	if got := shell(v, "FAILED", "systemctl list-units --state=failed --no-legend --plain | wc -l"); got != "0" {
		t.Errorf("%s: %s failed units", version, got)
	}
	if got := shell(v, "TARGET", "systemctl is-active multi-user.target"); got != "active" {
		t.Errorf("%s: multi-user.target is %q", version, got)
	}
	if got := shell(v, "BLESS", "systemctl is-active nodeinit-bless.service"); got != "active" {
		t.Errorf("%s: nodeinit-bless.service is %q, want active; %s", version, got,
			shell(v, "BLESSLOG", "journalctl -b -u nodeinit-bless.service --no-pager -q | tail -3 | tr '\\n' ' '"))
	}
	if got := shell(v, "RELEASE", ". /etc/node-release && echo $VERSION"); got != version {
		t.Errorf("the node runs build %q, want %s", got, version)
	}
	if got := shell(v, "SLOT", `sed -n 's/.*nodeinit\.slot=\([ab]\).*/\1/p' /proc/cmdline`); got != slot {
		t.Errorf("%s: booted slot %q, want %s", version, got, slot)
	}
	if got := shell(v, "ROOTFS", "findmnt -no FSTYPE /"); got != "overlay" {
		t.Errorf("%s: / is %q, want the overlay", version, got)
	}
	if got := shell(v, "HOSTNAME", "echo $(cat /etc/hostname) $(hostname)"); got != debNodeHost+" "+debNodeHost {
		t.Errorf("%s: /etc/hostname and hostname are %q, want %s from the command line", version, got, debNodeHost)
	}
	for dir, label := range map[string]string{"/var/log": "node-logging", "/data": "node-data"} {
		got := shell(v, "MOUNT", "echo $(findmnt -no SOURCE,FSTYPE "+dir+") $(readlink -f /dev/disk/by-partlabel/"+label+")")
		f := strings.Fields(got)
		if len(f) != 3 || f[1] != "ext4" || f[0] != f[2] {
			t.Errorf("%s: %s is mounted from %q, want the ext4 partition %s", version, dir, got, label)
		}
	}
	b := debianBoot{
		machineID: shell(v, "MACHINEID", "cat /etc/machine-id"),
		bootID:    shell(v, "BOOTID", "tr -d - < /proc/sys/kernel/random/boot_id"),
		boots:     shell(v, "BOOTS", "journalctl --list-boots --no-pager -q | awk '{print $2}' | tr '\\n' ' '"),
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(b.machineID) {
		t.Errorf("%s: machine ID %q", version, b.machineID)
	}
	if got := shell(v, "JOURNAL", "findmnt -no TARGET -T /var/log/journal/$(cat /etc/machine-id)/system.journal"); got != "/var/log" {
		t.Errorf("%s: the system journal is not on node-logging (/var/log): %q", version, got)
	}
	if !strings.Contains(b.boots, b.bootID) {
		t.Errorf("%s: the journal's boots %q lack this boot %s", version, b.boots, b.bootID)
	}
	return b
}

// checkBlessed reads the powered-off node's ESP: slot's loader entry has no boot counter
// left, and the ledger records slot as good with version.
func checkBlessed(t *testing.T, disk, slot, version string) {
	t.Helper()
	entries := mdir(t, disk, "/loader/entries")
	if !regexp.MustCompile(`(?m)\bnode-` + slot + `\.conf\b`).MatchString(entries) {
		t.Errorf("slot %s's loader entry is not blessed (node-%s.conf):\n%s", slot, slot, entries)
	}
	var l boot.Ledger
	raw := espFile(t, disk, "/ledger.json")
	if err := json.Unmarshal([]byte(raw), &l); err != nil {
		t.Fatalf("ledger: %v\n%s", err, raw)
	}
	if rec := l.Slots[slot]; rec == nil || rec.State != boot.SlotGood || rec.Version != version {
		t.Errorf("the ledger does not hold %s good in slot %s: %+v\n%s", version, slot, rec, raw)
	}
}

// serialLogin logs in on the node's serial console as user with password, which the
// node makes the user change at once (nodeinit seeds it with lastchg 0): it answers
// the change with debChangedPW, then waits for the shell's prompt. The caller asks the
// shell who it is.
func serialLogin(v *vm.VM, user, password string) {
	v.Expect(debLoginPrompt, 4*time.Minute)
	v.Send(user + "\r")
	v.Expect(`Password: `, 30*time.Second)
	v.Send(password + "\r")
	v.Expect(`You are required to change your password immediately`, 30*time.Second)
	v.Expect(`Current password: `, 30*time.Second)
	v.Send(password + "\r")
	v.Expect(`New password: `, 30*time.Second)
	v.Send(debChangedPW + "\r")
	v.Expect(`Retype new password: `, 30*time.Second)
	v.Send(debChangedPW + "\r")
	// login drops what is typed before the shell starts: wait for its prompt (dash's for
	// admin, bash's for root, after bash's switch to bracketed paste).
	v.Expect(`(?m)^(?:\x1b\[\?2004h)?(?:\$|root@`+debNodeHost+`:~#) $`, time.Minute)
}

// shell types cmd on the logged-in serial console and returns its output (one line,
// trimmed), read after the marker DBN-<key>=. The typed line itself does not match:
// the marker is split by quotes there.
func shell(v *vm.VM, key, cmd string) string {
	v.Send(`echo "DBN""-` + key + `=$(` + cmd + `)"` + "\r")
	return strings.TrimSpace(v.Expect(`DBN-`+key+`=([^\n]*)\n`, 2*time.Minute)[1])
}
