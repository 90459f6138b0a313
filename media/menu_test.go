package media

import (
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/cmdline"
)

// wantActions is the action each entry must resolve to when its command line is parsed.
var wantActions = map[string]cmdline.Action{
	EntryInstall:       cmdline.ActionInstall,
	EntryInstallSerial: cmdline.ActionInstall,
	EntryReinstall:     cmdline.ActionReinstall,
	EntryUpgrade:       cmdline.ActionUpgrade,
	EntryUninstall:     cmdline.ActionUninstall,
	EntryStateless:     cmdline.ActionStateless,
	EntryRescue:        cmdline.ActionRescue,
}

func TestEntriesActionsMatchTitles(t *testing.T) {
	for _, o := range []MenuOptions{
		{},
		{Default: EntryReinstall, Unattended: "serial:XYZ", ExtraArgs: []string{"console=ttyS0,115200n8", `testarg=a b`}},
		{Default: EntryStateless, ExtraArgs: []string{"nodeinit.image=http://10.0.2.2/bundle"}},
	} {
		if err := o.Validate(); err != nil {
			t.Fatalf("Validate(%+v): %v", o, err)
		}
		entries := Entries(o)
		var ids, titles []string
		defaults := 0
		for _, e := range entries {
			ids = append(ids, e.ID)
			titles = append(titles, e.Title)
			if e.Default {
				defaults++
			}
			if e.Local {
				if len(e.Args) != 0 {
					t.Errorf("%s: local entry has kernel args %q", e.ID, e.Args)
				}
				continue
			}
			p, err := cmdline.Parse(e.Cmdline(nil))
			if err != nil {
				t.Fatalf("%s: parse %q: %v", e.ID, e.Cmdline(nil), err)
			}
			if p.Action != wantActions[e.ID] {
				t.Errorf("%s (%q): action %s, want %s", e.ID, e.Cmdline(nil), p.Action, wantActions[e.ID])
			}
			if (p.StorageInit != nil) != (e.Default && o.Unattended != "") {
				t.Errorf("%s: storage_init %+v, want it only on the default entry of an unattended menu", e.ID, p.StorageInit)
			}
			for _, x := range o.ExtraArgs {
				if !strings.Contains(e.Cmdline(nil), strings.SplitN(x, "=", 2)[0]+"=") {
					t.Errorf("%s: %q lacks extra argument %q", e.ID, e.Cmdline(nil), x)
				}
			}
			if e.ID == EntryInstallSerial && !strings.Contains(e.Cmdline(nil), SerialConsole) {
				t.Errorf("serial entry %q lacks %s", e.Cmdline(nil), SerialConsole)
			}
		}
		if defaults != 1 {
			t.Errorf("%d default entries, want 1", defaults)
		}
		want := "Install or Upgrade|Install with serial console|Reinstall|Upgrade|Uninstall|Run stateless from RAM|Rescue shell|Boot from local drive"
		if got := strings.Join(titles, "|"); got != want {
			t.Errorf("titles %s, want %s", got, want)
		}
		wantDef := o.Default
		if wantDef == "" {
			wantDef = EntryInstall
		}
		if d := DefaultEntry(entries); d.ID != wantDef {
			t.Errorf("default %s, want %s", d.ID, wantDef)
		}
	}
}

func TestUnattendedDefaultInstalls(t *testing.T) {
	e := DefaultEntry(Entries(MenuOptions{Unattended: "serial:XYZ"}))
	if got := e.Cmdline(nil); got != "install storage_init=serial:XYZ" {
		t.Fatalf("default entry %q, want install storage_init=serial:XYZ", got)
	}
	p, err := cmdline.Parse(e.Cmdline([]string{"console=ttyS0"}))
	if err != nil {
		t.Fatal(err)
	}
	if p.Action != cmdline.ActionInstall || p.StorageInit == nil || p.StorageInit.Disks[0].Value != "XYZ" {
		t.Fatalf("parsed %+v %+v", p.Action, p.StorageInit)
	}
}

func TestCmdlineQuotes(t *testing.T) {
	e := Entry{Args: []string{"install", "testarg=a b"}}
	if got := e.Cmdline([]string{"quiet"}); got != `install testarg="a b" quiet` {
		t.Fatalf("got %s", got)
	}
	p, err := cmdline.Parse(e.Cmdline(nil))
	if err != nil {
		t.Fatal(err)
	}
	if p.Action != cmdline.ActionInstall || len(p.Kept) != 1 || !strings.Contains(p.Kept[0], "a b") {
		t.Fatalf("parsed action %s kept %q", p.Action, p.Kept)
	}
}

func TestMenuOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		o    MenuOptions
		want string
	}{
		{MenuOptions{Default: "instal"}, `menu default "instal"`},
		{MenuOptions{Timeout: -time.Second}, "negative"},
		{MenuOptions{Unattended: "serial:A B"}, "spaces"},
		{MenuOptions{Unattended: "nvme", Default: EntryLocal}, "writes no disk"},
		{MenuOptions{ExtraArgs: []string{`a="b"`}}, "quotes"},
	} {
		err := tc.o.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "hint") {
			t.Errorf("Validate(%+v) = %v, want an error with %q and a hint", tc.o, err, tc.want)
		}
	}
	if s := (MenuOptions{Timeout: 1500 * time.Millisecond}).TimeoutSeconds(); s != 2 {
		t.Errorf("TimeoutSeconds(1.5s) = %d, want 2", s)
	}
	if s := (MenuOptions{}).TimeoutSeconds(); s != 10 {
		t.Errorf("TimeoutSeconds(0) = %d, want 10", s)
	}
}

func TestConfigsCarryEveryEntry(t *testing.T) {
	o := MenuOptions{Timeout: 3 * time.Second, Unattended: "nvme", ExtraArgs: []string{"console=ttyS0,115200n8"}}
	entries := Entries(o)
	iso := IsolinuxConfig(entries, o, "/vmlinuz", "/initrd.img")
	sd := SystemdBootConfig(entries, o, "/vmlinuz", "/initrd.img")
	if !strings.Contains(iso, "TIMEOUT 30\n") || !strings.Contains(iso, "DEFAULT install\n") {
		t.Errorf("isolinux.cfg timeout/default wrong:\n%s", iso)
	}
	if !strings.Contains(sd["loader.conf"], "timeout 3\n") || !strings.Contains(sd["loader.conf"], "default install.conf\n") {
		t.Errorf("loader.conf wrong:\n%s", sd["loader.conf"])
	}
	checkMenus(t, entries, iso, sd)
}

// checkMenus asserts that isolinux.cfg and the systemd-boot entries hold every entry with
// exactly its kernel arguments (and the local entry without a kernel).
func checkMenus(t *testing.T, entries []Entry, isolinuxCfg string, sdboot map[string]string) {
	t.Helper()
	labels := parseIsolinux(isolinuxCfg)
	for _, e := range entries {
		l, ok := labels[e.ID]
		if !ok {
			t.Errorf("isolinux.cfg has no LABEL %s", e.ID)
			continue
		}
		conf := sdboot["entries/"+e.ID+".conf"]
		if l["MENU LABEL"] != e.Title || !strings.Contains(conf, "title "+e.Title+"\n") {
			t.Errorf("%s: titles %q / %q, want %q", e.ID, l["MENU LABEL"], conf, e.Title)
		}
		if e.Local {
			if l["LOCALBOOT"] == "" || l["APPEND"] != "" || !strings.Contains(conf, "efi "+ExitEFIPath) || strings.Contains(conf, "linux ") {
				t.Errorf("local entry: isolinux %v, systemd-boot %q", l, conf)
			}
			continue
		}
		for _, args := range []string{l["APPEND"], confValue(conf, "options")} {
			p, err := cmdline.Parse(args)
			if err != nil {
				t.Fatalf("%s: parse %q: %v", e.ID, args, err)
			}
			if args != e.Cmdline(nil) || p.Action != wantActions[e.ID] {
				t.Errorf("%s: menu args %q (action %s), want %q (action %s)", e.ID, args, p.Action, e.Cmdline(nil), wantActions[e.ID])
			}
		}
	}
}

// parseIsolinux maps each LABEL to its directives.
func parseIsolinux(cfg string) map[string]map[string]string {
	out := map[string]map[string]string{}
	var cur map[string]string
	for _, line := range strings.Split(cfg, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "LABEL "); ok {
			cur = map[string]string{}
			out[v] = cur
			continue
		}
		if cur == nil || line == "" {
			continue
		}
		for _, k := range []string{"MENU LABEL", "MENU DEFAULT", "KERNEL", "INITRD", "APPEND", "LOCALBOOT"} {
			if line == k || strings.HasPrefix(line, k+" ") {
				cur[k] = strings.TrimSpace(strings.TrimPrefix(line, k))
				if cur[k] == "" {
					cur[k] = "yes"
				}
			}
		}
	}
	return out
}

func confValue(conf, key string) string {
	for _, line := range strings.Split(conf, "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			return v
		}
	}
	return ""
}
