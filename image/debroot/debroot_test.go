package debroot

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestParseSimulation: every Inst line of apt-get --simulate becomes one package at its
// new version, with the architecture qualifier and an upgrade's old version dropped.
func TestParseSimulation(t *testing.T) {
	out := []byte(`NOTE: This is only a simulation!
Inst gcc-12-base (12.2.0-14+deb12u1 Debian:12.15/oldstable [amd64])
Inst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64]) []
Inst libklibc:amd64 (2.0.12-1 Debian:12.15/oldstable [amd64])
Inst base-files [12.4+deb12u14] (12.4+deb12u15 Debian:12.15/oldstable [amd64])
Conf libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64])
`)
	got := ParseSimulation(out)
	want := []Pkg{{"base-files", "12.4+deb12u15"}, {"gcc-12-base", "12.2.0-14+deb12u1"}, {"libc6", "2.36-9+deb12u14"}, {"libklibc", "2.0.12-1"}}
	if !slices.Equal(got, want) {
		t.Errorf("ParseSimulation = %v, want %v", got, want)
	}
}

// TestParseMinbase: Essential and Priority: required packages, each once, sorted; a
// field of another paragraph never leaks into the next.
func TestParseMinbase(t *testing.T) {
	in := `Package: dpkg
Essential: yes
Priority: required

Package: vim
Priority: optional

Package: login
Priority: required

Package: dpkg
Version: 2
Priority: required

Package: nano
Description: Essential: yes is not a field here
`
	if got, want := ParseMinbase(strings.NewReader(in)), []string{"dpkg", "login"}; !slices.Equal(got, want) {
		t.Errorf("ParseMinbase = %q, want %q", got, want)
	}
}

// TestKey: the key follows every version and the recipe, and not the order packages
// were listed in.
func TestKey(t *testing.T) {
	pkgs := []Pkg{{"systemd", "252.39-1~deb12u1"}, {"libc6", "2.36-9+deb12u14"}}
	base := Key(Recipe{}, pkgs)
	if len(base) != 20 {
		t.Fatalf("key %q is not 20 hex digits", base)
	}
	if k := Key(Recipe{}, []Pkg{pkgs[1], pkgs[0]}); k != base {
		t.Errorf("the key depends on the packages' order: %s vs %s", k, base)
	}
	if k := Key(Recipe{Suite: DefaultSuite, Kernel: DefaultKernel}, pkgs); k != base {
		t.Errorf("the defaults spelt out change the key: %s vs %s", k, base)
	}
	for name, k := range map[string]string{
		"a new systemd":      Key(Recipe{}, []Pkg{{"systemd", "252.40-1~deb12u1"}, pkgs[1]}),
		"one more package":   Key(Recipe{}, append([]Pkg{{"dbus", "1.14.10-1~deb12u1"}}, pkgs...)),
		"another kernel":     Key(Recipe{Kernel: "linux-image-amd64"}, pkgs),
		"another suite":      Key(Recipe{Suite: "trixie"}, pkgs),
		"a mirror":           Key(Recipe{Mirrors: []string{"http://mirror.example/debian"}}, pkgs),
		"an extra package":   Key(Recipe{Packages: []string{"openssh-server"}}, pkgs),
		"no packages at all": Key(Recipe{}, nil),
	} {
		if k == base {
			t.Errorf("%s keeps the key %s", name, base)
		}
	}
	if !strings.Contains(KeyText(Recipe{}, pkgs), "\nlibc6 2.36-9+deb12u14\nsystemd 252.39-1~deb12u1\n") {
		t.Errorf("KeyText does not list the packages sorted:\n%s", KeyText(Recipe{}, pkgs))
	}
}

// TestIncludes: the base packages, the kernel and the extras, once each, sorted.
func TestIncludes(t *testing.T) {
	got := Recipe{Packages: []string{"udev", " openssh-server ", ""}}.Includes()
	want := []string{"iproute2", "kmod", DefaultKernel, "openssh-server", "systemd-sysv", "udev"}
	if !slices.Equal(got, want) {
		t.Errorf("Includes = %q, want %q", got, want)
	}
}

