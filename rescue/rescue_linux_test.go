package rescue

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/nodeinit/nodeinit/disk"
	"golang.org/x/sys/unix"
)

func TestAllNames(t *testing.T) {
	all := strings.Fields(`blkid cat chmod cp df dhclient dmesg echo find free gosh grep head hexdump insmod ip kill ln ls
		lsmod mkdir modprobe more mount mv ping poweroff ps reboot rm rmmod sh shutdown sleep sync tail umount uname uptime wget`)
	if got := Names(); !slices.Equal(got, all) {
		t.Errorf("Names() = %q\nwant %q", got, all)
	}
}

func TestProc(t *testing.T) {
	if out := want(t, "ps", "-ef"); !strings.Contains(out, fmt.Sprintf("\n%7d %7d ", os.Getpid(), os.Getppid())) {
		t.Errorf("ps does not list this process %d:\n%s", os.Getpid(), out)
	}
	if out := want(t, "df"); !strings.Contains(out, " /\n") || !strings.HasPrefix(out, "Filesystem ") {
		t.Errorf("df does not show /:\n%s", out)
	}
	if out := want(t, "df", "-h", "."); len(strings.Split(out, "\n")) != 3 {
		t.Errorf("df -h . wants one filesystem:\n%s", out)
	}
	m, err := meminfo("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(want(t, "free")); len(f) < 8 || f[6] != "Mem:" || f[7] != strconv.FormatUint(m["MemTotal"], 10) {
		t.Errorf("free does not show MemTotal %d kB: %q", m["MemTotal"], f)
	}
	if out := want(t, "uptime"); !strings.Contains(out, " up ") || !strings.Contains(out, "load average: ") {
		t.Errorf("uptime: %q", out)
	}
	modules, err := os.ReadFile("/proc/modules")
	if os.IsNotExist(err) { // a kernel without modules
		if _, errw, status := sh(t, "", "lsmod"); status != 1 || !strings.Contains(errw, "/proc/modules") {
			t.Errorf("lsmod without /proc/modules: status %d, %q", status, errw)
		}
	} else {
		out := want(t, "lsmod")
		if !strings.HasPrefix(out, "Module ") {
			t.Errorf("lsmod: %q", out)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(modules)), "\n") {
			if name := strings.Fields(line + " ")[0]; line != "" && !strings.Contains(out, "\n"+name+" ") {
				t.Errorf("lsmod lacks %s:\n%s", name, out)
			}
		}
	}
	mounts, _ := os.ReadFile("/proc/mounts")
	if out := want(t, "mount"); out != string(mounts) {
		t.Errorf("mount lists %q, /proc/mounts has %q", out, mounts)
	}
}

func TestKill(t *testing.T) {
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Skip(err)
	}
	pid := strconv.Itoa(child.Process.Pid)
	if _, _, status := sh(t, "", "kill", "-BOGUS", pid); status != 2 {
		t.Errorf("kill -BOGUS: status %d", status)
	}
	want(t, "kill", "-KILL", pid)
	err := child.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("kill -KILL: child ended with %v", err)
	}
	if out := want(t, "kill", "-l"); !strings.Contains(out, " 9 KILL\n") {
		t.Errorf("kill -l: %q", out)
	}
	for _, tt := range []struct {
		args []string
		sig  syscall.Signal
	}{{[]string{"1"}, unix.SIGTERM}, {[]string{"-9", "1"}, unix.SIGKILL}, {[]string{"-s", "hup", "1"}, unix.SIGHUP}, {[]string{"-SIGINT", "1"}, unix.SIGINT}} {
		if sig, pids, _, err := parseKill(tt.args); err != nil || sig != tt.sig || len(pids) != 1 {
			t.Errorf("parseKill(%q) = %v %v %v", tt.args, sig, pids, err)
		}
	}
}

