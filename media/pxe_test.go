package media

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/netboot"
	"github.com/nodeinit/nodeinit/operr"
)

// entryAction is the action each entry's kernel arguments must parse to.
var entryAction = map[string]cmdline.Action{
	EntryInstall: cmdline.ActionInstall, EntryInstallSerial: cmdline.ActionInstall, EntryReinstall: cmdline.ActionReinstall,
	EntryUpgrade: cmdline.ActionUpgrade, EntryUninstall: cmdline.ActionUninstall, EntryStateless: cmdline.ActionStateless,
	EntryRescue: cmdline.ActionRescue,
}

const testMAC = "52:54:00:12:34:56"

// bootLines reads, from each generated config, every entry's kernel command line as the
// kernel would receive it: the boot loader's own variables substituted the way the boot
// loader does (iPXE ${net0/mac:hexhyp}, GRUB ${net_default_mac} and its single quotes).
func bootLines(t *testing.T, o PXEOptions) map[string]map[string]string {
	t.Helper()
	entries := o.PXEEntries()
	out := map[string]map[string]string{"pxelinux": {}, "ipxe": {}, "grub": {}}

	// pxelinux: APPEND plus IPAPPEND 2's BOOTIF.
	label := ""
	for _, l := range strings.Split(PXELinuxConfig(entries, o.Menu), "\n") {
		l = strings.TrimSpace(l)
		if v, ok := strings.CutPrefix(l, "LABEL "); ok {
			label = v
		}
		if v, ok := strings.CutPrefix(l, "APPEND "); ok {
			out["pxelinux"][label] = v
		}
		if l == "IPAPPEND 2" {
			out["pxelinux"][label] += " BOOTIF=01-" + strings.ReplaceAll(testMAC, ":", "-")
		}
	}

	// iPXE: the kernel line after the entry's :label.
	label = ""
	for _, l := range strings.Split(IPXEScript(entries, o.Menu), "\n") {
		if v, ok := strings.CutPrefix(l, ":"); ok {
			label = v
		}
		if v, ok := strings.CutPrefix(l, "kernel "+PXEKernel+" "); ok {
			out["ipxe"][label] = strings.ReplaceAll(v, "${net0/mac:hexhyp}", strings.ReplaceAll(testMAC, ":", "-"))
		}
	}

	// GRUB: the linux line inside each menuentry; quotes removed as GRUB's parser does.
	idRE := regexp.MustCompile(`--id (\S+) \{`)
	label = ""
	for _, l := range strings.Split(GrubNetConfig(entries, o.Menu), "\n") {
		if m := idRE.FindStringSubmatch(l); m != nil {
			label = m[1]
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "linux /"+PXEKernel+" "); ok {
			v = strings.ReplaceAll(v, "${net_default_mac}", testMAC)
			out["grub"][label] = grubUnquote(t, v)
		}
	}
	return out
}

