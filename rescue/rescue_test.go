package rescue

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// sh runs a command through run with stdin, and returns its output and status.
func sh(t *testing.T, stdin, name string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	var out, errw strings.Builder
	status = run(name, args, strings.NewReader(stdin), &out, &errw)
	return out.String(), errw.String(), status
}

// want runs a command that must exit 0 and returns its stdout.
func want(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, errw, status := sh(t, "", name, args...)
	if status != 0 {
		t.Fatalf("%s %q: status %d, stderr %q", name, args, status, errw)
	}
	return out
}

func TestNames(t *testing.T) {
	names := Names()
	if !slices.IsSorted(names) {
		t.Errorf("Names not sorted: %v", names)
	}
	for _, n := range []string{"cat", "echo", "grep", "gosh", "sh", "ls", "sleep"} {
		if !Has(n) || !slices.Contains(names, n) {
			t.Errorf("%s missing from Names %v", n, names)
		}
	}
	if Has("bogus") {
		t.Error(`Has("bogus")`)
	}
	if _, errw, status := sh(t, "", "bogus"); status != 127 || !strings.Contains(errw, "bogus: not a rescue command") {
		t.Errorf("bogus: status %d, stderr %q", status, errw)
	}
}

func TestHelp(t *testing.T) {
	for _, name := range []string{"echo", "grep", "head", "sh", "sleep", "ln", "kill", "hexdump"} {
		if out, errw, status := sh(t, "", name, "--help"); status != 0 || !strings.HasPrefix(out, "usage: "+name+" ") {
			t.Errorf("%s --help: status %d, stdout %q, stderr %q", name, status, out, errw)
		}
	}
	if _, errw, status := sh(t, "", "grep", "-Z", "x"); status != 2 || !strings.Contains(errw, "usage: grep") {
		t.Errorf("grep -Z: status %d, stderr %q", status, errw)
	}
}