func TestWget(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/file.txt" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "served body")
	}))
	defer srv.Close()
	if out := want(t, "wget", "-O", "-", srv.URL+"/file.txt"); out != "served body" {
		t.Errorf("wget -O -: %q", out)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	want(t, "wget", "-q", srv.URL+"/file.txt")
	if b, err := os.ReadFile(filepath.Join(dir, "file.txt")); err != nil || string(b) != "served body" {
		t.Errorf("wget URL: %q %v", b, err)
	}
	if _, errw, status := sh(t, "", "wget", srv.URL+"/missing"); status != 1 || !strings.Contains(errw, "404") {
		t.Errorf("wget of a missing file: status %d, stderr %q", status, errw)
	}
}

func TestPing(t *testing.T) {
	out, errw, status := sh(t, "", "ping", "-c", "2", "-i", "0.1", "127.0.0.1")
	if strings.Contains(errw, "no ICMP socket") {
		t.Skip(errw)
	}
	if status != 0 || !strings.Contains(out, "bytes from 127.0.0.1: icmp_seq=2 ") || !strings.Contains(out, "2 received") {
		t.Errorf("ping: status %d, stdout %q, stderr %q", status, out, errw)
	}
}

func TestIP(t *testing.T) {
	if out := want(t, "ip", "link"); !strings.Contains(out, ": lo: <") {
		t.Errorf("ip link: %q", out)
	}
	if out := want(t, "ip", "a", "show", "lo"); !strings.Contains(out, "inet 127.0.0.1/8") {
		t.Errorf("ip a show lo: %q", out)
	}
	want(t, "ip", "route")
	for _, tt := range []struct {
		args []string
		want string // object verb dev up gw dst, or "usage"
	}{
		{[]string{"addr"}, "addr show  false <nil> <nil>"},
		{[]string{"l", "show", "dev", "eth0"}, "link show eth0 false <nil> <nil>"},
		{[]string{"link", "set", "eth0", "up"}, "link set eth0 true <nil> <nil>"},
		{[]string{"link", "set", "dev", "eth0", "down"}, "link set eth0 false <nil> <nil>"},
		{[]string{"route", "add", "default", "via", "10.0.0.1"}, "route add  false 10.0.0.1 <nil>"},
		{[]string{"r", "add", "10.1.0.0/16", "dev", "eth1"}, "route add eth1 false <nil> 10.1.0.0/16"},
		{[]string{"addr", "add", "10.0.0.2/24", "dev", "eth0"}, "addr add eth0 false <nil> <nil>"},
		{[]string{"link", "set"}, "usage"},
		{[]string{"link", "set", "eth0", "sideways"}, "usage"},
		{[]string{"addr", "add", "10.0.0.2/24"}, "usage"},
		{[]string{"addr", "add", "nonsense", "dev", "eth0"}, "usage"},
		{[]string{"route", "add", "default"}, "usage"},
		{[]string{"neigh"}, "usage"},
		{[]string{"link", "flip"}, "usage"},
	} {
		q, err := parseIP(tt.args)
		got := fmt.Sprintf("%s %s %s %v %v %v", q.object, q.verb, q.dev, q.up, q.gw, q.dst)
		if _, ok := err.(usageError); ok {
			got = "usage"
		}
		if got != tt.want {
			t.Errorf("parseIP(%q) = %s (%v), want %s", tt.args, got, err, tt.want)
		}
	}
	if _, errw, status := sh(t, "", "ip", "link", "set"); status != 2 || !strings.Contains(errw, "usage: ip ") {
		t.Errorf("ip link set: status %d, stderr %q", status, errw)
	}
}