// grubUnquote removes GRUB's single quotes ('\” inside stays a quote).
func grubUnquote(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'':
			in = !in
		case c == '\\' && !in && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c == '$' && !in:
			t.Fatalf("unquoted $ in GRUB line %q: GRUB would expand it", s)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func TestPXEEntriesParseToTheirAction(t *testing.T) {
	o := PXEOptions{ImageURL: "http://10.0.2.2:8080/nodes/${mac}/bundle/",
		Menu: MenuOptions{ExtraArgs: []string{"console=ttyS0", "hostname=node1", `note=rack 7`, "adminpw=$6$salt$hash.x"}, Timeout: 3 * time.Second}}
	lines := bootLines(t, o)
	for loader, byID := range lines {
		if len(byID) != len(entryAction) {
			t.Errorf("%s: %d kernel lines, want %d: %v", loader, len(byID), len(entryAction), byID)
		}
		for id, want := range entryAction {
			line, ok := byID[id]
			if !ok {
				t.Errorf("%s: no kernel line for entry %s", loader, id)
				continue
			}
			p, err := cmdline.Parse(line)
			if err != nil {
				t.Errorf("%s %s: %q: %v", loader, id, line, err)
				continue
			}
			if p.Action != want {
				t.Errorf("%s %s: action %s, want %s (line %q)", loader, id, p.Action, want, line)
			}
			if p.BootIf == nil || p.BootIf.MAC != testMAC {
				t.Errorf("%s %s: BOOTIF %+v, want MAC %s", loader, id, p.BootIf, testMAC)
			}
			if p.Hostname != "node1" || p.AdminPW.Reveal() != "$6$salt$hash.x" || !strings.Contains(strings.Join(p.Kept, " "), "rack 7") {
				t.Errorf("%s %s: hostname %q adminpw %q kept %q: extra arguments mangled", loader, id, p.Hostname, p.AdminPW.Reveal(), p.Kept)
			}
			// The URL template survives the boot loader and expands to this machine's URL.
			if err := netboot.ExpandParams(p, netboot.Vars{MAC: p.BootIf.MAC}); err != nil {
				t.Errorf("%s %s: %v", loader, id, err)
			} else if p.Node.Image != "http://10.0.2.2:8080/nodes/"+testMAC+"/bundle/" {
				t.Errorf("%s %s: image %q", loader, id, p.Node.Image)
			}
			if id == EntryInstallSerial && !strings.Contains(line, SerialConsole) {
				t.Errorf("%s %s: no serial console in %q", loader, id, line)
			}
		}
	}
}

func TestPXEUnattendedDefault(t *testing.T) {
	o := PXEOptions{ImageURL: "http://h/b/", Menu: MenuOptions{Unattended: "nvme", Default: EntryReinstall}}
	for loader, byID := range bootLines(t, o) {
		for id, line := range byID {
			p, err := cmdline.Parse(line)
			if err != nil {
				t.Fatalf("%s %s: %v", loader, id, err)
			}
			if got := p.StorageInit != nil; got != (id == EntryReinstall) {
				t.Errorf("%s %s: storage_init present=%v", loader, id, got)
			}
		}
	}
	entries := o.PXEEntries()
	if !strings.Contains(PXELinuxConfig(entries, o.Menu), "DEFAULT reinstall\n") ||
		!strings.Contains(IPXEScript(entries, o.Menu), "choose --default reinstall --timeout 10000") ||
		!strings.Contains(GrubNetConfig(entries, o.Menu), "set default=reinstall\nset timeout=10\n") {
		t.Error("default entry or timeout not in every config")
	}
}

func TestPXELinuxConfigShape(t *testing.T) {
	o := PXEOptions{ImageURL: "http://h/b/"}
	cfg := PXELinuxConfig(o.PXEEntries(), o.Menu)
	labels := strings.Split(cfg, "\nLABEL ")[1:]
	if len(labels) != len(EntryIDs()) {
		t.Fatalf("%d labels, want %d:\n%s", len(labels), len(EntryIDs()), cfg)
	}
	for _, l := range labels {
		id := strings.Fields(l)[0]
		if id == EntryLocal {
			if !strings.Contains(l, "LOCALBOOT 0") || strings.Contains(l, "KERNEL") {
				t.Errorf("local entry: %q", l)
			}
			continue
		}
		for _, w := range []string{"KERNEL vmlinuz", "INITRD initrd.img", "IPAPPEND 2"} {
			if !strings.Contains(l, w) {
				t.Errorf("entry %s lacks %q", id, w)
			}
		}
	}
	if !strings.Contains(cfg, "TIMEOUT 100\n") {
		t.Error("pxelinux timeout is not in tenths of a second")
	}
	ipxe := IPXEScript(o.PXEEntries(), o.Menu)
	if strings.Count(ipxe, IPXEBootIf) != len(entryAction) || !strings.HasPrefix(ipxe, "#!ipxe\n") {
		t.Errorf("boot.ipxe: BOOTIF on %d entries:\n%s", strings.Count(ipxe, IPXEBootIf), ipxe)
	}
}

// fakeBundle is a directory shaped like a bundle; WritePXE copies it, it does not verify it.
func fakeBundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{"manifest.json": `{"name":"x"}`, "manifest.json.minisig": "sig",
		"rootfs.squashfs": "squash", "vmlinuz": "KERNEL", "initrd.img": "INITRAMFS!"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestWritePXE(t *testing.T) {
	bundle := fakeBundle(t)
	mods := t.TempDir()
	for _, m := range pxeSyslinuxModules {
		os.WriteFile(filepath.Join(mods, m), []byte(m), 0o644)
	}
	pxelinux := filepath.Join(mods, "pxelinux.0")
	os.WriteFile(pxelinux, []byte("PXE"), 0o644)
	grubnet := fakeGrubImage(t, "/grub")

	dir := filepath.Join(t.TempDir(), "tftp")
	res, err := WritePXE(PXEOptions{Dir: dir, Bundle: bundle, ImageURL: "http://10.0.2.2/bundle/",
		PXELinux: pxelinux, SyslinuxModules: mods, GrubNet: grubnet})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{PXEKernel: "KERNEL", PXEInitrd: "INITRAMFS!", "bundle/rootfs.squashfs": "squash",
		"bundle/manifest.json.minisig": "sig", "pxelinux.0": "PXE", "ldlinux.c32": "ldlinux.c32", "menu.c32": "menu.c32",
		"grubnetx64.efi": readFile(t, grubnet)}
	for rel, content := range want {
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil || string(b) != content {
			t.Errorf("%s: %q, %v; want %q", rel, b, err, content)
		}
	}
	for _, rel := range []string{PXELinuxCfg, PXEIPXE, PXEGrubCfg, PXEDnsmasq, PXEReadme} {
		if _, err := os.Stat(filepath.Join(dir, rel)); err != nil {
			t.Errorf("%s: %v", rel, err)
		}
	}
	dns, _ := os.ReadFile(filepath.Join(dir, PXEDnsmasq))
	for _, w := range []string{"tftp-root=" + dir + "\n", "dhcp-userclass=set:ipxe,iPXE", "dhcp-boot=tag:ipxe,boot.ipxe", "pxe-service=",
		"dhcp-boot=tag:!ipxe,tag:efi64,grubnetx64.efi\n"} {
		if !strings.Contains(string(dns), w) {
			t.Errorf("dnsmasq snippet lacks %q", w)
		}
	}
	if len(res.Notes) != 0 {
		t.Errorf("notes: %v", res.Notes)
	}
	// No temporary files are left behind.
	m, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(m) != 0 {
		t.Errorf("left over: %v", m)
	}
}

// fakeGrubImage writes a PE file shaped like grub-mkimage's output as far as GrubPrefix
// reads it: a "mods" section with the module info header, an early config object and
// the prefix object.
func fakeGrubImage(t *testing.T, prefix string) string {
	t.Helper()
	obj := func(typ uint32, data string) []byte {
		b := []byte(data)
		b = append(b, make([]byte, 8-len(b)%8)...) // NUL-terminated, 8-byte aligned
		return append(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, typ), uint32(8+len(b))), b...)
	}
	objs := append(obj(2, "normal (memdisk)/grub.cfg\n"), obj(grubObjPrefix, prefix)...)
	mods := append([]byte("mimg\x00\x00\x00\x00"), binary.LittleEndian.AppendUint64(nil, 24)...)
	mods = binary.LittleEndian.AppendUint64(mods, uint64(24+len(objs)))
	mods = append(mods, objs...)

	var b bytes.Buffer
	b.WriteString("MZ")
	b.Write(make([]byte, 0x3a))
	binary.Write(&b, binary.LittleEndian, uint32(0x40))
	b.WriteString("PE\x00\x00")
	binary.Write(&b, binary.LittleEndian, pe.FileHeader{Machine: pe.IMAGE_FILE_MACHINE_AMD64, NumberOfSections: 1})
	binary.Write(&b, binary.LittleEndian, pe.SectionHeader32{Name: [8]uint8{'m', 'o', 'd', 's'},
		VirtualSize: uint32(len(mods)), VirtualAddress: 0x1000, SizeOfRawData: uint32(len(mods)), PointerToRawData: 0x200})
	b.Write(make([]byte, 0x200-b.Len()))
	b.Write(mods)
	p := filepath.Join(t.TempDir(), "grubnetx64.efi.signed")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestGrubNetMustReadTheTreesConfig: Debian builds grubnetx64.efi.signed with the prefix
// /grub, so GRUB reads /grub/grub.cfg from the TFTP server; an image with another prefix
// (Debian's installer variant reads /debian-installer/amd64/grub) would stop at GRUB's
// prompt, so mkmedia pxe refuses it before writing anything. TestGRUBNetbootInstallOverHTTP
// in qemu-tests boots the real image from the tree.
func TestGrubNetMustReadTheTreesConfig(t *testing.T) {
	if PXEGrubCfg != "grub/grub.cfg" {
		t.Errorf("PXEGrubCfg = %q; Debian's grubnetx64.efi.signed reads /grub/grub.cfg", PXEGrubCfg)
	}
	notGrub := filepath.Join(t.TempDir(), "grubnetx64.efi")
	os.WriteFile(notGrub, []byte("MZ not really"), 0o644)
	tests := []struct {
		img     string
		wantErr string // empty: accepted
	}{
		{fakeGrubImage(t, "/grub"), ""},
		{fakeGrubImage(t, "(tftp,192.0.2.1)/grub/"), ""},
		{fakeGrubImage(t, "/debian-installer/amd64/grub"), "reads /debian-installer/amd64/grub/grub.cfg: the tree has /grub/grub.cfg"},
		{fakeGrubImage(t, "/"), "reads /grub.cfg"},
		{notGrub, "not an EFI image"},
	}
	for _, tt := range tests {
		dir := filepath.Join(t.TempDir(), "tftp")
		_, err := WritePXE(PXEOptions{Dir: dir, Bundle: fakeBundle(t), EmbedBundle: true, GrubNet: tt.img})
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.img, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: err = %v, want one with %q", tt.img, err, tt.wantErr)
		case tt.wantErr != "":
			if fix := operr.Describe(err).Fix; !strings.Contains(fix, "grubnetx64.efi.signed") {
				t.Errorf("%s: fix %q does not name Debian's image", tt.img, fix)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("%s: tree written although the image was refused", tt.img)
			}
		}
	}
	if !strings.Contains(DnsmasqSnippet("/srv/tftp"), "dhcp-boot=tag:!ipxe,tag:efi64,"+PXEGrubNet+"\n") {
		t.Errorf("the dnsmasq snippet does not hand UEFI clients %s", PXEGrubNet)
	}
}