// TestNodeFiles: the release file, the CLI link, the trusted key, /data, and the bless
// unit enabled for multi-user.target, running the initramfs's CLI after boot-complete.target.
func TestNodeFiles(t *testing.T) {
	root := t.TempDir()
	key := filepath.Join(t.TempDir(), "fleet.pub")
	if err := os.WriteFile(key, []byte("untrusted comment: minisign public key\nRWQ...\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "usr/sbin"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A second call (the same copy packed again) replaces the links instead of failing.
	for range 2 {
		if err := NodeFiles(root, "debian-node", "2.0", []string{key}); err != nil {
			t.Fatal(err)
		}
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("etc/node-release"); got != "NAME=\"debian-node\"\nVERSION=\"2.0\"\n" {
		t.Errorf("node-release = %q", got)
	}
	if got := read("etc/nodeinit/keys/fleet.pub"); !strings.HasPrefix(got, "untrusted comment: minisign") {
		t.Errorf("the key in the image = %q", got)
	}
	if l, err := os.Readlink(filepath.Join(root, "usr/sbin/nodeinit")); err != nil || l != NodeCLI {
		t.Errorf("/usr/sbin/nodeinit -> %q (%v), want %s", l, err, NodeCLI)
	}
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants", BlessUnitName)
	if l, err := os.Readlink(wants); err != nil || l != "/etc/systemd/system/"+BlessUnitName {
		t.Errorf("%s is not enabled: %q %v", BlessUnitName, l, err)
	}
	if _, err := os.Lstat(filepath.Join(root, "etc/systemd/system/systemd-machine-id-commit.service")); err == nil {
		t.Error("systemd-machine-id-commit.service is masked: nodeinit copies the machine ID, so the unit has nothing to fail on")
	}
	unit := read("etc/systemd/system/" + BlessUnitName)
	for _, line := range []string{"Requires=boot-complete.target", "After=local-fs.target boot-complete.target multi-user.target",
		"ExecStart=" + NodeCLI + " bless", "WantedBy=multi-user.target", "ConditionPathIsMountPoint=" + NodeESP} {
		if !strings.Contains(unit, "\n"+line+"\n") {
			t.Errorf("the bless unit lacks %q:\n%s", line, unit)
		}
	}
	if st, err := os.Stat(filepath.Join(root, "data")); err != nil || !st.IsDir() {
		t.Errorf("no /data mount point: %v", err)
	}
}

// TestTidy: the build machine's hostname and resolver do not stay in the root, nor an initrd.
func TestTidy(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"etc/hostname", "etc/resolv.conf", "boot/initrd.img-6.1.0-57-cloud-amd64", "boot/vmlinuz-6.1.0-57-cloud-amd64"} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(root, p), []byte("build machine\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := Tidy(root); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/hostname")); string(b) != "localhost\n" {
		t.Errorf("hostname = %q", b)
	}
	for _, p := range []string{"etc/resolv.conf", "boot/initrd.img-6.1.0-57-cloud-amd64"} {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s is still there", p)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "boot/vmlinuz-6.1.0-57-cloud-amd64")); err != nil {
		t.Errorf("Tidy removed the kernel: %v", err)
	}
}

// TestMountsBelow: the mounts an interrupted mmdebstrap leaves in a root are found
// (and removeUnmounted refuses to remove through them), others are not, and
// mountinfo's escapes are read back.
func TestMountsBelow(t *testing.T) {
	info := `22 28 0:21 / /proc rw,nosuid - proc proc rw
101 28 0:40 / /var/cache/nodeinit/debian-root/k.tmp/root/proc rw - proc proc rw
102 101 0:41 / /var/cache/nodeinit/debian-root/k.tmp/root/proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw
103 28 0:42 / /var/cache/nodeinit/debian-root/k.tmp2 rw - tmpfs tmpfs rw
104 28 0:43 / /tmp/a\040b rw - tmpfs tmpfs rw
`
	table := filepath.Join(t.TempDir(), "mountinfo")
	if err := os.WriteFile(table, []byte(info), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := mountsIn(table, "/var/cache/nodeinit/debian-root/k.tmp")
	want := []string{"/var/cache/nodeinit/debian-root/k.tmp/root/proc/sys/fs/binfmt_misc", "/var/cache/nodeinit/debian-root/k.tmp/root/proc"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("mountsIn = %q, %v; want %q", got, err, want)
	}
	if got, _ := mountsIn(table, "/tmp/a b"); !slices.Equal(got, []string{"/tmp/a b"}) {
		t.Errorf("mountsIn with an escaped space = %q", got)
	}
	if runtime.GOOS == "linux" {
		if m, err := mountsBelow("/proc"); err != nil || !slices.Contains(m, "/proc") {
			t.Errorf("mountsBelow(/proc) = %q, %v", m, err)
		}
	}
	dir := filepath.Join(t.TempDir(), "gone")
	os.MkdirAll(filepath.Join(dir, "x"), 0o755)
	if err := removeUnmounted(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("%s not removed", dir)
	}
}