// TestEffectsParse runs the commands that change the machine only as far as their parsing.
func TestEffectsParse(t *testing.T) {
	for _, args := range [][]string{
		{"mount", "-t"}, {"mount", "/dev/sda1"}, {"mount", "-x", "a", "b"}, {"umount"}, {"shutdown", "bogus"},
		{"poweroff", "now"}, {"reboot", "-z"}, {"insmod"}, {"rmmod"}, {"modprobe"}, {"modprobe", "-z", "x"}, {"dhclient", "-t"}, {"dhclient", "-q"},
	} {
		if _, errw, status := sh(t, "", args[0], args[1:]...); status != 2 || !strings.Contains(errw, "usage: "+args[0]) {
			t.Errorf("%q: status %d, stderr %q; want a usage error", args, status, errw)
		}
	}
	m, err := parseMount(&call{name: "mount"}, []string{"-r", "-t", "ext4", "-o", "noatime,errors=remount-ro,nodev", "/dev/vda2", "/mnt"})
	if err != nil || m.fs != "ext4" || m.source != "/dev/vda2" || m.dir != "/mnt" || m.data != "errors=remount-ro" ||
		m.flags != unix.MS_RDONLY|unix.MS_NOATIME|unix.MS_NODEV {
		t.Errorf("parseMount = %+v, %v", m, err)
	}
	for _, tt := range []struct {
		args []string
		how  int
	}{
		{nil, unix.LINUX_REBOOT_CMD_POWER_OFF}, {[]string{"-h", "now"}, unix.LINUX_REBOOT_CMD_POWER_OFF},
		{[]string{"-r", "now"}, unix.LINUX_REBOOT_CMD_RESTART}, {[]string{"reboot"}, unix.LINUX_REBOOT_CMD_RESTART},
		{[]string{"halt"}, unix.LINUX_REBOOT_CMD_HALT},
	} {
		if how, err := parseShutdown(tt.args); err != nil || how != tt.how {
			t.Errorf("parseShutdown(%q) = %#x, %v; want %#x", tt.args, how, err, tt.how)
		}
	}
	// The reboot itself is replaced: nothing here may power off this machine.
	var got []int
	defer func(h func(int) error) { halt = h }(halt)
	halt = func(how int) error { got = append(got, how); return nil }
	want(t, "reboot")
	want(t, "poweroff", "-f")
	want(t, "shutdown", "-r", "now")
	if fmt.Sprint(got) != fmt.Sprint([]int{unix.LINUX_REBOOT_CMD_RESTART, unix.LINUX_REBOOT_CMD_POWER_OFF, unix.LINUX_REBOOT_CMD_RESTART}) {
		t.Errorf("reboot, poweroff, shutdown -r asked for %#x", got)
	}
}

func TestBlkid(t *testing.T) {
	dir := t.TempDir()
	swap := filepath.Join(dir, "swap.img")
	hdr, err := disk.SwapHeader(1<<20, 4096, "rescue-swap", [16]byte{0x12, 0x34, 15: 0xff})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(swap, append(hdr, make([]byte, 1<<20-len(hdr))...), 0o644); err != nil {
		t.Fatal(err)
	}
	want1 := swap + `: LABEL="rescue-swap" UUID="12340000-0000-0000-0000-0000000000ff" TYPE="swap"` + "\n"
	if out := want(t, "blkid", swap); out != want1 {
		t.Errorf("blkid swap image:\n%s\nwant\n%s", out, want1)
	}
	empty := filepath.Join(dir, "empty.img")
	os.WriteFile(empty, make([]byte, 1<<20), 0o644)
	if out, _, status := sh(t, "", "blkid", empty); status != 2 || out != "" {
		t.Errorf("blkid of zeros: status %d, %q", status, out)
	}
	disks := []disk.Disk{{Path: "/dev/vda", Signatures: []disk.Signature{{Type: "gpt", Where: "disk"}, {Type: "PMBR", Where: "disk"},
		{Type: "ext4", Where: "partition 1", UUID: "u1"}}, Partitions: []disk.Partition{
		{Path: "/dev/vda1", FSType: "ext4", FSUUID: "u1", FSLabel: "root", PartLabel: "root-a", PartUUID: "p1"}}}}
	var lines []string
	for _, e := range blkEntries(disks) {
		lines = append(lines, e.String())
	}
	if got, want := strings.Join(lines, "\n"), `/dev/vda: PTTYPE="gpt"`+"\n"+
		`/dev/vda1: LABEL="root" UUID="u1" TYPE="ext4" PARTLABEL="root-a" PARTUUID="p1"`; got != want {
		t.Errorf("blkid lines:\n%s\nwant\n%s", got, want)
	}
}