func TestGrubModsPrefixBadInput(t *testing.T) {
	for name, mods := range map[string][]byte{
		"empty":       nil,
		"no magic":    make([]byte, 32),
		"past end":    append([]byte("mimg\x00\x00\x00\x00\x18\x00\x00\x00\x00\x00\x00\x00"), 0xff, 0, 0, 0, 0, 0, 0, 0),
		"zero object": append([]byte("mimg\x00\x00\x00\x00\x18\x00\x00\x00\x00\x00\x00\x00\x28\x00\x00\x00\x00\x00\x00\x00"), make([]byte, 16)...),
	} {
		if p, err := grubModsPrefix(mods); err == nil {
			t.Errorf("%s: prefix %q, want an error", name, p)
		}
	}
}

// TestWritePXENotesMissingGrubNet: without -grubnet and without Debian's package, the
// tree is still written, grub.cfg included, and the operator is told what to add.
func TestWritePXENotesMissingGrubNet(t *testing.T) {
	if _, err := os.Stat(DebianGrubNet); err == nil {
		t.Skipf("%s is installed here", DebianGrubNet)
	}
	dir := t.TempDir()
	res, err := WritePXE(PXEOptions{Dir: dir, Bundle: fakeBundle(t), EmbedBundle: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, "-grubnet") }) {
		t.Errorf("notes %q do not say how to add %s", res.Notes, PXEGrubNet)
	}
	if _, err := os.Stat(filepath.Join(dir, PXEGrubCfg)); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(dir, PXEGrubNet)); !os.IsNotExist(err) {
		t.Errorf("%s written without an image: %v", PXEGrubNet, err)
	}
	readme, _ := os.ReadFile(filepath.Join(dir, PXEReadme))
	if !strings.Contains(string(readme), "NOTE: "+PXEGrubNet+" not copied") {
		t.Errorf("README lacks the note:\n%s", readme)
	}
}

