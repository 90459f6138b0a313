package cmdline

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/cmdline goldens (review every change by hand)")

const goldenDir = "../testdata/cmdline"

// readLine reads one golden command line; the file's final newline is not part of it.
func readLine(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

// secretValues are the password texts used in the goldens; none may ever be printed.
var secretValues = []string{
	"RHhwCLrQXB8zE", "ovonFQQPIAM9o", "qyElKzTtSdp6DF7aG6as3", "GyB1s3q6Esx33IRI49rK5RM7VdJObU",
	"hunter2", "topsecret", "redhat123", "cim_passwd=abc", "rhn_password=x", "rhn_proxypassword=y", "my-db-passwd=z",
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 40 {
		t.Fatalf("only %d golden command lines; want at least 40", len(files))
	}
	for _, txt := range files {
		name := strings.TrimSuffix(filepath.Base(txt), ".txt")
		t.Run(name, func(t *testing.T) {
			line := readLine(t, txt)
			base := strings.TrimSuffix(txt, ".txt")
			p, perr := Parse(line)
			if perr != nil {
				checkNoSecret(t, "error", shownError(perr))
				if *update {
					writeGolden(t, base+".err", shownError(perr), base+".json")
					return
				}
				want, err := os.ReadFile(base + ".err")
				if err != nil {
					t.Fatalf("Parse failed but there is no %s.err: %v", name, perr)
				}
				if got := shownError(perr); got != string(want) {
					t.Errorf("error differs\n got: %s\nwant: %s", got, want)
				}
				return
			}
			got, err := json.MarshalIndent(p, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			checkNoSecret(t, "JSON", string(got))
			checkNoSecret(t, "String", p.String())
			checkNoSecret(t, "BootEntryArgs", strings.Join(p.BootEntryArgs(), " "))
			if *update {
				writeGolden(t, base+".json", string(got), base+".err")
			} else {
				want, err := os.ReadFile(base + ".json")
				if err != nil {
					t.Fatalf("Parse succeeded but there is no %s.json", name)
				}
				if string(got) != string(want) {
					t.Errorf("params differ\n got: %s\nwant: %s", got, want)
				}
			}
			checkRoundTrip(t, p)
		})
	}
}

func writeGolden(t *testing.T, path, content, stale string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(stale); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}

func checkNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, v := range secretValues {
		if strings.Contains(s, v) {
			t.Errorf("%s shows the secret %q: %s", what, v, s)
		}
	}
}

// comparable strips what a canonical line legitimately does not carry over.
func comparable(p *Params) Params {
	c := *p
	c.Warnings = nil
	c.PossiblyTruncated = false
	return c
}

// checkRoundTrip asserts Parse(Canonical(true)) gives the same Params, and that the redacted
// String differs from it only in secret values.
func checkRoundTrip(t *testing.T, p *Params) {
	t.Helper()
	line := p.Canonical(true)
	q, err := Parse(line)
	if err != nil {
		t.Fatalf("canonical line %q does not parse: %v", line, err)
	}
	if a, b := comparable(p), comparable(q); !reflect.DeepEqual(a, b) {
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		t.Fatalf("round trip through %q changed params\n was: %s\n now: %s", line, ja, jb)
	}
	want := line
	for _, s := range []struct {
		key string
		v   Secret
	}{{"adminpw", p.AdminPW}, {"rootpw", p.RootPW}} {
		if s.v != "" {
			want = strings.Replace(want, quoteToken(s.key+"="+s.v.Reveal()), quoteToken(s.key+"="+Redacted), 1)
		}
	}
	if p.String() != want {
		t.Fatalf("String() %q is not Canonical(true) %q with the secrets redacted", p.String(), line)
	}
	toks, _, _ := Split(p.String())
	for _, tok := range toks {
		if k, v, _ := strings.Cut(tok, "="); isSecretKey(normKey(k)) && v != Redacted {
			t.Fatalf("String() shows a secret in %q", tok)
		}
	}
}

// shownError is a parse error as an operator sees it: each malformed argument's
// message, then its fix on a line of its own.
func shownError(err error) string {
	var b strings.Builder
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		b.WriteString(e.Error() + "\n")
		var ce *Error
		if errors.As(e, &ce) && ce.Hint != "" {
			b.WriteString("  fix: " + ce.Hint + "\n")
		}
	}
	return b.String()
}