func TestSplitFlags(t *testing.T) {
	fs := (&call{name: "t"}).flags()
	fs.Bool("l", false, "")
	fs.Bool("a", false, "")
	fs.Int("n", 0, "")
	fs.String("O", "", "")
	for _, tt := range []struct{ in, want []string }{
		{[]string{"-la", "x", "-n"}, []string{"-l", "-a", "x", "-n"}},
		{[]string{"-n5", "-l"}, []string{"-n", "5", "-l"}},
		{[]string{"-ln", "5", "f"}, []string{"-l", "-n", "5", "f"}},
		{[]string{"-O", "-", "url"}, []string{"-O", "-", "url"}},
		{[]string{"--help", "-", "-l"}, []string{"--help", "-", "-l"}},
		{[]string{"--", "-la"}, []string{"--", "-la"}},
	} {
		if got := splitFlags(fs, tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("splitFlags(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	want(t, "mkdir", "-p", p("a/b"))
	if err := os.WriteFile(p("a/f"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want(t, "cp", p("a/f"), p("a/b/g"))
	if out := want(t, "cat", p("a/f"), p("a/b/g")); out != "hello\nhello\n" {
		t.Errorf("cat: %q", out)
	}
	if out, _, _ := sh(t, "from stdin", "more", "-"); out != "from stdin" {
		t.Errorf("more -: %q", out)
	}
	want(t, "mv", p("a/b/g"), p("a/h"))
	want(t, "ln", "-s", p("a/h"), p("a/link"))
	want(t, "ln", p("a/f"), p("a/hard"))
	want(t, "chmod", "600", p("a/h"))
	if st, err := os.Stat(p("a/h")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("chmod 600: %v %v", st, err)
	}
	if target, err := os.Readlink(p("a/link")); err != nil || target != p("a/h") {
		t.Errorf("ln -s: %q %v", target, err)
	}
	if st, err := os.Stat(p("a/hard")); err != nil || st.Sys() == nil || st.Size() != 6 {
		t.Errorf("ln: %v %v", st, err)
	}
	out := want(t, "ls", p("a"))
	if strings.Fields(out)[0] != "b" || !strings.Contains(out, "hard") || strings.Contains(out, "g\n") {
		t.Errorf("ls: %q", out)
	}
	if out := want(t, "ls", "-l", p("a")); !strings.Contains(out, "-rw-------") || !strings.Contains(out, "link -> "+p("a/h")) {
		t.Errorf("ls -l: %q", out)
	}
	if out := want(t, "find", p("a"), "-name", "h*"); out != p("a/h")+"\n"+p("a/hard")+"\n" {
		t.Errorf("find -name: %q", out)
	}
	want(t, "rm", "-r", p("a/b"))
	if _, err := os.Stat(p("a/b")); !os.IsNotExist(err) {
		t.Errorf("rm -r: %v", err)
	}
	if _, errw, status := sh(t, "", "cat", p("nope")); status != 1 || !strings.HasPrefix(errw, "cat: ") {
		t.Errorf("cat nope: status %d, stderr %q", status, errw)
	}
	if _, _, status := sh(t, "", "ln"); status != 2 {
		t.Errorf("ln without operands: status %d", status)
	}
}

func TestGrep(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "one"), []byte("alpha\nBeta\ngamma\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "sub", "two"), []byte("beta two\n"), 0o644)
	one := filepath.Join(dir, "one")
	for _, tt := range []struct {
		args   []string
		out    string
		status int
	}{
		{[]string{"beta", one}, "", 1},
		{[]string{"-i", "beta", one}, "Beta\n", 0},
		{[]string{"-vn", "^[ag]", one}, "2:Beta\n", 0},
		{[]string{"-c", "a", one}, "3\n", 0},
		{[]string{"-F", "a.", one}, "", 1},
		{[]string{"-ri", "beta", dir}, one + ":Beta\n" + filepath.Join(dir, "sub", "two") + ":beta two\n", 0},
		{[]string{"-l", "gam", one, one}, one + "\n" + one + "\n", 0},
		{[]string{"x", filepath.Join(dir, "nope")}, "", 2},
		{[]string{"x", dir}, "", 2},
		{[]string{"("}, "", 2},
	} {
		if out, errw, status := sh(t, "", "grep", tt.args...); out != tt.out || status != tt.status {
			t.Errorf("grep %q = %q, %d (stderr %q); want %q, %d", tt.args, out, status, errw, tt.out, tt.status)
		}
	}
	if out, _, status := sh(t, "a\nb\nab\n", "grep", "a"); out != "a\nab\n" || status != 0 {
		t.Errorf("grep from stdin: %q %d", out, status)
	}
}

func TestHeadTail(t *testing.T) {
	in := "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12"
	for _, tt := range []struct {
		name string
		args []string
		out  string
	}{
		{"head", nil, "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n"},
		{"head", []string{"-n", "2"}, "1\n2\n"},
		{"head", []string{"-3"}, "1\n2\n3\n"},
		{"tail", []string{"-n2"}, "11\n12"},
		{"tail", []string{"-n", "0"}, ""},
		{"tail", nil, "3\n4\n5\n6\n7\n8\n9\n10\n11\n12"},
	} {
		if out, errw, status := sh(t, in, tt.name, tt.args...); out != tt.out || status != 0 {
			t.Errorf("%s %q = %q, %d (%s)", tt.name, tt.args, out, status, errw)
		}
	}
	f := filepath.Join(t.TempDir(), "f")
	os.WriteFile(f, []byte("x\ny\n"), 0o644)
	if out := want(t, "head", "-n1", f, f); out != "==> "+f+" <==\nx\n\n==> "+f+" <==\nx\n" {
		t.Errorf("head of two files: %q", out)
	}
}

func TestSmall(t *testing.T) {
	if out := want(t, "echo", "-n", "a", "-b"); out != "a -b" {
		t.Errorf("echo -n: %q", out)
	}
	if out := want(t, "echo", "-x", "y"); out != "-x y\n" {
		t.Errorf("echo: %q", out)
	}
	data := "hello, hexdump\x00\x01\xff"
	if out, _, _ := sh(t, data, "hexdump", "-C"); out != hex.Dump([]byte(data)) {
		t.Errorf("hexdump -C: %q", out)
	}
	start := time.Now()
	want(t, "sleep", "0.05", "0.05")
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("sleep 0.05 0.05 took %v", d)
	}
	for _, bad := range []string{"-1", "x", "NaN"} {
		if _, _, status := sh(t, "", "sleep", "--", bad); status != 2 {
			t.Errorf("sleep %s: status %d", bad, status)
		}
	}
	if out := want(t, "uname"); out != "Linux\n" {
		t.Errorf("uname: %q", out)
	}
	release, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	if out := want(t, "uname", "-r"); out != string(release) {
		t.Errorf("uname -r: %q, want %q", out, release)
	}
	if out := want(t, "uname", "-a"); !strings.HasPrefix(out, "Linux ") || !strings.Contains(out, strings.TrimSpace(string(release))) {
		t.Errorf("uname -a: %q", out)
	}
}

func TestShell(t *testing.T) {
	script := filepath.Join(t.TempDir(), "s.sh")
	os.WriteFile(script, []byte("echo \"$1-$2\"\nexit 5\n"), 0o644)
	for _, tt := range []struct {
		args   []string
		out    string
		status int
	}{
		{[]string{"-c", "echo hello | while read l; do echo \"got $l\"; done"}, "got hello\n", 0},
		{[]string{"-c", "x=5; y=$((x+1)); echo $x $y"}, "5 6\n", 0},
		{[]string{"-c", "if [ a = b ]; then echo yes; else echo no; fi"}, "no\n", 0},
		{[]string{"-c", "false || echo or; false"}, "or\n", 1},
		{[]string{"-c", "(exit 7); echo $?; exit 9"}, "7\n", 9},
		{[]string{"-c", "echo $1 $#", "name", "a1", "a2"}, "a1 2\n", 0},
		{[]string{"-c", "if then"}, "", 2},
		{[]string{script, "p", "q"}, "p-q\n", 5},
	} {
		if out, errw, status := sh(t, "", "sh", tt.args...); out != tt.out || status != tt.status {
			t.Errorf("sh %q = %q, %d (stderr %q); want %q, %d", tt.args, out, status, errw, tt.out, tt.status)
		}
	}
}

func TestInteractive(t *testing.T) {
	in := "echo one\nno-such-command-here\n)\nif true; then\necho two\nfi\nPS1='x> '\nexit 3\necho never\n"
	out, errw, status := sh(t, in, "gosh")
	if status != 3 {
		t.Errorf("status %d, want 3 (stderr %q)", status, errw)
	}
	if want := "rescue# one\nrescue# rescue# rescue# > > two\nrescue# x> "; out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	if !strings.Contains(errw, "no-such-command-here") || !strings.Contains(errw, "gosh: ") {
		t.Errorf("stderr %q: want the failing command and the syntax error", errw)
	}
	if out, _, status := sh(t, "false\n", "sh"); status != 1 || out != "rescue# rescue# " {
		t.Errorf("end of input after false: %q, status %d", out, status)
	}
}