func TestWritePXEEmbedsBundle(t *testing.T) {
	bundle := fakeBundle(t)
	dir := t.TempDir()
	if _, err := WritePXE(PXEOptions{Dir: dir, Bundle: bundle, EmbedBundle: true, PXELinux: "", SyslinuxModules: ""}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, PXEInitrd))
	if err != nil {
		t.Fatal(err)
	}
	// The initramfs comes first, padded to 4 bytes, then a newc cpio holding /bundle.
	if !bytes.HasPrefix(b, []byte("INITRAMFS!\x00\x00070701")) {
		t.Errorf("initrd starts %q", b[:min(len(b), 24)])
	}
	for _, w := range []string{"bundle/manifest.json", "bundle/rootfs.squashfs", "TRAILER!!!"} {
		if !bytes.Contains(b, []byte(w)) {
			t.Errorf("initrd lacks %q", w)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, PXEBundleDir)); !os.IsNotExist(err) {
		t.Errorf("bundle directory written although embedded: %v", err)
	}
	// Embedded: no nodeinit.image, the initramfs default (initramfs:/bundle) applies.
	ipxe, _ := os.ReadFile(filepath.Join(dir, PXEIPXE))
	if strings.Contains(string(ipxe), "nodeinit.image") {
		t.Error("embedded bundle but entries carry nodeinit.image")
	}
}

