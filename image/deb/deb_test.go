package deb

import (
	"errors"
	"strings"
	"testing"
)

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1.0", "1.1", -1},
		{"1.10", "1.9", 1},
		{"1.0~rc1", "1.0", -1},
		{"1.0", "1.0+edit.1", -1},
		{"1:0.1", "2.0", 1},
		{"2.0-1", "2.0-2", -1},
		{"2.0-10", "2.0-9", 1},
		{"1.0a", "1.0", 1},
		{"1.01", "1.1", 0},
		{"0:1.0", "1.0", 0},
	} {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := CompareVersions(c.b, c.a); got != -c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

func TestParseDepends(t *testing.T) {
	got, err := ParseDepends("libc6 (>= 2.34), foo:any | bar (<< 2), baz (> 1)")
	if err != nil {
		t.Fatal(err)
	}
	want := [][]Dep{{{"libc6", ">=", "2.34"}}, {{"foo", "", ""}, {"bar", "<<", "2"}}, {{"baz", ">=", "1"}}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		for j := range want[i] {
			if got[i][j] != want[i][j] {
				t.Errorf("group %d alt %d = %+v, want %+v", i, j, got[i][j], want[i][j])
			}
		}
	}
	for _, bad := range []string{"(>= 1)", "foo (>= 1", "foo (~ 1)", "foo (>=)"} {
		if _, err := ParseDepends(bad); err == nil {
			t.Errorf("ParseDepends(%q) succeeded", bad)
		}
	}
}

func TestParseStatus(t *testing.T) {
	status := "Package: a\nStatus: install ok installed\nVersion: 1\nDescription: x\n more\n\n" +
		"Package: b\nStatus: deinstall ok config-files\nVersion: 2\n\nPackage: c\nStatus: install ok installed\nVersion: 3\n"
	ps, err := ParseStatus(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Name != "a" || ps[1].Name != "c" || ps[1].Version != "3" {
		t.Errorf("ParseStatus = %+v, want a and c", ps)
	}
}

func TestResolve(t *testing.T) {
	installed := []Package{{Name: "libc6", Version: "2.36", Arch: "amd64"}}
	pool := []Package{
		{Name: "libfoo", Version: "1.0", Arch: "amd64", Depends: "libc6 (>= 2.30)"},
		{Name: "libfoo", Version: "1.2", Arch: "amd64", Depends: "libbar"},
		{Name: "libbar", Version: "1", Arch: "all"},
		{Name: "libarm", Version: "1", Arch: "arm64"},
		{Name: "virt-impl", Version: "3", Arch: "amd64", Provides: "virt (= 3)"},
	}
	want := []Package{{Name: "agent", Version: "1", Arch: "amd64", Depends: "libfoo (>= 1.1), virt (>= 2), libc6"}}
	got, err := Resolve("amd64", installed, want, pool)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, p.Name+"="+p.Version)
	}
	if s := strings.Join(names, " "); s != "libfoo=1.2 virt-impl=3 libbar=1" {
		t.Errorf("Resolve added %s, want libfoo=1.2 virt-impl=3 libbar=1", s)
	}

	_, err = Resolve("amd64", installed, []Package{{Name: "x", Depends: "libarm | nothere (>= 1)"}}, pool)
	var me *MissingError
	if !errors.As(err, &me) || me.Package != "x" || me.Dependency != "libarm | nothere (>= 1)" ||
		len(me.WrongArch) != 1 || !strings.Contains(err.Error(), "libarm 1 (arm64)") {
		t.Errorf("missing dependency: got %v", err)
	}
}