func TestWritePXEBadInputWritesNothing(t *testing.T) {
	bundle := fakeBundle(t)
	tests := []struct {
		name string
		o    PXEOptions
		want string
	}{
		{"no url", PXEOptions{Bundle: bundle}, "-image-url"},
		{"no image", PXEOptions{}, "no image"},
		{"ftp url", PXEOptions{ImageURL: "ftp://h/b/", Bundle: bundle}, "http"},
		{"bad template", PXEOptions{ImageURL: "http://h/${nic}/", Bundle: bundle}, "${nic}"},
		{"not a bundle", PXEOptions{Bundle: t.TempDir(), EmbedBundle: true}, "manifest.json"},
		{"bad default", PXEOptions{Bundle: bundle, EmbedBundle: true, Menu: MenuOptions{Default: "instal"}}, "instal"},
		{"url without kernel", PXEOptions{ImageURL: "http://h/b/"}, "-kernel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Dir = filepath.Join(t.TempDir(), "out")
			_, err := WritePXE(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
			if _, err := os.Stat(tt.o.Dir); !os.IsNotExist(err) {
				t.Errorf("output directory created on bad input")
			}
		})
	}
}

func TestPXEMirrorsAndEveryTemplateSurviveTheLoaders(t *testing.T) {
	url := "http://a/${mac}/${ip}/bundle/,http://b/${uuid}/${serial}/${hostname}/bundle/"
	o := PXEOptions{ImageURL: url}
	vars := netboot.Vars{MAC: testMAC, IP: "192.0.2.7", UUID: "u-1", Serial: "s1", Hostname: "node1"}
	want := "http://a/" + testMAC + "/192.0.2.7/bundle/,http://b/u-1/s1/node1/bundle/"
	for loader, byID := range bootLines(t, o) {
		for id, line := range byID {
			if loader != "pxelinux" && strings.Contains(line, "${") {
				t.Errorf("%s %s: %q carries ${…}, which the loader would expand itself", loader, id, line)
			}
			p, err := cmdline.Parse(line)
			if err != nil {
				t.Fatalf("%s %s: %v", loader, id, err)
			}
			if err := netboot.ExpandParams(p, vars); err != nil || p.Node.Image != want {
				t.Errorf("%s %s: image %q, %v; want %q", loader, id, p.Node.Image, err, want)
			}
			if got := cmdline.SplitMirrors(p.Node.Image); len(got) != 2 {
				t.Errorf("%s %s: mirrors %q", loader, id, got)
			}
		}
	}
	if !strings.Contains(o.readme(&PXEResult{}), "${ip}") {
		t.Error("the PXE README does not list ${ip}")
	}
}
